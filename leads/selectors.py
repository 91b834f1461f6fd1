from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet

from leads.models import Lead, MergeRecord, Reason, Stage, StageChange


def leads_list(*, stage: str = "", owner_id: int | None = None, q: str = "") -> QuerySet[Lead]:
    qs = Lead.objects.select_related("owner", "source", "campaign")
    if stage:
        qs = qs.filter(stage=stage)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if q:
        q = q.strip()
        if "@" in q:
            qs = qs.filter(email=q.lower())
        else:
            qs = qs.filter(Q(company__istartswith=q) | Q(last_name__istartswith=q))
    return qs.order_by("-created_at", "-id")


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # "stage", "touchpoint", "assignment", "merge"
    title: str
    detail: str
    who: str


def lead_timeline(*, lead: Lead, limit: int = 200) -> list[TimelineEntry]:
    """Everything that happened to one lead, newest first: moves, touchpoints, assignments, merges.
    Four queries whatever the length of the history."""
    entries: list[TimelineEntry] = []
    for change in lead.stage_changes.select_related("by", "reason").order_by("-at")[:limit]:
        detail = " · ".join(
            part
            for part in (
                change.reason.label if change.reason_id else "",
                change.note,
                f"deal value {change.deal_value}" if change.deal_value is not None else "",
            )
            if part
        )
        entries.append(
            TimelineEntry(
                at=change.at,
                kind="stage",
                title=f"{Stage(change.from_stage).label} → {Stage(change.to_stage).label}",
                detail=detail,
                who=str(change.by) if change.by_id else (change.by_system or "system"),
            )
        )
    for tp in lead.touchpoints.select_related("campaign", "created_by").order_by("-occurred_at")[
        :limit
    ]:
        entries.append(
            TimelineEntry(
                at=tp.occurred_at,
                kind="touchpoint",
                title=tp.get_kind_display(),
                detail=tp.campaign.name if tp.campaign_id else "",
                who=str(tp.created_by) if tp.created_by_id else "",
            )
        )
    for a in lead.assignments.select_related("rep", "by", "previous_owner").order_by("-at")[:limit]:
        how = f"rule “{a.rule_name}”" if a.rule_name else "by hand"
        entries.append(
            TimelineEntry(
                at=a.at,
                kind="assignment",
                title=f"Assigned to {a.rep or 'nobody'} ({how})",
                detail=a.note,
                who=str(a.by) if a.by_id else (a.by_system or "system"),
            )
        )
    for m in MergeRecord.objects.filter(survivor=lead).select_related("by"):
        merged = m.snapshot.get("lead", {})
        entries.append(
            TimelineEntry(
                at=m.at,
                kind="merge",
                title=f"Merged duplicate lead {m.merged_lead_id}",
                detail=merged.get("email") or merged.get("external_id") or "",
                who=str(m.by) if m.by_id else "",
            )
        )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def sales_feedback(
    *, since: datetime | None = None, until: datetime | None = None, group_by: str = "source"
) -> list[dict[str, Any]]:
    """How sales decided the MQLs of each source (or campaign): accepted, rejected, recycled, the
    rejection rate and the reasons. Counts decisions made in the period, from the stage history."""
    if group_by not in {"source", "campaign"}:
        raise ValueError("group_by must be 'source' or 'campaign'")
    key = "lead__source__name" if group_by == "source" else "lead__campaign__name"
    decisions = StageChange.objects.filter(
        from_stage=Stage.MQL, to_stage__in=[Stage.SAL, Stage.REJECTED, Stage.RECYCLED]
    )
    if since:
        decisions = decisions.filter(at__gte=since)
    if until:
        decisions = decisions.filter(at__lt=until)
    rows = (
        decisions.values(key)
        .annotate(
            accepted=Count("id", filter=Q(to_stage=Stage.SAL)),
            rejected=Count("id", filter=Q(to_stage=Stage.REJECTED)),
            recycled=Count("id", filter=Q(to_stage=Stage.RECYCLED)),
        )
        .order_by(key)
    )
    reasons = decisions.exclude(reason=None).values(key, "reason").annotate(n=Count("id"))
    labels = dict(Reason.objects.values_list("id", "label"))
    by_group: dict[Any, list[tuple[str, int]]] = {}
    for r in reasons:
        by_group.setdefault(r[key], []).append((labels[r["reason"]], r["n"]))
    result = []
    for row in rows:
        decided = row["accepted"] + row["rejected"] + row["recycled"]
        result.append(
            {
                "name": row[key] or "(none)",
                "decided": decided,
                "accepted": row["accepted"],
                "rejected": row["rejected"],
                "recycled": row["recycled"],
                "rejection_rate": (row["rejected"] + row["recycled"]) / decided if decided else 0,
                "reasons": sorted(by_group.get(row[key], []), key=lambda x: -x[1]),
            }
        )
    result.sort(key=lambda r: (-r["rejection_rate"], r["name"]))
    return result
