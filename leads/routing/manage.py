"""The writes behind the People and routing page: a rep's routing profile, and the routing rules
with their pools. Each checks the permission, validates, and writes in one transaction."""

import logging
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from alignment.lib.errors import PermissionDenied
from alignment.lib.timezones import zone_or_none
from alignment.models import SALES_ROLES, User
from alignment.notifications import notify
from alignment.permissions import Action, can, require
from leads.models import AssignmentRule, PoolMember
from leads.routing.rules import RoutingError, validate_conditions

logger = logging.getLogger("leads.routing")

PROFILE_FIELDS = ("available", "capacity", "working_timezone")
MAX_WEIGHT = 100


def _profile_clean(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(PROFILE_FIELDS))
    if unknown:
        raise RoutingError(f"Only {', '.join(PROFILE_FIELDS)} can be changed here, not {unknown}.")
    clean: dict[str, Any] = {}
    if "available" in changes:
        clean["available"] = bool(changes["available"])
    if "capacity" in changes:
        capacity = changes["capacity"]
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise RoutingError(
                "Capacity is a whole number of open leads, 0 or more.", field="capacity"
            )
        clean["capacity"] = capacity
    if "working_timezone" in changes:
        zone = str(changes["working_timezone"] or "").strip()
        if zone_or_none(zone) is None:
            raise RoutingError(
                f"“{zone}” is not a time zone this system knows; use a name such as "
                "Europe/Berlin or America/New_York.",
                field="working_timezone",
            )
        clean["working_timezone"] = zone
    return clean


def _describe(field: str, value: Any) -> str:
    if field == "available":
        return "available" if value else "away"
    if field == "capacity":
        return f"capacity {value}"
    return f"time zone {value}"


@transaction.atomic
def rep_profile_update(*, rep: User, by: User, **changes: Any) -> list[str]:
    """Change a rep's routing profile (available, capacity, working_timezone); returns the fields
    that changed. A sales manager or an admin may change anyone's; a rep only their own
    availability. Who changed what is logged, and the rep is notified when someone else did it."""
    own_availability = by.pk == rep.pk and set(changes) <= {"available"} and by.is_sales
    if not own_availability and not can(by, Action.ROUTING_MANAGE):
        raise PermissionDenied(
            "Only a sales manager or an admin may change capacity, time zone or someone else's "
            "availability; you may set your own availability."
        )
    if not rep.is_active or rep.role not in SALES_ROLES:
        raise RoutingError(f"{rep} is not an active sales rep or sales manager.")
    clean = _profile_clean(changes)
    locked = User.objects.select_for_update().get(pk=rep.pk)
    changed = [f for f, value in clean.items() if getattr(locked, f) != value]
    if not changed:
        return []
    for f in changed:
        setattr(locked, f, clean[f])
        setattr(rep, f, clean[f])
    locked.save(update_fields=changed)
    summary = ", ".join(_describe(f, clean[f]) for f in changed)
    logger.info(
        "Routing profile of %s (id %s) changed by %s (id %s): %s", rep, rep.pk, by, by.pk, summary
    )
    if by.pk != rep.pk:
        now = timezone.now()
        notify(
            user=rep,
            kind="routing.profile",
            key=f"routing.profile:{rep.pk}:{now.isoformat()}:{by.pk}",
            title=f"{by} changed your routing profile: {summary}",
            body=f"{by} set your routing profile to: {summary}. New leads are routed by it.",
            url=reverse("people:me"),
            email=False,
        )
    return changed


# --- rules and pools -----------------------------------------------------------------------------


def _clean_members(members: dict[int, int]) -> dict[int, int]:
    for weight in members.values():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise RoutingError(
                f"A weight is a whole number from 0 to {MAX_WEIGHT} (0 parks the rep in the pool).",
                field="members",
            )
    reps = User.objects.filter(pk__in=list(members), is_active=True, role__in=SALES_ROLES)
    found = set(reps.values_list("pk", flat=True))
    if missing := sorted(set(members) - found):
        raise RoutingError(
            f"Only active sales reps and sales managers can be in a pool (not user {missing}).",
            field="members",
        )
    return members


@transaction.atomic
def routing_rule_save(
    *,
    by: User,
    rule: AssignmentRule | None = None,
    name: str,
    active: bool,
    conditions: list,
    members: dict[int, int],
) -> AssignmentRule:
    """Create a rule (placed last) or change one: its name, active flag, conditions and pool
    (rep id -> weight). Members who stay keep their pass value and count; a new member starts at
    the rule's clock, so they get their share from now on, not a catch-up flood."""
    require(by, Action.ROUTING_MANAGE)
    name = name.strip()
    if not name:
        raise RoutingError("Give the rule a name.", field="name")
    validate_conditions(conditions)
    members = _clean_members(members)
    clash = AssignmentRule.objects.filter(name__iexact=name)
    if rule is not None:
        rule = AssignmentRule.objects.select_for_update().get(pk=rule.pk)
        clash = clash.exclude(pk=rule.pk)
    if clash.exists():
        raise RoutingError(f"There is already a rule called “{name}”.", field="name")
    if rule is None:
        last = AssignmentRule.objects.aggregate(last=Max("position"))["last"]
        rule = AssignmentRule.objects.create(
            name=name,
            active=active,
            conditions=conditions,
            position=0 if last is None else last + 1,
        )
    else:
        rule.name, rule.active, rule.conditions = name, active, conditions
        rule.save(update_fields=["name", "active", "conditions"])
    current = {m.rep_id: m for m in PoolMember.objects.select_for_update().filter(rule=rule)}
    PoolMember.objects.filter(rule=rule).exclude(rep_id__in=list(members)).delete()
    for rep_id, weight in members.items():
        member = current.get(rep_id)
        if member is None:
            PoolMember.objects.create(
                rule=rule, rep_id=rep_id, weight=weight, pass_value=rule.virtual_time
            )
        elif member.weight != weight:
            member.weight = weight
            member.save(update_fields=["weight"])
    logger.info("Routing rule %r (id %s) saved by %s (id %s)", rule.name, rule.pk, by, by.pk)
    return rule


@transaction.atomic
def routing_rule_activate(*, rule: AssignmentRule, by: User, active: bool) -> AssignmentRule:
    require(by, Action.ROUTING_MANAGE)
    AssignmentRule.objects.filter(pk=rule.pk).update(active=active)
    rule.active = active
    logger.info("Routing rule %r (id %s) set active=%s by %s", rule.name, rule.pk, active, by)
    return rule


@transaction.atomic
def routing_rule_delete(*, rule: AssignmentRule, by: User) -> None:
    """Delete a rule and its pool; past assignments keep the rule's name."""
    require(by, Action.ROUTING_MANAGE)
    logger.info("Routing rule %r (id %s) deleted by %s (id %s)", rule.name, rule.pk, by, by.pk)
    AssignmentRule.objects.filter(pk=rule.pk).delete()


@transaction.atomic
def routing_rule_move(*, rule: AssignmentRule, by: User, up: bool) -> None:
    """Swap a rule with its neighbour above (up) or below; positions are renumbered 0, 1, 2, …
    in the current order first, so equal positions cannot make a move do nothing."""
    require(by, Action.ROUTING_MANAGE)
    rules = list(AssignmentRule.objects.select_for_update().order_by("position", "id"))
    index = next((i for i, r in enumerate(rules) if r.pk == rule.pk), None)
    if index is None:
        raise RoutingError("That rule no longer exists.")
    other = index - 1 if up else index + 1
    if 0 <= other < len(rules):
        rules[index], rules[other] = rules[other], rules[index]
    for position, each in enumerate(rules):
        if each.position != position:
            each.position = position
            each.save(update_fields=["position"])
