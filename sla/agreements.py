"""Every write of the alignment agreement: drafts, their edits, and the two managers' sign-off.

Decisions worth knowing:
- The life cycle is the scoring model's (alignment.signoff): draft -> proposed -> active ->
  retired, only drafts edited, one approval per side from a marketing manager and a sales manager,
  the second approval puts the version in force and retires the one before. Both managers write
  and propose it (it binds both teams); an admin account stands in for neither.
- A new draft is a copy of the version in force (or of the one named), with the active scoring
  model as its MQL definition: the draft states what the teams agree to from now on.
- Every value is checked at once and all problems are reported together, each on its field; a
  draft with a problem is not saved at all. The calendar is checked by
  alignment.lib.business_time and stored in its normal form.
- A review date in the past is refused on a draft and at the proposal: the new version is the
  review, so it names the next one. A copy drops a passed review date instead of refusing it.
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from alignment import signoff
from alignment.lib.business_time import Calendar, CalendarError
from alignment.lib.errors import DomainError
from alignment.models import User
from alignment.permissions import Action, require
from alignment.signoff import VersionAction, VersionStatus
from leads.models import ScoringModel
from sla.models import (
    Agreement,
    AgreementApproval,
    AgreementEvent,
    CommitmentPeriod,
    OnReassign,
    default_calendar,
)
from sla.selectors import agreement_diff

DEFAULT_NAME = "Alignment agreement"
# what a draft copies from the version it is based on (everything the two teams agree on)
CONTENT_FIELDS = (
    "name",
    "scoring_model",
    "response_hours",
    "decision_hours",
    "followup_attempts",
    "followup_days",
    "commitment_period",
    "mqls_committed",
    "acceptance_rate_committed",
    "pipeline_committed",
    "calendar",
    "warn_share",
    "notify_manager_on_breach",
    "reassign_after_hours",
    "on_reassign",
    "report_recipients",
    "report_to_managers",
    "review_date",
    "notes",
)
MAX_RECIPIENTS = 50


class AgreementError(DomainError):
    """One or more values of an agreement are refused; `errors` maps each field to its problems
    (calendar fields as "calendar.hours.mon" and so on)."""

    def __init__(
        self, message: str, *, field: str | None = None, errors: dict[str, list[str]] | None = None
    ):
        super().__init__(message, field=field)
        self.errors = errors or ({field: [message]} if field else {})


def _diff(previous: Agreement | None, agreement: Agreement) -> dict:
    if previous is None:
        return {"summary": "first version", "changes": []}
    changes = agreement_diff(previous, agreement)
    if not changes:
        return {"summary": "no changes", "changes": []}
    labels = ", ".join(change["label"].lower() for change in changes)
    return {
        "summary": f"{len(changes)} change{'s' if len(changes) > 1 else ''}: {labels}",
        "changes": changes,
    }


def _check_before_proposal(agreement: Agreement) -> None:
    """What may have changed since the draft was saved: time moves on, and a scoring model
    proposal can be withdrawn to a draft."""
    problems = _Problems()
    _check_scoring_model(problems, agreement.scoring_model)
    _check_review_date(problems, agreement.review_date)
    try:
        Calendar.from_json(agreement.calendar)
    except CalendarError as error:
        problems.add(error.field or "calendar", error.message)
    problems.raise_any()


def _propose_diff(active: Agreement | None, agreement: Agreement) -> dict:
    _check_before_proposal(agreement)
    return _diff(active, agreement)


SIGNOFF = signoff.SignOff(
    version_model=Agreement,
    approval_model=AgreementApproval,
    event_model=AgreementEvent,
    key="agreement",
    error=AgreementError,
    edit_action=Action.AGREEMENT_SIGN,
    approve_action=Action.AGREEMENT_SIGN,
    subject="the agreement",
    diff=_propose_diff,
    activation_diff=_diff,
)


# --- validation -----------------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def raise_any(self) -> None:
        if not self.errors:
            return
        messages = [m for ms in self.errors.values() for m in ms]
        if len(messages) == 1:
            message = messages[0]
        else:
            message = f"{len(messages)} problems; nothing was saved: " + " ".join(messages)
        raise AgreementError(message, field=next(iter(self.errors)), errors=self.errors)


def _decimal(
    problems: _Problems,
    name: str,
    value: Any,
    *,
    what: str,
    low: Decimal,
    high: Decimal,
    places: int,
    low_open: bool = False,
    high_open: bool = False,
) -> Decimal | None:
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        problems.add(name, f"{what} must be a number.")
        return None
    if not number.is_finite():
        problems.add(name, f"{what} must be a number.")
        return None
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if too_low or too_high:
        low_text = "more than" if low_open else "at least"
        high_text = "less than" if high_open else "at most"
        problems.add(
            name, f"{what} must be {low_text} {_plain(low)} and {high_text} {_plain(high)}."
        )
        return None
    if number != number.quantize(Decimal(1).scaleb(-places)):
        problems.add(name, f"{what} takes at most {places} decimal places.")
        return None
    return number.quantize(Decimal(1).scaleb(-places))


def _plain(number: Decimal) -> str:
    text = f"{number:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _whole(
    problems: _Problems, name: str, value: Any, *, what: str, low: int, high: int
) -> int | None:
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None:
        problems.add(name, f"{what} must be a whole number.")
        return None
    if not low <= number <= high:
        problems.add(name, f"{what} must be between {low} and {high}.")
        return None
    return number


def _check_scoring_model(problems: _Problems, model: ScoringModel | None) -> None:
    if model is None:
        if ScoringModel.objects.filter(status=VersionStatus.ACTIVE).exists():
            problems.add("scoring_model", "Choose the scoring model whose MQL definition applies.")
        return
    if model.status in (VersionStatus.DRAFT, VersionStatus.RETIRED):
        problems.add(
            "scoring_model",
            f"{model} is {model.get_status_display().lower()}: the agreement names the scoring "
            "model in force, or one proposed for sign-off.",
        )


def _check_review_date(problems: _Problems, review_date: date | None) -> None:
    if review_date is not None and review_date < timezone.localdate():
        problems.add(
            "review_date",
            "The review date has passed; name the day the teams will next ask whether they "
            "still agree on the MQL definition.",
        )


def _clean(agreement: Agreement, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes checked and normalised; every problem at once, as an AgreementError."""
    problems = _Problems()
    unknown = sorted(set(changes) - set(CONTENT_FIELDS))
    if unknown:
        raise AgreementError(f"Unknown settings: {', '.join(unknown)}.")
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "name":
            text = (value or "").strip()
            if not text:
                problems.add(name, "The agreement needs a name.")
            clean[name] = text[:200]
        elif name == "scoring_model":
            if value is not None and not isinstance(value, ScoringModel):
                value = ScoringModel.objects.filter(pk=value).first()
                if value is None:
                    problems.add(name, "That scoring model does not exist.")
                    continue
            _check_scoring_model(problems, value)
            clean[name] = value
        elif name in ("response_hours", "decision_hours"):
            what = "The first touch" if name == "response_hours" else "The decision"
            clean[name] = _decimal(
                problems,
                name,
                value,
                what=f"{what} (business hours)",
                low=Decimal(0),
                high=Decimal("9999.99"),
                places=2,
                low_open=True,
            )
        elif name == "followup_attempts":
            clean[name] = _whole(problems, name, value, what="Follow-up attempts", low=0, high=100)
        elif name == "followup_days":
            clean[name] = _whole(problems, name, value, what="Follow-up days", low=1, high=365)
        elif name == "commitment_period":
            if value not in CommitmentPeriod.values:
                problems.add(name, "Marketing commits per week or per month.")
            clean[name] = value
        elif name == "mqls_committed":
            clean[name] = _whole(problems, name, value, what="MQLs committed", low=0, high=10**9)
        elif name == "acceptance_rate_committed":
            clean[name] = _decimal(
                problems,
                name,
                value,
                what="The acceptance rate (%)",
                low=Decimal(0),
                high=Decimal(100),
                places=2,
            )
        elif name == "pipeline_committed":
            clean[name] = _decimal(
                problems,
                name,
                value,
                what="The pipeline committed",
                low=Decimal(0),
                high=Decimal("999999999999.99"),
                places=2,
            )
        elif name == "calendar":
            try:
                clean[name] = Calendar.from_json(value).as_json()
            except CalendarError as error:
                problems.add(error.field or "calendar", error.message)
        elif name == "warn_share":
            clean[name] = _decimal(
                problems,
                name,
                value,
                what="The warning share of the allowed time",
                low=Decimal(0),
                high=Decimal(1),
                places=3,
                low_open=True,
                high_open=True,
            )
        elif name in ("notify_manager_on_breach", "report_to_managers"):
            if not isinstance(value, bool):
                problems.add(name, "Say yes or no.")
            clean[name] = value
        elif name == "reassign_after_hours":
            if value is None or value == "":
                clean[name] = None
            else:
                clean[name] = _decimal(
                    problems,
                    name,
                    value,
                    what="The reassignment delay (business hours)",
                    low=Decimal(0),
                    high=Decimal("9999.99"),
                    places=2,
                    low_open=True,
                )
        elif name == "on_reassign":
            if value not in OnReassign.values:
                problems.add(name, "A reassignment restarts the clocks or keeps them running.")
            clean[name] = value
        elif name == "report_recipients":
            clean[name] = _recipients(problems, value)
        elif name == "review_date":
            if value is not None and (not isinstance(value, date) or hasattr(value, "hour")):
                problems.add(name, "The review date is a date.")
                continue
            _check_review_date(problems, value)
            clean[name] = value
        elif name == "notes":
            clean[name] = (value or "").strip()
    response = clean.get("response_hours", agreement.response_hours)
    decision = clean.get("decision_hours", agreement.decision_hours)
    if response is not None and decision is not None and Decimal(decision) < Decimal(response):
        problems.add(
            "decision_hours",
            "The decision cannot be due before the first touch: give at least as many business "
            "hours to decide as to respond.",
        )
    problems.raise_any()
    return clean


def _recipients(problems: _Problems, value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.replace(",", "\n").split()
    if not isinstance(value, list | tuple):
        problems.add("report_recipients", "Give the report's recipients as email addresses.")
        return []
    seen: list[str] = []
    for raw in value:
        address = str(raw).strip().lower()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            problems.add("report_recipients", f"{raw!r} is not an email address.")
            continue
        if address not in seen:
            seen.append(address)
    if len(seen) > MAX_RECIPIENTS:
        problems.add(
            "report_recipients", f"At most {MAX_RECIPIENTS} addresses; use a mailing list."
        )
    return seen


# --- services -------------------------------------------------------------------------------------


def _event(agreement: Agreement, action: str, *, by: User | None, **kwargs: Any) -> AgreementEvent:
    return signoff.record(SIGNOFF, agreement, action, by=by, **kwargs)


@transaction.atomic
def agreement_create_draft(*, by: User, based_on: Agreement | None = None) -> Agreement:
    """A new draft: a copy of `based_on` (default: the version in force; the shipped defaults
    when there is none), naming the active scoring model."""
    require(by, Action.AGREEMENT_SIGN)
    # drafts are numbered in order; the lock on the version in force serialises two new drafts
    in_force = Agreement.objects.select_for_update().filter(status=VersionStatus.ACTIVE).first()
    base = based_on or in_force
    number = (Agreement.objects.aggregate(last=Max("version"))["last"] or 0) + 1
    draft = Agreement(version=number, created_by=by, based_on=base, name=DEFAULT_NAME)
    if base is not None:
        for name in CONTENT_FIELDS:
            setattr(draft, name, getattr(base, name))
    else:
        draft.calendar = default_calendar()
    active_model = ScoringModel.objects.filter(status=VersionStatus.ACTIVE).first()
    if active_model is not None:
        draft.scoring_model = active_model
    if draft.review_date is not None and draft.review_date < timezone.localdate():
        draft.review_date = None
    draft.save()
    _event(draft, VersionAction.CREATED, by=by, details={"based_on": base.pk if base else None})
    return draft


@transaction.atomic
def agreement_update(*, agreement: Agreement, by: User, **fields: Any) -> Agreement:
    """Change a draft; proposed, active and retired versions are frozen. Every value is checked
    first (AgreementError lists each field's problems) and nothing is saved when one is wrong."""
    require(by, Action.AGREEMENT_SIGN)
    locked = signoff.lock_draft(SIGNOFF, agreement)
    clean = _clean(locked, fields)
    changed = [name for name, value in clean.items() if getattr(locked, name) != value]
    for name, value in clean.items():
        setattr(locked, name, value)
    if changed:
        locked.updated_at = timezone.now()
        locked.save()
        _event(locked, VersionAction.EDITED, by=by, details={"changed": changed})
    agreement.__dict__.update(locked.__dict__)
    return agreement


@transaction.atomic
def agreement_discard(*, agreement: Agreement, by: User) -> None:
    """Delete a draft (its history keeps that it existed)."""
    require(by, Action.AGREEMENT_SIGN)
    locked = signoff.lock(SIGNOFF, agreement)
    if locked.status != VersionStatus.DRAFT:
        raise AgreementError(
            f"Only a draft can be discarded; {locked} is {locked.get_status_display()}."
        )
    _event(locked, VersionAction.DISCARDED, by=by)
    locked.delete()


@transaction.atomic
def agreement_propose(*, agreement: Agreement, by: User, note: str = "") -> Agreement:
    """Submit a draft for sign-off; it is frozen from now on and its changes against the version
    in force are kept."""
    return signoff.propose(SIGNOFF, version=agreement, by=by, note=note)


@transaction.atomic
def agreement_withdraw(*, agreement: Agreement, by: User, note: str = "") -> Agreement:
    """Take a proposal back to draft to change it; approvals given so far are dropped."""
    return signoff.withdraw(SIGNOFF, version=agreement, by=by, note=note)


@transaction.atomic
def agreement_send_back(*, agreement: Agreement, by: User, note: str) -> Agreement:
    """A manager declines a proposal, with the reason; it returns to draft."""
    return signoff.send_back(SIGNOFF, version=agreement, by=by, note=note)


@transaction.atomic
def agreement_approve(
    *, agreement: Agreement, by: User, note: str = "", read_at: datetime | None = None
) -> Agreement:
    """One manager's approval; the second side's puts the version in force and retires the one
    before. `read_at`: the version's `updated_at` when the manager read what changes; a version
    changed since is refused."""
    return signoff.approve(SIGNOFF, version=agreement, by=by, note=note, read_at=read_at)
