"""The two-manager sign-off of a versioned record, shared by the scoring model and the alignment
agreement: what both teams live by changes only when a marketing manager and a sales manager have
both approved the new version.

A version moves draft -> proposed -> active -> retired; a proposal can go back to draft (withdrawn
by its author's side, or sent back by a manager with the reason), which drops its approvals. Only
drafts are edited: a proposed version is frozen, so that the managers approve exactly what takes
effect. One approval per side (marketing, sales) and per person; the second side's approval
activates the version and retires the one in force, under a row lock so that two managers
approving at the same moment activate it once. Every step appends an event to the record's history.

What differs between the records is described by a `SignOff`: the version, approval and event
models, the field naming the version on the other two, the error class, the permissions, how a
diff is computed, and what else an activation does (scoring queues a full rescore). The abstract
models below give each record the same columns; the services of each record call the functions
here and keep their own names."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.permissions import Action, require


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROPOSED = "proposed", "Proposed"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class VersionAction(models.TextChoices):
    CREATED = "created", "Created"
    EDITED = "edited", "Edited"
    PROPOSED = "proposed", "Proposed"
    WITHDRAWN = "withdrawn", "Withdrawn"
    SENT_BACK = "sent_back", "Sent back"
    APPROVED = "approved", "Approved"
    ACTIVATED = "activated", "Activated"
    RETIRED = "retired", "Retired"
    DISCARDED = "discarded", "Discarded"


MOVES: dict[str, tuple[str, ...]] = {
    VersionStatus.DRAFT: (VersionStatus.PROPOSED,),
    VersionStatus.PROPOSED: (VersionStatus.DRAFT, VersionStatus.ACTIVE),
    VersionStatus.ACTIVE: (VersionStatus.RETIRED,),
    VersionStatus.RETIRED: (),
}
APPROVING_SIDES = {
    Role.MARKETING_MANAGER: "marketing",
    Role.SALES_MANAGER: "sales",
}


class SignedVersion(models.Model):
    """The columns of a signed version. A concrete model adds its content, its Meta (with the
    "at most one active" constraint, named for its table) and its `__str__`."""

    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=VersionStatus.choices, default=VersionStatus.DRAFT, db_index=True
    )
    based_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # the computed difference against the version that was active when this one was proposed
    # (refreshed at activation against the version it replaced)
    diff_base = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    diff = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    proposed_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Approval(models.Model):
    """The columns of one manager's approval; the concrete model adds the key to its version
    (related_name="approvals") and the once-per-person and once-per-side constraints."""

    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # the approver's role when they approved (marketing_manager or sales_manager)
    role = models.CharField(max_length=32)
    note = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class VersionEvent(models.Model):
    """The columns of the append-only history; the concrete model adds the key to its version
    (null, SET_NULL: a discarded draft keeps its history) and `<key>_label`."""

    action = models.CharField(max_length=16, choices=VersionAction.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_role = models.CharField(max_length=32, blank=True)
    by_system = models.CharField(max_length=50, blank=True)
    note = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


# (previous active version or None, the version being proposed or activated) -> the stored diff,
# a dict with a "summary" in words ("no changes" when they are the same)
DiffFunction = Callable[[Any, Any], dict]
# (activated version, previous version or None, by, now) -> details for the "activated" event
ActivateHook = Callable[[Any, Any, User | None, datetime], dict]


@dataclass(frozen=True)
class SignOff:
    """What differs between two signed records."""

    version_model: type[SignedVersion]
    approval_model: type[Approval]
    event_model: type[VersionEvent]
    # the key naming the version on the approval and the event models ("model", "agreement")
    key: str
    error: type[DomainError]
    # who may create, edit, propose and withdraw; who may approve and send back
    edit_action: Action
    approve_action: Action
    # "the scoring model": in "A change to the scoring model needs a person or a named system."
    subject: str
    # the diff kept at proposal; at activation `activation_diff` (default: the same) refreshes it
    diff: DiffFunction
    activation_diff: DiffFunction | None = None
    on_activate: ActivateHook | None = None


def status_label(status: str) -> str:
    return VersionStatus(status).label


def check_actor(so: SignOff, by: User | None, system: str, action: Action) -> None:
    if by is not None:
        require(by, action)
    elif not system:
        raise so.error(f"A change to {so.subject} needs a person or a named system.")


def check_move(so: SignOff, version: SignedVersion, to: str) -> None:
    allowed = MOVES[version.status]
    if to not in allowed:
        allowed_text = ", ".join(status_label(s) for s in allowed) or "none"
        raise so.error(
            f"{version} is {status_label(version.status)}; it cannot become {status_label(to)}. "
            f"Allowed from {status_label(version.status)}: {allowed_text}.",
            field="status",
        )


def record(
    so: SignOff,
    version: SignedVersion,
    action: str,
    *,
    by: User | None = None,
    system: str = "",
    note: str = "",
    details: dict | None = None,
    at: datetime | None = None,
) -> VersionEvent:
    """Append one event to the version's history."""
    return so.event_model.objects.create(
        **{so.key: version, f"{so.key}_label": str(version)[:250]},
        action=action,
        by=by,
        by_role=by.effective_role if by else "",
        by_system=system if by is None else "",
        note=note.strip(),
        details=details or {},
        at=at or timezone.now(),
    )


def lock(so: SignOff, version: SignedVersion) -> SignedVersion:
    return so.version_model.objects.select_for_update().get(pk=version.pk)


def active(so: SignOff) -> SignedVersion | None:
    return so.version_model.objects.filter(status=VersionStatus.ACTIVE).first()


def lock_draft(so: SignOff, version: SignedVersion) -> SignedVersion:
    """The version's row locked, when it is still a draft (only drafts are edited)."""
    locked = lock(so, version)
    if locked.status != VersionStatus.DRAFT:
        raise so.error(
            f"{locked} is {status_label(locked.status)} and cannot be edited; "
            + (
                "withdraw it to a draft first."
                if locked.status == VersionStatus.PROPOSED
                else "copy it to a new draft instead."
            ),
            field="status",
        )
    return locked


def propose(
    so: SignOff, *, version: SignedVersion, by: User | None, system: str = "", note: str = ""
) -> SignedVersion:
    """Submit a draft for sign-off (call inside a transaction); it is frozen from now on and its
    diff against the active version is kept."""
    check_actor(so, by, system, so.edit_action)
    locked = lock(so, version)
    check_move(so, locked, VersionStatus.PROPOSED)
    in_force = active(so)
    diff = so.diff(in_force, locked)
    if in_force and diff["summary"] == "no changes":
        raise so.error(
            f"{locked} is the same as the active version {in_force}; nothing to propose."
        )
    now = timezone.now()
    locked.status = VersionStatus.PROPOSED
    locked.proposed_at = now
    locked.diff_base = in_force
    locked.diff = diff
    locked.updated_at = now
    locked.save()
    record(
        so,
        locked,
        VersionAction.PROPOSED,
        by=by,
        system=system,
        note=note,
        details={"diff_summary": diff["summary"]},
        at=now,
    )
    version.__dict__.update(locked.__dict__)
    return version


def back_to_draft(
    so: SignOff, *, version: SignedVersion, by: User, action: str, note: str
) -> SignedVersion:
    locked = lock(so, version)
    check_move(so, locked, VersionStatus.DRAFT)
    dropped = [f"{a.by} ({a.role})" for a in locked.approvals.select_related("by")]
    locked.approvals.all().delete()
    locked.status = VersionStatus.DRAFT
    locked.proposed_at = None
    locked.updated_at = timezone.now()
    locked.save()
    record(so, locked, action, by=by, note=note, details={"approvals_dropped": dropped})
    version.__dict__.update(locked.__dict__)
    return version


def withdraw(so: SignOff, *, version: SignedVersion, by: User, note: str = "") -> SignedVersion:
    """The proposing side takes a proposal back to draft; approvals given so far are dropped."""
    require(by, so.edit_action)
    return back_to_draft(so, version=version, by=by, action=VersionAction.WITHDRAWN, note=note)


def send_back(so: SignOff, *, version: SignedVersion, by: User, note: str) -> SignedVersion:
    """A manager declines a proposal, with the reason; it returns to draft."""
    require(by, so.approve_action)
    if not note.strip():
        raise so.error("Say why the proposal is sent back.", field="note")
    return back_to_draft(so, version=version, by=by, action=VersionAction.SENT_BACK, note=note)


def approve(
    so: SignOff,
    *,
    version: SignedVersion,
    by: User,
    note: str = "",
    read_at: datetime | None = None,
) -> SignedVersion:
    """One manager's approval (call inside a transaction). With both sides approved, the version
    becomes active and the previous one is retired. `read_at`: the version's `updated_at` when
    the manager read what changes; a version withdrawn, edited or proposed again since then is
    refused, so nobody approves what they have not read."""
    require(by, so.approve_action)
    # the lock makes two managers approving at the same moment activate exactly once
    locked = lock(so, version)
    if locked.status != VersionStatus.PROPOSED:
        raise so.error(
            f"{locked} is {status_label(locked.status)}; only a proposed version can be approved.",
            field="status",
        )
    if read_at is not None and locked.updated_at != read_at:
        raise so.error(
            f"{locked} changed after you opened it (it was withdrawn, edited or proposed again); "
            "nothing was approved. Read what changes again, then approve."
        )
    approvals = list(locked.approvals.select_related("by"))
    if any(a.by_id == by.pk for a in approvals):
        raise so.error(f"You have already approved {locked}; the other side must approve it.")
    role = by.effective_role
    same_side = next((a for a in approvals if a.role == role), None)
    if same_side is not None:
        other = Role.SALES_MANAGER if role == Role.MARKETING_MANAGER else Role.MARKETING_MANAGER
        raise so.error(
            f"{same_side.by} has already approved {locked} for {APPROVING_SIDES[role]}; "
            f"it now needs a {Role(other).label.lower()}."
        )
    now = timezone.now()
    so.approval_model.objects.create(
        **{so.key: locked}, by=by, role=role, note=note.strip(), at=now
    )
    record(so, locked, VersionAction.APPROVED, by=by, note=note, at=now)
    if {a.role for a in approvals} | {role} >= set(APPROVING_SIDES):
        activate(so, locked, by=by, now=now)
    version.__dict__.update(locked.__dict__)
    return version


def activate(
    so: SignOff, version: SignedVersion, *, by: User | None, now: datetime, system: str = ""
) -> SignedVersion:
    """Put a proposed version in force: retire the active one, keep the diff against it, run the
    record's own hook (its details go into the "activated" event)."""
    previous = (
        so.version_model.objects.select_for_update().filter(status=VersionStatus.ACTIVE).first()
    )
    if previous is not None:
        check_move(so, previous, VersionStatus.RETIRED)
        previous.status = VersionStatus.RETIRED
        previous.retired_at = now
        previous.updated_at = now
        previous.save()
        record(
            so,
            previous,
            VersionAction.RETIRED,
            by=by,
            system=system,
            details={"replaced_by": version.pk},
            at=now,
        )
    check_move(so, version, VersionStatus.ACTIVE)
    version.status = VersionStatus.ACTIVE
    version.activated_at = now
    version.updated_at = now
    version.diff_base = previous
    version.diff = (so.activation_diff or so.diff)(previous, version)
    version.save()
    details: dict = {"replaced": previous.pk if previous else None}
    if so.on_activate is not None:
        details |= so.on_activate(version, previous, by, now)
    record(so, version, VersionAction.ACTIVATED, by=by, system=system, details=details, at=now)
    return version


def approval_state(version: SignedVersion, by: User) -> dict:
    """For the confirmation a manager reads before approving: the approvals so far, whether
    `by`'s approval would put the version in force, and which side it would still wait for."""
    approvals = list(version.approvals.select_related("by"))
    sides = {a.role for a in approvals} | {by.effective_role}
    return {
        "approvals": approvals,
        "activates": sides >= set(APPROVING_SIDES),
        "waiting_for": [Role(role).label.lower() for role in APPROVING_SIDES if role not in sides],
    }
