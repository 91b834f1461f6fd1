from django import forms

from alignment.lib.timezones import DATETIME_LOCAL_FORMAT, DATETIME_LOCAL_INPUT_FORMATS
from alignment.models import SALES_ROLES, User
from leads.models import Lead, Reason, Stage, TouchpointKind
from leads.services import ALLOWED_MOVES


class MoveForm(forms.Form):
    to = forms.ChoiceField(label="Move to", choices=Stage.choices)
    reason = forms.ModelChoiceField(
        queryset=Reason.objects.filter(active=True), required=False, empty_label="(no reason)"
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    deal_value = forms.DecimalField(required=False, max_digits=14, decimal_places=2)

    def __init__(self, *args, lead: Lead, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = [(s, Stage(s).label) for s in ALLOWED_MOVES[lead.stage]]
        self.fields["reason"].label_from_instance = lambda r: f"{r.get_kind_display()}: {r.label}"


class TouchpointForm(forms.Form):
    kind = forms.ChoiceField(choices=TouchpointKind.choices)
    # naive input is read in the zone active for the request: the person's working_timezone
    occurred_at = forms.DateTimeField(
        required=False,
        help_text="Leave empty for now.",
        input_formats=DATETIME_LOCAL_INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
    )
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        # the lead page holds several forms with a note: each gets ids of its own
        kwargs.setdefault("auto_id", "id_touchpoint_%s")
        super().__init__(*args, **kwargs)


class AssignForm(forms.Form):
    rep = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True, role__in=SALES_ROLES).order_by("username")
    )
    note = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "id_assign_%s")
        super().__init__(*args, **kwargs)


class MergeForm(forms.Form):
    duplicate = forms.CharField(
        label="Duplicate lead (id, email or external id)",
        help_text="Its history and touchpoints move to this lead; the duplicate is removed.",
    )

    def clean_duplicate(self) -> Lead:
        value = self.cleaned_data["duplicate"].strip()
        lead = None
        if value.isdigit():
            lead = Lead.objects.filter(pk=int(value)).first()
        lead = lead or Lead.objects.filter(email=value.lower()).first()
        lead = lead or Lead.objects.filter(external_id=value).first()
        if lead is None:
            raise forms.ValidationError(f"No lead with id, email or external id “{value}”.")
        return lead


class FeedbackFilterForm(forms.Form):
    group = forms.ChoiceField(
        choices=[("source", "Source"), ("campaign", "Campaign")], required=False
    )
    days = forms.IntegerField(min_value=1, max_value=3650, required=False, initial=90)
