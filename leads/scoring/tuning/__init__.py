"""Fine-tuning the scoring model from outcomes (`python manage.py tune_scoring`, the weekly
Celery job `leads.scoring_tune`, the page /leads/scoring/tuning/).

The result is always a *proposed* version (origin "tuning", created and proposed by the system
"tuning" or the person who started the run) with its report attached; the marketing manager and
the sales manager still have to approve it. Nothing is ever activated here.

What it learns from (`data`)
- `won`: leads that reached won (positive) against leads lost (negative).
- `accepted`: MQLs sales accepted (a stage change mql -> sal) against MQLs sales rejected or
  recycled (mql -> rejected / recycled), by the latest decision on each lead. This is how sales'
  rejections teach the model.
- Each lead is taken at the moment that counted: its last entry into MQL before the outcome, or the
  outcome itself when it never was an MQL. Engagement features only count touchpoints before then,
  decayed to then with the active version's half-life, exactly as the score would have seen them.
  Sales touch kinds (call, sales email, meeting, note) are never candidates: they follow from a
  lead being good rather than predict it.
- Fewer than 50 positives or 50 negatives: a readable error, nothing created.

Candidate columns (`features`, `shapes`): each field becomes a block of 0/1 columns
- Category fields (title, industry, country, source, utm_*) and text/boolean attributes: the values
  held by at least `min_support` training leads (30, or 0.1% of the training leads if more; at
  most 40 per field), ordered by their share of positives, as a ladder of tiers ("one of the k
  most promising values"; only ever adding points), and each value on its own (either sign; the
  most frequent is the baseline, so a yes/no fact has one column and no mirrored pair).
- company_size and numeric attributes (90% of known values are numbers): a ladder of cut points at
  round numbers near the quantiles (20 by default, `bins`), each band at least 1% of the training
  leads; its direction (rises, falls, or a free shape such as a U) read from the data by isotonic
  regression, and on a monotone number every step only adds points. A number of at most 30 values
  is also offered as a category.
- Any field or attribute missing on enough leads: an `exists: false` rule ("is missing"). Identity
  fields (email, names, phone, company, website) only get this rule.
- Marketing touchpoint kinds used by enough leads: an engagement rule (points per occurrence) in
  its own group, whose cap is the points of the 95th percentile of that kind's decayed count.
- Excluded: attributes named with `--exclude-attribute` (or the page's field, or the task's
  `exclude_attributes`); those in the optional setting SCORING_TUNING_EXCLUDE_ATTRIBUTES (always,
  the weekly job included); and, by a naming convention set in the import mapping, every attribute
  whose name starts with `post_`: a column known only after the outcome is mapped under such a name
  (`post_call_duration = { column = "duration", type = "int" }`) and can then never be learned
  from, whoever starts the run. The bank data's `duration` is such a column: the shipped mapping
  (docs/examples/bank-marketing.toml) imports it as `post_call_duration`. Each report lists what
  was excluded.
- Found in the data (`screening`), before any candidate is built, on the training leads: counters
  (a number monotone in the lead id, |Spearman| > 0.99), identifiers (text or whole numbers with a
  value of their own on more than 90% of the leads that have one), constant columns (one value on
  more than 99.5%) and leaks (the column alone gives an AUC above 0.98, out of fold). Each is left
  out with its reason in the report (`excluded_columns`); `--include-attribute` brings one back
  (not a `post_` nor a configured one). Identity fields are not screened: they only get "is
  missing".
- Every candidate is evaluated by the scoring service's own compiled rule, so a column of the design
  matrix is what the rule gives when it scores the lead; identical columns keep one rule.

Fitting (`learn`)
- Forward selection by cross-validated log-loss, scikit-learn's LogisticRegression (lbfgs, light
  L2) refitting the chosen columns at every step: each step takes the best of the few columns the
  score test ranks first; the number of steps is the one with the lowest 3-fold cross-validated
  log-loss, within `max_rules` fit columns (engagement columns aside), then the set is refined by
  swaps. Columns held non-negative (monotone steps, tiers, engagement) that come out negative are
  dropped and the rest refitted.
- Stratified holdout (30% by default) with a fixed seed; the proposal is fitted on the training part
  only, so its holdout figures are the honest figures of exactly the proposed version.
- Deterministic: the same data, options and seed give the same version.

Points and thresholds (`services`)
- Points = round(coefficient x points_per_logit), one scale for all rules, chosen so that 100
  points separate the 5th and the 95th percentile of the learned score among training leads (capped
  at 1000 points per unit of log-odds). Rules that round to 0 are left out.
- A number's bands and a category's tiers become rules whose points add up to the block's weights;
  neighbours that round to the same points are one rule.
- mql_fit: the fit score below which only 5% of the training positives fell, never below 0.
- mql_total, from a goal: about `mqls_per_month` MQLs a month (of the leads that arrived per month
  over the last 90 days), or the lowest total at which at least `min_precision` of the qualifying
  training leads are positive; without a goal, about as many MQLs as were actually made among the
  leads created in the last 90 days (the historical MQL rate), or with no MQL history there as
  many as the share of positive outcomes. Shares are measured on those recent leads (their highest
  total at any touchpoint, which is when a crossing happens), or on the training leads when fewer
  than 100 leads are recent. The report gives the expected MQLs a month.
- Grades: A from the 75th percentile of fit, B from the median, C from the 25th (same leads).
- The half-life is the active version's: tuning learns points, not the decay.

Report (stored as the proposed version's `report`, printed by the command)
- For the active version and the proposal, on the holdout leads scored exactly as the scoring
  service scores (fit rules, caps, engagement decayed at the lead's moment): AUC, lift by score
  decile (ties share a band), conversion by grade, and what the MQL definition catches.
- The verdict (`evaluate.verdict`): the proposal's holdout AUC against the active version's on the
  same leads, and the noise of that difference (paired bootstrap); "better" only beyond the noise.
  The weekly job (`propose_unsafe=False`) proposes nothing that is not better.
- Out of time: the same selection learned from the older 70% of the outcomes (by the moment each
  lead counted) and measured on the newest 30%, beside the active version there; when outcomes do
  not spread over time (an import), it says so and only the holdout is shown. (The candidate cuts
  come from the whole training part, so this measures the fit, not the cut placement.)
- If the learned version equals the active one, or a tuned proposal still waiting for approval,
  nothing is created and the run says so.
"""

from leads.scoring.tuning.data import OUTCOME_ACCEPTED, OUTCOME_WON, OUTCOMES, TuningError
from leads.scoring.tuning.runs import scoring_tune_queue, scoring_tune_recorded
from leads.scoring.tuning.services import (
    DEFAULT_BINS,
    DEFAULT_HOLDOUT,
    DEFAULT_MAX_RULES,
    DEFAULT_SEED,
    TUNING_SYSTEM,
    TuningResult,
    scoring_tune,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_HOLDOUT",
    "DEFAULT_MAX_RULES",
    "DEFAULT_SEED",
    "OUTCOMES",
    "OUTCOME_ACCEPTED",
    "OUTCOME_WON",
    "TUNING_SYSTEM",
    "TuningError",
    "TuningResult",
    "scoring_tune",
    "scoring_tune_queue",
    "scoring_tune_recorded",
]
