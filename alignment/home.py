"""The home page (/) by role, assembled from the existing selectors (no figure is computed here):

- a sales rep: his SLA queue (sla.queue.queue_for_rep);
- a sales manager: this week against the agreement (first-response attainment, speed to lead,
  breaches and open clocks by rep), the unassigned MQLs, each rep's open load against capacity;
- marketing: MQLs delivered and the acceptance rate against the agreement's commitment for its
  commitment period (sla.report.figures.marketing_figures), and why MQLs were rejected;
- everyone: the shared goals (kpis.selectors.goals_board) and the customers won this week.

Periods are cut in the agreement's calendar's time zone; with no agreement in force the figures
that need one give way to a sentence."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from alignment.decorators import team_member_required
from alignment.models import Role, User
from kpis import selectors
from leads.list_views import SAVED_VIEWS
from leads.models import Announcement, Lead, Stage
from leads.routing import rep_open_leads
from leads.selectors import LeadListFilters
from sla import queue
from sla.models import Agreement, CommitmentPeriod
from sla.report.figures import agreement_timezone, marketing_figures
from sla.selectors import agreement_active

WON_LISTED = 5
TOP_REASONS = 5
UNASSIGNED_VIEW = "Unassigned MQLs"


@dataclass
class RepRow:
    """One sales rep on the manager's home: load against capacity, this week's breaches, the
    clocks running now."""

    rep: User
    open_leads: int
    breaches: int = 0
    open_clocks: int = 0
    overdue: int = 0

    @property
    def full(self) -> bool:
        return self.open_leads >= self.rep.capacity


def home_kind(user: User) -> str:
    role = user.effective_role
    if role == Role.SALES_REP:
        return "rep"
    if role == Role.SALES_MANAGER:
        return "manager"
    if role in (Role.MARKETER, Role.MARKETING_MANAGER):
        return "marketing"
    return "admin"


def _week(agreement: Agreement, now: datetime) -> selectors.Period:
    tz = agreement_timezone(agreement)
    return selectors.iso_week_period(selectors.iso_week_of(now, tz=tz), tz=tz).until(now)


def _commitment_period(agreement: Agreement, now: datetime) -> selectors.Period:
    """The period the agreement commits per (its week or its month), counted up to now."""
    if agreement.commitment_period == CommitmentPeriod.MONTH:
        tz = agreement_timezone(agreement)
        month = now.astimezone(ZoneInfo(tz)).strftime("%Y-%m")
        return selectors.month_period(month, tz=tz).until(now)
    return _week(agreement, now)


def unassigned_link() -> str:
    return f"{reverse('leads:list')}?{dict(SAVED_VIEWS)[UNASSIGNED_VIEW]}"


def manager_context(*, agreement: Agreement | None, now: datetime) -> dict:
    reps = list(
        User.objects.filter(is_active=True, role=Role.SALES_REP).order_by(
            "first_name", "last_name", "username"
        )
    )
    loads = rep_open_leads(rep_ids=[r.pk for r in reps])
    rows = {r.pk: RepRow(rep=r, open_leads=loads[r.pk]) for r in reps}
    unassigned = (
        LeadListFilters(stages=(Stage.MQL,), unassigned=True).apply(Lead.objects.all()).count()
    )
    context = {
        "unassigned_count": unassigned,
        "unassigned_url": unassigned_link(),
        "rep_rows": list(rows.values()),
    }
    if agreement is None:
        return context
    week = _week(agreement, now)
    breaches = selectors.sla_breaches_by_rep(period=week)
    open_clocks = selectors.sla_clocks_open(at=now)
    for b in breaches:
        if b.rep_id in rows:
            rows[b.rep_id].breaches = b.total
    for c in open_clocks:
        if c.rep_id in rows:
            rows[c.rep_id].open_clocks, rows[c.rep_id].overdue = c.open, c.overdue
    context.update(
        week=week,
        response=selectors.sla_response_attainment(period=week),
        speed=selectors.speed_to_lead(period=week),
        breaches=breaches,
        breaches_total=sum(b.total for b in breaches),
        open_total=sum(c.open for c in open_clocks),
        overdue_total=sum(c.overdue for c in open_clocks),
    )
    return context


def marketing_context(*, agreement: Agreement | None, now: datetime) -> dict:
    if agreement is None:
        return {}
    period = _commitment_period(agreement, now)
    figures = marketing_figures(agreement=agreement, period=period)
    return {
        "marketing": figures,
        "reasons": selectors.rejection_reasons_by_source(period=period, limit=TOP_REASONS),
    }


def _goals(*, agreement: Agreement | None, now: datetime) -> dict:
    tz = agreement_timezone(agreement) if agreement else settings.TIME_ZONE
    board = selectors.goals_board(at=now, tz=tz, trend_periods=0)
    groups = [("Shared", board.shared), ("Marketing", board.marketing), ("Sales", board.sales)]
    return {"goals": board, "goal_groups": [(title, items) for title, items in groups if items]}


def shared_context(*, agreement: Agreement | None, now: datetime) -> dict:
    """The goals and this week's won customers, with their announcements (everyone's home)."""
    context = _goals(agreement=agreement, now=now)
    if agreement is None:
        return context
    week = _week(agreement, now)
    count, value, won = selectors.won_customers(period=week, limit=WON_LISTED)
    announcements = {
        a.lead_id: a for a in Announcement.objects.filter(lead_id__in=[w.lead_id for w in won])
    }
    context.update(
        won_week=week,
        won_count=count,
        won_value=value,
        won=[(w, announcements.get(w.lead_id)) for w in won],
    )
    return context


def home_context(*, user: User, now: datetime) -> dict:
    agreement = agreement_active()
    kind = home_kind(user)
    context = {
        "kind": kind,
        "agreement": agreement,
        "agreement_tz": agreement_timezone(agreement) if agreement else "",
        "now": now,
    }
    if kind == "rep":
        context["mine"] = queue.queue_for_rep(rep=user, now=now)
    elif kind == "manager":
        context.update(manager_context(agreement=agreement, now=now))
    elif kind == "marketing":
        context.update(marketing_context(agreement=agreement, now=now))
    context.update(shared_context(agreement=agreement, now=now))
    return context


@team_member_required
def home(request):
    """/ : each role's home (a logged-in person on neither team gets a 403)."""
    context = home_context(user=request.user, now=timezone.now())
    return render(request, "alignment/home.html", context)
