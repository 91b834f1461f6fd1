"""One condition evaluator for routing and scoring (leads.conditions): the cases where they used to
disagree, every op, missing values and validation messages, through both; on PostgreSQL, the SQL
of every op against Python over a table of tricky values, and the set-based rescore against the
Python one."""

import datetime as dt
import sys

import pytest
from django.db import connection, transaction

from alignment.lib.errors import DomainError
from leads.conditions import (
    MISSING,
    WHITESPACE,
    SqlParams,
    SqlValue,
    compile_condition,
    condition_sql,
)
from leads.models import AssignmentRule, Lead, ScoreSnapshot, Source
from leads.routing import rule_matches, validate_conditions
from leads.scoring import sql as scoring_sql
from leads.scoring.models import ScoringModel
from leads.scoring.rules import compile_spec, lead_values, spec_of, validate_spec
from tests.factories import LeadFactory, SourceFactory, TouchpointFactory

SETTINGS = {
    "half_life_days": 10.0,
    "mql_total": 100,
    "mql_fit": 40,
    "grade_a": 60,
    "grade_b": 40,
    "grade_c": 20,
}
BLANK_LEAD = {"title": "", "company": "", "industry": "", "country": "", "company_size": None}


def routed(condition: dict, lead: dict) -> bool:
    rule = AssignmentRule(name="r", conditions=[condition])
    return rule_matches(rule=rule, lead=LeadFactory.build(**{**BLANK_LEAD, **lead}))


def scored(condition: dict, lead: dict) -> bool:
    spec = validate_spec({**SETTINGS, "fit_rules": [{**condition, "points": 1}]})
    built = LeadFactory.build(**{**BLANK_LEAD, **lead})
    source_key = built.source.key if built.source else None
    return compile_spec(spec).fit_score(lead_values(built, source_key=source_key)) == 1


both = pytest.mark.parametrize("evaluate", [routed, scored], ids=["routing", "scoring"])


def cond(field: str, op: str, value) -> dict:
    return {"field": field, "op": op, "value": value}


# --- the cases where routing and scoring used to disagree --------------------------------------

FORMER_DISAGREEMENTS = [
    # a numeric text in exponent notation is its number
    (cond("attributes.employees", "gte", 100), {"attributes": {"employees": "1e3"}}, True),
    (cond("attributes.employees", "lt", 100), {"attributes": {"employees": "1e3"}}, False),
    (cond("attributes.employees", "eq", 1000), {"attributes": {"employees": " 1E+03 "}}, True),
    # full Unicode case folding: ß folds to ss
    (cond("company", "eq", "strasse"), {"company": "STRAßE"}, True),
    (
        cond("attributes.street", "in", ["Hauptstrasse"]),
        {"attributes": {"street": "HAUPTSTRAßE"}},
        True,
    ),
    (cond("company", "contains", "strasse"), {"company": "Große STRAßE GmbH"}, True),
    (cond("company", "ne", "strasse"), {"company": "STRAßE"}, False),
    # a trailing no-break space is whitespace; nothing but whitespace is missing
    (cond("country", "eq", "de"), {"country": "DE\u00a0"}, True),
    (cond("country", "not_in", ["DE", "AT"]), {"country": "DE\u00a0"}, False),
    (cond("attributes.seats", "eq", 12), {"attributes": {"seats": "12\u00a0"}}, True),
    (cond("country", "exists", False), {"country": "\u00a0"}, True),
    (cond("country", "ne", "us"), {"country": "\u00a0"}, False),
    # also settled: a number equals the text that spells it, and contains finds a list element
    (cond("attributes.seats", "eq", "12"), {"attributes": {"seats": 12}}, True),
    (
        cond("attributes.tags", "contains", "partner"),
        {"attributes": {"tags": ["EU", "Partner"]}},
        True,
    ),
    (
        cond("attributes.tags", "contains", "part"),
        {"attributes": {"tags": ["EU", "Partner"]}},
        False,
    ),
    (cond("source", "in", ["linkedin", "GOOGLE-ADS"]), {"source": Source(key="google_ads")}, True),
]


@both
@pytest.mark.parametrize(("condition", "lead", "expected"), FORMER_DISAGREEMENTS)
def test_routing_and_scoring_agree_where_they_used_to_differ(evaluate, condition, lead, expected):
    assert evaluate(condition, lead) is expected


# --- every op ----------------------------------------------------------------------------------

EVERY_OP = [
    (cond("country", "eq", "de"), {"country": " De "}, True),
    (cond("country", "eq", "de"), {"country": "Deutschland"}, False),
    (cond("country", "eq", "de"), {"country": "ＤＥ"}, True),  # fullwidth letters (NFKC)
    (cond("company", "eq", "société"), {"company": "SOCIE\u0301TE\u0301"}, True),  # decomposed é
    (cond("company_size", "eq", 120), {"company_size": 120}, True),
    (cond("attributes.seats", "eq", 12), {"attributes": {"seats": 12.0}}, True),
    (cond("attributes.seats", "eq", "12"), {"attributes": {"seats": "12.0"}}, False),  # two texts
    (cond("attributes.seats", "eq", 12), {"attributes": {"seats": "1,2"}}, False),
    (
        cond("attributes.seats", "eq", 12),
        {"attributes": {"seats": "１２"}},
        False,
    ),  # not ASCII digits
    (cond("attributes.paying", "eq", True), {"attributes": {"paying": True}}, True),
    (cond("attributes.paying", "eq", True), {"attributes": {"paying": "true"}}, False),
    (cond("attributes.paying", "eq", False), {"attributes": {"paying": 0}}, False),
    (cond("attributes.seats", "eq", 12), {"attributes": {"seats": [12]}}, False),
    (cond("country", "ne", "de"), {"country": "AT"}, True),
    (cond("country", "ne", "de"), {"country": "de"}, False),
    (cond("attributes.seats", "ne", 10), {"attributes": {"seats": "many"}}, True),
    (cond("country", "in", ["at", "DE"]), {"country": "de"}, True),
    (cond("country", "in", ["at", "DE"]), {"country": "CH"}, False),
    (cond("attributes.plan", "in", ["pro", 3, False]), {"attributes": {"plan": "3"}}, True),
    (cond("attributes.plan", "in", ["pro", 3, False]), {"attributes": {"plan": False}}, True),
    (cond("country", "not_in", ["at", "DE"]), {"country": "CH"}, True),
    (cond("country", "not_in", ["at", "DE"]), {"country": "at"}, False),
    (cond("title", "contains", "vp"), {"title": "SVP Sales"}, True),
    (cond("title", "contains", " vp "), {"title": "MVP"}, False),
    (cond("title", "contains", ["chief", "head of"]), {"title": "Head\u00a0Of IT"}, True),
    (cond("attributes.plan", "contains", "ent"), {"attributes": {"plan": 1234}}, False),
    (cond("company_size", "gt", 119), {"company_size": 120}, True),
    (cond("company_size", "gt", 120), {"company_size": 120}, False),
    (cond("company_size", "gte", 120), {"company_size": 120}, True),
    (cond("company_size", "lt", 121), {"company_size": 120}, True),
    (cond("company_size", "lte", 119), {"company_size": 120}, False),
    (cond("attributes.seats", "gte", 10), {"attributes": {"seats": " 9.5 "}}, False),
    (cond("attributes.seats", "gte", 10), {"attributes": {"seats": True}}, False),
    (cond("last_name", "lt", "M"), {"last_name": "meyer"}, False),  # text by code point
    (cond("last_name", "lt", "M"), {"last_name": "Lang"}, True),
    (cond("company_size", "between", [50, 120]), {"company_size": 120}, True),  # inclusive
    (cond("company_size", "between", [121, 500]), {"company_size": 120}, False),
    (
        cond("attributes.signed_up", "between", ["2024-01-01", "2024-12-31"]),
        {"attributes": {"signed_up": "2024-06-30"}},
        True,
    ),
    (cond("attributes.seats", "between", [1, 5]), {"attributes": {"seats": "2024-06-30"}}, False),
    (cond("industry", "exists", True), {"industry": "Software"}, True),
    (cond("attributes.plan", "exists", True), {"attributes": {"plan": []}}, True),
    (cond("source", "eq", "Google Ads"), {"source": Source(key="google_ads")}, True),
    (cond("source", "contains", "ads"), {"source": Source(key="google_ads")}, True),
]


@both
@pytest.mark.parametrize(("condition", "lead", "expected"), EVERY_OP)
def test_each_op_means_the_same_in_routing_and_scoring(evaluate, condition, lead, expected):
    assert evaluate(condition, lead) is expected


MISSING_LEADS = [
    {"attributes": {}},
    {"attributes": {"x": None}},
    {"attributes": {"x": ""}},
    {"attributes": {"x": " \u2003\u00a0\t"}},
]
ON_MISSING = [
    cond("attributes.x", "eq", "a"),
    cond("attributes.x", "ne", "a"),
    cond("attributes.x", "in", ["a", 1]),
    cond("attributes.x", "not_in", ["a", 1]),
    cond("attributes.x", "contains", "a"),
    cond("attributes.x", "gt", 0),
    cond("attributes.x", "gte", "a"),
    cond("attributes.x", "lt", 10**9),
    cond("attributes.x", "lte", "z"),
    cond("attributes.x", "between", [0, 10**9]),
    cond("attributes.x", "exists", True),
]


@both
@pytest.mark.parametrize("lead", MISSING_LEADS, ids=["absent", "null", "empty", "whitespace"])
def test_a_missing_value_matches_nothing_but_exists_false(evaluate, lead):
    assert [evaluate(c, lead) for c in ON_MISSING] == [False] * len(ON_MISSING)
    assert evaluate(cond("attributes.x", "exists", False), lead) is True


@both
def test_a_blank_lead_field_is_missing(evaluate):
    assert evaluate(cond("company_size", "gte", 0), {"company_size": None}) is False
    assert evaluate(cond("country", "not_in", ["US"]), {"country": "  "}) is False
    assert evaluate(cond("country", "exists", False), {"country": ""}) is True


def test_whitespace_is_exactly_what_python_strips():
    every = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    assert every == WHITESPACE


# --- validation --------------------------------------------------------------------------------

BAD = [
    (cond("territory", "eq", "EMEA"), "tests an unknown field 'territory'"),
    (cond("attributes.", "eq", "x"), "names no attribute: write attributes.<key>"),
    (cond("country", "like", "DE"), "has an unknown op 'like': use one of eq, ne, in, not_in"),
    ({"field": "country", "op": "eq"}, "needs a value"),
    (cond("company_size", "eq", "120"), "needs a number as value"),
    (cond("country", "eq", " "), "needs a text as value"),
    (cond("country", "in", []), "needs a non-empty list of values, each a text"),
    (cond("attributes.x", "in", [None]), "each a text, a number or true/false"),
    (cond("company_size", "contains", "1"), "cannot use contains on a number field"),
    (cond("title", "contains", ["vp", ""]), "needs a text or a non-empty list of texts"),
    (cond("title", "gte", 3), "cannot compare title as a number"),
    (cond("attributes.seats", "gte", "100"), "write 100 without quotes to compare numbers"),
    (cond("company_size", "between", [50]), "needs [low, high], each a number"),
    (cond("attributes.x", "between", [1, "z"]), "needs low and high of the same kind"),
    (cond("company_size", "between", [500, 50]), "has low above high"),
    (cond("attributes.d", "between", ["2024-12-31", "2024-01-01"]), "has low above high"),
    (cond("country", "exists", "yes"), "needs true or false as value"),
]


@pytest.mark.parametrize(("condition", "message"), BAD)
def test_routing_and_scoring_refuse_a_bad_condition_with_the_same_words(condition, message):
    with pytest.raises(DomainError) as routing:
        validate_conditions([cond("country", "eq", "DE"), condition])
    assert routing.value.message.startswith("Condition 2 (")
    assert message in routing.value.message
    with pytest.raises(DomainError) as scoring:
        validate_spec({**SETTINGS, "fit_rules": [{**condition, "points": 1}]})
    assert scoring.value.message.startswith("Fit rule 1 ")
    assert message in scoring.value.message


# --- SQL against Python (PostgreSQL) -----------------------------------------------------------

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the set-based SQL is PostgreSQL's; on SQLite every rescore runs the Python evaluator",
)

TRICKY = [
    *(12, 12.0, 0, -3, 0.1, 1000, 10**40, 10**400, 1e-320, True, False, None),
    *("12", " 12.50 ", "+7", ".5", "5.", "5.e3", "1e3", "1E+03", "1e999", "1e-999", "-0"),
    *("1_000", "0x1A", "inf", "NaN", "١٢", "１２", "12\u00a0", "\u00a012", "1,2"),
    *("Pro", "PRO ", "enterprise pro", "ＰＲＯ", "mvp", " vp ", "true", "M", "m", "z"),
    *("STRAßE", "straße", "strasse", "ﬁnance", "İstanbul", "É", "E\u0301", "Müller", "Ǆ"),
    *("5% off", "50 off", "a_b", "axb", "c\\d", "cd"),
    *("2024-03-01", "", "   ", "\u00a0", "\u2003\u2003", "\u200b", "de\u00a0", "DE"),
    *([], ["Pro", 3], ["STRAßE"], [["pro"]], [None, ""], ["12", 5.0], {"a": 1}),
]
ATTRIBUTE_CONDITIONS = [
    *(("eq", "pro"), ("eq", 12), ("eq", "12"), ("eq", True), ("eq", False), ("eq", "strasse")),
    *(("eq", "é"), ("eq", 1000), ("eq", "de"), ("ne", "pro"), ("ne", 12), ("ne", True)),
    *(("in", ["pro", 12, True, "straße"]), ("in", [0.1, -3, "m"]), ("not_in", ["pro", 12])),
    *(("contains", "pro"), ("contains", ["ss", " vp "]), ("contains", "12"), ("contains", "é")),
    *(("contains", "5%"), ("contains", "a_b"), ("contains", "c\\d")),
    *(("contains", "3"), ("gt", 5), ("gte", 12), ("lt", 0.5), ("lte", -3), ("between", [0, 13])),
    *(("gt", "m"), ("lte", "m"), ("between", ["2024-01-01", "2024-12-31"]), ("lt", "é")),
    *(("exists", True), ("exists", False)),
]
TEXT_CONDITIONS = [
    *(("eq", "pro"), ("eq", "strasse"), ("ne", "pro"), ("in", ["mvp", "de", "É"])),
    *(("not_in", ["m", "z"]), ("contains", ["ss", " vp "]), ("contains", "pro")),
    *(("gt", "m"), ("lte", "m"), ("between", ["a", "n"]), ("exists", True), ("exists", False)),
]
SIZE_CONDITIONS = [
    *(("eq", 12), ("ne", 12), ("in", [0, 1000]), ("not_in", [0]), ("gt", 11.5), ("gte", 12)),
    *(("lt", 0), ("lte", 0), ("between", [-3, 12]), ("exists", True), ("exists", False)),
]


def _has_non_ascii(value) -> bool:
    if isinstance(value, str):
        return not value.isascii()
    return isinstance(value, list) and any(map(_has_non_ascii, value))


def _sql_answers(value_of, conditions: list) -> dict:
    p = SqlParams()
    value = value_of(p)
    columns = ", ".join(condition_sql(c, value, p) for c in conditions)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.id, {columns} FROM leads_lead l "
            "LEFT JOIN leads_source src ON src.id = l.source_id",
            p.values,
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _check(answers: dict, actual_of: dict, conditions: list) -> int:
    """Each SQL answer is Python's, or NULL (undecided) for a text that is not ASCII, and every
    ASCII value is decided; returns how many answers were NULL."""
    undecided = 0
    for pk, row in answers.items():
        actual = actual_of[pk]
        for condition, answer in zip(conditions, row, strict=True):
            if answer is None:
                undecided += 1
                assert _has_non_ascii(actual), (condition, actual)
            else:
                assert answer is condition.matches(actual), (condition, actual)
    return undecided


@needs_postgres
@pytest.mark.django_db
def test_the_sql_of_every_op_agrees_with_python_on_tricky_values():
    google, linkedin = SourceFactory(key="google_ads"), SourceFactory(key="linkedin")
    for i, v in enumerate(TRICKY):
        title = v if isinstance(v, str) else ""
        LeadFactory(attributes={"x": v}, title=title, source=[None, google, linkedin][i % 3])
    for n in (None, 0, 7, 12, 1000):
        LeadFactory(attributes={"y": n}, title="", company_size=n)
    # as the rescore's Python path sees them: read back from the database
    stored = {lead.pk: lead for lead in Lead.objects.select_related("source")}
    assert len(stored) == len(TRICKY) + 5

    conditions = [compile_condition(op, v) for op, v in ATTRIBUTE_CONDITIONS]
    answers = _sql_answers(lambda p: SqlValue.json_key("l.attributes", "x", p), conditions)
    actual = {pk: lead.attributes.get("x", MISSING) for pk, lead in stored.items()}
    assert _check(answers, actual, conditions) > 0  # texts that are not ASCII are left to Python

    conditions = [compile_condition(op, v, field="title") for op, v in TEXT_CONDITIONS]
    answers = _sql_answers(lambda p: SqlValue("text", "l.title"), conditions)
    assert _check(answers, {pk: lead.title for pk, lead in stored.items()}, conditions) > 0

    conditions = [compile_condition(op, v) for op, v in SIZE_CONDITIONS]
    answers = _sql_answers(lambda p: SqlValue("integer", "l.company_size"), conditions)
    actual = {pk: lead.company_size for pk, lead in stored.items()}
    assert _check(answers, actual, conditions) == 0

    source_conditions = [("eq", "Google Ads"), ("in", ["LinkedIn", "x"]), ("contains", "ads")]
    conditions = [
        compile_condition(op, v, field="source")
        for op, v in [*source_conditions, ("ne", "google-ads"), ("exists", False)]
    ]
    answers = _sql_answers(lambda p: SqlValue("text", "src.key"), conditions)
    actual = {pk: lead.source.key if lead.source else None for pk, lead in stored.items()}
    assert _check(answers, actual, conditions) == 0


RESCORED_SPEC = {
    **SETTINGS,
    "fit_rules": [
        {"key": "street", "field": "company", "op": "eq", "value": "Strasse", "points": 3},
        {"key": "dach", "field": "country", "op": "in", "value": ["DE", "AT"], "points": 5},
        {"key": "big", "field": "attributes.employees", "op": "gte", "value": 100, "points": 7},
        {"key": "pro", "field": "attributes.plan", "op": "contains", "value": "pro", "points": 11},
        {"key": "vp", "field": "title", "op": "contains", "value": "vp", "points": 13},
    ],
    "engagement_rules": [
        {"key": "web", "kind": "web_visit", "points": 1},
        {"key": "price", "kind": "web_visit", "metadata": {"page": "preisübersicht"}, "points": 4},
    ],
}
# (lead, touchpoint pages, whether only Python can score it)
RESCORED_LEADS = [
    (
        {
            "company": "STRAßE",
            "country": "DE\u00a0",
            "title": "SVP",
            "attributes": {"employees": "1e3", "plan": ["PRO"]},
        },
        ["PREISÜBERSICHT"],
        True,
    ),
    ({"company": "strasse", "country": "de", "title": "ＶＰ", "attributes": {}}, [], True),
    ({"company": "Acme", "country": "AT", "title": "VP", "attributes": {"plan": "Pro"}}, [], False),
    (
        {"company": "Acme", "country": "", "title": "", "attributes": {}},
        ["Preisu\u0308bersicht"],
        True,
    ),
    ({"company": "Acme", "country": "", "title": "", "attributes": {}}, ["pricing", ""], False),
    ({"company": "", "country": "FR", "title": "", "attributes": {"plan": ["ent"]}}, [], False),
]


def _scores(at) -> dict:
    rows = Lead.objects.order_by("pk").values_list(
        "pk", "fit_score", "grade", "engagement_score", "engagement_sums", "scored_with_id"
    )
    snapshots = ScoreSnapshot.objects.filter(at=at).values_list("lead_id", "fit", "previous_fit")
    return {"leads": list(rows), "snapshots": sorted(snapshots)}


@needs_postgres
@pytest.mark.django_db
def test_the_set_based_rescore_stores_what_the_python_evaluator_computes():
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    leads = []
    for fields, pages, _ in RESCORED_LEADS:
        lead = LeadFactory(**fields)
        for day, page in enumerate(pages):
            TouchpointFactory(
                lead=lead, metadata={"page": page}, occurred_at=start + dt.timedelta(days=day)
            )
        leads.append(lead)
    lo, hi = leads[0].pk, leads[-1].pk
    before = ScoringModel.objects.create(name="before", **validate_spec({**SETTINGS}))
    after = ScoringModel.objects.create(name="after", **validate_spec(RESCORED_SPEC))
    model = compile_spec(spec_of(after), model_id=after.pk)
    at = start + dt.timedelta(days=30)
    scoring_sql.rescore_batch_python(
        compile_spec(spec_of(before), model_id=before.pk), lo=lo, hi=hi, at=at, snapshots=False
    )

    sql, params = scoring_sql.python_leads_statement(model)
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "lo": lo, "hi": hi})
        left_to_python = [row[0] for row in cursor.fetchall()]
    assert left_to_python == [
        lead.pk for lead, (*_, python) in zip(leads, RESCORED_LEADS, strict=False) if python
    ]

    with transaction.atomic():
        python_written = scoring_sql.rescore_batch_python(
            model, lo=lo, hi=hi, at=at, snapshots=True
        )
        python = _scores(at)
        transaction.set_rollback(True)
    sql_written = scoring_sql.rescore_batch_postgres(model, lo=lo, hi=hi, at=at, snapshots=True)
    stored = _scores(at)

    # the fifth lead's total moves by less than half a point, the last one's not at all
    assert sql_written == python_written == 4
    assert stored["snapshots"] == python["snapshots"]
    for got, want in zip(stored["leads"], python["leads"], strict=True):
        assert got[:3] == want[:3] and got[5] == want[5] == after.pk
        assert got[3] == pytest.approx(want[3], rel=1e-12)
        assert (got[4] or {}).keys() == (want[4] or {}).keys()
    # STRAßE, DE + no-break space, "1e3" employees, PRO in a list, SVP: every rule
    assert stored["leads"][0][1] == 3 + 5 + 7 + 11 + 13
