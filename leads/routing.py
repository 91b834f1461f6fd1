"""Routing of MQLs to sales reps.

When a lead becomes an MQL the lifecycle service calls `lead_route` inside its transaction:

1. Rules. The active `AssignmentRule`s are tried in order (position, id). A rule applies when all
   its conditions match the lead (`rule_matches`); the first applicable rule with an eligible rep in
   its pool wins, otherwise routing falls through to the next applicable rule.
2. Eligibility. A pool member can take the lead when the user is active, available, a sales rep or
   sales manager, has a weight above 0 (weight 0 parks a member in the pool), and carries fewer open
   leads (owner = rep, stage in OPEN_SALES_STAGES) than their capacity. Open leads are counted in one
   grouped query per routing call.
3. Fairness inside the pool: stride scheduling (weighted round-robin with a virtual clock). Every
   member has a pass value; the eligible member with the lowest pass gets the lead (ties: fewest
   leads per unit of weight, then lowest rep id), and their pass grows by 1/weight. The rule's
   `virtual_time` is the pass at which the last lead was handed out. A member whose pass is behind
   that clock (skipped while absent or full, or just added) is lifted to the clock before comparing:
   a returning rep rejoins at the current point and gets their share from then on, not a flood of
   leads to "catch up".

Decisions worth knowing:
- No applicable rule or nobody eligible: `lead_route` returns None and records nothing. The lead
  stays unassigned in the MQL queue and a sales manager assigns it by hand (`lead_assign`).
- Manual assignment (`lead_assign`, sales manager or admin) may exceed the rep's capacity and may pick
  an unavailable rep: the manager decides. It does not move pool pass values, but the extra open
  lead counts against the rep's capacity, so routing sends them less until they are below it.
- Conditions: evaluated by `leads.conditions`, the evaluator scoring uses too (see
  `validate_conditions`). A missing value (attribute absent, null, or a blank text field) matches
  no operator except `exists: false`; `ne` and `not_in` do not match it either, as in SQL: an
  unknown country is not "not US". Route such leads with an explicit `exists: false` rule.
- A rule whose stored conditions are invalid (e.g. edited around the validation) never matches; it is
  logged, and routing carries on with the next rule rather than failing the MQL transition.
- Concurrency: the applicable rules and their eligible members are locked (SELECT ... FOR UPDATE, in
  rule order so concurrent routings cannot deadlock) before capacity is counted and a rep is picked,
  so two MQLs routed at once never pick with stale pass values. Two rules that share a rep are locked
  independently: under simultaneous bursts a shared rep can go one lead over capacity.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import SALES_ROLES, User
from alignment.notifications import notify
from alignment.permissions import Action, require
from leads.conditions import (
    ATTRIBUTE_PREFIX,
    MISSING,
    NUMBER,
    TEXT,
    compile_condition,
    condition_problem,
)
from leads.events import event_record
from leads.models import (
    LEAD_TEXT_FIELDS,
    OPEN_SALES_STAGES,
    Assignment,
    AssignmentRule,
    EventType,
    Lead,
    PoolMember,
    Stage,
)

logger = logging.getLogger(__name__)

ROUTING_SYSTEM = "routing"

# Lead fields a condition may test; `source` compares with Source.key, `campaign` with its name.
TEXT_FIELDS = frozenset({*LEAD_TEXT_FIELDS, "email", "source", "campaign", "stage", "grade"})
NUMBER_FIELDS = frozenset(
    {"company_size", "fit_score", "engagement_score", "score", "mql_count", "deal_value"}
)
LEAD_FIELDS = {**dict.fromkeys(TEXT_FIELDS, TEXT), **dict.fromkeys(NUMBER_FIELDS, NUMBER)}
# pass values are sums of 1/weight: round before comparing so float noise does not break ties
_PASS_DIGITS = 9


class RoutingError(DomainError):
    """A routing rule or a manual assignment was refused; the message says why."""


# --- conditions --------------------------------------------------------------------------------


def _lead_value(lead: Lead, field: str) -> Any:
    if field.startswith(ATTRIBUTE_PREFIX):
        attributes = lead.attributes if isinstance(lead.attributes, dict) else {}
        return attributes.get(field.removeprefix(ATTRIBUTE_PREFIX), MISSING)
    if field == "source":
        return lead.source.key if lead.source else None
    if field == "campaign":
        return lead.campaign.name if lead.campaign else None
    return getattr(lead, field)


def _condition_problem(condition: Any) -> str | None:
    """What is wrong with one condition, in words, or None."""
    if not isinstance(condition, dict):
        return 'must be an object like {"field": "country", "op": "eq", "value": "DE"}'
    unknown = sorted(set(condition) - {"field", "op", "value"})
    if unknown:
        return f"has unknown keys {', '.join(unknown)} (allowed: field, op, value)"
    return condition_problem(condition, fields=LEAD_FIELDS)


def validate_conditions(conditions: list) -> None:
    """Refuse conditions that could never be evaluated, naming the bad one.

    A condition is {"field": ..., "op": ..., "value": ...}; all must match, and [] matches every
    lead. `field` is a lead field (see LEAD_FIELDS; `source` is the source key, `campaign` the
    campaign name) or `attributes.<key>`. Ops and semantics are those of `leads.conditions`:
    eq, ne, in, not_in (lists), contains (substring; membership for a list attribute), gt, gte,
    lt, lte, between ([low, high], inclusive), exists (true/false); text compares case-folded,
    numbers as numbers (a numeric text counts as its number)."""
    if not isinstance(conditions, list):
        raise RoutingError(
            'Conditions must be a list of {"field", "op", "value"} objects.', field="conditions"
        )
    for number, condition in enumerate(conditions, start=1):
        problem = _condition_problem(condition)
        if problem:
            if isinstance(condition, dict):
                shown = " ".join(
                    repr(condition.get(k)) if k == "value" else str(condition.get(k, "?"))
                    for k in ("field", "op", "value")
                )
            else:
                shown = repr(condition)
            raise RoutingError(f"Condition {number} ({shown}) {problem}.", field="conditions")


def rule_matches(*, rule: AssignmentRule, lead: Lead) -> bool:
    """Whether all the rule's conditions match the lead; a rule with invalid conditions never does."""
    try:
        validate_conditions(rule.conditions)
    except RoutingError as error:
        logger.warning("Routing rule %r (id %s) is skipped: %s", rule.name, rule.pk, error.message)
        return False
    return all(
        compile_condition(c["op"], c["value"], field=c["field"]).matches(
            _lead_value(lead, c["field"])
        )
        for c in rule.conditions
    )


# --- routing -----------------------------------------------------------------------------------


def rep_open_leads(*, rep_ids: list[int], exclude: Lead | None = None) -> dict[int, int]:
    """Open leads (stage in OPEN_SALES_STAGES) per rep, in one grouped query; 0 for reps with none.

    `exclude` (as the caller holds it, locked) leaves out the lead being routed: a recycled lead that is an MQL again may
    still name its previous owner."""
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


def _next_member(*, rule: AssignmentRule, candidates: list[PoolMember]) -> PoolMember:
    clock = rule.virtual_time

    def order(member: PoolMember) -> tuple[float, float, int]:
        # lifted to the clock: time spent away or full earns no backlog of leads
        lifted = max(member.pass_value, clock)
        return round(lifted, _PASS_DIGITS), member.assigned_count / member.weight, member.rep_id

    return min(candidates, key=order)


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
    applicable = [
        rule.pk
        for rule in AssignmentRule.objects.filter(active=True).order_by("position", "id")
        if rule_matches(rule=rule, lead=lead)
    ]
    if not applicable:
        return None
    # locked and re-read: a concurrent routing may have moved the clock and pass values meanwhile
    rules = list(
        AssignmentRule.objects.select_for_update()
        .filter(pk__in=applicable, active=True)
        .order_by("position", "id")
    )
    members = list(
        PoolMember.objects.select_for_update(of=("self",))
        .select_related("rep")
        .filter(
            rule__in=rules,
            weight__gt=0,
            rep__is_active=True,
            rep__available=True,
            rep__role__in=SALES_ROLES,
        )
        .exclude(rep_id__in=list(exclude_rep_ids))
        .order_by("id")
    )
    open_leads = rep_open_leads(rep_ids=sorted({m.rep_id for m in members}), exclude=lead)
    pools: dict[int, list[PoolMember]] = defaultdict(list)
    for member in members:
        if open_leads[member.rep_id] < member.rep.capacity:
            pools[member.rule_id].append(member)

    for rule in rules:
        if pools[rule.pk]:
            chosen = _next_member(rule=rule, candidates=pools[rule.pk])
            break
    else:
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
