"""Routing an MQL to a rep: the choice (`routing_choose`, pure: it reads what it is given and
writes nothing), the write that applies it (`lead_route`), and the manual assignment.
The rules are described in `leads.routing`."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from alignment.models import SALES_ROLES, User
from alignment.notifications import notify
from alignment.permissions import Action, require
from leads.events import event_record
from leads.models import (
    OPEN_SALES_STAGES,
    Assignment,
    AssignmentRule,
    EventType,
    Lead,
    PoolMember,
    Stage,
)
from leads.routing.rules import RoutingError, rule_failure

logger = logging.getLogger("leads.routing")

ROUTING_SYSTEM = "routing"
# pass values are sums of 1/weight: round before comparing so float noise does not break ties
_PASS_DIGITS = 9


def rep_open_leads(*, rep_ids: list[int], exclude: Lead | None = None) -> dict[int, int]:
    """Open leads (stage in OPEN_SALES_STAGES) per rep, in one grouped query; 0 for reps with none.

    `exclude` (as the caller holds it, locked) leaves out the lead being routed: a recycled lead
    that is an MQL again may still name its previous owner."""
    counts = dict.fromkeys(rep_ids, 0)
    if not rep_ids:
        return counts
    qs = Lead.objects.filter(owner_id__in=rep_ids, stage__in=OPEN_SALES_STAGES)
    # count(*) over the (owner, stage) index alone; counting ids would read every table row
    rows = dict(qs.order_by().values_list("owner_id").annotate(n=Count("*")))
    counts.update(rows)
    if exclude is not None and exclude.owner_id in counts and exclude.stage in OPEN_SALES_STAGES:
        counts[exclude.owner_id] -= 1
    return counts


def member_skip_reason(
    *, member: PoolMember, open_leads: int, excluded: bool = False
) -> str | None:
    """Why a pool member cannot take a lead now, in words, or None when they can."""
    rep = member.rep
    if not rep.is_active:
        return "inactive account"
    if rep.role not in SALES_ROLES:
        return "not a sales rep or sales manager"
    if excluded:
        return "the lead's current owner (rerouting to someone else)"
    if not rep.available:
        return "away"
    if member.weight <= 0:
        return "weight 0 (parked in the pool)"
    if open_leads >= rep.capacity:
        return f"full ({open_leads} of {rep.capacity} open leads)"
    return None


def _pass_order(rule: AssignmentRule, member: PoolMember) -> tuple[float, float, int]:
    # lifted to the clock: time spent away or full earns no backlog of leads
    lifted = max(member.pass_value, rule.virtual_time)
    return round(lifted, _PASS_DIGITS), member.assigned_count / member.weight, member.rep_id


@dataclass
class MemberCheck:
    member: PoolMember
    open_leads: int
    skipped: str | None  # why they cannot take the lead; None: eligible


@dataclass
class RuleCheck:
    rule: AssignmentRule
    failure: str | None  # why the rule does not match; None: it matches
    members: list[MemberCheck] = field(default_factory=list)
    chosen: PoolMember | None = None
    after_choice: bool = False  # an earlier rule already took the lead

    @property
    def matched(self) -> bool:
        return self.failure is None


@dataclass
class RoutingChoice:
    """Each active rule in order, whether it matched and why not, and who would get the lead."""

    rules: list[RuleCheck]
    rule: AssignmentRule | None = None
    member: PoolMember | None = None


def routing_choose(
    *,
    lead: Lead,
    rules: list[AssignmentRule],
    members: list[PoolMember],
    open_leads: dict[int, int],
    exclude_rep_ids: Iterable[int] = (),
) -> RoutingChoice:
    """The one routing decision, from what it is handed: `rules` (active, in order), their pool
    `members` (with rep), each rep's `open_leads`. The first matching rule with an eligible member
    wins; inside it, stride scheduling picks the lowest (lifted) pass. Writes nothing."""
    excluded = set(exclude_rep_ids)
    by_rule: dict[int, list[PoolMember]] = {}
    for member in members:
        by_rule.setdefault(member.rule_id, []).append(member)
    choice = RoutingChoice(rules=[])
    for rule in rules:
        check = RuleCheck(
            rule=rule,
            failure=rule_failure(rule=rule, lead=lead),
            after_choice=choice.member is not None,
        )
        choice.rules.append(check)
        if not check.matched:
            continue
        for member in sorted(by_rule.get(rule.pk, []), key=lambda m: m.pk):
            count = open_leads.get(member.rep_id, 0)
            reason = member_skip_reason(
                member=member, open_leads=count, excluded=member.rep_id in excluded
            )
            check.members.append(MemberCheck(member, count, reason))
        eligible = [m.member for m in check.members if m.skipped is None]
        if eligible and choice.member is None:
            check.chosen = min(eligible, key=lambda m: _pass_order(rule, m))
            choice.rule, choice.member = rule, check.chosen
    return choice


def _active_rules(*, lock: bool = False, pks: list[int] | None = None) -> list[AssignmentRule]:
    qs = AssignmentRule.objects.filter(active=True)
    if pks is not None:
        qs = qs.filter(pk__in=pks)
    if lock:
        qs = qs.select_for_update()
    return list(qs.order_by("position", "id"))


def _pool(rules: list[AssignmentRule], *, lock: bool = False) -> list[PoolMember]:
    qs = PoolMember.objects.select_related("rep").filter(rule__in=rules).order_by("id")
    if lock:
        qs = qs.select_for_update(of=("self",))
    return list(qs)


def routing_preview(*, lead: Lead) -> RoutingChoice:
    """Which rule and rep `lead` (saved or not) would get now, and why: every active rule, its
    members and why each was skipped. Reads only: no locks, no pass values, no assignment."""
    rules = _active_rules()
    members = _pool(rules)
    open_leads = rep_open_leads(
        rep_ids=sorted({m.rep_id for m in members}), exclude=lead if lead.pk else None
    )
    return routing_choose(lead=lead, rules=rules, members=members, open_leads=open_leads)


@transaction.atomic
def lead_route(
    *,
    lead: Lead,
    now: datetime | None = None,
    exclude_rep_ids: Iterable[int] = (),
    note: str = "",
) -> Assignment | None:
    """Assign an MQL to a rep by the first applicable rule that has an eligible rep.

    Sets lead.owner and lead.assigned_at (saving only those fields) and records an Assignment with
    the rule. Returns None and records nothing when no rule applies or nobody in the applicable
    pools is eligible: the lead then waits unassigned in the MQL queue for a sales manager."""
    now = now or timezone.now()
    applicable = [rule.pk for rule in _active_rules() if rule_failure(rule=rule, lead=lead) is None]
    if not applicable:
        return None
    # locked and re-read: a concurrent routing may have moved the clock and pass values meanwhile
    rules = _active_rules(lock=True, pks=applicable)
    members = _pool(rules, lock=True)
    open_leads = rep_open_leads(rep_ids=sorted({m.rep_id for m in members}), exclude=lead)
    choice = routing_choose(
        lead=lead,
        rules=rules,
        members=members,
        open_leads=open_leads,
        exclude_rep_ids=exclude_rep_ids,
    )
    chosen, rule = choice.member, choice.rule
    if chosen is None or rule is None:
        return None

    start = max(chosen.pass_value, rule.virtual_time)
    chosen.pass_value = start + 1 / chosen.weight
    chosen.assigned_count += 1
    chosen.save(update_fields=["pass_value", "assigned_count"])
    rule.virtual_time = start
    rule.save(update_fields=["virtual_time"])

    previous_owner_id = lead.owner_id
    lead.owner = chosen.rep
    lead.assigned_at = now
    lead.save(update_fields=["owner", "assigned_at", "updated_at"])
    assignment = Assignment.objects.create(
        lead=lead,
        rep=chosen.rep,
        previous_owner_id=previous_owner_id,
        rule=rule,
        rule_name=rule.name,
        by_system=ROUTING_SYSTEM,
        note=note,
        at=now,
    )
    _assigned_event(assignment)
    return assignment


@transaction.atomic
def lead_reroute(*, lead_id: int, system: str, note: str = "") -> Assignment | None:
    """Give an MQL to the next eligible rep by the rules, other than its owner (an SLA escalation).
    None, and nothing written, when the lead is no longer an MQL or nobody else is eligible."""
    lead = Lead.objects.select_for_update().filter(pk=lead_id).first()
    if lead is None or lead.stage != Stage.MQL:
        return None
    exclude = [lead.owner_id] if lead.owner_id is not None else []
    return lead_route(lead=lead, exclude_rep_ids=exclude, note=note)


def _assigned_event(assignment: Assignment) -> None:
    event_record(
        type=EventType.LEAD_ASSIGNED,
        lead=assignment.lead,
        by=assignment.by,
        system=assignment.by_system,
        at=assignment.at,
        payload={
            "owner_id": assignment.rep_id,
            "previous_owner_id": assignment.previous_owner_id,
            "assignment_id": assignment.pk,
            "rule_id": assignment.rule_id,
            "rule": assignment.rule_name,
            "note": assignment.note,
        },
    )


@transaction.atomic
def lead_assign(*, lead: Lead, rep: User, by: User, note: str = "") -> Assignment:
    """A sales manager (or admin) gives a lead to a rep by hand.

    The manager decides: the rep's capacity and availability are not checked (the lead page warns
    first), and pool pass values do not move. The rep must be an active sales rep or sales
    manager; the new owner is notified (unless they assigned it to themselves)."""
    require(by, Action.LEAD_ASSIGN)
    if not rep.is_active or rep.role not in SALES_ROLES:
        raise RoutingError(
            f"{rep} is not an active sales rep or sales manager; leads go to sales people only.",
            field="rep",
        )
    # the current owner under lock: the instance we were given may be stale
    previous_owner_id = (
        Lead.objects.select_for_update().values_list("owner_id", flat=True).get(pk=lead.pk)
    )
    if previous_owner_id == rep.pk:
        raise RoutingError(f"{lead} is already assigned to {rep}.", field="rep")
    now = timezone.now()
    lead.owner = rep
    lead.assigned_at = now
    lead.save(update_fields=["owner", "assigned_at", "updated_at"])
    assignment = Assignment.objects.create(
        lead=lead,
        rep=rep,
        previous_owner_id=previous_owner_id,
        by=by,
        note=note.strip(),
        at=now,
    )
    _assigned_event(assignment)
    if rep.pk != by.pk:
        _notify_new_owner(assignment)
    return assignment


def _notify_new_owner(assignment: Assignment) -> None:
    lead, by = assignment.lead, assignment.by
    notify(
        user=assignment.rep,
        kind="lead.assigned",
        key=f"lead.assigned:assignment:{assignment.pk}",
        title=f"{lead.display_name} was assigned to you by {by}",
        body=(
            f"{by} gave you {lead.display_name} ({lead.get_stage_display()})."
            + (f" Note: {assignment.note}" if assignment.note else "")
        ),
        url=reverse("leads:detail", args=[lead.pk]),
        lead=lead,
    )
