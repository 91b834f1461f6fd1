"""GET /api/v1/leads/: every filter, every ordering, cursor pages over equal timestamps, the
query count."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import Lead, Stage
from tests.factories import CampaignFactory, LeadFactory, SourceFactory
from tests.leads.test_api_leads import assert_problem, client_with, reader

pytestmark = pytest.mark.django_db

LEADS = "/api/v1/leads/"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def stamp(lead: Lead, *, updated: datetime | None = None, created: datetime | None = None):
    """Set the times a factory cannot (updated_at is auto_now on save)."""
    fields = {}
    if updated is not None:
        fields["updated_at"] = updated
    if created is not None:
        fields["created_at"] = created
    Lead.objects.filter(pk=lead.pk).update(**fields)


@pytest.fixture
def api():
    return reader()


def test_the_default_order_is_most_recently_changed_first_ties_by_id(api):
    a, b, c = LeadFactory.create_batch(3)
    stamp(a, updated=T0 + timedelta(hours=2))
    stamp(b, updated=T0)
    stamp(c, updated=T0)

    assert ids(api.get(LEADS)) == [a.pk, c.pk, b.pk]


def test_the_page_has_no_total_and_says_where_the_next_one_is(api):
    LeadFactory.create_batch(3)

    body = api.get(LEADS, {"page_size": 2}).json()

    assert set(body) == {"results", "next", "next_cursor"}
    assert body["next"].startswith("http://testserver/api/v1/leads/?")
    assert f"cursor={body['next_cursor']}" in body["next"] and "page_size=2" in body["next"]
    last = api.get(body["next"]).json()
    assert len(last["results"]) == 1 and last["next"] is None and last["next_cursor"] is None


def test_stage_filter_takes_one_or_several(api):
    new = LeadFactory(stage=Stage.NEW)
    mql = LeadFactory(stage=Stage.MQL)
    sal = LeadFactory(stage=Stage.SAL)

    assert ids(api.get(LEADS, {"stage": "mql"})) == [mql.pk]
    assert set(ids(api.get(LEADS, {"stage": "mql,sal"}))) == {mql.pk, sal.pk}
    assert new.pk not in ids(api.get(LEADS, {"stage": "mql, sal"}))
    problem = assert_problem(api.get(LEADS, {"stage": "mql,hot"}), 400)
    assert "hot" in problem["errors"]["stage"][0]


def test_owner_filter_by_id_or_none(api, rep, other_rep):
    mine = LeadFactory(owner=rep)
    LeadFactory(owner=other_rep)
    nobodys = LeadFactory(owner=None)

    assert ids(api.get(LEADS, {"owner": rep.pk})) == [mine.pk]
    assert ids(api.get(LEADS, {"owner": "none"})) == [nobodys.pk]
    assert ids(api.get(LEADS, {"owner": 999_999})) == []
    for wrong in ("rita", 0, 10**30):
        assert "owner" in assert_problem(api.get(LEADS, {"owner": wrong}), 400)["errors"]


def test_source_campaign_and_grade_filters(api):
    google = SourceFactory(name="Google", key="google")
    webinar = SourceFactory(name="Webinar", key="webinar")
    spring, autumn = CampaignFactory(), CampaignFactory()
    a = LeadFactory(source=google, campaign=spring, grade="A")
    b = LeadFactory(source=webinar, campaign=autumn, grade="B")

    assert ids(api.get(LEADS, {"source": "google"})) == [a.pk]
    assert ids(api.get(LEADS, {"source": " Google "})) == [a.pk]
    assert ids(api.get(LEADS, {"source": "nowhere"})) == []
    assert ids(api.get(LEADS, {"campaign": autumn.pk})) == [b.pk]
    assert ids(api.get(LEADS, {"grade": "A"})) == [a.pk]
    assert "campaign" in assert_problem(api.get(LEADS, {"campaign": "x"}), 400)["errors"]
    assert ids(api.get(LEADS, {"campaign": 999_999})) == []
    assert "campaign" in assert_problem(api.get(LEADS, {"campaign": 10**30}), 400)["errors"]


def test_score_range_is_inclusive(api):
    low, mid, high = (LeadFactory(score=s) for s in (10, 50, 90))

    assert ids(api.get(LEADS, {"score_min": 50, "ordering": "score"})) == [mid.pk, high.pk]
    assert ids(api.get(LEADS, {"score_max": 50, "ordering": "score"})) == [low.pk, mid.pk]
    assert ids(api.get(LEADS, {"score_min": 20, "score_max": 60})) == [mid.pk]
    assert "score_min" in assert_problem(api.get(LEADS, {"score_min": "lots"}), 400)["errors"]


@pytest.mark.parametrize(
    "since",
    ["2026-11-02T10:00:00Z", "2026-11-02T11:00:00+01:00", "2026-11-02T11:00:00 01:00"],
    ids=["utc", "offset", "plus-sent-unencoded"],
)
def test_updated_since_takes_any_offset(api, since):
    old, new = LeadFactory.create_batch(2)
    stamp(old, updated=T0 + timedelta(minutes=59))
    stamp(new, updated=T0 + timedelta(hours=1))

    assert ids(api.get(LEADS, {"updated_since": since})) == [new.pk]


@pytest.mark.parametrize("field", ["updated_since", "created_since"])
@pytest.mark.parametrize("value", ["2026-11-02T10:00:00", "2026-11-02", "yesterday"])
def test_a_time_without_an_offset_or_no_time_is_a_field_error(api, field, value):
    problem = assert_problem(api.get(LEADS, {field: value}), 400)
    assert list(problem["errors"]) == [field]


def test_a_naive_time_is_refused_saying_why(api):
    problem = assert_problem(api.get(LEADS, {"updated_since": "2026-11-02T10:00:00"}), 400)
    assert "offset" in problem["errors"]["updated_since"][0]


def test_created_since(api):
    old, new = LeadFactory.create_batch(2)
    stamp(old, created=T0 - timedelta(days=1))
    stamp(new, created=T0)

    assert ids(api.get(LEADS, {"created_since": "2026-11-02T09:00:00Z"})) == [new.pk]


def test_filters_combine(api, rep):
    match = LeadFactory(stage=Stage.MQL, owner=rep, score=70)
    LeadFactory(stage=Stage.MQL, owner=rep, score=20)
    LeadFactory(stage=Stage.SAL, owner=rep, score=70)

    params = {"stage": "mql", "owner": rep.pk, "score_min": 50}
    assert ids(api.get(LEADS, params)) == [match.pk]


@pytest.fixture
def ordered():
    """Leads whose times and scores disagree, with ties in each."""
    rows = []
    for n, (created_h, updated_h, score) in enumerate(
        [(1, 5, 30), (2, 5, 10), (3, 1, 30), (4, 9, 20), (4, 1, 10)]
    ):
        lead = LeadFactory(score=score, email=f"o{n}@x.example")
        stamp(
            lead, created=T0 + timedelta(hours=created_h), updated=T0 + timedelta(hours=updated_h)
        )
        rows.append(Lead.objects.get(pk=lead.pk))
    return rows


@pytest.mark.parametrize("field", ["created_at", "updated_at", "score", "id"])
@pytest.mark.parametrize("descending", [False, True])
def test_every_ordering_with_id_breaking_ties(api, ordered, field, descending):
    expected = sorted(ordered, key=lambda lead: (getattr(lead, field), lead.pk), reverse=descending)

    response = api.get(LEADS, {"ordering": f"{'-' if descending else ''}{field}"})

    assert ids(response) == [lead.pk for lead in expected]


def test_an_unknown_ordering_is_a_field_error(api):
    problem = assert_problem(api.get(LEADS, {"ordering": "email"}), 400)
    assert list(problem["errors"]) == ["ordering"]


@pytest.mark.parametrize("ordering", ["-updated_at", "updated_at", "-created_at", "score", "-id"])
def test_a_cursor_walk_over_equal_times_skips_and_repeats_nothing(api, ordering):
    leads = LeadFactory.create_batch(23)
    for n, lead in enumerate(leads):
        # three instants and three scores for 23 leads: most rows tie with others
        when = T0 + timedelta(seconds=n % 3)
        Lead.objects.filter(pk=lead.pk).update(updated_at=when, created_at=when, score=n % 3)
    field = ordering.lstrip("-")
    rows = Lead.objects.all()
    expected = sorted(
        rows, key=lambda lead: (getattr(lead, field), lead.pk), reverse=ordering.startswith("-")
    )

    seen, url, params, pages = [], LEADS, {"ordering": ordering, "page_size": 5}, 0
    while url:
        body = api.get(url, params).json()
        seen += [row["id"] for row in body["results"]]
        url, params, pages = body["next"], None, pages + 1

    assert seen == [lead.pk for lead in expected]
    assert pages == 5


def test_a_cursor_keeps_its_place_when_rows_are_added_before_it(api):
    first = LeadFactory.create_batch(4)
    for n, lead in enumerate(first):
        stamp(lead, updated=T0 - timedelta(minutes=n))
    page = api.get(LEADS, {"page_size": 2}).json()
    newer = LeadFactory()
    stamp(newer, updated=T0 + timedelta(hours=1))

    rest = api.get(page["next"]).json()

    assert [r["id"] for r in rest["results"]] == [first[2].pk, first[3].pk]


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjoxfQ", "e30", "W10"])
def test_a_cursor_not_from_the_api_is_a_field_error(api, cursor):
    LeadFactory()
    problem = assert_problem(api.get(LEADS, {"cursor": cursor}), 400)
    assert list(problem["errors"]) == ["cursor"]


def forged(**data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        forged(o="-updated_at", v="2026-13-45T00:00:00Z", i=1),
        forged(o="-updated_at", v="2026-11-02T09:00:00", i=1),
        forged(o="-updated_at", v="2026-11-02T09:00:00Z", i=10**30),
        forged(o="-updated_at", v=5, i=1),
        forged(o="-score", v="NaN", i=1),
        forged(o="-score", v=True, i=1),
        forged(o="-id", v=1, i="1"),
    ],
)
def test_an_altered_cursor_is_a_field_error(api, cursor):
    LeadFactory()
    problem = assert_problem(
        api.get(
            LEADS, {"cursor": cursor, "ordering": json.loads(base64.urlsafe_b64decode(cursor))["o"]}
        ),
        400,
    )
    assert list(problem["errors"]) == ["cursor"]


def test_a_cursor_of_another_ordering_is_a_field_error(api):
    LeadFactory.create_batch(3)
    cursor = api.get(LEADS, {"page_size": 1, "ordering": "score"}).json()["next_cursor"]

    problem = assert_problem(api.get(LEADS, {"cursor": cursor}), 400)

    assert "ordering=score" in problem["errors"]["cursor"][0]


@pytest.mark.parametrize("size", [0, 501, "x"])
def test_page_size_is_1_to_500(api, size):
    assert "page_size" in assert_problem(api.get(LEADS, {"page_size": size}), 400)["errors"]


def test_page_size_500_is_allowed(api):
    LeadFactory.create_batch(3)
    assert len(ids(api.get(LEADS, {"page_size": 500}))) == 3


def test_listing_needs_the_scope_and_a_team_role(outsider, rep):
    LeadFactory()

    problem = assert_problem(client_with("events:read").get(LEADS), 403)
    assert "leads:read" in problem["detail"] and "results" not in problem
    assert_problem(reader(as_user=outsider).get(LEADS), 403)
    assert len(ids(reader(as_user=rep).get(LEADS))) == 1


@pytest.mark.parametrize("count", [3, 30])
def test_a_page_costs_the_same_queries_whatever_it_holds(
    api, rep, count, django_assert_num_queries
):
    source, campaign = SourceFactory(), CampaignFactory()
    LeadFactory.create_batch(count, owner=rep, source=source, campaign=campaign)
    api.get(LEADS)  # the key's last-used time is written once a minute, not on every call

    # the key (with its acting user), then the page with owner, source, campaign and reason
    with django_assert_num_queries(2):
        response = api.get(LEADS, {"stage": "new", "page_size": 50})
    assert len(ids(response)) == count


def test_the_list_never_counts_the_table(api):
    LeadFactory.create_batch(3)
    with CaptureQueriesContext(connection) as queries:
        api.get(LEADS, {"page_size": 1})
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


@pytest.mark.parametrize("name", ["stage", "owner", "campaign", "updated_since", "ordering"])
def test_a_parameter_sent_empty_is_a_field_error_not_no_filter(api, name):
    LeadFactory()
    assert list(assert_problem(api.get(f"{LEADS}?{name}="), 400)["errors"]) == [name]


def test_an_empty_cursor_is_the_first_page(api):
    lead = LeadFactory()
    assert ids(api.get(LEADS, {"cursor": ""})) == [lead.pk]
