"""Content requests: who may ask, vote, comment and decide; one vote a person; the events and the
notifications each step makes."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import Notification, Role
from content.models import Asset, ContentRequest, ContentRequestVote, RequestStatus
from content.requests.services import (
    content_request_comment,
    content_request_create,
    content_request_unvote,
    content_request_update,
    content_request_vote,
)
from leads.models import EventType, LeadEvent
from tests.factories import RepFactory, UserFactory

pytestmark = pytest.mark.django_db


def _asset(title="Bank case study"):
    return Asset.objects.create(
        title=title, kind="case_study", funnel_stage="decision", url="https://example.com/bank"
    )


def _ask(by, **fields):
    return content_request_create(
        by=by,
        title=fields.pop("title", "Banking case study"),
        details=fields.pop("details", "Three banking deals ask who else uses it."),
        **fields,
    )


def _events(type):
    return list(
        LeadEvent.objects.filter(type=type).order_by("id").values_list("payload", flat=True)
    )


@pytest.mark.parametrize(
    "role",
    ["marketer", "marketing_manager", "rep", "sales_manager", "admin"],
)
def test_everyone_on_the_team_may_ask(people, role):
    made = _ask(people[role], funnel_stage="decision", persona="CFO", industry="Banking")
    made.refresh_from_db()
    assert (made.status, made.requested_by, made.vote_count) == ("open", people[role], 0)
    assert (made.funnel_stage, made.persona, made.industry) == ("decision", "CFO", "Banking")


def test_someone_on_neither_team_may_not_ask_vote_or_comment(people):
    with pytest.raises(PermissionDenied):
        _ask(people["outsider"])
    made = _ask(people["rep"])
    with pytest.raises(PermissionDenied):
        content_request_vote(request=made, by=people["outsider"])
    with pytest.raises(PermissionDenied):
        content_request_comment(request=made, by=people["outsider"], body="hi")
    assert ContentRequest.objects.count() == 1
    assert not ContentRequestVote.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "  "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"funnel_stage": "later"}, "funnel_stage"),
        ({"persona": "p" * 101}, "persona"),
        ({"details": "d" * 4001}, "details"),
        ({"industry": 12}, "industry"),
    ],
)
def test_a_bad_request_is_refused_with_its_field(rep, fields, field):
    with pytest.raises(DomainError) as refused:
        _ask(rep, **fields)
    assert refused.value.field == field
    assert not ContentRequest.objects.exists()


def test_asking_records_the_event_and_notifies_the_marketing_managers(rep, marketing_manager):
    other_manager = UserFactory(username="mm2", role=Role.MARKETING_MANAGER)
    UserFactory(username="gone", role=Role.MARKETING_MANAGER, is_active=False)
    made = _ask(rep)
    assert _events(EventType.CONTENT_REQUESTED) == [
        {"request_id": made.pk, "title": "Banking case study"}
    ]
    event = LeadEvent.objects.get(type=EventType.CONTENT_REQUESTED)
    assert (event.lead_id, event.actor_id) == (None, rep.pk)
    notified = Notification.objects.filter(kind="content_request").order_by("user_id")
    assert [n.user for n in notified] == [marketing_manager, other_manager]
    assert notified[0].url == f"/content/requests/{made.pk}/"
    assert "Banking case study" in notified[0].title


def test_a_marketing_manager_asking_is_not_notified_of_their_own_request(marketing_manager):
    _ask(marketing_manager)
    assert not Notification.objects.exists()


def test_one_vote_a_person_and_the_count_kept(rep, other_rep, marketer):
    made = _ask(rep)
    assert content_request_vote(request=made, by=rep) is True
    assert content_request_vote(request=made, by=rep) is False
    assert content_request_vote(request=made, by=other_rep) is True
    assert content_request_vote(request=made, by=marketer) is True
    assert made.vote_count == 3
    made.refresh_from_db()
    assert made.vote_count == 3
    assert content_request_unvote(request=made, by=other_rep) is True
    assert content_request_unvote(request=made, by=other_rep) is False
    made.refresh_from_db()
    assert made.vote_count == 2
    assert set(ContentRequestVote.objects.values_list("user__username", flat=True)) == {
        "rep",
        "marketer",
    }


def test_voting_locks_the_request_row(rep):
    made = _ask(rep)
    with CaptureQueriesContext(connection) as queries:
        content_request_vote(request=made, by=rep)
    if connection.vendor == "postgresql":
        assert any("FOR UPDATE" in q["sql"] for q in queries.captured_queries)
    assert ContentRequest.objects.get(pk=made.pk).vote_count == 1


def test_a_done_or_declined_request_takes_no_votes(rep, marketer, other_rep):
    made = _ask(rep)
    content_request_vote(request=made, by=other_rep)
    content_request_update(request=made, by=marketer, status="declined", note="Out of scope.")
    with pytest.raises(DomainError, match="votes are for open and planned"):
        content_request_vote(request=made, by=rep)
    # taking a vote back is still allowed
    assert content_request_unvote(request=made, by=other_rep) is True


@pytest.mark.parametrize("role", ["rep", "sales_manager", "outsider"])
def test_only_marketing_and_admins_decide(people, role):
    made = _ask(people["marketer"])
    with pytest.raises(PermissionDenied):
        content_request_update(request=made, by=people[role], status="planned")
    made.refresh_from_db()
    assert made.status == "open"


def test_planned_then_done_with_the_asset_notifies_the_requester_and_the_voters(
    rep, other_rep, marketer, sales_manager
):
    made = _ask(rep)
    for voter in (rep, other_rep, marketer):
        content_request_vote(request=made, by=voter)
    content_request_update(request=made, by=marketer, status="planned", note="Next sprint.")
    made.refresh_from_db()
    assert (made.status, made.status_note, made.decided_by) == ("planned", "Next sprint.", marketer)
    planned = Notification.objects.filter(title__startswith="Content request is planned")
    # the requester and the other voter; not the marketer who decided
    assert sorted(n.user.username for n in planned) == ["other_rep", "rep"]
    assert planned[0].body == "Next sprint."
    asset = _asset()
    content_request_update(request=made, by=marketer, status="done", asset=asset)
    made.refresh_from_db()
    assert (made.status, made.asset) == ("done", asset)
    done = Notification.objects.filter(title__startswith="Content request is done")
    assert sorted(n.user.username for n in done) == ["other_rep", "rep"]
    assert "Bank case study" in done[0].body
    assert _events(EventType.CONTENT_REQUEST_UPDATED) == [
        {"request_id": made.pk, "status": "planned", "asset_id": None},
        {"request_id": made.pk, "status": "done", "asset_id": asset.pk},
    ]


def test_done_needs_the_asset_and_declined_a_note(rep, marketer):
    made = _ask(rep)
    with pytest.raises(DomainError) as refused:
        content_request_update(request=made, by=marketer, status="done")
    assert refused.value.field == "asset"
    with pytest.raises(DomainError) as refused:
        content_request_update(request=made, by=marketer, status="declined", note=" ")
    assert refused.value.field == "note"
    with pytest.raises(DomainError) as refused:
        content_request_update(request=made, by=marketer, status="planned", asset=_asset())
    assert refused.value.field == "asset"
    with pytest.raises(DomainError) as refused:
        content_request_update(request=made, by=marketer, status="shelved")
    assert refused.value.field == "status"
    made.refresh_from_db()
    assert made.status == "open"
    assert not LeadEvent.objects.filter(type=EventType.CONTENT_REQUEST_UPDATED).exists()


def test_declined_then_reopened(rep, marketer):
    made = _ask(rep)
    content_request_update(request=made, by=marketer, status="declined", note="We have one.")
    declined = Notification.objects.get(user=rep, title__startswith="Content request was declined")
    assert declined.body == "We have one."
    content_request_update(request=made, by=marketer, status=RequestStatus.OPEN)
    made.refresh_from_db()
    assert (made.status, made.status_note) == ("open", "")
    # reopening notifies nobody; a second decline notifies again (a new event, a new key)
    assert Notification.objects.filter(user=rep).count() == 1
    content_request_update(request=made, by=marketer, status="declined", note="Still no.")
    assert Notification.objects.filter(user=rep).count() == 2


def test_the_same_decision_twice_changes_nothing(rep, marketer):
    made = _ask(rep)
    content_request_update(request=made, by=marketer, status="planned", note="Soon.")
    content_request_update(request=made, by=marketer, status="planned", note="Soon.")
    assert len(_events(EventType.CONTENT_REQUEST_UPDATED)) == 1
    assert Notification.objects.filter(user=rep).count() == 1


def test_comments_in_order(rep, marketer):
    made = _ask(rep)
    content_request_comment(request=made, by=marketer, body=" Which banks? ")
    content_request_comment(request=made, by=rep, body="Nordbank, Alpine Credit.")
    assert [(c.author.username, c.body) for c in made.comments.all()] == [
        ("marketer", "Which banks?"),
        ("rep", "Nordbank, Alpine Credit."),
    ]
    with pytest.raises(DomainError) as refused:
        content_request_comment(request=made, by=rep, body="   ")
    assert refused.value.field == "body"


def test_an_inactive_voter_is_not_notified(rep, marketer):
    gone = RepFactory(username="gone")
    made = _ask(rep)
    content_request_vote(request=made, by=gone)
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    content_request_update(request=made, by=marketer, status="planned")
    assert [n.user.username for n in Notification.objects.all()] == ["rep"]
