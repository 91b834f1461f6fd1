"""The stage-stay rollup (kpis.models.StageStay) as the selectors read it: the stays entered in
a period, optionally of leads with a given current source, campaign and owner."""

from django.db.models import QuerySet

from kpis.models import StageStay
from kpis.selectors.periods import Period


def stay_filters(
    qs: QuerySet,
    *,
    source_id: int | None = None,
    campaign_id: int | None = None,
    rep_id: int | None = None,
) -> QuerySet:
    """Stays of leads with this current source, campaign and owner (each filter optional),
    read from the rows themselves (the rollup keeps them current); lead rows filter the same."""
    for field, value in (
        ("source_id", source_id),
        ("campaign_id", campaign_id),
        ("owner_id", rep_id),
    ):
        if value is not None:
            qs = qs.filter(**{field: value})
    return qs


def entered(stage, period: Period, **filters) -> QuerySet[StageStay]:
    """The entries into `stage` (a code or a list of codes) in the period."""
    qs = StageStay.objects.filter(entered_at__gte=period.start, entered_at__lt=period.end)
    qs = qs.filter(stage__in=stage) if isinstance(stage, list | tuple) else qs.filter(stage=stage)
    return stay_filters(qs, **filters)


def cohort(period: Period, **filters) -> QuerySet[StageStay]:
    """Every stay of the leads created in the period (creation rows included)."""
    qs = StageStay.objects.filter(lead_created_at__gte=period.start, lead_created_at__lt=period.end)
    return stay_filters(qs, **filters)


def names(model, ids) -> dict:
    """Names of these sources or campaigns by id (the rollup holds ids only)."""
    ids = {i for i in ids if i is not None}
    return dict(model.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
