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

The package: `rules` (what a condition may test, validation, matching, conditions in words),
`engine` (`routing_choose`, the one decision, used by `lead_route` and by the read-only
`routing_preview` of the People and routing page's tester; manual assignment), `manage` (the
services behind the People and routing page: a rep's profile, the rules and their pools).
"""

from leads.routing.engine import (
    ROUTING_SYSTEM,
    MemberCheck,
    RoutingChoice,
    RuleCheck,
    lead_assign,
    lead_reroute,
    lead_route,
    member_skip_reason,
    rep_open_leads,
    routing_choose,
    routing_preview,
)
from leads.routing.manage import (
    rep_profile_update,
    routing_rule_activate,
    routing_rule_delete,
    routing_rule_move,
    routing_rule_save,
)
from leads.routing.rules import (
    LEAD_FIELDS,
    NUMBER_FIELDS,
    TEXT_FIELDS,
    RoutingError,
    condition_error,
    condition_words,
    rule_failure,
    rule_matches,
    rule_words,
    validate_conditions,
)

__all__ = [
    "LEAD_FIELDS",
    "NUMBER_FIELDS",
    "ROUTING_SYSTEM",
    "TEXT_FIELDS",
    "MemberCheck",
    "RoutingChoice",
    "RoutingError",
    "RuleCheck",
    "condition_error",
    "condition_words",
    "lead_assign",
    "lead_reroute",
    "lead_route",
    "member_skip_reason",
    "rep_open_leads",
    "rep_profile_update",
    "routing_choose",
    "routing_preview",
    "routing_rule_activate",
    "routing_rule_delete",
    "routing_rule_move",
    "routing_rule_save",
    "rule_failure",
    "rule_matches",
    "rule_words",
    "validate_conditions",
]
