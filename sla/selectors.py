"""Reads of the alignment agreement: the version in force, the history, what changed between two
versions, and the agreement in words for the people bound by it."""

from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from alignment import signoff
from alignment.lib.business_time import Calendar, CalendarError
from alignment.models import User
from alignment.signoff import VersionStatus
from sla.models import Agreement, AgreementApproval, AgreementEvent

# the order a reader meets them, with the words a change is named by
FIELD_LABELS = {
    "name": "Name",
    "scoring_model": "MQL definition",
    "response_hours": "First touch",
    "decision_hours": "Accept or reject",
    "followup_attempts": "Follow-up attempts",
    "followup_days": "Follow-up window",
    "commitment_period": "Commitment period",
    "mqls_committed": "MQLs committed",
    "acceptance_rate_committed": "Acceptance rate committed",
    "pipeline_committed": "Pipeline committed",
    "calendar": "Business calendar",
    "warn_share": "Warning",
    "notify_manager_on_breach": "Sales manager told of a breach",
    "reassign_after_hours": "Reassignment after a breach",
    "on_reassign": "Clocks on reassignment",
    "report_recipients": "Report recipients",
    "report_to_managers": "Report to the managers",
    "review_date": "Review date",
    "notes": "Notes",
}


def agreement_active() -> Agreement | None:
    """The agreement in force (a fresh install has one), with its scoring model."""
    return (
        Agreement.objects.filter(status=VersionStatus.ACTIVE)
        .select_related("scoring_model")
        .first()
    )


def agreement_history() -> QuerySet[Agreement]:
    """Every version, newest first, with its approvals (and approvers) and its creator."""
    return Agreement.objects.select_related(
        "scoring_model", "created_by", "based_on", "diff_base"
    ).prefetch_related(
        Prefetch("approvals", queryset=AgreementApproval.objects.select_related("by"))
    )


def agreement_events(*, agreement: Agreement) -> QuerySet[AgreementEvent]:
    """What happened to one version, oldest first."""
    return AgreementEvent.objects.filter(agreement=agreement).select_related("by")


def _number(value: Decimal | int | float | None) -> str:
    if value is None:
        return ""
    text = f"{Decimal(str(value)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _hours(value: Decimal | None) -> str:
    number = _number(value)
    return f"{number} business hour{'' if number == '1' else 's'}"


def calendar_words(calendar: Any) -> str:
    """The calendar in one line ("Mon–Fri 09:00–17:00 Europe/Berlin, public holidays of DE")."""
    try:
        return Calendar.from_json(calendar).describe()
    except CalendarError as error:
        return f"not a valid calendar ({error.message})"


def agreement_words(agreement: Agreement, name: str) -> str:
    """One field's value as a manager reads it."""
    value = getattr(agreement, name)
    period = agreement.get_commitment_period_display().lower()
    match name:
        case "scoring_model":
            if value is None:
                return "none"
            return f"{value} (MQL at total ≥ {value.mql_total} with fit ≥ {value.mql_fit})"
        case "response_hours":
            return f"within {_hours(value)} of assignment"
        case "decision_hours":
            return f"within {_hours(value)} of assignment"
        case "followup_attempts":
            return f"at least {value} attempt{'' if value == 1 else 's'}"
        case "followup_days":
            return f"within {value} day{'' if value == 1 else 's'} of accepting a lead"
        case "commitment_period":
            return f"per {period}"
        case "mqls_committed":
            return f"{value} MQL{'' if value == 1 else 's'} a {period}"
        case "acceptance_rate_committed":
            return f"{_number(value)}% of them accepted by sales"
        case "pipeline_committed":
            return f"{_number(value)} of pipeline a {period}" if value else "no pipeline target"
        case "calendar":
            return calendar_words(value)
        case "warn_share":
            return f"at {_number(Decimal(str(value)) * 100)}% of the allowed time"
        case "notify_manager_on_breach" | "report_to_managers":
            return "yes" if value else "no"
        case "reassign_after_hours":
            if value is None:
                return "never"
            return f"to the next eligible rep {_hours(value)} after a breach"
        case "on_reassign":
            return agreement.get_on_reassign_display().lower()
        case "report_recipients":
            return ", ".join(value) if value else "no other addresses"
        case "review_date":
            return value.isoformat() if isinstance(value, date) else "not set"
        case "notes":
            return value or "none"
    return str(value)


def _comparable(agreement: Agreement, name: str) -> Any:
    if name == "scoring_model":
        return agreement.scoring_model_id
    value = getattr(agreement, name)
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return Decimal(str(value)).normalize()
    if name == "calendar":
        try:
            return Calendar.from_json(value).as_json()
        except CalendarError:
            return value
    return value


def agreement_diff(a: Agreement | None, b: Agreement) -> list[dict]:
    """What `b` changes against `a`, field by field, in words: [{"field", "label", "old",
    "new"}]; every field when `a` is None."""
    changes = []
    for name, label in FIELD_LABELS.items():
        if a is not None and _comparable(a, name) == _comparable(b, name):
            continue
        changes.append(
            {
                "field": name,
                "label": label,
                "old": agreement_words(a, name) if a is not None else "",
                "new": agreement_words(b, name),
            }
        )
    return changes


def agreement_changes(*, agreement: Agreement) -> tuple[list[dict], Agreement | None]:
    """A version's changes and the version they are against: a draft or a proposal against the
    version in force now (the one it would replace); any other version keeps the diff it was
    activated with, against the version it replaced."""
    if agreement.status in (VersionStatus.DRAFT, VersionStatus.PROPOSED):
        active = agreement_active()
        if active is not None and active.pk == agreement.pk:
            active = None
        return agreement_diff(active, agreement) if active else [], active
    if agreement.status == VersionStatus.ACTIVE and agreement.diff_base is None:
        return [], None
    return (agreement.diff or {}).get("changes", []), agreement.diff_base


def agreement_summary(agreement: Agreement) -> dict:
    """The agreement as the one-minute page reads it: each side's commitments, the calendar, the
    escalation, the report, the review."""

    def words(*names: str) -> list[dict]:
        return [{"label": FIELD_LABELS[n], "text": agreement_words(agreement, n)} for n in names]

    today = timezone.localdate()
    return {
        "definition": words("scoring_model"),
        "sales": words("response_hours", "decision_hours", "followup_attempts", "followup_days"),
        "marketing": words("mqls_committed", "acceptance_rate_committed", "pipeline_committed"),
        "calendar": calendar_words(agreement.calendar),
        "escalation": words(
            "warn_share", "notify_manager_on_breach", "reassign_after_hours", "on_reassign"
        ),
        "report": words("report_recipients", "report_to_managers"),
        "review_passed": agreement.review_date is not None and agreement.review_date < today,
        "review_missing": agreement.review_date is None,
        "scoring_model_replaced": agreement.scoring_model is not None
        and agreement.scoring_model.status != VersionStatus.ACTIVE,
    }


def agreement_signoff(*, agreement: Agreement, by: User) -> dict:
    """What a manager's approval of `agreement` would change, for the confirmation they read
    first: the changes against the version in force, and whether this approval puts it in force
    (the other side has approved) or is the first of the two."""
    changes, base = agreement_changes(agreement=agreement)
    return {
        "agreement": agreement,
        "active": agreement_active(),
        "changes": changes,
        "diff_base": base,
        **signoff.approval_state(agreement, by),
    }
