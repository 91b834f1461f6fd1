"""Scoring rules, caps, grades, validation and diff; the SQL of every rule against its Python
twin (PostgreSQL); exact decay of the anchored engagement against a direct recomputation."""

import datetime as dt
import math
import random

import pytest
from django.db import connection

from alignment.lib.errors import DomainError
from leads.conditions import SqlParams
from leads.scoring.engagement import (
    Anchored,
    anchored_add,
    anchored_from_touchpoints,
    engagement_at,
)
from leads.scoring.rules import compile_spec, lead_values, spec_diff, validate_spec
from leads.scoring.sql import engagement_rule_sql, fit_rule_sql, fit_score_sql
from tests.factories import CampaignFactory, LeadFactory, SourceFactory, TouchpointFactory

BASE = {
    "half_life_days": 10.0,
    "mql_total": 100,
    "mql_fit": 40,
    "grade_a": 60,
    "grade_b": 40,
    "grade_c": 20,
}


def model_of(fit_rules=(), engagement_rules=(), caps=None, **settings):
    spec = validate_spec(
        {
            **BASE,
            **settings,
            "group_caps": caps or {},
            "fit_rules": list(fit_rules),
            "engagement_rules": list(engagement_rules),
        }
    )
    return compile_spec(spec, model_id=1, name="test")


class FakeLead:
    def __init__(self, **values):
        for name in ("title", "company", "industry", "country", "email", "phone", "website"):
            setattr(self, name, values.pop(name, ""))
        self.company_size = values.pop("company_size", None)
        self.attributes = values.pop("attributes", {})
        for name, value in values.items():
            setattr(self, name, value)


def fit(model, source_key=None, **lead):
    return model.fit_score(lead_values(FakeLead(**lead), source_key=source_key))


# --- operators -------------------------------------------------------------------------------------

CASES = [
    # (field, op, value, lead values, matches)
    ("title", "eq", "CEO", {"title": " ceo "}, True),
    ("title", "eq", "CEO", {"title": "CEO of sales"}, False),
    ("title", "in", ["cto", "CFO"], {"title": "Cfo"}, True),
    ("title", "in", ["cto", "CFO"], {"title": "COO"}, False),
    ("title", "contains", "vp", {"title": "SVP Marketing"}, True),
    ("title", "contains", ["chief", "head of"], {"title": "Head Of IT"}, True),
    ("title", "contains", " vp ", {"title": "MVP"}, False),
    ("title", "exists", True, {"title": "  "}, False),
    ("title", "exists", False, {"title": ""}, True),
    ("company_size", "gte", 100, {"company_size": 100}, True),
    ("company_size", "gt", 100, {"company_size": 100}, False),
    ("company_size", "lt", 100, {"company_size": 99}, True),
    ("company_size", "lte", 100, {"company_size": 101}, False),
    ("company_size", "between", [50, 199], {"company_size": 199}, True),
    ("company_size", "between", [50, 199], {"company_size": None}, False),
    ("company_size", "eq", 120, {"company_size": 120}, True),
    ("company_size", "exists", True, {"company_size": 0}, True),
    ("company_size", "exists", False, {"company_size": None}, True),
    ("attributes.seats", "gte", 10, {"attributes": {"seats": "12"}}, True),
    ("attributes.seats", "gte", 10, {"attributes": {"seats": " 9.5 "}}, False),
    ("attributes.seats", "gte", 10, {"attributes": {"seats": "many"}}, False),
    ("attributes.seats", "eq", 12, {"attributes": {"seats": 12.0}}, True),
    ("attributes.seats", "eq", "12", {"attributes": {"seats": 12}}, True),  # as routing: a number
    ("attributes.seats", "between", [1, 5], {"attributes": {"seats": True}}, False),
    ("attributes.paying", "eq", True, {"attributes": {"paying": True}}, True),
    ("attributes.paying", "eq", True, {"attributes": {"paying": "true"}}, False),
    ("attributes.plan", "in", ["pro", 3, False], {"attributes": {"plan": "PRO"}}, True),
    ("attributes.plan", "in", ["pro", 3, False], {"attributes": {"plan": "3"}}, True),
    ("attributes.plan", "in", ["pro", 3, False], {"attributes": {"plan": False}}, True),
    ("attributes.plan", "contains", "ent", {"attributes": {"plan": "Enterprise"}}, True),
    ("attributes.plan", "contains", "ent", {"attributes": {"plan": ["ENT"]}}, True),  # membership
    ("attributes.plan", "contains", "ent", {"attributes": {"plan": ["enterprise"]}}, False),
    ("attributes.plan", "exists", True, {"attributes": {"plan": None}}, False),
    ("attributes.plan", "exists", True, {"attributes": {"plan": []}}, True),
    ("attributes.plan", "exists", False, {"attributes": {}}, True),
]


@pytest.mark.parametrize(("field", "op", "value", "lead", "matches"), CASES)
def test_each_operator_matches_as_documented(field, op, value, lead, matches):
    model = model_of([{"field": field, "op": op, "value": value, "points": 7}])
    assert fit(model, **lead) == (7 if matches else 0)


def test_source_rules_compare_the_source_key():
    model = model_of([{"field": "source", "op": "eq", "value": "Google Ads", "points": 5}])
    assert fit(model, source_key="google_ads") == 5
    assert fit(model, source_key=None) == 0


def test_negative_points_lower_the_fit():
    model = model_of(
        [
            {"field": "title", "op": "contains", "value": "director", "points": 20},
            {"field": "title", "op": "contains", "value": "student", "points": -35},
        ]
    )
    assert fit(model, title="Director") == 20
    assert fit(model, title="Student director") == -15


def test_a_group_cap_limits_only_its_own_group():
    model = model_of(
        [
            {
                "key": "ceo",
                "field": "title",
                "op": "eq",
                "value": "ceo",
                "points": 30,
                "group": "s",
            },
            {
                "key": "chief",
                "field": "title",
                "op": "contains",
                "value": "c",
                "points": 25,
                "group": "s",
            },
            {
                "key": "neg",
                "field": "title",
                "op": "contains",
                "value": "e",
                "points": -10,
                "group": "s",
            },
            {
                "key": "big",
                "field": "company_size",
                "op": "gte",
                "value": 100,
                "points": 20,
                "group": "size",
            },
            {"key": "de", "field": "country", "op": "eq", "value": "de", "points": 10},
        ],
        caps={"s": 40},
    )
    # s: 30 + 25 - 10 = 45, capped at 40; "size" has no cap; the ungrouped rule adds 10
    assert fit(model, title="CEO", company_size=500, country="DE") == 40 + 20 + 10
    # below the cap nothing is cut, and negative points still count inside the group
    assert fit(model, title="Eco") == 25 - 10


@pytest.mark.parametrize(
    ("fit_score", "grade"),
    [(60, "A"), (59, "B"), (40, "B"), (39, "C"), (20, "C"), (19, "D"), (-5, "D")],
)
def test_fit_maps_to_a_grade(fit_score, grade):
    assert model_of().grade(fit_score) == grade


def test_mql_definition_needs_both_total_and_fit():
    model = model_of()
    assert model.qualifies(fit=40, total=100)
    assert not model.qualifies(fit=39, total=150)
    assert not model.qualifies(fit=80, total=99.99)


# --- validation ------------------------------------------------------------------------------------


def spec_with(**changes):
    return {**BASE, "fit_rules": [], "engagement_rules": [], **changes}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            spec_with(fit_rules=[{"field": "shoe_size", "op": "eq", "value": 1, "points": 1}]),
            "Fit rule 1 tests an unknown field 'shoe_size'",
        ),
        (
            spec_with(fit_rules=[{"field": "title", "op": "like", "value": "x", "points": 1}]),
            "unknown op 'like'",
        ),
        (
            spec_with(fit_rules=[{"field": "title", "op": "gte", "value": 3, "points": 1}]),
            "cannot compare title as a number",
        ),
        (
            spec_with(
                fit_rules=[{"field": "company_size", "op": "contains", "value": "1", "points": 1}]
            ),
            "cannot use contains on a number",
        ),
        (
            spec_with(
                fit_rules=[{"field": "company_size", "op": "between", "value": [9, 1], "points": 1}]
            ),
            "low above high",
        ),
        (
            spec_with(fit_rules=[{"field": "title", "op": "eq", "value": "x", "points": 0}]),
            "whole number other than 0",
        ),
        (
            spec_with(fit_rules=[{"field": "title", "op": "eq", "value": "x", "points": 2.5}]),
            "whole number other than 0",
        ),
        (
            spec_with(fit_rules=[{"field": "title", "op": "in", "value": [], "points": 1}]),
            "non-empty list",
        ),
        (
            spec_with(fit_rules=[{"field": "title", "op": "exists", "value": "yes", "points": 1}]),
            "true or false",
        ),
        (
            spec_with(engagement_rules=[{"kind": "telepathy", "points": 1}]),
            "Engagement rule 1 has an unknown touchpoint kind 'telepathy'",
        ),
        (
            spec_with(engagement_rules=[{"kind": "web_visit", "points": 1, "group": "Web Visits"}]),
            "group name",
        ),
        (
            spec_with(
                group_caps={"web": 0},
                engagement_rules=[{"kind": "web_visit", "points": 1, "group": "web"}],
            ),
            "cap of group web",
        ),
        (spec_with(group_caps={"nobody": 5}), "Cap for group nobody, which no rule uses"),
        (spec_with(half_life_days=0), "half_life_days"),
        (spec_with(grade_a=10, grade_b=20), "must not increase"),
        (
            spec_with(
                fit_rules=[{"key": "k", "field": "title", "op": "eq", "value": "a", "points": 1}],
                engagement_rules=[{"key": "k", "kind": "web_visit", "points": 1}],
            ),
            "Two rules have the key 'k'",
        ),
        (
            spec_with(
                fit_rules=[{"field": "title", "op": "eq", "value": "a", "points": 1, "group": "g"}],
                engagement_rules=[{"kind": "web_visit", "points": 1, "group": "g"}],
            ),
            "both fit and engagement rules",
        ),
    ],
)
def test_invalid_specs_are_refused_with_a_readable_reason(spec, message):
    with pytest.raises(DomainError) as error:
        validate_spec(spec)
    assert message in str(error.value)


def test_rules_get_keys_and_labels_when_not_given():
    spec = validate_spec(
        spec_with(
            fit_rules=[{"field": "company_size", "op": "between", "value": [10, 49], "points": 5}],
            engagement_rules=[
                {"kind": "webinar_attended", "metadata": {"track": "pricing"}, "points": 9}
            ],
        )
    )
    assert spec["fit_rules"][0]["key"] == "fit_company_size_between_10_49"
    assert spec["fit_rules"][0]["label"] == "company size between 10 and 49"
    assert spec["engagement_rules"][0]["label"] == "Webinar attended, track = pricing"


def test_diff_lists_rules_added_removed_changed_and_thresholds():
    old = validate_spec(
        spec_with(
            group_caps={"web": 10},
            fit_rules=[
                {"key": "vp", "field": "title", "op": "contains", "value": "vp", "points": 20},
                {"key": "de", "field": "country", "op": "eq", "value": "DE", "points": 10},
            ],
            engagement_rules=[{"key": "web", "kind": "web_visit", "points": 2, "group": "web"}],
        )
    )
    new = validate_spec(
        spec_with(
            mql_total=90,
            group_caps={"web": 15},
            fit_rules=[
                {"key": "vp", "field": "title", "op": "contains", "value": "vp", "points": 25},
                {"key": "big", "field": "company_size", "op": "gte", "value": 500, "points": 15},
            ],
            engagement_rules=[{"key": "web", "kind": "web_visit", "points": 2, "group": "web"}],
        )
    )
    diff = spec_diff(old, new)
    assert [r["key"] for r in diff["fit_rules"]["added"]] == ["big"]
    assert [r["key"] for r in diff["fit_rules"]["removed"]] == ["de"]
    assert diff["fit_rules"]["changed"] == [
        {
            "key": "vp",
            "label": "title contains vp",
            "changes": [{"field": "points", "from": 20, "to": 25}],
        }
    ]
    assert diff["engagement_rules"] == {"added": [], "removed": [], "changed": []}
    assert diff["settings"] == [{"name": "mql_total", "from": 100, "to": 90}]
    assert diff["group_caps"] == [{"group": "web", "from": 10, "to": 15}]
    assert (
        diff["summary"]
        == "1 rule added; 1 rule removed; 1 rule changed; mql_total 100 → 90; cap of web 10 → 15"
    )
    assert spec_diff(old, old)["summary"] == "no changes"


# --- SQL against Python (PostgreSQL) ---------------------------------------------------------------

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the set-based SQL is PostgreSQL's; SQLite rescoring runs the Python functions themselves",
)

TRICKY_ATTRIBUTES = [
    {},
    {"seats": 12},
    {"seats": "12"},
    {"seats": " 12.50 "},
    {"seats": "1e3"},
    {"seats": "twelve"},
    {"seats": ""},
    {"seats": "   "},
    {"seats": None},
    {"seats": True},
    {"seats": False},
    {"seats": [1, 2]},
    {"seats": {"a": 1}},
    {"seats": -3},
    {"seats": 0.1},
    {"seats": 10**40},
    {"seats": "+7"},
    {"seats": ".5"},
    {"seats": "5."},
    {"seats": "Pro"},
    {"seats": "enterprise PRO"},
    {"seats": "true"},
]
TRICKY_TITLES = ["", "  ", "CEO", " ceo ", "SVP Sales", "Head of IT", "MVP", "Chief Of Staff", "vp"]
ATTRIBUTE_RULES = [
    ("eq", 12),
    ("eq", 12.5),
    ("eq", "pro"),
    ("eq", True),
    ("eq", False),
    ("in", ["pro", 12, True]),
    ("in", [0.1, -3]),
    ("contains", ["pro", "ent"]),
    ("gt", 5),
    ("gte", 12),
    ("lt", 0.5),
    ("lte", -3),
    ("between", [0, 13]),
    ("exists", True),
    ("exists", False),
]
TITLE_RULES = [
    ("eq", "ceo"),
    ("in", ["ceo", "vp"]),
    ("contains", ["vp", "chief"]),
    ("contains", " of "),
    ("exists", True),
    ("exists", False),
]


@needs_postgres
@pytest.mark.django_db
def test_every_fit_rule_in_sql_agrees_with_python():
    source = SourceFactory(name="Google Ads", key="google_ads")
    leads = []
    for i, attributes in enumerate(TRICKY_ATTRIBUTES):
        leads.append(
            LeadFactory(
                attributes=attributes,
                title=TRICKY_TITLES[i % len(TRICKY_TITLES)],
                company_size=[None, 0, 49, 50, 120, 5000][i % 6],
                source=source if i % 2 else None,
            )
        )
    rules = [
        {"key": f"a{n}", "field": "attributes.seats", "op": op, "value": value, "points": 1}
        for n, (op, value) in enumerate(ATTRIBUTE_RULES)
    ]
    rules += [
        {"key": f"t{n}", "field": "title", "op": op, "value": value, "points": 1}
        for n, (op, value) in enumerate(TITLE_RULES)
    ]
    rules += [
        {"key": "s1", "field": "company_size", "op": "between", "value": [1, 120], "points": 1},
        {"key": "s2", "field": "company_size", "op": "in", "value": [0, 5000], "points": 1},
        {"key": "s3", "field": "company_size", "op": "exists", "value": False, "points": 1},
        {"key": "src", "field": "source", "op": "eq", "value": "Google_Ads", "points": 1},
        {"key": "src2", "field": "source", "op": "exists", "value": False, "points": 1},
    ]
    model = model_of(rules)
    p = SqlParams()
    columns = ", ".join(
        f"coalesce(({fit_rule_sql(rule, p)}), false) AS r{n}"
        for n, rule in enumerate(model.fit_rules)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.id, {columns} FROM leads_lead l "
            "LEFT JOIN leads_source src ON src.id = l.source_id ORDER BY l.id",
            p.values,
        )
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    checked = 0
    for lead in leads:
        values = lead_values(lead, source_key=lead.source.key if lead.source_id else None)
        for n, rule in enumerate(model.fit_rules):
            assert rows[lead.pk][n] is rule.matches(values), (rule.key, lead.attributes, lead.title)
            checked += 1
    assert checked == len(leads) * len(model.fit_rules)


@needs_postgres
@pytest.mark.django_db
def test_fit_score_and_engagement_rules_in_sql_agree_with_python():
    campaign = CampaignFactory()
    model = model_of(
        [
            {
                "key": "a",
                "field": "title",
                "op": "contains",
                "value": "vp",
                "points": 20,
                "group": "s",
            },
            {
                "key": "b",
                "field": "title",
                "op": "contains",
                "value": "sales",
                "points": 15,
                "group": "s",
            },
            {"key": "c", "field": "country", "op": "eq", "value": "de", "points": -5},
        ],
        [
            {"key": "w", "kind": "web_visit", "points": 1},
            {"key": "wc", "kind": "web_visit", "campaign": campaign.pk, "points": 2},
            {
                "key": "wm",
                "kind": "web_visit",
                "metadata": {"page": "pricing", "n": 2},
                "points": 3,
            },
        ],
        caps={"s": 25},
    )
    leads = [
        LeadFactory(title=t, country=c) for t in ("VP Sales", "vp", "Sales") for c in ("DE", "")
    ]
    p = SqlParams()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT l.id, {fit_score_sql(model, p)} FROM leads_lead l", p.values)
        sql_fit = dict(cursor.fetchall())
    for lead in leads:
        assert sql_fit[lead.pk] == model.fit_score(lead_values(lead))

    lead = leads[0]
    touchpoints = [
        TouchpointFactory(
            lead=lead, kind="web_visit", campaign=campaign if i % 2 else None, metadata=md
        )
        for i, md in enumerate(
            [
                {},
                {"page": "pricing", "n": 2},
                {"page": "PRICING ", "n": "2"},
                {"page": "pricing"},
                {"n": 2.0, "page": "pricing"},
            ]
        )
    ]
    p = SqlParams()
    columns = ", ".join(
        f"coalesce(({engagement_rule_sql(r, p)}), false)" for r in model.engagement_rules
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tp.id, {columns} FROM leads_touchpoint tp ORDER BY tp.id", p.values)
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    for tp in touchpoints:
        expected = tuple(
            r.matches(tp.kind, tp.campaign_id, tp.metadata) for r in model.engagement_rules
        )
        assert rows[tp.pk] == expected, tp.metadata


# --- exact decay -----------------------------------------------------------------------------------

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
KINDS = ["web_visit", "email_click", "demo_request", "webinar_attended", "content_download"]


def random_model(rng: random.Random):
    caps = {}
    rules = []
    for n, kind in enumerate(KINDS):
        group = rng.choice(["", "g1", "g2", "g3"])
        if group and rng.random() < 0.7:
            caps[group] = rng.randint(5, 60)
        points = rng.choice([-8, -3, 1, 2, 5, 10, 25, 50])
        rules.append({"key": f"r{n}", "kind": kind, "points": points, "group": group})
    # a second rule on one kind: one touchpoint matching two rules counts twice
    rules.append({"key": "extra", "kind": "web_visit", "points": 4, "group": rules[0]["group"]})
    caps = {g: c for g, c in caps.items() if any(r["group"] == g for r in rules)}
    return model_of([], rules, caps=caps, half_life_days=rng.choice([0.5, 7.0, 30.0, 90.0]))


def direct(model, touchpoints, at):
    """engagement(t) = sum over groups of min(cap, sum p * 0.5 ** ((t - t_i) / h)), straight."""
    h = model.half_life_days * 86400
    groups: dict[str, float] = {}
    ungrouped = 0.0
    scale = 0.0
    for kind, occurred_at in touchpoints:
        for rule in model.engagement_rules:
            if rule.kind == kind:
                term = rule.points * 0.5 ** ((at - occurred_at).total_seconds() / h)
                scale += abs(term)
                if rule.group in model.group_caps:
                    groups[rule.group] = groups.get(rule.group, 0.0) + term
                else:
                    ungrouped += term
    value = ungrouped + sum(min(model.group_caps[g], s) for g, s in groups.items())
    return value, scale


def assert_close(actual, expected, scale):
    assert abs(actual - expected) <= 1e-9 * max(1.0, abs(expected), scale), (actual, expected)


def test_anchored_engagement_is_exact_over_random_histories():
    for seed in range(400):
        rng = random.Random(seed)
        model = random_model(rng)
        state = Anchored()
        seen = []
        now = T0
        for _ in range(rng.randint(1, 60)):
            now += dt.timedelta(seconds=rng.expovariate(1 / (86400 * rng.choice([0.1, 2, 20]))))
            # most touchpoints are fresh; some arrive late (imports, offline events), out of order
            age = rng.choice([0, 0, 0, rng.uniform(0, 86400 * 200)])
            occurred_at = now - dt.timedelta(seconds=age)
            kind = rng.choice(KINDS)
            points = model.touchpoint_points(kind, None, {})
            state = anchored_add(model, state, points=points, occurred_at=occurred_at, now=now)
            seen.append((kind, occurred_at))
            for at in (now, now + dt.timedelta(days=rng.uniform(0, 400))):
                expected, scale = direct(model, seen, at)
                assert_close(engagement_at(model, state, at), expected, scale)
        # the full recomputation (what a rescore stores) agrees too
        at = now + dt.timedelta(hours=rng.uniform(0, 1000))
        full = anchored_from_touchpoints(model, [(k, None, {}, t) for k, t in seen], at=now)
        expected, scale = direct(model, seen, at)
        assert_close(engagement_at(model, full, at), expected, scale)


def test_caps_apply_to_the_decayed_sum_at_read_time():
    model = model_of([], [{"kind": "web_visit", "points": 10, "group": "web"}], caps={"web": 15})
    state = Anchored()
    for _ in range(3):
        state = anchored_add(model, state, points={"web": 10}, occurred_at=T0, now=T0)
    assert state.sums == {"web": 30.0}  # the uncapped sum is stored
    assert engagement_at(model, state, T0) == 15  # capped when read
    # one half-life later the sum is 15: the cap no longer bites; two later, 7.5
    assert engagement_at(model, state, T0 + dt.timedelta(days=10)) == pytest.approx(15)
    assert engagement_at(model, state, T0 + dt.timedelta(days=20)) == pytest.approx(7.5)


def test_reanchoring_keeps_the_stored_numbers_bounded_over_years():
    model = model_of([], [{"kind": "web_visit", "points": 5}], half_life_days=7.0)
    state = Anchored()
    seen = []
    now = T0
    for day in range(5 * 365):  # a visit every day for five years
        now = T0 + dt.timedelta(days=day)
        state = anchored_add(model, state, points={"_": 5}, occurred_at=now, now=now)
        seen.append(("web_visit", now))
    # the stored sum is at most the geometric bound 5 / (1 - 0.5 ** (1 / 7)), never astronomically large
    assert state.anchor == now
    assert state.sums["_"] <= 5 / (1 - 0.5 ** (1 / 7)) + 1e-9
    expected, scale = direct(model, seen, now)
    assert_close(engagement_at(model, state, now), expected, scale)

    # a touchpoint five years after the last one: the old sum has decayed to nothing, the new one is exact
    later = now + dt.timedelta(days=5 * 365)
    state = anchored_add(model, state, points={"_": 5}, occurred_at=later, now=later)
    assert state.anchor == later
    assert state.sums["_"] == pytest.approx(5, rel=1e-15)
    assert math.isfinite(engagement_at(model, state, later + dt.timedelta(days=3650)))
    # an out-of-order touchpoint from the past adds its decayed term without moving the anchor
    state = anchored_add(
        model, state, points={"_": 5}, occurred_at=later - dt.timedelta(days=7), now=later
    )
    assert state.anchor == later
    assert state.sums["_"] == pytest.approx(5 + 2.5)
