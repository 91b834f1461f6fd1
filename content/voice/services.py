"""Voice of the prospect: the questions and objections reps hear on calls, logged against the
lead (and the lead's campaign at that moment), and the asset marketing links as the answer.

Decisions worth knowing:
- Who logs: a rep on a lead he owns, a sales manager or an admin on any (as with sales
  touchpoints); an objection is a person's note, so a key acting as nobody cannot log one.
- The competitor's name is kept with any category (a price objection may well name the cheaper
  rival), trimmed; it is optional even for the category competitor.
- The answer must be a sales-ready asset: the lead page's "suggested for this lead" only shows
  sales-ready content, so linking a draft would silently show nothing. None unlinks.
- Logging locks the lead (its campaign is copied under the lock); answering locks the objection.
"""

from django.db import transaction

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.permissions import Action, can, require
from content.models import Asset, Objection, ObjectionCategory, ObjectionKind
from leads.events import event_record
from leads.models import EventType, Lead

TEXT_MAX = 2000
COMPETITOR_MAX = 100


def objection_logger_check(*, lead: Lead, by: User | None) -> None:
    """Whether `by` may log what a prospect said on `lead`: a DomainError saying why not."""
    if by is None:
        raise DomainError(
            "An objection is logged by a person: use a key acting as the rep or a sales manager."
        )
    require(by, Action.OBJECTION_LOG)
    if by.effective_role == Role.SALES_REP and lead.owner_id != by.pk:
        raise DomainError(
            f"{lead.display_name} is not assigned to you; only its owner or a sales manager "
            "can log what the prospect said."
        )


def may_log_objection(*, lead: Lead, user: User | None) -> bool:
    if user is None or not user.is_authenticated or not can(user, Action.OBJECTION_LOG):
        return False
    try:
        objection_logger_check(lead=lead, by=user)
    except DomainError:
        return False
    return True


def _clean_text(text) -> str:
    text = str(text or "").strip()
    if not text:
        raise DomainError("Write down what the prospect said, in their words.", field="text")
    if len(text) > TEXT_MAX:
        raise DomainError(
            f"Keep it under {TEXT_MAX:,} characters (it has {len(text):,}).", field="text"
        )
    return text


def objection_log(
    *,
    lead: Lead,
    by: User | None,
    category: str,
    text: str,
    kind: str = ObjectionKind.OBJECTION,
    competitor: str = "",
) -> Objection:
    """Log a question or objection heard from `lead`; an `objection.logged` event with it."""
    objection_logger_check(lead=lead, by=by)
    if kind not in ObjectionKind.values:
        raise DomainError("Say whether it was a question or an objection.", field="kind")
    if category not in ObjectionCategory.values:
        labels = ", ".join(label.lower() for label in ObjectionCategory.labels)
        raise DomainError(f"Pick a category: {labels}.", field="category")
    text = _clean_text(text)
    competitor = " ".join(str(competitor or "").split())
    if len(competitor) > COMPETITOR_MAX:
        raise DomainError(
            f"Keep the competitor's name under {COMPETITOR_MAX} characters.", field="competitor"
        )
    with transaction.atomic():
        locked = Lead.objects.select_for_update().filter(pk=lead.pk).first()
        if locked is None:
            raise DomainError("This lead no longer exists.", field="lead")
        objection_logger_check(lead=locked, by=by)  # the owner may have changed meanwhile
        objection = Objection.objects.create(
            lead=locked,
            campaign_id=locked.campaign_id,
            kind=kind,
            category=category,
            competitor=competitor,
            text=text,
            logged_by=by,
        )
        event_record(
            type=EventType.OBJECTION_LOGGED,
            lead=locked,
            by=by,
            at=objection.logged_at,
            payload={
                "objection_id": objection.pk,
                "kind": kind,
                "category": category,
                "competitor": competitor,
                "campaign_id": locked.campaign_id,
            },
        )
    return objection


def objection_answer(*, objection: Objection, asset_or_none: Asset | None, by: User) -> Objection:
    """Link the sales-ready asset that answers `objection` (None unlinks); an
    `objection.answered` event. Marketing (and admins) only."""
    require(by, Action.CONTENT_MANAGE)
    with transaction.atomic():
        locked = Objection.objects.select_for_update().filter(pk=objection.pk).first()
        if locked is None:
            raise DomainError("This objection no longer exists.", field="objection")
        asset = None
        if asset_or_none is not None:
            asset = Asset.objects.filter(pk=asset_or_none.pk).first()
            if asset is None:
                raise DomainError("There is no such asset in the library.", field="answer")
            if not asset.sales_ready:
                raise DomainError(
                    f"“{asset.title}” is not sales ready: mark it sales ready first, so that "
                    "reps see it suggested where this objection comes up.",
                    field="answer",
                )
        locked.answer = asset
        locked.answered_by = by if asset is not None else None
        locked.save(update_fields=["answer", "answered_by"])
        event_record(
            type=EventType.OBJECTION_ANSWERED,
            lead=Lead(pk=locked.lead_id),
            by=by,
            payload={"objection_id": locked.pk, "asset_id": asset.pk if asset else None},
        )
    return locked
