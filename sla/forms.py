"""The agreement's draft form: every setting as a plain field, the calendar as simple fields (time
zone, each weekday's hours as "09:00-12:00, 13:00-17:00", country, region, days off one a line)."""

import re

from django import forms

from alignment.lib.business_time import WEEKDAYS
from alignment.signoff import VersionStatus
from leads.models import ScoringModel
from sla.models import Agreement, CommitmentPeriod, OnReassign

DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                "Saturday", "Sunday"), strict=True))  # fmt: skip
_SHIFT = re.compile(r"^\s*(\S+?)\s*[-–—]\s*(\S+)\s*$")
_CLOSED = {"", "closed", "-", "–", "none"}
# the service names a calendar problem by its place in the JSON; the form by its own field
_CALENDAR_FIELDS = {
    "calendar.timezone": "timezone",
    "calendar.country": "country",
    "calendar.subdivision": "subdivision",
    "calendar.closed_days": "closed_days",
    **{f"calendar.hours.{day}": f"hours_{day}" for day in WEEKDAYS},
}


def shifts_text(shifts: list) -> str:
    return ", ".join(f"{start}-{end}" for start, end in shifts) if shifts else "closed"


def parse_shifts(text: str) -> list[list[str]]:
    """ "09:00-12:00, 13:00-17:00" -> [["09:00", "12:00"], ["13:00", "17:00"]]; "closed" -> []."""
    if text.strip().lower() in _CLOSED:
        return []
    shifts = []
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        match = _SHIFT.match(part)
        if match is None:
            raise forms.ValidationError(
                f"“{part.strip()}” is not a shift: write 09:00-17:00, several separated by commas, "
                "or “closed”."
            )
        shifts.append([match[1], match[2]])
    return shifts


class AgreementForm(forms.Form):
    name = forms.CharField(max_length=200)
    scoring_model = forms.ModelChoiceField(
        queryset=ScoringModel.objects.none(),
        label="MQL definition (scoring model)",
        required=False,
        empty_label="none",
    )
    # sales
    response_hours = forms.DecimalField(
        label="First touch within (business hours of assignment)", decimal_places=2
    )
    decision_hours = forms.DecimalField(
        label="Accept or reject within (business hours of assignment)", decimal_places=2
    )
    followup_attempts = forms.IntegerField(label="Follow-up attempts on an accepted lead, at least")
    followup_days = forms.IntegerField(label="… within (days of accepting it)")
    # marketing
    commitment_period = forms.ChoiceField(
        choices=CommitmentPeriod.choices, label="Marketing commits per"
    )
    mqls_committed = forms.IntegerField(label="MQLs delivered")
    acceptance_rate_committed = forms.DecimalField(
        label="Acceptance rate by sales (%)", decimal_places=2
    )
    pipeline_committed = forms.DecimalField(
        label="Pipeline value created (0: no target)", decimal_places=2
    )
    # the business calendar
    timezone = forms.CharField(label="Time zone", help_text="Such as Europe/Berlin")
    hours_mon = forms.CharField(label="Monday", required=False)
    hours_tue = forms.CharField(label="Tuesday", required=False)
    hours_wed = forms.CharField(label="Wednesday", required=False)
    hours_thu = forms.CharField(label="Thursday", required=False)
    hours_fri = forms.CharField(label="Friday", required=False)
    hours_sat = forms.CharField(label="Saturday", required=False)
    hours_sun = forms.CharField(label="Sunday", required=False)
    country = forms.CharField(
        label="Public holidays of (country code)", required=False, help_text="Such as DE or US"
    )
    subdivision = forms.CharField(
        label="… and region (code, optional)", required=False, help_text="Such as BY or CA"
    )
    closed_days = forms.CharField(
        label="Company days off (one date a line, YYYY-MM-DD)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # escalation
    warn_percent = forms.DecimalField(
        label="Warn when this share of the allowed time has passed (%)", decimal_places=1
    )
    notify_manager_on_breach = forms.BooleanField(
        label="On a breach, tell the sales manager as well as the rep", required=False
    )
    reassign_after_hours = forms.DecimalField(
        label="Reassign to the next eligible rep this many business hours after a breach "
        "(empty: never)",
        decimal_places=2,
        required=False,
    )
    on_reassign = forms.ChoiceField(choices=OnReassign.choices, label="On reassignment")
    # the weekly report and the review
    report_recipients = forms.CharField(
        label="Weekly report to (one email address a line)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    report_to_managers = forms.BooleanField(
        label="Send it to the marketing and sales managers too", required=False
    )
    review_date = forms.DateField(
        label="Review date: do we still agree on our definition of an MQL?",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, agreement: Agreement, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = ScoringModel.objects.filter(
            status__in=(VersionStatus.ACTIVE, VersionStatus.PROPOSED)
        )
        if agreement.scoring_model_id:
            allowed = allowed | ScoringModel.objects.filter(pk=agreement.scoring_model_id)
        self.fields["scoring_model"].queryset = allowed.order_by("-id")
        for day in WEEKDAYS:
            self.fields[f"hours_{day}"].help_text = "Such as 09:00-12:00, 13:00-17:00, or closed"

    @classmethod
    def for_agreement(cls, agreement: Agreement) -> "AgreementForm":
        calendar = agreement.calendar or {}
        hours = calendar.get("hours") or {}
        initial = {
            "name": agreement.name,
            "scoring_model": agreement.scoring_model_id,
            "response_hours": agreement.response_hours,
            "decision_hours": agreement.decision_hours,
            "followup_attempts": agreement.followup_attempts,
            "followup_days": agreement.followup_days,
            "commitment_period": agreement.commitment_period,
            "mqls_committed": agreement.mqls_committed,
            "acceptance_rate_committed": agreement.acceptance_rate_committed,
            "pipeline_committed": agreement.pipeline_committed,
            "timezone": calendar.get("timezone", ""),
            "country": calendar.get("country", ""),
            "subdivision": calendar.get("subdivision", ""),
            "closed_days": "\n".join(calendar.get("closed_days") or []),
            "warn_percent": (agreement.warn_share * 100).normalize(),
            "notify_manager_on_breach": agreement.notify_manager_on_breach,
            "reassign_after_hours": agreement.reassign_after_hours,
            "on_reassign": agreement.on_reassign,
            "report_recipients": "\n".join(agreement.report_recipients or []),
            "report_to_managers": agreement.report_to_managers,
            "review_date": agreement.review_date,
            "notes": agreement.notes,
            **{f"hours_{day}": shifts_text(hours.get(day) or []) for day in WEEKDAYS},
        }
        return cls(initial=initial, agreement=agreement)

    def clean(self):
        data = super().clean()
        for day in WEEKDAYS:
            name = f"hours_{day}"
            if name in data:
                try:
                    data[name] = parse_shifts(data[name])
                except forms.ValidationError as error:
                    self.add_error(name, error)
        return data

    def changes(self) -> dict:
        """The cleaned form as agreement_update's keyword arguments."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "scoring_model": data["scoring_model"],
            "response_hours": data["response_hours"],
            "decision_hours": data["decision_hours"],
            "followup_attempts": data["followup_attempts"],
            "followup_days": data["followup_days"],
            "commitment_period": data["commitment_period"],
            "mqls_committed": data["mqls_committed"],
            "acceptance_rate_committed": data["acceptance_rate_committed"],
            "pipeline_committed": data["pipeline_committed"],
            "calendar": {
                "timezone": data["timezone"],
                "hours": {day: data[f"hours_{day}"] for day in WEEKDAYS},
                "country": data["country"],
                "subdivision": data["subdivision"],
                "closed_days": [
                    line.strip() for line in data["closed_days"].splitlines() if line.strip()
                ],
            },
            "warn_share": data["warn_percent"] / 100,
            "notify_manager_on_breach": data["notify_manager_on_breach"],
            "reassign_after_hours": data["reassign_after_hours"],
            "on_reassign": data["on_reassign"],
            "report_recipients": [
                line.strip() for line in data["report_recipients"].splitlines() if line.strip()
            ],
            "report_to_managers": data["report_to_managers"],
            "review_date": data["review_date"],
            "notes": data["notes"],
        }

    def add_service_errors(self, errors: dict[str, list[str]], message: str) -> None:
        """Put each of the service's problems on its field (the page shows them in place)."""
        if not errors:
            self.add_error(None, message)
            return
        for name, problems in errors.items():
            target = _CALENDAR_FIELDS.get(name, name)
            if target == "warn_share":
                target = "warn_percent"
            if target not in self.fields:
                target = None
            for problem in problems:
                self.add_error(target, problem)


class DecisionForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
