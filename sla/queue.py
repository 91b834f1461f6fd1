"""Reads for the sales queue (/sla/queue/): a rep's assigned MQLs with their running clocks, most
urgent first, and the team view a sales manager works from (each rep's queue, the unassigned
MQLs, the clocks at risk). Each read is a fixed number of queries whatever the number of leads.

Countdowns are in business time of the clock's agreement: the time left to the due moment counts
only open hours, so it stands still at night, on weekends and holidays, and the page says so."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.dateformat import format as date_format

from alignment.lib.business_time import Calendar
from alignment.models import Role, User
from leads.models import Lead, Reason, ReasonKind, Stage
from leads.scoring.models import ScoreSnapshot, SnapshotKind
from sla.clocks.models import RUNNING_STATUSES, ClockKind, ClockStatus, SlaClock

# the team view lists at most this many running clocks (a rep carries about 50 leads)
TEAM_CLOCKS_LIMIT = 2000
UNASSIGNED_LIMIT = 100
AT_RISK_LIMIT = 200
# touching shifts merged into one stretch when a countdown looks for the end of the open time
SHIFTS_LOOKED_AT = 14
# how many reasons "why it qualified" names in one line
WHY_RULES = 3


@dataclass(frozen=True)
class Countdown:
    """Business time left to a due moment (negative: overdue by that much), and whether it is
    running now: while the calendar is open it runs until `shift_end`; while it is closed it is
    paused until `resumes_at`."""

    seconds: int
    open: bool
    shift_end: datetime | None
    resumes_at: datetime
    # past the due moment; with no open time since (due at a shift's end) the seconds are 0
    overdue: bool = False

    @property
    def text(self) -> str:
        """ "3 h 05 min 09 s left" or "overdue by 2 h 10 min 00 s" (static/js/sla_countdown.js
        writes the same words as it ticks)."""
        return duration_text(self.seconds, overdue=self.overdue)

    @property
    def shift_end_label(self) -> str:
        return moment_label(self.shift_end) if self.shift_end else ""

    @property
    def resumes_label(self) -> str:
        return moment_label(self.resumes_at)


def moment_label(at: datetime) -> str:
    """ "Mon 09:00" in the viewer's zone, with the date when it is not within the coming week."""
    local = timezone.localtime(at)
    days = (local.date() - timezone.localtime().date()).days
    return date_format(local, "D H:i" if 0 <= days < 6 else "D Y-m-d H:i")


def duration_text(seconds: int, *, overdue: bool = False) -> str:
    if overdue and seconds == 0:
        return "overdue"
    left = abs(seconds)
    hours, rest = divmod(left, 3600)
    minutes, secs = divmod(rest, 60)
    words = f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"overdue by {words}" if seconds < 0 else f"{words} left"


@dataclass
class QueueRow:
    """One assigned MQL in a queue: its running clocks and how urgent it is."""

    lead: Lead
    response: SlaClock | None = None
    decision: SlaClock | None = None
    countdown: Countdown | None = None
    why: str = ""
    explanation: dict | None = None
    status: str = ClockStatus.PENDING

    @property
    def clocks(self) -> list[SlaClock]:
        return [c for c in (self.response, self.decision) if c is not None]

    @property
    def next_clock(self) -> SlaClock:
        return min(self.clocks, key=lambda c: (c.due_at, c.id))

    @property
    def score_moved(self) -> bool:
        """The score now differs from the one it qualified with (rescored, decayed, new touches)."""
        if not self.explanation:
            return False
        then = self.explanation.get("total") or 0
        return (
            round(then) != round(self.lead.score)
            or self.explanation.get("grade") != self.lead.grade
        )

    @property
    def status_label(self) -> str:
        return ClockStatus(self.status).label

    def settle(self, *, calendars: "_Calendars", now: datetime) -> None:
        """The countdown to the next due time, and the worst status of the running clocks (the
        flagging job marks them every minute; a due time already past counts as breached)."""
        clock = self.next_clock
        self.countdown = countdown_of(calendar=calendars.of(clock), due_at=clock.due_at, now=now)
        statuses = {c.status for c in self.clocks}
        if ClockStatus.BREACHED in statuses or any(c.due_at <= now for c in self.clocks):
            self.status = ClockStatus.BREACHED
        elif ClockStatus.WARNED in statuses or any(c.warn_at <= now for c in self.clocks):
            self.status = ClockStatus.WARNED
        else:
            self.status = ClockStatus.PENDING

    def urgency(self) -> tuple:
        # breached first, then the nearest due time
        return (self.status != ClockStatus.BREACHED, self.next_clock.due_at, self.lead.pk)


@dataclass
class RepQueue:
    rep: User
    rows: list[QueueRow] = field(default_factory=list)
    count: int = 0
    at_risk: int = 0
    breached: int = 0


@dataclass
class TeamQueue:
    reps: list[RepQueue]
    unassigned: list[Lead]
    unassigned_count: int
    at_risk: list[QueueRow]
    truncated: bool = False


class _Calendars:
    """Each agreement's calendar parsed once per page."""

    def __init__(self) -> None:
        self._by_id: dict[int, Calendar] = {}

    def of(self, clock: SlaClock) -> Calendar:
        calendar = self._by_id.get(clock.agreement_id)
        if calendar is None:
            calendar = Calendar.from_json(clock.agreement.calendar)
            self._by_id[clock.agreement_id] = calendar
        return calendar


def _open_until(calendar: Calendar, now: datetime) -> datetime:
    """The end of the open stretch that holds `now`: shifts that touch (23:00–24:00 then 00:00–…)
    are one stretch, so a round-the-clock calendar does not pause at midnight. Looked at for at
    most two weeks of shifts; the countdown is rendered afresh with every page anyway."""
    # Calendar has no public "open until"; its interval walk is the one source of truth
    intervals = calendar._open_since(now)
    _start, end = next(intervals)
    for _ in range(SHIFTS_LOOKED_AT):
        begin, finish = next(intervals)
        if begin != end:
            break
        end = finish
    return end


def countdown_of(*, calendar: Calendar, due_at: datetime, now: datetime) -> Countdown:
    """Business seconds from `now` to `due_at` (negative past it) and the calendar's state now."""
    if now < due_at:
        seconds = int(calendar.between(now, due_at).total_seconds())
    else:
        seconds = -int(calendar.between(due_at, now).total_seconds())
    if calendar.is_open(now):
        shift_end = _open_until(calendar, now)
        return Countdown(seconds, True, shift_end, calendar.next_open(shift_end), now >= due_at)
    return Countdown(seconds, False, None, calendar.next_open(now), now >= due_at)


def _number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def why_qualified(explanation: dict | None) -> str:
    """The reasons a lead became an MQL, in one line: the rules that gave it the most points."""
    if not explanation:
        return ""
    parts = []
    for rule in explanation.get("fit", {}).get("rules", []):
        parts.append((rule.get("points") or 0, f"{rule.get('label')} (+{rule.get('points')})"))
    for rule in explanation.get("engagement", {}).get("rules", []):
        points = round(rule.get("points") or 0, 1)
        times = rule.get("occurrences") or 0
        label = f"{rule.get('label')} ×{times}" if times > 1 else rule.get("label")
        parts.append((points, f"{label} (+{_number(points)})"))
    top = [text for points, text in sorted(parts, key=lambda p: -p[0]) if points > 0][:WHY_RULES]
    rules = ", ".join(top)
    if explanation.get("mql", {}).get("qualifies") is False:
        # a marketer made it an MQL by hand: the score alone did not
        return (
            f"marked MQL by hand, short of the definition; {rules}"
            if rules
            else ("marked MQL by hand, short of the definition")
        )
    return rules


def _mql_snapshots(lead_ids: list[int]) -> dict[int, dict]:
    """The explanation kept when each lead last became an MQL (one query)."""
    if not lead_ids:
        return {}
    found: dict[int, dict] = {}
    rows = (
        ScoreSnapshot.objects.filter(lead_id__in=lead_ids, kind=SnapshotKind.MQL)
        .order_by("lead_id", "-at", "-id")
        .values_list("lead_id", "explanation")
    )
    for lead_id, explanation in rows:
        found.setdefault(lead_id, explanation)
    return found


def _running_clocks() -> QuerySet[SlaClock]:
    return SlaClock.objects.filter(
        ended_at__isnull=True, status__in=RUNNING_STATUSES
    ).select_related("lead", "lead__owner", "agreement", "owner")


def _rows(clocks: list[SlaClock], *, now: datetime, explain: bool = True) -> list[QueueRow]:
    """One row per lead from its running clocks, with countdown and why, most urgent first."""
    calendars = _Calendars()
    by_lead: dict[int, QueueRow] = {}
    for clock in clocks:
        row = by_lead.get(clock.lead_id)
        if row is None:
            row = by_lead[clock.lead_id] = QueueRow(lead=clock.lead)
        if clock.kind == ClockKind.RESPONSE:
            row.response = clock
        else:
            row.decision = clock
    snapshots = _mql_snapshots(list(by_lead)) if explain else {}
    for lead_id, row in by_lead.items():
        row.settle(calendars=calendars, now=now)
        row.explanation = snapshots.get(lead_id)
        row.why = why_qualified(row.explanation)
    return sorted(by_lead.values(), key=QueueRow.urgency)


def queue_for_rep(*, rep: User, now: datetime) -> list[QueueRow]:
    """The MQLs whose running clocks `rep` owns, most urgent first (two queries)."""
    clocks = list(_running_clocks().filter(owner=rep, lead__stage=Stage.MQL))
    return _rows(clocks, now=now)


def reject_reasons() -> list[Reason]:
    """The reasons a rep may give for rejecting an MQL, in their order."""
    return list(Reason.objects.filter(kind=ReasonKind.REJECT, active=True))


def _at_risk_q(now: datetime) -> Q:
    return Q(status__in=[ClockStatus.WARNED, ClockStatus.BREACHED]) | Q(warn_at__lte=now)


def team_queue(*, now: datetime) -> TeamQueue:
    """What a sales manager watches: each sales person's queue with its counts, the MQLs nobody
    owns, and the running clocks at risk (warned or breached), most overdue first. Seven queries."""
    counts = {
        row["owner_id"]: row
        for row in _running_clocks()
        .filter(owner__isnull=False, lead__stage=Stage.MQL)
        .order_by()
        .values("owner_id")
        .annotate(
            leads=Count("lead_id", distinct=True),
            at_risk=Count(
                "lead_id",
                distinct=True,
                filter=(Q(status=ClockStatus.WARNED) | Q(warn_at__lte=now))
                & Q(due_at__gt=now)
                & ~Q(status=ClockStatus.BREACHED),
            ),
            breached=Count(
                "lead_id", distinct=True, filter=Q(status=ClockStatus.BREACHED) | Q(due_at__lte=now)
            ),
        )
    }
    clocks = list(
        _running_clocks()
        .filter(owner__isnull=False, lead__stage=Stage.MQL)
        .order_by("due_at", "id")[: TEAM_CLOCKS_LIMIT + 1]
    )
    truncated = len(clocks) > TEAM_CLOCKS_LIMIT
    rows = _rows(clocks[:TEAM_CLOCKS_LIMIT], now=now)
    by_owner: dict[int, list[QueueRow]] = defaultdict(list)
    for row in rows:
        by_owner[row.next_clock.owner_id].append(row)
    # every rep, and whoever else owns running clocks (a sales manager, someone who left)
    people = User.objects.filter(
        Q(is_active=True, role=Role.SALES_REP) | Q(pk__in=list(counts))
    ).order_by("first_name", "last_name", "username")
    reps = []
    for person in people:
        count = counts.get(person.pk, {})
        reps.append(
            RepQueue(
                rep=person,
                rows=by_owner.get(person.pk, []),
                count=count.get("leads", 0),
                at_risk=count.get("at_risk", 0),
                breached=count.get("breached", 0),
            )
        )
    unassigned_qs = Lead.objects.filter(stage=Stage.MQL, owner__isnull=True)
    unassigned = list(
        unassigned_qs.select_related("source").order_by("mql_at", "id")[:UNASSIGNED_LIMIT]
    )
    at_risk_clocks = list(
        _running_clocks().filter(_at_risk_q(now)).order_by("due_at", "id")[:AT_RISK_LIMIT]
    )
    at_risk = []
    calendars = _Calendars()
    for clock in at_risk_clocks:
        row = QueueRow(lead=clock.lead)
        setattr(row, "response" if clock.kind == ClockKind.RESPONSE else "decision", clock)
        row.settle(calendars=calendars, now=now)
        at_risk.append(row)
    return TeamQueue(
        reps=reps,
        unassigned=unassigned,
        unassigned_count=unassigned_qs.count(),
        at_risk=at_risk,
        truncated=truncated,
    )
