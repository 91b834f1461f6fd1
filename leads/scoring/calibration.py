"""Calibrated numbers: how often leads like this one reached the outcome, with the count behind it.

For the version that graded the leads (the active one; during a rescore also the one it replaces)
the figures come from the stored lead columns: among the decided leads it scored (won vs lost,
`tuning.data.labeled_queryset`), per grade and per band of the stored score, how many were won.
One GROUP BY over the lead table, cached for a few minutes per version, so a lead page reads it
for free. For a tuned proposal they come from its report: the holdout leads it was not fitted on.

Below MIN_DECIDED decided leads a share says more about chance than about the leads: the text
says so instead of printing a percentage.
"""

import math
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Floor

from leads.models import Lead, Stage
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.rules import GRADES
from leads.scoring.tuning.data import OUTCOME_WON, OUTCOME_WORDS, labeled_queryset

MIN_DECIDED = 30
CACHE_SECONDS = 300
# bump when the cached shape changes
_CACHE_VERSION = 1
# score bands are as wide as the first of these that is at least a fifth of the MQL total
_NICE_WIDTHS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)


@dataclass(frozen=True)
class Rate:
    """The share of `decided` leads that reached the outcome (`positive` of them)."""

    label: str
    positive: int
    decided: int
    word: str = "won"
    low: float | None = None
    high: float | None = None

    @property
    def enough(self) -> bool:
        return self.decided >= MIN_DECIDED

    @property
    def percent(self) -> int | None:
        return round(100 * self.positive / self.decided) if self.enough else None

    @property
    def text(self) -> str:
        if not self.decided:
            return "no decided lead yet"
        if not self.enough:
            return f"too few decided leads to say (n = {self.decided})"
        return f"{self.percent}% {self.word} (n = {self.decided})"


@dataclass
class Calibration:
    """Per grade (A to D, always all four) and per score band (highest first)."""

    model_id: int
    source: str  # "leads": the stored columns; "holdout": a tuning report
    word: str
    grades: list[Rate]
    bands: list[Rate]
    width: int | None = None
    decided: int = 0
    outcome: str = OUTCOME_WON
    notes: list[str] = field(default_factory=list)

    @property
    def min_decided(self) -> int:
        return MIN_DECIDED

    def grade(self, grade: str) -> Rate | None:
        return next((r for r in self.grades if r.label == grade), None)

    def band(self, score: float) -> Rate | None:
        if self.width is None:
            return None
        low = math.floor(score / self.width) * self.width
        found = next((r for r in self.bands if r.low == low), None)
        return found or Rate(_band_label(low, self.width), 0, 0, self.word, low, low + self.width)


def band_width(mql_total: int) -> int:
    """A round band width, about a fifth of the MQL total (100 gives 20), so that the MQL total
    is where a band starts."""
    wanted = max(1, mql_total) / 5
    return next((w for w in _NICE_WIDTHS if w >= wanted), _NICE_WIDTHS[-1])


def _number(x: float) -> str:
    return f"{x:g}"


def _band_label(low: float, width: int) -> str:
    return f"score {_number(low)}–{_number(low + width)}"


def _cache_key(model_id: int) -> str:
    return f"leads:scoring:calibration:{_CACHE_VERSION}:{model_id}"


def _counted(model_id: int, width: int) -> dict:
    """One GROUP BY over the decided leads the version scored: (grade, band) -> won, decided."""
    won = Q(stage=Stage.WON) | Q(won_at__isnull=False)
    rows = (
        labeled_queryset(OUTCOME_WON)
        .filter(scored_with_id=model_id)
        .annotate(band=Floor(F("score") / Value(float(width))))
        .values("grade", "band")
        .annotate(decided=Count("pk"), won=Count("pk", filter=won))
        .order_by()
    )
    grades: dict[str, list[int]] = {g: [0, 0] for g in GRADES}
    bands: dict[int, list[int]] = {}
    for row in rows:
        by_grade = grades.setdefault(row["grade"] or "?", [0, 0])
        by_band = bands.setdefault(int(row["band"]), [0, 0])
        for counts in (by_grade, by_band):
            counts[0] += row["won"]
            counts[1] += row["decided"]
    return {"width": width, "grades": grades, "bands": bands}


def calibration_of_scored_leads(*, model_id: int, mql_total: int | None = None) -> Calibration:
    """The version's calibration on the decided leads it scored, from the cache when it was
    counted in the last CACHE_SECONDS. `mql_total` sets the band width; without it the version
    is read (only on a cache miss)."""
    key = _cache_key(model_id)
    counted = cache.get(key)
    if counted is None:
        if mql_total is None:
            mql_total = (
                ScoringModel.objects.filter(pk=model_id).values_list("mql_total", flat=True).first()
            )
        counted = _counted(model_id, band_width(mql_total or 0))
        cache.set(key, counted, CACHE_SECONDS)
    word = OUTCOME_WORDS[OUTCOME_WON][0]
    width = counted["width"]
    grades = [
        Rate(grade, won, decided, word)
        for grade, (won, decided) in counted["grades"].items()
        if grade in GRADES
    ]
    bands = [
        Rate(_band_label(band * width, width), won, decided, word, band * width, (band + 1) * width)
        for band, (won, decided) in sorted(counted["bands"].items(), reverse=True)
    ]
    return Calibration(
        model_id=model_id,
        source="leads",
        word=word,
        grades=grades,
        bands=bands,
        width=width,
        decided=sum(decided for _won, decided in counted["grades"].values()),
    )


def calibration_of_report(model: ScoringModel) -> Calibration | None:
    """A tuned version's figures on its holdout leads, from its report (None without one)."""
    report = model.report or {}
    proposal = report.get("proposal") or {}
    if not proposal.get("grades"):
        return None
    outcome = report.get("outcome", OUTCOME_WON)
    word = (report.get("outcome_words") or {}).get("positive") or OUTCOME_WORDS.get(
        outcome, ("won",)
    )[0]
    grades = [
        Rate(row["grade"], int(row["positives"]), int(row["leads"]), word)
        for row in proposal["grades"]
    ]
    bands = []
    for row in proposal.get("bands") or ():
        if not row.get("leads"):
            continue
        low, high = row.get("min_score"), row.get("max_score")
        label = f"score {_number(low)}–{_number(high)}" if low != high else f"score {_number(low)}"
        bands.append(Rate(label, int(row["positives"]), int(row["leads"]), word, low, high))
    return Calibration(
        model_id=model.pk,
        source="holdout",
        word=word,
        grades=grades,
        bands=bands,
        decided=(report.get("leads") or {}).get("holdout") or sum(r.decided for r in grades),
        outcome=outcome,
    )


def scoring_model_calibration(model: ScoringModel) -> Calibration | None:
    """What the version page shows: the active version on the leads it scored, a version with a
    tuning report on its holdout, anything else nothing (it has graded no lead yet)."""
    if model.status == ModelStatus.ACTIVE:
        return calibration_of_scored_leads(model_id=model.pk, mql_total=model.mql_total)
    return calibration_of_report(model)


@dataclass(frozen=True)
class LeadCalibration:
    grade: str
    by_grade: Rate
    by_band: Rate | None

    @property
    def grade_text(self) -> str:
        rate = self.by_grade
        if not rate.enough:
            return f"Leads like this one (grade {self.grade}): {rate.text}"
        return (
            f"Leads like this one (grade {self.grade}) {rate.word} {rate.percent}% of the time "
            f"(n = {rate.decided})"
        )

    @property
    def band_text(self) -> str:
        return f"{self.by_band.label}: {self.by_band.text}" if self.by_band else ""


def lead_calibration(lead: Lead) -> LeadCalibration | None:
    """How often leads graded like this one by the same version were won, and leads in its score
    band. Free on a warm cache: everything comes from the lead row and the cached counts."""
    if lead.scored_with_id is None or not lead.grade:
        return None
    calibration = calibration_of_scored_leads(model_id=lead.scored_with_id)
    by_grade = calibration.grade(lead.grade)
    if by_grade is None:
        return None
    return LeadCalibration(
        grade=lead.grade, by_grade=by_grade, by_band=calibration.band(lead.score or 0.0)
    )
