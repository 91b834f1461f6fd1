"""Lead flags, the half-open door: a rep who finds something wrong with a lead (wrong data, wrong
routing, a duplicate, an unclear source) flags it for marketing; the two sides talk it through in
the flag's thread and marketing closes it with an outcome. The only way a flag and its messages
are written.

Decisions worth knowing:
- A sales rep flags a lead he owns; a sales manager or an admin any lead. The comment is required
  (it is the thread's first message, kept on the flag itself).
- One open flag per lead and reason: a second one is refused with a pointer to the open one's
  thread (the lead's row lock makes the check hold under two clicks at once).
- Who may write in the thread: its participants (the lead's owner, the campaign's marketing
  owner, the flagger), anyone with a marketing role, sales managers and admins. A resolved flag
  takes no more messages: its flagger (or a sales manager, an admin) reopens it with a message,
  which is recorded as `flag.commented` (there is no reopen event type) and clears the outcome.
- Resolving takes an outcome; "explained" and "declined" need a note saying why (the rep is owed
  a reason when nothing changes); the other outcomes may have one.
- Notifications (kind "lead_flag", one key per occasion and person): a new flag tells the
  campaign's marketing owner (every marketing manager when it has none) and the lead's owner; a
  message tells every other participant and everyone who wrote in the thread before; a
  resolution tells the flagger and the owner; a reopening tells whoever resolved it and the
  marketing owner. The writer is never notified of their own words.
- A flag never touches an SLA clock: nothing here records a touchpoint or a stage change.
"""

from collections.abc import Iterable

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import MARKETING_ROLES, Role, User
from alignment.notifications import notify
from alignment.permissions import Action, can, require
from content.models import FlagMessage, FlagOutcome, FlagReason, FlagStatus, LeadFlag
from leads.events import event_record
from leads.lifecycle import lead_lock
from leads.models import EventType, Lead

TEXT_MAX = 4000
NOTE_REQUIRED = (FlagOutcome.EXPLAINED, FlagOutcome.DECLINED)
KIND = "lead_flag"
# besides the thread's participants, these roles may write in any thread
THREAD_ROLES = frozenset({*MARKETING_ROLES, Role.SALES_MANAGER, Role.ADMIN})
REOPEN_ROLES = frozenset({Role.SALES_MANAGER, Role.ADMIN})


def flag_url(flag: LeadFlag) -> str:
    return reverse("leads:detail", args=[flag.lead_id]) + f"#flag-{flag.pk}"


def _name(user: User | None) -> str:
    if user is None:
        return "Someone"
    return user.get_full_name() or user.username


def _text(value, *, field: str, required: str) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DomainError("Write it as text.", field=field)
    value = value.strip()
    if not value:
        raise DomainError(required, field=field)
    if len(value) > TEXT_MAX:
        raise DomainError(f"At most {TEXT_MAX:,} characters, please.", field=field)
    return value


# --- who may ---------------------------------------------------------------------------------------


def may_raise(*, lead: Lead, user: User | None) -> bool:
    if not can(user, Action.FLAG_RAISE):
        return False
    return user.effective_role != Role.SALES_REP or lead.owner_id == user.pk


def _raise_check(*, lead: Lead, by: User | None) -> None:
    require(by, Action.FLAG_RAISE)
    if by.effective_role == Role.SALES_REP and lead.owner_id != by.pk:
        raise PermissionDenied(
            f"{lead.display_name} is not assigned to you; its owner or a sales manager flags it."
        )


def participants(flag: LeadFlag, lead: Lead) -> set[int]:
    """The ids of the thread's participants: the lead's owner, the campaign's marketing owner
    and the flagger."""
    ids = {lead.owner_id, flag.raised_by_id}
    if lead.campaign_id is not None:
        ids.add(lead.campaign.marketing_owner_id)
    return {i for i in ids if i is not None}


def may_comment(*, flag: LeadFlag, lead: Lead, user: User | None) -> bool:
    """Whether `user` may write in the thread (an open flag; see may_reopen for a resolved one)."""
    if user is None or not user.is_active or not user.effective_role:
        return False
    return user.effective_role in THREAD_ROLES or user.pk in participants(flag, lead)


def may_resolve(user: User | None) -> bool:
    return can(user, Action.FLAG_RESOLVE)


def may_reopen(*, flag: LeadFlag, user: User | None) -> bool:
    if user is None or not user.is_active or not user.effective_role:
        return False
    return flag.raised_by_id == user.pk or user.effective_role in REOPEN_ROLES


# --- writes ----------------------------------------------------------------------------------------


def _locked(flag: LeadFlag) -> LeadFlag:
    try:
        return LeadFlag.objects.select_for_update().get(pk=flag.pk)
    except LeadFlag.DoesNotExist:
        raise DomainError("This flag no longer exists.") from None


def _refresh(target: LeadFlag, source: LeadFlag) -> LeadFlag:
    for field in ("status", "outcome", "resolution", "resolved_by_id", "resolved_at"):
        setattr(target, field, getattr(source, field))
    return target


def _notify_all(
    *,
    flag: LeadFlag,
    lead: Lead,
    users: Iterable[User],
    by: User,
    occasion: str,
    title: str,
    body: str,
) -> None:
    seen: set[int] = set()
    for user in users:
        if user is None or user.pk == by.pk or user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        notify(
            user=user,
            kind=KIND,
            key=f"flag.{occasion}:user:{user.pk}",
            title=title,
            body=body[:1000],
            url=flag_url(flag),
            lead=lead,
        )


def _marketing_owners(lead: Lead) -> list[User]:
    owner = lead.campaign.marketing_owner if lead.campaign_id else None
    if owner is not None and owner.is_active:
        return [owner]
    return list(User.objects.filter(is_active=True, role=Role.MARKETING_MANAGER))


def flag_raise(*, lead: Lead, by: User | None, reason, comment) -> LeadFlag:
    _raise_check(lead=lead, by=by)
    if reason not in FlagReason.values:
        raise DomainError(f"The reason is one of: {', '.join(FlagReason.values)}.", field="reason")
    text = _text(comment, field="comment", required="Say what is wrong with the lead.")
    with transaction.atomic():
        locked = lead_lock(lead)
        _raise_check(lead=locked, by=by)
        if LeadFlag.objects.filter(lead=locked, reason=reason, status=FlagStatus.OPEN).exists():
            raise DomainError(
                f"{locked.display_name} already has an open flag for "
                f"{FlagReason(reason).label.lower()}: write in its thread instead.",
                field="reason",
            )
        flag = LeadFlag.objects.create(
            lead=locked, reason=reason, comment=text, raised_by=by, raised_at=timezone.now()
        )
        event_record(
            type=EventType.FLAG_RAISED,
            lead=locked,
            by=by,
            payload={"flag_id": flag.pk, "reason": reason},
        )
        _notify_all(
            flag=flag,
            lead=locked,
            users=[*_marketing_owners(locked), locked.owner],
            by=by,
            occasion=f"raised:{flag.pk}",
            title=f"Lead flagged ({flag.get_reason_display().lower()}): {locked.display_name}",
            body=f"{_name(by)}: {text}",
        )
    return flag


def _thread_people(flag: LeadFlag, lead: Lead) -> list[User]:
    ids = participants(flag, lead) | set(
        FlagMessage.objects.filter(flag=flag, author__isnull=False).values_list(
            "author_id", flat=True
        )
    )
    return list(User.objects.filter(pk__in=ids))


def _message(*, flag: LeadFlag, lead: Lead, by: User, text: str, occasion: str) -> FlagMessage:
    earlier = _thread_people(flag, lead)
    message = FlagMessage.objects.create(flag=flag, author=by, body=text)
    event_record(
        type=EventType.FLAG_COMMENTED,
        lead=lead,
        by=by,
        payload={"flag_id": flag.pk, "message_id": message.pk},
    )
    _notify_all(
        flag=flag,
        lead=lead,
        users=earlier,
        by=by,
        occasion=f"{occasion}:{message.pk}",
        title=f"{_name(by)} wrote on the flag on {lead.display_name}",
        body=text,
    )
    return message


def flag_comment(*, flag: LeadFlag, by: User | None, body) -> FlagMessage:
    text = _text(body, field="body", required="Write your message first.")
    with transaction.atomic():
        locked = _locked(flag)
        lead = Lead.objects.select_related("campaign").get(pk=locked.lead_id)
        if not may_comment(flag=locked, lead=lead, user=by):
            raise PermissionDenied(
                "Only the people on this flag (the lead's owner, the campaign's marketing owner, "
                "whoever flagged it), marketing, sales managers and admins write in its thread."
            )
        if locked.status != FlagStatus.OPEN:
            raise DomainError(
                "This flag is resolved; whoever flagged it may reopen it with a message."
            )
        return _message(flag=locked, lead=lead, by=by, text=text, occasion="commented")


def flag_resolve(*, flag: LeadFlag, by: User | None, outcome, resolution="") -> LeadFlag:
    require(by, Action.FLAG_RESOLVE)
    if outcome not in FlagOutcome.values:
        raise DomainError(
            f"The outcome is one of: {', '.join(FlagOutcome.values)}.", field="outcome"
        )
    if resolution is None:
        resolution = ""
    if not isinstance(resolution, str):
        raise DomainError("Write it as text.", field="resolution")
    note = resolution.strip()
    if outcome in NOTE_REQUIRED and not note:
        raise DomainError(
            "Say why: the rep is owed a reason when nothing changes.", field="resolution"
        )
    if len(note) > TEXT_MAX:
        raise DomainError(f"At most {TEXT_MAX:,} characters, please.", field="resolution")
    with transaction.atomic():
        locked = _locked(flag)
        if locked.status != FlagStatus.OPEN:
            raise DomainError("This flag is already resolved.")
        lead = Lead.objects.select_related("campaign").get(pk=locked.lead_id)
        locked.status = FlagStatus.RESOLVED
        locked.outcome = outcome
        locked.resolution = note
        locked.resolved_by = by
        locked.resolved_at = timezone.now()
        locked.save(update_fields=["status", "outcome", "resolution", "resolved_by", "resolved_at"])
        event_record(
            type=EventType.FLAG_RESOLVED,
            lead=lead,
            by=by,
            payload={"flag_id": locked.pk, "outcome": outcome},
        )
        _notify_all(
            flag=locked,
            lead=lead,
            users=[locked.raised_by, lead.owner],
            by=by,
            occasion=f"resolved:{locked.pk}:{locked.resolved_at.isoformat()}",
            title=f"Flag resolved ({locked.get_outcome_display().lower()}): {lead.display_name}",
            body=f"{_name(by)}: {note}" if note else f"{_name(by)} resolved it.",
        )
    return _refresh(flag, locked)


def flag_reopen(*, flag: LeadFlag, by: User | None, body) -> FlagMessage:
    """Open a resolved flag again, with a message saying why; outcome and note are cleared."""
    text = _text(body, field="body", required="Say why the flag is not settled.")
    with transaction.atomic():
        locked = _locked(flag)
        if not may_reopen(flag=locked, user=by):
            raise PermissionDenied(
                "Whoever flagged the lead, a sales manager or an admin reopens it."
            )
        if locked.status == FlagStatus.OPEN:
            raise DomainError("This flag is open: write in its thread.")
        lead = Lead.objects.select_related("campaign").get(pk=locked.lead_id)
        resolver = locked.resolved_by
        locked.status = FlagStatus.OPEN
        locked.outcome = ""
        locked.resolution = ""
        locked.resolved_by = None
        locked.resolved_at = None
        locked.save(update_fields=["status", "outcome", "resolution", "resolved_by", "resolved_at"])
        message = _message(flag=locked, lead=lead, by=by, text=text, occasion="reopened")
        if resolver is not None:
            _notify_all(
                flag=locked,
                lead=lead,
                users=[resolver, *_marketing_owners(lead)],
                by=by,
                occasion=f"reopened:{message.pk}",
                title=f"Flag reopened: {lead.display_name}",
                body=f"{_name(by)}: {text}",
            )
    _refresh(flag, locked)
    return message
