"""The flagging job (beat every minute, `manage.py flag_sla_breaches`): running clocks past their
warning point are marked warned, past their due time breached, and breached MQLs whose agreement
says so go to the next eligible rep.

Exactly once, even with two workers at once or one killed halfway: each mark is claimed by an
UPDATE whose WHERE re-checks the status (`... AND status = 'pending' RETURNING id`; on PostgreSQL
the three steps are one statement), so a row is claimed by one run only; the notifications of the claimed rows are inserted in the same
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
    # only a clock a previous run breached (its people were told first), so no row is in two
    # steps of one statement
    "reassign": (
        "status = 'breached' AND reassigned_at IS NULL AND ended_at IS NULL "
        "AND reassign_at IS NOT NULL AND reassign_at <= %s",
        "reassign_at",
        "reassigned_at = %s",
    ),
}


def _claims_postgres() -> str:
    """The three steps' claims in one statement (one round trip a minute when nothing is due).
    Rows another run holds are skipped, not waited for; each UPDATE re-checks its condition
    after the lock, so a row is claimed by one run only."""
    parts, selects = [], []
    for step, (where, order, mark) in _STEPS.items():
        parts.append(
            f"{step}_due AS (SELECT id FROM {_TABLE} WHERE {where} ORDER BY {order} LIMIT %s "
            "FOR UPDATE SKIP LOCKED)"
        )
        parts.append(
            f"{step}_done AS (UPDATE {_TABLE} AS c SET {mark}, updated_at = %s FROM {step}_due "
            f"WHERE c.id = {step}_due.id AND {where} RETURNING c.id)"
        )
        selects.append(f"SELECT '{step}', id FROM {step}_done")
    return "WITH " + ", ".join(parts) + " " + " UNION ALL ".join(selects)


_CLAIMS_POSTGRES = _claims_postgres()
# almost every minute nothing is due: one cheap question on the partial indexes first, and the
# claims (a larger statement, with row locks) only when it says yes
_ANY_DUE = "SELECT " + " OR ".join(
    f"EXISTS (SELECT 1 FROM {_TABLE} WHERE {where})" for where, _order, _mark in _STEPS.values()
)


def _claims_sqlite(step: str) -> str:
    # SQLite runs one write at a time: the statement is its own claim
    where, order, mark = _STEPS[step]
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


def _claim(now: datetime, limit: int) -> dict[str, list[int]]:
    """Mark the due clocks of every step (at most `limit` each); their ids by step."""
    claimed: dict[str, list[int]] = {step: [] for step in _STEPS}
    with connection.cursor() as cursor:
        cursor.execute(_ANY_DUE, [now] * _ANY_DUE.count("%s"))
        if not cursor.fetchone()[0]:
            return claimed
        if connection.vendor == "postgresql":
            params = []
            for where, _order, _mark in _STEPS.values():
                condition = [now] * where.count("%s")
                params += [*condition, limit, now, now, *condition]
            cursor.execute(_CLAIMS_POSTGRES, params)
            for step, clock_id in cursor.fetchall():
                claimed[step].append(clock_id)
        else:
            # reassignment first: it sees only clocks breached by an earlier run, as the one
            # statement on PostgreSQL does (its snapshot is taken before the breaches it makes)
            for step in ("reassign", "warn", "breach"):
                where = _STEPS[step][0]
                condition = [now] * where.count("%s")
                cursor.execute(_claims_sqlite(step), [now, now, *condition, limit, *condition])
                claimed[step] = [row[0] for row in cursor.fetchall()]
    return {step: sorted(ids) for step, ids in claimed.items()}


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
        claimed = _claim(now, limit)
        result.warned, result.breached = claimed["warn"], claimed["breach"]
        for clock in _clocks(result.warned):
            result.notified += _notify_warned(clock)
        if result.breached:
            managers = _sales_managers()
            agreements = {a.pk: a for a in Agreement.objects.all()}
        for clock in _clocks(result.breached):
            result.notified += _notify_breached(clock, agreements[clock.agreement_id], managers)
        for clock in _clocks(claimed["reassign"]):
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
