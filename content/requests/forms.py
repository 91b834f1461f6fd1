"""The content request pages' forms: ask, comment, and marketing's decision."""

from django import forms

from content.models import Asset, FunnelStage, RequestStatus
from content.requests.services import COMMENT_MAX, DETAILS_MAX, NOTE_MAX, TAG_MAX, TITLE_MAX

# the list's status filter: "active" (open and planned, the default) or one status, or all
STATUS_FILTERS = (
    ("active", "Open and planned"),
    *RequestStatus.choices,
    ("all", "All"),
)


class RequestForm(forms.Form):
    title = forms.CharField(
        max_length=TITLE_MAX,
        label="What content do you need?",
        widget=forms.TextInput(attrs={"placeholder": "A case study for banks moving off Excel"}),
    )
    details = forms.CharField(
        max_length=DETAILS_MAX,
        required=False,
        label="Why, and for which deals",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    funnel_stage = forms.ChoiceField(
        choices=[("", "Any stage"), *FunnelStage.choices], required=False, label="Funnel stage"
    )
    persona = forms.CharField(max_length=TAG_MAX, required=False, label="Persona")
    industry = forms.CharField(max_length=TAG_MAX, required=False, label="Industry")


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=COMMENT_MAX, label="Comment", widget=forms.Textarea(attrs={"rows": 3})
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=RequestStatus.choices, label="Status")
    note = forms.CharField(
        max_length=NOTE_MAX,
        required=False,
        label="Note for the requester and the voters",
        help_text="Required when you decline it.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    asset = forms.ModelChoiceField(
        queryset=Asset.objects.order_by("title", "id"),
        required=False,
        empty_label="No asset",
        label="The asset that answers it",
        help_text="Required when it is done.",
    )
