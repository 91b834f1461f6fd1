"""Why deals were won and lost, from the reps' stories (content.DealStory), by close time.

A close is a move of a lead to won or lost (leads.StageChange) in the period; its story, when
told, holds the reasons, one sentence, the competitor and the content that helped. Source and
campaign are the story's snapshot (the lead's when the story was told); a close without a story
is counted by the lead's current source and campaign. A story with three reasons counts once for
each, so a group's shares add up to more than 100%: each is the part of the group's stories that
gave that reason."""

from collections import Counter
from dataclasses import dataclass

from django.db.models import Case, Count, F, Q, When

from content.models import DealStory, StoryOutcome
from kpis.selectors.periods import Period
from kpis.selectors.stays import names
from leads.models import Campaign, Reason, Source, StageChange

GROUPS = {"source": (Source, "Unknown source"), "campaign": (Campaign, "No campaign")}
TOP = 5
SENTENCES = 5


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True, slots=True)
class DealReasonRow:
    group: str  # the source's or campaign's name
    reason_code: str
    reason: str
    count: int  # stories of the group that gave the reason
    stories: int  # the group's stories (closes with a story)
    share: float | None  # count ÷ stories, percent


@dataclass(frozen=True, slots=True)
class Coverage:
    closes: int  # moves to the outcome in the period
    with_story: int
    share: float | None  # with_story ÷ closes, percent


@dataclass(frozen=True, slots=True)
class DealReasons:
    outcome: str
    group_by: str
    rows: list[DealReasonRow]
    coverage: Coverage


def _filtered_stories(*, period: Period, outcome: str, source_id=None, campaign_id=None):
    qs = DealStory.objects.filter(
        outcome=outcome, closed_at__gte=period.start, closed_at__lt=period.end
    )
    if source_id is not None:
        qs = qs.filter(source_id=source_id)
    if campaign_id is not None:
        qs = qs.filter(campaign_id=campaign_id)
    return qs


def _closes(*, period: Period, outcome: str, source_id=None, campaign_id=None):
    """The period's moves to `outcome`, each with the source and campaign it counts under: its
    story's snapshot when told, else its lead's current ones."""
    qs = StageChange.objects.filter(
        to_stage=outcome, at__gte=period.start, at__lt=period.end
    ).annotate(
        g_source=Case(
            When(story__isnull=False, then=F("story__source_id")), default=F("lead__source_id")
        ),
        g_campaign=Case(
            When(story__isnull=False, then=F("story__campaign_id")),
            default=F("lead__campaign_id"),
        ),
    )
    if source_id is not None:
        qs = qs.filter(g_source=source_id)
    if campaign_id is not None:
        qs = qs.filter(g_campaign=campaign_id)
    return qs


def story_coverage(
    *, period: Period, outcome: str, source_id: int | None = None, campaign_id: int | None = None
) -> Coverage:
    """The period's closes of this outcome and how many have a story (one query)."""
    counts = _closes(
        period=period, outcome=outcome, source_id=source_id, campaign_id=campaign_id
    ).aggregate(closes=Count("id"), with_story=Count("story"))
    return Coverage(
        closes=counts["closes"],
        with_story=counts["with_story"],
        share=_share(counts["with_story"], counts["closes"]),
    )


def _labels(ids) -> dict[int, tuple[str, str]]:
    return {r.pk: (r.code, r.label) for r in Reason.objects.filter(pk__in=set(ids))}


def deal_reasons_by(
    *,
    period: Period,
    outcome: str,
    group_bys: tuple[str, ...] = ("source", "campaign"),
    source_id: int | None = None,
    campaign_id: int | None = None,
) -> dict[str, DealReasons]:
    """deal_reasons for several groupings at once: two queries (the closes by source and
    campaign, the reasons by source and campaign), and the names of what they found."""
    if outcome not in StoryOutcome.values:
        raise ValueError(f"outcome is won or lost, not {outcome!r}")
    filters = {"source_id": source_id, "campaign_id": campaign_id}
    closes = list(
        _closes(period=period, outcome=outcome, **filters)
        .order_by()
        .values("g_source", "g_campaign")
        .annotate(closes=Count("id"), stories=Count("story"))
    )
    stories = _filtered_stories(period=period, outcome=outcome, **filters)
    counts = list(
        DealStory.reasons.through.objects.filter(dealstory__in=stories)
        .values("dealstory__source_id", "dealstory__campaign_id", "reason_id")
        .annotate(n=Count("id"))
    )
    closed = sum(c["closes"] for c in closes)
    told = sum(c["stories"] for c in closes)
    coverage = Coverage(closes=closed, with_story=told, share=_share(told, closed))
    labels = _labels(r["reason_id"] for r in counts) if counts else {}
    results = {}
    for group_by in group_bys:
        model, unknown = GROUPS[group_by]
        field = f"{group_by}_id"
        totals: Counter = Counter()
        for c in closes:
            totals[c[f"g_{group_by}"]] += c["stories"]
        by_reason: Counter = Counter()
        for r in counts:
            by_reason[(r[f"dealstory__{field}"], r["reason_id"])] += r["n"]
        group_names = names(model, [g for g, _ in by_reason])
        rows = [
            DealReasonRow(
                group=group_names.get(group) or unknown,
                reason_code=labels[reason][0],
                reason=labels[reason][1],
                count=n,
                stories=totals[group],
                share=_share(n, totals[group]),
            )
            for (group, reason), n in by_reason.items()
        ]
        rows.sort(key=lambda r: (-r.stories, r.group, -r.count, r.reason))
        results[group_by] = DealReasons(
            outcome=outcome, group_by=group_by, rows=rows, coverage=coverage
        )
    return results


def deal_reasons(
    *,
    period: Period,
    outcome: str,
    group_by: str = "source",
    source_id: int | None = None,
    campaign_id: int | None = None,
) -> DealReasons:
    """The reasons of the period's won (or lost) deals by source or campaign (by close time):
    each group's stories, and per reason how many of them gave it (its share of the group's
    stories); the groups with most stories first, then the most frequent reasons. With the
    coverage: the period's closes and how many have a story."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by is source or campaign, not {group_by!r}")
    return deal_reasons_by(
        period=period,
        outcome=outcome,
        group_bys=(group_by,),
        source_id=source_id,
        campaign_id=campaign_id,
    )[group_by]


def top_reasons(*, period: Period, outcome: str, limit: int = TOP) -> list[dict]:
    """The reasons most often given for the period's won (or lost) deals, over every source."""
    stories = _filtered_stories(period=period, outcome=outcome)
    counts = (
        DealStory.reasons.through.objects.filter(dealstory__in=stories)
        .values("reason_id")
        .annotate(n=Count("id"))
    )
    total = stories.count()
    labels = _labels(r["reason_id"] for r in counts)
    rows = sorted(counts, key=lambda r: (-r["n"], labels[r["reason_id"]][1]))[:limit]
    return [
        {
            "code": labels[r["reason_id"]][0],
            "reason": labels[r["reason_id"]][1],
            "count": r["n"],
            "share": _share(r["n"], total),
        }
        for r in rows
    ]


def named_competitors(*, period: Period, limit: int = TOP) -> list[dict]:
    """The competitors named in the period's lost stories, most frequent first; spellings that
    differ only in case and spaces are one competitor (shown as first written)."""
    rows = (
        _filtered_stories(period=period, outcome=StoryOutcome.LOST)
        .exclude(competitor="")
        .order_by("closed_at", "id")
        .values_list("competitor", flat=True)
    )
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for name in rows:
        key = " ".join(name.split()).casefold()
        shown.setdefault(key, name)
        counts[key] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"name": shown[key], "count": n} for key, n in ranked]


def story_sentences(*, period: Period, limit: int = SENTENCES) -> list[dict]:
    """The newest sentences of the period's stories, with the customer and the rep."""
    rows = (
        DealStory.objects.filter(closed_at__gte=period.start, closed_at__lt=period.end)
        .filter(~Q(sentence=""))
        .select_related("lead", "recorded_by")
        .order_by("-closed_at", "-id")[:limit]
    )
    return [
        {
            "outcome": s.outcome,
            "sentence": s.sentence,
            "customer": s.lead.company or s.lead.display_name,
            "rep": str(s.recorded_by) if s.recorded_by_id else None,
            "closed_at": s.closed_at.isoformat(),
        }
        for s in rows
    ]


def stories_report(*, period: Period) -> dict:
    """The weekly report's "Why we won and lost": JSON-ready."""
    coverage = {
        outcome: story_coverage(period=period, outcome=outcome) for outcome in StoryOutcome.values
    }
    return {
        **{
            outcome: {"closes": c.closes, "with_story": c.with_story, "share": c.share}
            for outcome, c in coverage.items()
        },
        "win_reasons": top_reasons(period=period, outcome=StoryOutcome.WON),
        "loss_reasons": top_reasons(period=period, outcome=StoryOutcome.LOST),
        "competitors": named_competitors(period=period),
        "sentences": story_sentences(period=period),
    }
