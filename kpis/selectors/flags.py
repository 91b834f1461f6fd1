"""Lead flags' figures: the flags open at a moment (oldest first, with their age), how many were
raised and resolved in a period (by outcome) and how long resolving took.

A flag is open at `at` when it was raised by then and is still open, or was resolved after `at`.
A reopened flag counts as open from its raising (its earlier resolution is not kept). Ages are
wall-clock time (a flag waits over the weekend too); hours to resolve are from raising to
resolution."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from django.db.models import Count, Q
from django.urls import reverse

from content.models import FlagOutcome, FlagStatus, LeadFlag
from kpis.selectors.periods import Period

OLDEST = 5


@dataclass(frozen=True, slots=True)
class OpenFlag:
    flag: LeadFlag
    age: timedelta

    @property
    def age_days(self) -> int:
        return self.age.days

    @property
    def age_hours(self) -> float:
        return round(self.age.total_seconds() / 3600, 1)


def open_flags_qs(*, at: datetime):
    return LeadFlag.objects.filter(raised_at__lte=at).filter(
        Q(status=FlagStatus.OPEN) | Q(resolved_at__gt=at)
    )


def open_flags(*, at: datetime, limit: int | None = None) -> list[OpenFlag]:
    """The flags open at `at`, oldest first."""
    qs = (
        open_flags_qs(at=at)
        .select_related("lead", "lead__owner", "lead__campaign", "raised_by")
        .order_by("raised_at", "id")
    )
    if limit is not None:
        qs = qs[:limit]
    return [OpenFlag(flag=f, age=at - f.raised_at) for f in qs]


def flag_counts(*, period: Period) -> dict:
    """Raised and resolved in the period, the resolved by outcome (every outcome, zeros too), and
    the median hours from raising to resolution of those resolved in it (None without any)."""
    raised = LeadFlag.objects.filter(raised_at__gte=period.start, raised_at__lt=period.end).count()
    resolved = LeadFlag.objects.filter(
        status=FlagStatus.RESOLVED, resolved_at__gte=period.start, resolved_at__lt=period.end
    )
    by_outcome = dict(
        resolved.order_by().values("outcome").annotate(n=Count("id")).values_list("outcome", "n")
    )
    hours = [
        (done - raised_at).total_seconds() / 3600
        for raised_at, done in resolved.values_list("raised_at", "resolved_at")
    ]
    return {
        "raised": raised,
        "resolved": len(hours),
        "outcomes": [
            {"outcome": o.value, "label": o.label, "count": by_outcome.get(o.value, 0)}
            for o in FlagOutcome
        ],
        "median_hours_to_resolve": round(median(hours), 1) if hours else None,
    }


def flags_report(*, period: Period, at: datetime) -> dict:
    """The weekly report's "Open lead flags": JSON-ready (ints, strs, lists, None)."""
    total = open_flags_qs(at=at).count()
    oldest = open_flags(at=at, limit=OLDEST)
    counts = flag_counts(period=period)
    return {
        "open": total,
        "oldest_age_days": oldest[0].age_days if oldest else None,
        **counts,
        "resolved_outcomes": [o for o in counts["outcomes"] if o["count"]],
        "list_url": reverse("content:flags"),
        "oldest": [
            {
                "flag_id": o.flag.pk,
                "lead_id": o.flag.lead_id,
                "lead": o.flag.lead.display_name,
                "reason": o.flag.reason,
                "reason_label": o.flag.get_reason_display(),
                "age_days": o.age_days,
                "flagger": str(o.flag.raised_by) if o.flag.raised_by else "",
                "url": reverse("leads:detail", args=[o.flag.lead_id]) + f"#flag-{o.flag.pk}",
            }
            for o in oldest
        ],
    }
