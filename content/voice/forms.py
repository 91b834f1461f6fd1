"""The voice of the prospect's forms: logging what a prospect said (lead page and queue), the
voice page's filters, and linking the asset that answers an objection."""

from django import forms

from content.models import Asset, ObjectionCategory, ObjectionKind
from content.voice.services import COMPETITOR_MAX, TEXT_MAX
from kpis.forms import KpiFilterForm
from kpis.selectors.voice import SEGMENTS
from leads.api.pagination import MAX_ID


class ObjectionLogForm(forms.Form):
    lead = forms.IntegerField(min_value=1, max_value=MAX_ID, widget=forms.HiddenInput)
    kind = forms.ChoiceField(
        choices=ObjectionKind.choices, initial=ObjectionKind.OBJECTION, label="It was"
    )
    category = forms.ChoiceField(
        choices=[("", "Choose…"), *ObjectionCategory.choices],
        error_messages={"required": "Pick a category: what was it about?"},
    )
    competitor = forms.CharField(
        required=False,
        max_length=COMPETITOR_MAX,
        label="Competitor",
        help_text="Optional: the competitor they named.",
    )
    text = forms.CharField(
        max_length=TEXT_MAX,
        label="What they said",
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write down what the prospect said, in their words."},
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)

    def __init__(self, *args, prefix_id: str = "voice", **kwargs):
        kwargs.setdefault("auto_id", f"{prefix_id}-%s")
        super().__init__(*args, **kwargs)


class VoiceFilterForm(KpiFilterForm):
    """The KPI page's period, source and campaign, plus a split by segment and a category."""

    segment = forms.ChoiceField(
        required=False, choices=[("", "No split"), *SEGMENTS.items()], label="Split by"
    )
    category = forms.ChoiceField(
        required=False, choices=[("", "All categories"), *ObjectionCategory.choices]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["rep"]  # who logged it is shown on each quote; figures are the team's


class AnswerForm(forms.Form):
    answer = forms.ModelChoiceField(
        queryset=Asset.objects.filter(sales_ready=True).order_by("title", "id"),
        required=False,
        empty_label="No answer linked",
        error_messages={"invalid_choice": "Pick a sales-ready asset from the library."},
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)
