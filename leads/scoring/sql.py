"""Set-based rescoring of one batch of leads (ids lo..hi, or a list of ids), already locked by the
caller.

PostgreSQL: one statement per batch, generated from the model's rules; every rule value, point,
cap and threshold is a query parameter (see conditions.SqlParams), only the shape of the statement is
generated. Its shape: `UPDATE leads_lead SET (...) = (SELECT fit, aggregates over the lead's
touchpoints) WHERE id BETWEEN lo AND hi`. On 1M leads / 10.7M touchpoints this took 34 s in
batches of 5000, against 57 s for the same batches written as `UPDATE ... FROM (lead rows LEFT
JOIN (SELECT ... GROUP BY lead_id))` (a self-join and a sort per batch).
Where SQL cannot decide a rule for a lead (it compares a text that is not ASCII, and only Python
folds case exactly: see leads.conditions), the rule's SQL is NULL; a first query picks those leads
of the batch (`python_leads_statement`), the statement leaves them out, and they are scored in
Python. So every stored score is the one the Python evaluator gives.
Other databases (SQLite): the same result computed in Python over the batch (`rescore_batch_python`),
with the very functions the real-time path uses.

Both store what the real-time path stores: fit, grade, the engagement sums anchored at `at`, the
engagement and total at `at`, and the version used. With `snapshots=True` (a model change) they also
keep a ScoreSnapshot for every lead whose fit, grade or total (by half a point or more) changed
(leads never scored before have no previous score and get none).
"""

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connection

from leads.conditions import (
    ATTRIBUTE_PREFIX,
    SOURCE_FIELD,
    SqlParams,
    SqlValue,
    condition_sql,
    undecided_possible_sql,
)
from leads.models import Lead, ScoreSnapshot, Touchpoint
from leads.scoring.engagement import (
    DECAY_ZERO_EXPONENT,
    FUTURE_TOLERANCE,
    MAX_GROWTH,
    Anchored,
    anchored_from_touchpoints,
    capped_total,
)
from leads.scoring.models import SnapshotKind
from leads.scoring.rules import (
    NUMBER_FIELDS,
    UNCAPPED,
    CompiledModel,
    EngagementRule,
    FitRule,
    lead_values,
)

# a model-change snapshot is kept when the total moved by at least this much (or fit/grade changed)
SNAPSHOT_MIN_CHANGE = 0.5
SOURCE_KEY_SQL = "(SELECT src.key FROM leads_source src WHERE src.id = l.source_id)"


def fit_rule_value(
    rule: FitRule, p: SqlParams, *, lead: str = "l", source_key: str = "src.key"
) -> SqlValue:
    """Where SQL reads the value the rule tests on the lead row aliased `lead`. `source_key` is
    an expression for the lead's source key (e.g. a column of a LEFT JOIN to leads_source)."""
    if rule.field.startswith(ATTRIBUTE_PREFIX):
        key = rule.field.removeprefix(ATTRIBUTE_PREFIX)
        return SqlValue.json_key(f"{lead}.attributes", key, p)
    if rule.field in NUMBER_FIELDS:
        return SqlValue("integer", f'{lead}."{rule.field}"')
    column = source_key if rule.field == SOURCE_FIELD else f'{lead}."{rule.field}"'
    return SqlValue("text", column)


def fit_rule_sql(
    rule: FitRule, p: SqlParams, *, lead: str = "l", source_key: str = "src.key"
) -> str:
    """A boolean SQL expression: does the rule match the lead row aliased `lead`? NULL when only
    Python can tell (see leads.conditions)."""
    value = fit_rule_value(rule, p, lead=lead, source_key=source_key)
    return condition_sql(rule.condition, value, p)


def engagement_rule_sql(rule: EngagementRule, p: SqlParams, *, tp: str = "tp") -> str:
    """A boolean SQL expression: does the rule match the touchpoint row aliased `tp`? NULL when
    only Python can tell."""
    parts = [f"{tp}.kind = {p(rule.kind)}"]
    if rule.campaign is not None:
        parts.append(f"{tp}.campaign_id = {p(rule.campaign)}")
    for key, condition in rule.metadata:
        parts.append(condition_sql(condition, SqlValue.json_key(f"{tp}.metadata", key, p), p))
    return "(" + " AND ".join(parts) + ")"


def fit_score_sql(
    model: CompiledModel, p: SqlParams, *, lead: str = "l", source_key: str = "src.key"
) -> str:
    """The fit score of the lead row as one integer SQL expression, caps applied. Exact for a
    lead on which no rule is NULL (`fit_rule_sql`); the rescore scores the others in Python."""
    ungrouped: list[str] = []
    groups: dict[str, list[str]] = defaultdict(list)
    for rule in model.fit_rules:
        term = f"CASE WHEN {fit_rule_sql(rule, p, lead=lead, source_key=source_key)} THEN {p(rule.points)}::integer ELSE 0 END"
        if model.cap(rule.group) is None:
            ungrouped.append(term)
        else:
            groups[rule.group].append(term)
    terms = ungrouped + [
        f"LEAST({p(model.group_caps[g])}::integer, {' + '.join(ts)})" for g, ts in groups.items()
    ]
    return "(" + (" + ".join(terms) if terms else "0") + ")"


def grade_sql(model: CompiledModel, fit: str, p: SqlParams) -> str:
    return (
        f"CASE WHEN {fit} >= {p(model.grade_a)}::integer THEN 'A' "
        f"WHEN {fit} >= {p(model.grade_b)}::integer THEN 'B' "
        f"WHEN {fit} >= {p(model.grade_c)}::integer THEN 'C' ELSE 'D' END"
    )


def decay_sql(age: str, model: CompiledModel, p: SqlParams) -> str:
    """engagement.decay in SQL for the interval expression `age`: the same clamps, so that a
    touchpoint thousands of half-lives old weighs 0 (power() would raise an underflow error and
    fail the whole statement) and one dated after the scoring instant never overflows."""
    exponent = (
        f"GREATEST(extract(epoch FROM {age})::float8 / {p(model.half_life_seconds)}::float8, "
        f"{p(-MAX_GROWTH)}::float8)"
    )
    return (
        f"(CASE WHEN {exponent} >= {p(DECAY_ZERO_EXPONENT)}::float8 THEN 0::float8 "
        f"ELSE power(0.5::float8, {exponent}) END)"
    )


def buckets(model: CompiledModel) -> list[str]:
    seen: dict[str, None] = {}
    for rule in model.engagement_rules:
        seen.setdefault(rule.bucket)
    return list(seen)


def rescore_statement(
    model: CompiledModel, *, snapshots: bool, by_ids: bool = False
) -> tuple[str, dict[str, Any]]:
    """The batch statement and its fixed parameters; add `at`, `python_ids` (the leads it must
    leave out), and `lo` and `hi` per batch (or `ids`, a list, with by_ids=True).

    UPDATE leads_lead SET (score columns) = (a correlated SELECT: the fit from the lead's columns
    and one aggregate per engagement bucket over the lead's touchpoints, read by an index range
    scan) WHERE id in the batch. With snapshots, the same UPDATE inside a WITH that also reads the
    old scores (every part of the statement sees the rows as they were before it) and inserts the
    changed ones into leads_scoresnapshot."""
    p = SqlParams()
    scope = "= ANY(%(ids)s)" if by_ids else "BETWEEN %(lo)s AND %(hi)s"
    names = buckets(model)
    fit = fit_score_sql(model, p, lead="l", source_key=SOURCE_KEY_SQL)

    if names:
        aggregates = []
        for i, bucket in enumerate(names):
            terms = [
                f"CASE WHEN {engagement_rule_sql(r, p, tp='tp')} "
                f"THEN tp.w * {p(r.points)}::float8 ELSE 0 END"
                for r in model.engagement_rules
                if r.bucket == bucket
            ]
            aggregates.append(f"SUM({' + '.join(terms)}) AS b{i}")
        per_lead = f"""
                SELECT {fit} AS fit, {", ".join(aggregates)}
                FROM (
                    SELECT t.kind, t.campaign_id, t.metadata,
                           {decay_sql("(%(at)s - t.occurred_at)", model, p)} AS w
                    FROM leads_touchpoint t
                    WHERE t.lead_id = l.id
                      AND t.kind = ANY({p(sorted(model.kinds))}::text[])
                      AND t.occurred_at <= %(at)s + {p(FUTURE_TOLERANCE)}::interval
                ) tp"""
        capped = []
        for i, bucket in enumerate(names):
            cap = None if bucket == UNCAPPED else model.group_caps.get(bucket)
            value = f"coalesce(x.b{i}, 0)"
            capped.append(value if cap is None else f"LEAST({p(float(cap))}::float8, {value})")
        engagement = " + ".join(capped)
        sums_pairs = ", ".join(
            f"{p(bucket)}::text, NULLIF(x.b{i}, 0)" for i, bucket in enumerate(names)
        )
        sums = f"NULLIF(jsonb_strip_nulls(jsonb_build_object({sums_pairs})), '{{}}'::jsonb)"
    else:
        per_lead = f"SELECT {fit} AS fit"
        engagement, sums = "0", "NULL::jsonb"

    update = f"""
    UPDATE leads_lead AS l
    SET (fit_score, engagement_score, score, grade, engagement_sums, engagement_anchor_at,
         scored_with_id) = (
        SELECT c.fit, c.eng, c.fit + c.eng, {grade_sql(model, "c.fit", p)}, c.sums, %(at)s,
               %(model)s
        FROM (
            SELECT x.fit, ({engagement})::float8 AS eng, {sums} AS sums
            FROM ({per_lead}
            ) x
        ) c
    )
    WHERE l.id {scope} AND NOT (l.id = ANY(%(python_ids)s::bigint[]))"""
    if not snapshots:
        return update, {**p.values, "model": model.id}
    sql = f"""
    WITH old AS MATERIALIZED (
        SELECT id, fit_score, score, grade, scored_with_id, engagement_anchor_at
        FROM leads_lead
        WHERE id {scope}
    ),
    u AS ({update}
        RETURNING l.id, l.fit_score, l.engagement_score, l.score, l.grade
    )
    INSERT INTO leads_scoresnapshot
        (lead_id, model_id, kind, at, fit, engagement, total, grade,
         previous_model_id, previous_fit, previous_total, previous_grade, previous_at, explanation)
    SELECT u.id, %(model)s, {p(SnapshotKind.MODEL_CHANGE.value)}, %(at)s, u.fit_score,
           u.engagement_score, u.score, u.grade, o.scored_with_id, o.fit_score, o.score,
           coalesce(o.grade, ''), o.engagement_anchor_at, NULL
    FROM u JOIN old o ON o.id = u.id
    WHERE o.scored_with_id IS NOT NULL
      AND (o.fit_score IS DISTINCT FROM u.fit_score
           OR coalesce(o.grade, '') <> u.grade
           OR abs(coalesce(o.score, 0) - u.score) >= {p(SNAPSHOT_MIN_CHANGE)}::float8)"""
    return sql, {**p.values, "model": model.id}


def python_leads_statement(
    model: CompiledModel, *, by_ids: bool = False
) -> tuple[str, dict[str, Any]] | None:
    """The query for the leads of a batch that only Python scores exactly: a fit rule, or an
    engagement rule on one of their touchpoints, is NULL in SQL. Add `lo` and `hi` (or `ids`).
    None when no rule compares text (then SQL decides every rule)."""
    p = SqlParams()
    tests = []
    for rule in model.fit_rules:
        if rule.condition.compares_text:
            value = fit_rule_value(rule, p, lead="l", source_key=SOURCE_KEY_SQL)
            # the cheap test first: only text that is not ASCII can make a rule NULL
            tests.append(
                f"(CASE WHEN {undecided_possible_sql(value)} "
                f"THEN ({condition_sql(rule.condition, value, p)}) IS NULL ELSE false END)"
            )
    text_rules = [
        rule
        for rule in model.engagement_rules
        if any(condition.compares_text for _, condition in rule.metadata)
    ]
    if text_rules:
        undecided = " OR ".join(
            f"({engagement_rule_sql(r, p, tp='tp')}) IS NULL" for r in text_rules
        )
        metadata = SqlValue("json", "tp.metadata")
        tests.append(
            "EXISTS (SELECT 1 FROM leads_touchpoint tp WHERE tp.lead_id = l.id "
            f"AND tp.kind = ANY({p(sorted({r.kind for r in text_rules}))}::text[]) "
            f"AND (CASE WHEN {undecided_possible_sql(metadata)} THEN ({undecided}) ELSE false END))"
        )
    if not tests:
        return None
    scope = "= ANY(%(ids)s)" if by_ids else "BETWEEN %(lo)s AND %(hi)s"
    sql = (
        f"SELECT l.id FROM leads_lead l WHERE l.id {scope} AND ({' OR '.join(tests)}) ORDER BY l.id"
    )
    return sql, p.values


def rescore_batch_postgres(
    model: CompiledModel,
    *,
    lo: int = 0,
    hi: int = 0,
    ids: list[int] | None = None,
    at: datetime,
    snapshots: bool,
    statement: tuple[str, dict[str, Any]] | None = None,
) -> int:
    """Rescore leads lo..hi (or the leads `ids`) in one statement, and in Python the few that
    SQL cannot score exactly; returns the number of snapshots written."""
    by_ids = ids is not None
    sql, params = statement or rescore_statement(model, snapshots=snapshots, by_ids=by_ids)
    scope = {"ids": list(ids)} if by_ids else {"lo": lo, "hi": hi}
    python_ids: list[int] = []
    with connection.cursor() as cursor:
        # a batch is estimated expensive enough for JIT, whose compilation (~40 ms) would cost
        # more than it saves on 5000 rows
        cursor.execute("SET LOCAL jit = off")
        undecided = python_leads_statement(model, by_ids=by_ids)
        if undecided is not None:
            cursor.execute(undecided[0], {**undecided[1], **scope})
            python_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(sql, {**params, "at": at, **scope, "python_ids": python_ids})
        written = cursor.rowcount if snapshots else 0
    if python_ids:
        written += rescore_batch_python(model, ids=python_ids, at=at, snapshots=snapshots)
    return written


def scores_python(
    model: CompiledModel,
    leads: list[Lead],
    *,
    at: datetime,
    touchpoints: dict[str, Any] | None = None,
) -> Iterator[tuple[Lead, int, Anchored, float]]:
    """Each lead with its fit, its engagement state and its capped engagement at `at`, computed
    with the real-time functions; the leads' touchpoints are read in one query (`touchpoints`: a
    filter covering them, by default their ids). The source must be loaded when the model reads
    it (select_related)."""
    rows: dict[int, list] = defaultdict(list)
    if model.kinds and leads:
        scope = touchpoints or {"lead_id__in": [lead.pk for lead in leads]}
        for lead_id, *row in (
            Touchpoint.objects.filter(**scope, kind__in=model.kinds)
            .order_by()
            .values_list("lead_id", "kind", "campaign_id", "metadata", "occurred_at")
        ):
            rows[lead_id].append(row)
    for lead in leads:
        source_key = lead.source.key if model.uses_source and lead.source_id else None
        fit = model.fit_score(lead_values(lead, source_key=source_key))
        state = anchored_from_touchpoints(model, rows.get(lead.pk, ()), at=at)
        yield lead, fit, state, capped_total(model, state.sums)


def rescore_batch_python(
    model: CompiledModel,
    *,
    lo: int = 0,
    hi: int = 0,
    ids: list[int] | None = None,
    at: datetime,
    snapshots: bool,
) -> int:
    """The portable path: the same result as the SQL, computed with the real-time functions."""
    scope = {"pk__in": ids} if ids is not None else {"pk__gte": lo, "pk__lte": hi}
    tp_scope = {"lead_id__in": ids} if ids is not None else {"lead_id__gte": lo, "lead_id__lte": hi}
    qs = Lead.objects.filter(**scope).order_by("pk")
    leads = list(qs.select_related("source") if model.uses_source else qs)
    written: list[ScoreSnapshot] = []
    for lead, fit, state, engagement in scores_python(model, leads, at=at, touchpoints=tp_scope):
        grade = model.grade(fit)
        if (
            snapshots
            and lead.scored_with_id is not None
            and (
                lead.fit_score != fit
                or (lead.grade or "") != grade
                or abs((lead.score or 0) - (fit + engagement)) >= SNAPSHOT_MIN_CHANGE
            )
        ):
            written.append(
                ScoreSnapshot(
                    lead_id=lead.pk,
                    model_id=model.id,
                    kind=SnapshotKind.MODEL_CHANGE,
                    at=at,
                    fit=fit,
                    engagement=engagement,
                    total=fit + engagement,
                    grade=grade,
                    previous_model_id=lead.scored_with_id,
                    previous_fit=lead.fit_score,
                    previous_total=lead.score,
                    previous_grade=lead.grade or "",
                    previous_at=lead.engagement_anchor_at,
                )
            )
        lead.fit_score = fit
        lead.engagement_score = engagement
        lead.score = fit + engagement
        lead.grade = grade
        lead.engagement_sums = Anchored(anchor=at, sums=state.sums).stored_sums()
        lead.engagement_anchor_at = at
        lead.scored_with_id = model.id
    Lead.objects.bulk_update(
        leads,
        [
            "fit_score",
            "engagement_score",
            "score",
            "grade",
            "engagement_sums",
            "engagement_anchor_at",
            "scored_with",
        ],
        batch_size=500,
    )
    if written:
        ScoreSnapshot.objects.bulk_create(written, batch_size=1000)
    return len(written)
