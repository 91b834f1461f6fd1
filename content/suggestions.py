"""What the library suggests a rep sends a lead: sales-ready assets that match the lead, best
first by how often each helped similar leads win.

An asset matches a lead by
- industry: the lead's industry is one of the asset's (case-folded);
- persona: one of the asset's personas is a word (or words) of the lead's title ("cfo" in "CFO",
  "it manager" in "Senior IT Manager"; "cto" is not in "Director");
- stage: the lead's stage maps to the asset's funnel stage (STAGE_FUNNEL);
- objection: marketing linked the asset as the answer to an objection of the same category (and
  the same competitor, when the lead's names one) as one logged on this lead.
An asset that matches on nothing is not suggested. Order: the number of won leads of the same
industry (any industry when the lead has none; the lead itself not counted) that had a use of the
asset (shared or engaged) or a win story naming it; then the number of matches; then the newest.
At most six queries whatever the size of the library.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max, Q

from content.models import (
    Asset,
    AssetUse,
    AssetUseKind,
    DealStory,
    FunnelStage,
    Objection,
    StoryOutcome,
)
from leads.models import Lead, Stage

STAGE_FUNNEL = {
    Stage.NEW: FunnelStage.AWARENESS,
    Stage.NURTURING: FunnelStage.AWARENESS,
    Stage.MQL: FunnelStage.AWARENESS,
    Stage.RECYCLED: FunnelStage.AWARENESS,
    Stage.SAL: FunnelStage.CONSIDERATION,
    Stage.SQL: FunnelStage.CONSIDERATION,
    Stage.OPPORTUNITY: FunnelStage.DECISION,
    Stage.WON: FunnelStage.DECISION,
    Stage.LOST: FunnelStage.DECISION,
}


@dataclass(frozen=True)
class Suggestion:
    asset: Asset
    score: int  # how many ways it matches the lead
    reasons: list[str] = field(default_factory=list)
    helped_wins: int = 0
    shared_at: datetime | None = None


def _persona_in(persona: str, title: str) -> str:
    """The words of `title` that are `persona` (as the title spells them), or ""."""
    folded = title.casefold()
    found = re.search(rf"(?<!\w){re.escape(persona)}(?!\w)", folded)
    if found is None:
        return ""
    if len(folded) != len(title):  # casefolding changed the length: name the persona instead
        return persona
    return title[found.start() : found.end()]


def _answer_reasons(lead: Lead) -> dict[int, str]:
    """Asset id -> "answers a price objection", for the answers to objections like this lead's."""
    logged = list(
        Objection.objects.filter(lead=lead).values_list("category", "competitor", "kind").distinct()
    )
    if not logged:
        return {}
    like = Q()
    for category, competitor, _ in logged:
        same = Q(category=category)
        if competitor.strip():
            same &= Q(competitor__iexact=competitor.strip())
        like |= same
    answers = (
        Objection.objects.filter(like, answer__isnull=False, answer__sales_ready=True)
        .values_list("answer_id", "category", "competitor")
        .order_by("-logged_at", "-id")
    )
    labels = {category: label for category, label in Objection._meta.get_field("category").choices}
    reasons: dict[int, str] = {}
    for asset_id, category, competitor in answers:
        text = f"answers a {labels.get(category, category).lower()} objection"
        if competitor.strip():
            text += f" ({competitor.strip()})"
        reasons.setdefault(asset_id, text)
    return reasons


def _helped_wins(lead: Lead, asset_ids: list[int]) -> dict[int, int]:
    """Asset id -> how many won leads like this one (same industry) used it or named it."""
    if not asset_ids:
        return {}
    won = Lead.objects.filter(stage=Stage.WON).exclude(pk=lead.pk)
    if lead.industry.strip():
        won = won.filter(industry__iexact=lead.industry.strip())
    pairs = set(
        AssetUse.objects.filter(asset_id__in=asset_ids, lead__in=won)
        .values_list("asset_id", "lead_id")
        .distinct()
    )
    pairs |= set(
        DealStory.assets.through.objects.filter(
            asset_id__in=asset_ids,
            dealstory__outcome=StoryOutcome.WON,
            dealstory__lead__in=won,
        )
        .values_list("asset_id", "dealstory__lead_id")
        .distinct()
    )
    counts: dict[int, int] = {}
    for asset_id, _ in pairs:
        counts[asset_id] = counts.get(asset_id, 0) + 1
    return counts


def suggested_assets(*, lead: Lead, limit: int = 5) -> list[Suggestion]:
    """The best `limit` sales-ready assets for this lead (see the module's docstring)."""
    industry = lead.industry.strip().casefold()
    title = lead.title.strip()
    funnel = STAGE_FUNNEL.get(lead.stage)
    ready = list(Asset.objects.filter(sales_ready=True).order_by("-created_at", "-id"))
    if not ready:
        return []  # an empty library costs the lead page one query
    answers = _answer_reasons(lead)
    matched: list[tuple[Asset, list[str]]] = []
    for asset in ready:
        reasons = []
        if industry and industry in asset.industries:
            reasons.append(f"for {lead.industry.strip()}")
        personas = [found for p in asset.personas if p and (found := _persona_in(p, title))]
        if personas:
            reasons.append(f"for {', '.join(personas)}")
        if funnel is not None and asset.funnel_stage == funnel:
            reasons.append(f"fits the {FunnelStage(funnel).label.lower()} stage")
        if asset.pk in answers:
            reasons.append(answers[asset.pk])
        if reasons:
            matched.append((asset, reasons))
    ids = [asset.pk for asset, _ in matched]
    wins = _helped_wins(lead, ids)
    shared = dict(
        AssetUse.objects.filter(lead=lead, kind=AssetUseKind.SHARED, asset_id__in=ids)
        .values("asset_id")
        .annotate(last=Max("occurred_at"))
        .values_list("asset_id", "last")
    )
    suggestions = [
        Suggestion(
            asset=asset,
            score=len(reasons),
            reasons=reasons,
            helped_wins=wins.get(asset.pk, 0),
            shared_at=shared.get(asset.pk),
        )
        for asset, reasons in matched
    ]
    # the assets come newest first: a stable sort keeps that order among equals
    suggestions.sort(key=lambda s: (-s.helped_wins, -s.score))
    return suggestions[:limit]
