"""The KPI page's filters: a week or a month (in the agreement's time zone), source, campaign
and rep. Any other period than the picker offers can be given in the address (2025-W03)."""

from django import forms

from alignment.lib.errors import DomainError
from alignment.models import SALES_ROLES, User
from kpis import selectors
from kpis.api import FIRST_YEAR, LAST_YEAR, MONTH, WEEK
from kpis.models import Metric, PeriodKind
from kpis.selectors.goals import METRICS
from leads.models import Campaign, Source

RECENT = 12  # months and weeks the picker offers


class KpiFilterForm(forms.Form):
    period = forms.CharField(required=False, widget=forms.Select)
    source = forms.ModelChoiceField(
        queryset=Source.objects.order_by("name"), required=False, empty_label="All sources"
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"), required=False, empty_label="All campaigns"
    )
    rep = forms.ModelChoiceField(
        queryset=User.objects.filter(role__in=SALES_ROLES).order_by("username"),
        required=False,
        empty_label="All reps",
    )

    def __init__(self, data=None, *, tz: str, this_week: str, this_month: str):
        super().__init__(data)
        self.tz, self.this_month = tz, this_month
        months = list(reversed(selectors.months_back(this_month, RECENT)))
        weeks = list(reversed(selectors.weeks_back(this_week, RECENT)))
        asked = (data or {}).get("period", "").strip().upper()
        older = [(asked, asked)] if asked and asked not in months + weeks else []
        self.fields["period"].widget.choices = [
            *older,  # a period given in the address stays picked
            ("Months", [(m, m) for m in months]),
            ("Weeks", [(w, w) for w in weeks]),
        ]

    def clean_period(self) -> str:
        value = (self.cleaned_data.get("period") or self.this_month).strip().upper()
        if not (WEEK.fullmatch(value) or MONTH.fullmatch(value)):
            raise forms.ValidationError("Pick a month like 2026-11 or an ISO week like 2026-W47.")
        if not FIRST_YEAR <= int(value[:4]) <= LAST_YEAR:
            raise forms.ValidationError(f"Give a year from {FIRST_YEAR} to {LAST_YEAR}.")
        try:
            if WEEK.fullmatch(value):
                self.cleaned_data["period_obj"] = selectors.iso_week_period(value, tz=self.tz)
            else:
                self.cleaned_data["period_obj"] = selectors.month_period(value, tz=self.tz)
        except DomainError as error:
            raise forms.ValidationError(error.message) from None
        return value


class GoalForm(forms.Form):
    """A shared goal as kpis.services.goal_create and goal_update take it; the rules (the
    period's first day, the target's range, who may own what) are the service's."""

    metric = forms.ChoiceField(label="Figure")
    period_kind = forms.ChoiceField(label="Period", choices=PeriodKind.choices)
    period_start = forms.DateField(
        label="Starts on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="A Monday for a week, the 1st for a month, 1 January, April, July or October "
        "for a quarter.",
    )
    target = forms.DecimalField(
        max_digits=14, decimal_places=2, help_text="A count, an amount or a percentage."
    )
    marketing = forms.BooleanField(label="Marketing owns it", required=False)
    sales = forms.BooleanField(label="Sales owns it", required=False)
    note = forms.CharField(max_length=300, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the figures a goal can be read from, in the order the page lists them
        self.fields["metric"].choices = [(code, Metric(code).label) for code in METRICS]

    def add_domain_error(self, error: DomainError) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.message)
