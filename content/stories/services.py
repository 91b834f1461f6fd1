"""Win and loss stories: once a deal closes, its rep tells what convinced the customer (won) or
why we lost, in reason codes (leads.Reason of kind `won` or `lost`), one sentence, the
competitor who took it (lost) and the content that helped (won). One story per close: telling it
again changes the same row and records `story.recorded` again.

Decisions worth knowing:
- A sales rep tells the story of a lead he owns; a sales manager or an admin of any lead.
- A reason whose `requires_note` is set ("Other") needs the sentence.
- Ticking the lost reason "Chose a competitor" (code `competitor`) needs the competitor's name:
  the KPIs and the weekly report name the competitors we lose to. A won story names none.
- Content that helped is told for a win only; any asset of the library may be named (one
  withdrawn since still helped).
- The source and campaign are the lead's when the story is first told and stay so; closed_at
  is the move's time.
"""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from alignment.permissions import Action, can, require
from content.models import Asset, DealStory, StoryOutcome
from leads.events import event_record
from leads.lifecycle import lead_lock
from leads.models import EventType, Lead, Reason, Stage, StageChange

SENTENCE_MAX = 300
COMPETITOR_MAX = 100
COMPETITOR_REASON = "competitor"
CLOSE_STAGES = (Stage.WON, Stage.LOST)


def latest_close(lead: Lead) -> StageChange | None:
    """The lead's latest move to won or lost, or None."""
    return (
        StageChange.objects.filter(lead=lead, to_stage__in=CLOSE_STAGES)
        .order_by("-at", "-id")
        .first()
    )


def story_reasons(outcome: str) -> list[Reason]:
    """The active reason codes a story of this outcome picks from, in their order."""
    return list(Reason.objects.filter(kind=outcome, active=True).order_by("position", "label"))


def story_teller_check(*, lead: Lead, by: User | None) -> None:
    """Whether `by` may tell (or change) the story of `lead`'s close."""
    require(by, Action.STORY_RECORD)
    if by.effective_role == Role.SALES_REP and lead.owner_id != by.pk:
        raise DomainError(
            f"{lead.display_name} is not assigned to you; its owner or a sales manager tells "
            "why the deal was won or lost."
        )


def may_tell_story(*, lead: Lead, user: User | None) -> bool:
    """The same check, as a yes or no for the pages."""
    if not can(user, Action.STORY_RECORD):
        return False
    return user.effective_role != Role.SALES_REP or lead.owner_id == user.pk


def _one_line(text: str) -> str:
    return " ".join(str(text or "").split())


def _reasons(outcome: str, reasons: Iterable) -> list[Reason]:
    wanted, codes = [], []
    for reason in reasons:
        code = reason.code if isinstance(reason, Reason) else str(reason).strip()
        if code and code not in codes:
            codes.append(code)
    if not codes:
        what = "convinced the customer" if outcome == StoryOutcome.WON else "lost the deal"
        raise DomainError(f"Tick at least one reason: what {what}?", field="reasons")
    found = {r.code: r for r in Reason.objects.filter(kind=outcome, active=True, code__in=codes)}
    for code in codes:
        if code not in found:
            raise DomainError(
                f"{code!r} is not a reason for a {outcome} deal; GET /api/v1/story-reasons/ "
                "lists them.",
                field="reasons",
            )
        wanted.append(found[code])
    return wanted


def _assets(outcome: str, assets: Iterable) -> list[Asset]:
    ids = []
    for asset in assets:
        pk = asset.pk if isinstance(asset, Asset) else asset
        try:
            pk = int(pk)
        except (TypeError, ValueError):
            raise DomainError("Content is named by its asset id.", field="assets") from None
        if pk not in ids:
            ids.append(pk)
    if not ids:
        return []
    if outcome != StoryOutcome.WON:
        raise DomainError("Content that helped is told for a won deal only.", field="assets")
    found = {a.pk: a for a in Asset.objects.filter(pk__in=[i for i in ids if 0 < i < 2**63])}
    missing = [i for i in ids if i not in found]
    if missing:
        raise DomainError(f"There is no asset {missing[0]} in the library.", field="assets")
    return [found[i] for i in ids]


@transaction.atomic
def story_record(
    *,
    stage_change: StageChange,
    by: User | None,
    reasons: Iterable,
    sentence: str = "",
    competitor: str = "",
    assets: Iterable = (),
) -> DealStory:
    """Tell (or tell again) the story of one close: `stage_change` is a move to won or lost."""
    require(by, Action.STORY_RECORD)
    if stage_change.to_stage not in CLOSE_STAGES:
        raise DomainError(
            "A story is told for a deal that was won or lost; this move is to "
            f"{Stage(stage_change.to_stage).label}.",
            field="stage_change",
        )
    outcome = stage_change.to_stage
    lead = lead_lock(stage_change.lead_id)
    story_teller_check(lead=lead, by=by)
    chosen = _reasons(outcome, reasons)
    sentence = _one_line(sentence)
    if len(sentence) > SENTENCE_MAX:
        raise DomainError(
            f"Keep it to one sentence of at most {SENTENCE_MAX} characters "
            f"(this one has {len(sentence)}).",
            field="sentence",
        )
    needs_note = next((r for r in chosen if r.requires_note), None)
    if needs_note is not None and not sentence:
        raise DomainError(
            f"“{needs_note.label}”: say in one sentence what it was.", field="sentence"
        )
    competitor = _one_line(competitor)
    if len(competitor) > COMPETITOR_MAX:
        raise DomainError(
            f"A competitor's name of at most {COMPETITOR_MAX} characters.", field="competitor"
        )
    if competitor and outcome == StoryOutcome.WON:
        raise DomainError("A competitor is named for a lost deal only.", field="competitor")
    if not competitor and any(r.code == COMPETITOR_REASON for r in chosen):
        raise DomainError(
            "Which competitor did they choose? Name it (or untick the reason).",
            field="competitor",
        )
    helped = _assets(outcome, assets)
    story = DealStory.objects.select_for_update().filter(stage_change=stage_change).first()
    if story is None:
        story = DealStory(
            lead_id=lead.pk,
            stage_change=stage_change,
            outcome=outcome,
            source_id=lead.source_id,
            campaign_id=lead.campaign_id,
            closed_at=stage_change.at,
        )
    story.sentence = sentence
    story.competitor = competitor
    story.recorded_by = by
    story.recorded_at = timezone.now()
    story.save()
    story.reasons.set(chosen)
    story.assets.set(helped)
    event_record(
        type=EventType.STORY_RECORDED,
        lead=lead,
        by=by,
        payload={
            "story_id": story.pk,
            "outcome": outcome,
            "reasons": [r.code for r in chosen],
            "competitor": competitor,
            "asset_ids": [a.pk for a in helped],
            "stage_change_id": stage_change.pk,
        },
    )
    return story
