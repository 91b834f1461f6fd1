"""Who may do what. Reading is open to every team member; each change names an Action here,
and the service performing it calls `require` before it writes anything."""

from enum import StrEnum

from alignment.lib.errors import PermissionDenied
from alignment.models import Role, User


class Action(StrEnum):
    VIEW = "view"
    LEAD_CREATE = "lead.create"
    LEAD_EDIT = "lead.edit"
    LEAD_IMPORT = "lead.import"
    LEAD_QUALIFY = "lead.qualify"  # new/nurturing -> nurturing or MQL by hand
    LEAD_DECIDE = "lead.decide"  # accept or reject an MQL
    LEAD_PROGRESS = "lead.progress"  # SQL, opportunity, won, lost
    LEAD_RECYCLE = "lead.recycle"
    LEAD_ASSIGN = "lead.assign"  # manual (re)assignment
    LEAD_MERGE = "lead.merge"
    TOUCHPOINT_MARKETING = "touchpoint.marketing"
    TOUCHPOINT_SALES = "touchpoint.sales"
    CAMPAIGN_MANAGE = "campaign.manage"
    ROUTING_MANAGE = "routing.manage"
    SCORING_PROPOSE = "scoring.propose"
    SCORING_APPROVE = "scoring.approve"
    AGREEMENT_SIGN = "agreement.sign"
    API_KEY_MANAGE = "api_key.manage"
    WEBHOOKS_MANAGE = "webhooks.manage"
    GOAL_MANAGE = "goal.manage"  # set and change the shared goals
    CONTENT_MANAGE = "content.manage"  # add and change assets; plan content requests; answers
    CONTENT_REQUEST = "content.request"  # ask for content that does not exist yet, vote, comment
    OBJECTION_LOG = "objection.log"  # log a question or objection heard from a lead
    FLAG_RAISE = "flag.raise"  # flag a problem with a lead for marketing
    FLAG_RESOLVE = "flag.resolve"  # close a lead flag with an outcome
    STORY_RECORD = "story.record"  # tell why a deal was won or lost


_M, _MM = Role.MARKETER, Role.MARKETING_MANAGER
_R, _SM = Role.SALES_REP, Role.SALES_MANAGER
_ALL_TEAM = frozenset({_M, _MM, _R, _SM, Role.ADMIN})

POLICY: dict[Action, frozenset[str]] = {
    Action.VIEW: _ALL_TEAM,
    Action.LEAD_CREATE: _ALL_TEAM,
    Action.LEAD_EDIT: _ALL_TEAM,
    Action.LEAD_IMPORT: frozenset({_M, _MM, Role.ADMIN}),
    Action.LEAD_QUALIFY: frozenset({_M, _MM, Role.ADMIN}),
    Action.LEAD_DECIDE: frozenset({_R, _SM, Role.ADMIN}),
    Action.LEAD_PROGRESS: frozenset({_R, _SM, Role.ADMIN}),
    Action.LEAD_RECYCLE: frozenset({_R, _SM, _MM, Role.ADMIN}),
    Action.LEAD_ASSIGN: frozenset({_SM, Role.ADMIN}),
    Action.LEAD_MERGE: frozenset({_MM, _SM, Role.ADMIN}),
    Action.TOUCHPOINT_MARKETING: frozenset({_M, _MM, Role.ADMIN}),
    Action.TOUCHPOINT_SALES: frozenset({_R, _SM, Role.ADMIN}),
    Action.CAMPAIGN_MANAGE: frozenset({_M, _MM, _SM, Role.ADMIN}),
    Action.ROUTING_MANAGE: frozenset({_SM, Role.ADMIN}),
    Action.SCORING_PROPOSE: frozenset({_M, _MM, Role.ADMIN}),
    Action.SCORING_APPROVE: frozenset({_MM, _SM}),
    Action.AGREEMENT_SIGN: frozenset({_MM, _SM}),
    Action.API_KEY_MANAGE: frozenset({Role.ADMIN}),
    Action.WEBHOOKS_MANAGE: frozenset({Role.ADMIN}),
    Action.GOAL_MANAGE: frozenset({_MM, _SM, Role.ADMIN}),
    Action.CONTENT_MANAGE: frozenset({_M, _MM, Role.ADMIN}),
    Action.CONTENT_REQUEST: _ALL_TEAM,
    Action.OBJECTION_LOG: frozenset({_R, _SM, Role.ADMIN}),
    Action.FLAG_RAISE: frozenset({_R, _SM, Role.ADMIN}),
    Action.FLAG_RESOLVE: frozenset({_M, _MM, Role.ADMIN}),
    Action.STORY_RECORD: frozenset({_R, _SM, Role.ADMIN}),
}


def can(user: User | None, action: Action) -> bool:
    if user is None or not user.is_active:
        return False
    return user.effective_role in POLICY[action]


def require(user: User | None, action: Action) -> None:
    if not can(user, action):
        role = Role(user.effective_role).label if user and user.effective_role else "no role"
        raise PermissionDenied(f"Your role ({role}) may not do {action.value}.")
