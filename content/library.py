"""Reading the content library: the one filter the library page and the assets API share, and who
shared an asset recently (its page)."""

import json
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from alignment.models import User
from alignment.permissions import Action, can
from content.models import Asset, AssetUse, AssetUseKind

RECENT_SHARES = 10


@dataclass(frozen=True)
class AssetFilter:
    """Empty values filter nothing; `sales_ready` None shows both."""

    stage: str = ""
    industry: str = ""
    persona: str = ""
    kind: str = ""
    sales_ready: bool | None = None
    q: str = ""


def _tag(field: str, value: str) -> Q:
    # the tags are a JSON list of case-folded words: the quoted word is one whole element
    word = value.strip().casefold()
    return Q(**{f"{field}__icontains": json.dumps(word)}) | Q(
        **{f"{field}__icontains": json.dumps(word, ensure_ascii=False)}
    )


def assets_filtered(f: AssetFilter) -> QuerySet[Asset]:
    qs = Asset.objects.select_related("owner", "campaign")
    if f.stage:
        qs = qs.filter(funnel_stage=f.stage)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.industry.strip():
        qs = qs.filter(_tag("industries", f.industry))
    if f.persona.strip():
        qs = qs.filter(_tag("personas", f.persona))
    if f.sales_ready is not None:
        qs = qs.filter(sales_ready=f.sales_ready)
    if f.q.strip():
        qs = qs.filter(title__icontains=f.q.strip())
    return qs


def sales_ready_by_default(user: User) -> bool:
    """Sales see the sales-ready assets unless they ask for all; marketing sees everything."""
    return not can(user, Action.CONTENT_MANAGE)


def recent_shares(asset: Asset, *, limit: int = RECENT_SHARES) -> list[AssetUse]:
    return list(
        AssetUse.objects.filter(asset=asset, kind=AssetUseKind.SHARED)
        .select_related("by", "lead")
        .order_by("-occurred_at", "-id")[:limit]
    )
