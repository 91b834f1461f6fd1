"""The flagging job (beat every minute, `manage.py flag_sla_breaches`): running clocks past their
warning point are marked warned, past their due time breached, and breached MQLs whose agreement
says so go to the next eligible rep.

Exactly once, even with two workers at once or one killed halfway: each mark is claimed by one
UPDATE whose WHERE re-checks the status (`... AND status = 'pending' RETURNING id`), so a row is
claimed by one run only; the notifications of the claimed rows are inserted in the same
transaction (unique per user and key), so a run that dies before commit leaves the clocks
unclaimed and the next run does the whole step again. Emails go out after commit from the
notification rows (`alignment.notifications`), each claimed once too.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.notifications import notify
from leads.routing import lead_reroute
from sla.clocks.models import ClockKind, SlaClock
from sla.models import Agreement

logger = logging.getLogger(__name__)

# clocks one step claims: a backlog (an outage of the job) is worked off over a few runs
BATCH = 2000
FLAGGING_SYSTEM = "sla"

_TABLE = SlaClock._meta.db_table
# per step: which running clocks are due (a partial index answers each), and what marks them
_STEPS = {
    "warn": (
        "status = 'pending' AND ended_at IS NULL AND warn_at <= %s AND due_at > %s",
        "warn_at",
        "status = 'warned', warned_at = %s",
    ),
    "breach": (
        "status IN ('pending', 'warned') AND ended_at IS NULL AND due_at <= %s",
        "due_at",
        "status = 'breached', breached_at = %s",
    ),
    "reassign": (
        "reassigned_at IS NULL AND ended_at IS NULL AND reassign_at IS NOT NULL "
        "AND reassign_at <= %s",
        "reassign_at",
        "reassigned_at = %s",
    ),
}


def _claim_sql(step: str, vendor: str) -> str:
    where, order, mark = _STEPS[step]
    if vendor == "postgresql":
        # rows another run holds are skipped, not waited for; the outer WHERE re-checks the
        # status after the lock, so a row is claimed by one run only
        return (
            f"WITH due AS (SELECT id FROM {_TABLE} WHERE {where} ORDER BY {order} LIMIT %s "
            f"FOR UPDATE SKIP LOCKED) UPDATE {_TABLE} AS c SET {mark}, updated_at = %s "
            f"FROM due WHERE c.id = due.id AND {where} RETURNING c.id"
        )
    # SQLite runs one write at a time: the statement is its own claim
    return (
        f"UPDATE {_TABLE} SET {mark}, updated_at = %s WHERE id IN (SELECT id FROM {_TABLE} "
        f"WHERE {where} ORDER BY {order} LIMIT %s) AND {where} RETURNING id"
    )


@dataclass
class FlagResult:
    warned: list[int] = field(default_factory=list)
    breached: list[int] = field(default_factory=list)
    reassigned: list[int] = field(default_factory=list)
    notified: int = 0

    def as_text(self) -> str:
        return (
            f"{len(self.warned)} clocks warned, {len(self.breached)} breached, "
            f"{len(self.reassigned)} MQLs reassigned; {self.notified} notifications."
        )


def _claim(step: str, now: datetime, limit: int) -> list[int]:
    """Mark the due clocks of one step (at most `limit`); their ids."""
    where = [now] * _STEPS[step][0].count("%s")
    if connection.vendor == "postgresql":
        params = [*where, limit, now, now, *where]
    else:
        params = [now, now, *where, limit, *where]
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(step, connection.vendor), params)
        return sorted(row[0] for row in cursor.fetchall())


def _sales_managers() -> list[User]:
    return list(User.objects.filter(is_active=True, role=Role.SALES_MANAGER).order_by("id"))


def _lead_url(lead_id: int) -> str:
    return reverse("leads:detail", args=[lead_id])


def _what(clock: SlaClock) -> str:
    return "first touch" if clock.kind == ClockKind.RESPONSE else "accept or reject"


def _notify_warned(clock: SlaClock) -> int:
    if clock.owner is None:
        return 0
    name = clock.lead.display_name if clock.lead_id else f"lead {clock.lead_id}"
    made = notify(
        user=clock.owner,
        kind="sla.warned",
        key=f"sla.warned:clock:{clock.pk}",
        title=f"SLA: {_what(clock)} for {name} is due soon",
        body=(
            f"The {_what(clock)} for {name} is due at {timezone.localtime(clock.due_at):%Y-%m-%d %H:%M %Z} "
            "(business hours of the agreement)."
        ),
        url=_lead_url(clock.lead_id),
        lead=clock.lead,
    )
    return 1 if made else 0


def _notify_breached(clock: SlaClock, agreement: Agreement, managers: list[User]) -> int:
    name = clock.lead.display_name
    recipients = [clock.owner] if clock.owner is not None else []
    if agreement.notify_manager_on_breach:
        recipients += [m for m in managers if m.pk != clock.owner_id]
    owner = str(clock.owner) if clock.owner else "nobody"
    made = 0
    for user in recipients:
        made += bool(
            notify(
                user=user,
                kind="sla.breached",
                key=f"sla.breached:clock:{clock.pk}",
                title=f"SLA breached: {_what(clock)} for {name}",
                body=(
                    f"The {_what(clock)} for {name} (owner: {owner}) was due at "
                    f"{timezone.localtime(clock.due_at):%Y-%m-%d %H:%M %Z} and has not happened."
                ),
                url=_lead_url(clock.lead_id),
                lead=clock.lead,
            )
        )
    return made


def _clocks(ids: list[int]) -> list[SlaClock]:
    if not ids:
        return []
    return list(SlaClock.objects.filter(pk__in=ids).select_related("lead", "owner").order_by("id"))


def clocks_flag(*, now: datetime | None = None, limit: int = BATCH) -> FlagResult:
    """One run of the flagging job, in one transaction: the clocks are claimed and their
    notifications written together, or neither (a run that dies leaves it all to the next).
    A reassignment that fails is rolled back alone and not tried again (its claim stays)."""
    now = now or timezone.now()
    result = FlagResult()
    with transaction.atomic():
        result.warned = _claim("warn", now, limit)
        for clock in _clocks(result.warned):
            result.notified += _notify_warned(clock)
        result.breached = _claim("breach", now, limit)
        if result.breached:
            managers = _sales_managers()
            agreements = {a.pk: a for a in Agreement.objects.all()}
        for clock in _clocks(result.breached):
            result.notified += _notify_breached(clock, agreements[clock.agreement_id], managers)
        for clock in _clocks(_claim("reassign", now, limit)):
            # one reassignment per lead even when both its clocks are past the delay
            if clock.lead_id in result.reassigned:
                continue
            try:
                # a savepoint: a lead that cannot be rerouted leaves the rest of the run alone
                with transaction.atomic():
                    assignment = lead_reroute(
                        lead_id=clock.lead_id,
                        system=FLAGGING_SYSTEM,
                        note=f"SLA escalation: the {_what(clock)} was overdue.",
                    )
            except DomainError as error:
                logger.warning("SLA: lead %s could not be reassigned: %s", clock.lead_id, error)
                continue
            if assignment is None:
                continue
            result.reassigned.append(clock.lead_id)
            made = notify(
                user=assignment.rep,
                kind="sla.reassigned",
                key=f"sla.reassigned:clock:{clock.pk}",
                title=f"{clock.lead.display_name} was reassigned to you (SLA escalation)",
                body=(
                    f"{clock.owner or 'The previous owner'} did not {_what(clock)} in time; "
                    "the lead is yours now."
                ),
                url=_lead_url(clock.lead_id),
                lead=clock.lead,
            )
            result.notified += bool(made)
    return result
