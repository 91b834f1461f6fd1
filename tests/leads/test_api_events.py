"""The event feed: every event in id order from a cursor, none skipped or repeated (also when a
transaction that took a lower id commits later), filters, include=lead in a fixed number of
queries, scopes and roles."""

import threading
import time

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from rest_framework.test import APIClient

from alignment.api_keys import api_key_create
from leads.api import events as feed
from leads.events import event_record
from leads.models import EventType, LeadEvent, Stage
from leads.services import lead_move
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def client_for(*scopes: str, as_user=None) -> APIClient:
    _, raw = api_key_create(name="feed reader", scopes=list(scopes), as_user=as_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def record(lead, type: str = EventType.LEAD_UPDATED, **payload) -> LeadEvent:
    return event_record(type=type, lead=lead, system="test", payload=payload)


def start() -> str:
    """A cursor just before this test's first event (on PostgreSQL, earlier tests' rolled-back
    transactions left gaps below it, which a feed reader would first wait for)."""
    return str(LeadEvent.objects.order_by("id").values_list("id", flat=True)[0] - 1)


def read_all(client, **params) -> tuple[list[dict], str]:
    """Follow `next` until has_more is false; returns the events and the last cursor."""
    seen, after = [], params.pop("after", "")
    for _ in range(100):
        body = client.get(URL, {**params, "after": after}).json()
        seen += body["events"]
        after = body["next"]
        if not body["has_more"]:
            return seen, after
    raise AssertionError("the feed never caught up")


def test_the_feed_serves_every_event_once_in_order_page_by_page(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    written = [record(lead, n=n).pk for n in range(7)]
    client = client_for("events:read")

    first = client.get(URL, {"limit": 3, "after": start()}).json()
    assert [e["id"] for e in first["events"]] == written[:3]
    assert first["has_more"] is True
    events, cursor = read_all(client, limit=3, after=first["next"])

    assert [e["id"] for e in first["events"] + events] == written
    # caught up: the cursor stays put until something new is written
    assert client.get(URL, {"after": cursor}).json() == {
        "events": [],
        "next": cursor,
        "has_more": False,
    }
    later = record(lead).pk
    assert [e["id"] for e in client.get(URL, {"after": cursor}).json()["events"]] == [later]


def test_each_event_has_its_type_time_lead_actor_and_payload(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    lead_move(lead=lead, to=Stage.SAL, by=rep)

    events = client_for("events:read").get(URL, {"after": start()}).json()["events"]

    assert [e["type"] for e in events] == [EventType.LEAD_STAGE_CHANGED, EventType.LEAD_ACCEPTED]
    event = events[0]
    assert event["lead_id"] == lead.pk
    assert event["actor"] == {"username": "rep", "system": ""}
    assert event["payload"]["from"] == "mql" and event["payload"]["to"] == "sal"
    assert event["at"].endswith("+00:00") or event["at"].endswith("Z")
    assert "lead" not in event


def test_a_system_is_the_actor_of_a_system_event():
    lead = LeadFactory()
    record(lead)
    assert client_for("events:read").get(URL, {"after": start()}).json()["events"][0]["actor"] == {
        "username": None,
        "system": "test",
    }


def test_type_and_lead_filters_keep_the_cursor_moving_past_what_they_leave_out(rep):
    one, two = LeadFactory(), LeadFactory()
    created = record(one, EventType.LEAD_CREATED)
    record(one)
    changed = record(two, EventType.LEAD_STAGE_CHANGED)
    record(two)
    last = record(two).pk
    client = client_for("events:read")

    body = client.get(URL, {"type": "lead.created,lead.stage_changed", "after": start()}).json()
    assert [e["id"] for e in body["events"]] == [created.pk, changed.pk]
    assert body["next"] == str(last)
    assert [
        e["id"] for e in client.get(URL, {"lead": one.pk, "after": start()}).json()["events"]
    ] == [
        created.pk,
        created.pk + 1,
    ]
    assert client.get(URL, {"type": "lead.created", "after": body["next"]}).json()["events"] == []


def test_bad_parameters_are_field_errors(rep):
    client = client_for("events:read")
    for params, field in [
        ({"type": "lead.created,lead.exploded"}, "type"),
        ({"after": "abc"}, "after"),
        ({"after": "-4"}, "after"),
        ({"after": "9" * 30}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"include": "owner"}, "include"),
        ({"lead": "x"}, "lead"),
    ]:
        response = client.get(URL, params)
        assert response.status_code == 400, params
        assert field in response.json()["errors"], params


def test_include_lead_adds_the_lead_in_a_fixed_number_of_queries(rep, django_assert_num_queries):
    client = client_for("events:read")
    client.get(URL)  # the key's last use is written at most once a minute

    def count_for(n: int) -> int:
        for _ in range(n):
            record(LeadFactory(owner=rep))
        after = start()
        with django_assert_num_queries(3) as captured:  # the key, the id window, the events
            body = client.get(URL, {"include": "lead", "limit": 1000, "after": after}).json()
        assert all(e["lead"]["id"] == e["lead_id"] for e in body["events"])
        assert body["events"][-1]["lead"]["owner"]["username"] == "rep"
        return len(captured.captured_queries)

    assert count_for(2) == count_for(10)


def test_include_lead_is_null_for_an_event_without_a_lead():
    event_record(type=EventType.SCORING_ACTIVATED, lead=None, system="scoring")
    events = (
        client_for("events:read").get(URL, {"include": "lead", "after": start()}).json()["events"]
    )
    assert events[0]["lead_id"] is None and events[0]["lead"] is None


def test_the_feed_needs_events_read_and_a_team_role(rep, outsider):
    record(LeadFactory())
    problem = client_for("leads:read", "pipeline:write").get(URL)
    assert problem.status_code == 403
    assert "events:read" in problem.json()["detail"]
    assert "events" not in problem.json()
    assert client_for("events:read", as_user=outsider).get(URL).status_code == 403
    assert client_for("events:read", as_user=rep).get(URL).status_code == 200


# --- ids that commit out of order --------------------------------------------------------------


def horizon_with(monkeypatch, cursor: feed.Cursor, *, ids, xmin, xmax) -> feed.Horizon:
    monkeypatch.setattr(feed, "_window", lambda after: (xmin, xmax, [i for i in ids if i > after]))
    return feed.events_horizon(cursor)


def test_a_gap_holds_back_the_ids_above_it_until_its_transactions_end(monkeypatch):
    # 3 was taken by a transaction still running when 1, 2, 4, 5 were visible (xmax 900)
    first = horizon_with(monkeypatch, feed.Cursor(), ids=[1, 2, 4, 5], xmin=850, xmax=900)
    assert (first.upto, first.more) == (2, False)
    assert str(first.cursor) == "2.0.5.900"

    # still running (xmin has not passed 900): held back again, the same wait carried on
    again = horizon_with(monkeypatch, first.cursor, ids=[1, 2, 4, 5, 6], xmin=899, xmax=950)
    assert again.upto == 2 and str(again.cursor) == "2.0.5.900"

    # it committed: 3 is visible and served before 4
    filled = horizon_with(monkeypatch, first.cursor, ids=[1, 2, 3, 4, 5, 6], xmin=901, xmax=960)
    assert filled.upto == 6 and str(filled.cursor) == "6"


def test_a_gap_whose_transaction_rolled_back_is_passed_once_it_ended(monkeypatch):
    first = horizon_with(monkeypatch, feed.Cursor(), ids=[1, 2, 4, 5], xmin=850, xmax=900)
    # 3 never appears; its transaction ended (xmin passed 900): 3 is a permanent gap
    passed = horizon_with(monkeypatch, first.cursor, ids=[1, 2, 4, 5, 7], xmin=905, xmax=910)
    # up to 5 is final; 6 is a new gap seen above it, which waits for its own transactions
    assert passed.upto == 5
    assert str(passed.cursor) == "5.5.7.910"
    done = horizon_with(monkeypatch, passed.cursor, ids=[1, 2, 4, 5, 7], xmin=911, xmax=911)
    assert done.upto == 7 and str(done.cursor) == "7"


def test_a_numeric_cursor_is_a_starting_point():
    assert feed.Cursor.parse("41") == feed.Cursor(after=41)
    assert str(feed.Cursor.parse("2.0.5.900")) == "2.0.5.900"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers: PostgreSQL")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_an_event_committed_after_a_higher_id_is_not_skipped(outcome):
    lead = LeadFactory()
    before = record(lead).pk
    taken, release = threading.Event(), threading.Event()
    held: list[int] = []

    def slow_writer():
        try:
            with transaction.atomic():
                held.append(record(lead, slow=True).pk)
                taken.set()
                release.wait(10)
                if outcome == "rollback":
                    transaction.set_rollback(True)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert taken.wait(10)
    fast = record(lead, fast=True).pk  # a higher id, committed first
    assert fast > held[0]
    client = client_for("events:read")

    body = client.get(URL, {"after": before - 1}).json()
    assert [e["id"] for e in body["events"]] == [before]  # the fast one is held back
    assert body["has_more"] is False

    release.set()
    thread.join(10)
    # the gap of a rollback is passed once every transaction that was running then has ended
    # (xids are the server's: other databases' transactions count too), so poll a while
    events, cursor = [], body["next"]
    for _ in range(300):
        page = client.get(URL, {"after": cursor}).json()
        events += page["events"]
        cursor = page["next"]
        if events:
            break
        time.sleep(0.1)
    expected = [held[0], fast] if outcome == "commit" else [fast]
    assert [e["id"] for e in events] == expected
    assert client.get(URL, {"after": cursor}).json()["events"] == []
