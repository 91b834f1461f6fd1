"""The content request pages: the list sorted by votes with its filter and the short form, the
vote buttons, the detail page's thread and marketing's decision form; refusals as form errors."""

import pytest
from django.urls import reverse

from content.models import Asset, ContentRequest, ContentRequestComment
from content.requests.services import content_request_create, content_request_vote

pytestmark = pytest.mark.django_db

LIST = "/content/requests/"


def _ask(by, title="Banking case study", **fields):
    return content_request_create(by=by, title=title, **fields)


def test_the_names_resolve():
    assert reverse("content:requests") == LIST
    assert reverse("content:request", args=[3]) == "/content/requests/3/"


def test_the_list_is_sorted_by_votes_and_marks_my_votes(client, rep, other_rep, marketer):
    few = _ask(marketer, title="Few votes")
    many = _ask(rep, title="Many votes")
    content_request_vote(request=many, by=other_rep)
    content_request_vote(request=many, by=marketer)
    content_request_vote(request=few, by=rep)
    client.force_login(rep)
    page = client.get(LIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("Many votes") < html.index("Few votes")
    assert 'aria-label="Take back your vote for Few votes"' in html
    assert 'aria-label="Vote for Many votes"' in html
    assert 'id="request-ask"' in html


def test_the_status_filter(client, rep, marketer):
    _ask(rep, title="Still open")
    done = _ask(rep, title="Already done")
    asset = Asset.objects.create(
        title="Bank case", kind="case_study", funnel_stage="decision", url="https://e.com/b"
    )
    client.force_login(marketer)
    client.post(
        f"{LIST}{done.pk}/status/", {"status": "done", "asset": asset.pk, "note": "Here it is."}
    )
    active = client.get(LIST).content.decode()
    assert "Still open" in active and "Already done" not in active
    only_done = client.get(LIST, {"status": "done"}).content.decode()
    assert "Already done" in only_done and "Still open" not in only_done
    assert "Bank case" in only_done
    # an unknown filter falls back to the default
    assert "Still open" in client.get(LIST, {"status": "nonsense"}).content.decode()


def test_asking_from_the_list(client, rep):
    client.force_login(rep)
    answer = client.post(
        LIST, {"title": "ROI calculator", "details": "For CFOs", "funnel_stage": "decision"}
    )
    made = ContentRequest.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == f"{LIST}{made.pk}/"
    assert (made.title, made.requested_by, made.funnel_stage) == ("ROI calculator", rep, "decision")


def test_a_bad_ask_is_a_form_error(client, rep):
    client.force_login(rep)
    answer = client.post(LIST, {"title": "  ", "funnel_stage": "later"})
    assert answer.status_code == 400
    assert "errorlist" in answer.content.decode()
    assert not ContentRequest.objects.exists()


def test_vote_and_unvote_buttons(client, rep, marketer):
    made = _ask(marketer)
    client.force_login(rep)
    answer = client.post(f"{LIST}{made.pk}/vote/", {"action": "vote", "next": "list"})
    assert answer["Location"] == LIST
    made.refresh_from_db()
    assert made.vote_count == 1
    answer = client.post(f"{LIST}{made.pk}/vote/", {"action": "unvote"})
    assert answer["Location"] == f"{LIST}{made.pk}/"
    made.refresh_from_db()
    assert made.vote_count == 0
    assert client.get(f"{LIST}{made.pk}/vote/").status_code == 405


def test_a_vote_on_a_declined_request_is_a_message_not_an_error(client, rep, marketer):
    made = _ask(marketer)
    client.force_login(marketer)
    client.post(f"{LIST}{made.pk}/status/", {"status": "declined", "note": "No budget."})
    client.force_login(rep)
    answer = client.post(f"{LIST}{made.pk}/vote/", {"action": "vote"}, follow=True)
    assert answer.status_code == 200
    assert "votes are for open and planned requests" in answer.content.decode()
    made.refresh_from_db()
    assert made.vote_count == 0


def test_the_detail_page_for_sales_has_no_decision_form(client, rep, marketer):
    made = _ask(marketer, details="Long story")
    client.force_login(rep)
    html = client.get(f"{LIST}{made.pk}/").content.decode()
    assert "Long story" in html
    assert 'id="request-comments"' in html
    assert 'id="request-status"' not in html


def test_comment_then_a_refused_comment(client, rep, marketer):
    made = _ask(marketer)
    client.force_login(rep)
    answer = client.post(f"{LIST}{made.pk}/comment/", {"body": "Nordbank asks for it too."})
    assert answer.status_code == 302
    assert ContentRequestComment.objects.get().body == "Nordbank asks for it too."
    answer = client.post(f"{LIST}{made.pk}/comment/", {"body": "   "})
    assert answer.status_code == 400
    assert ContentRequestComment.objects.count() == 1
    assert "Nordbank asks for it too." in client.get(f"{LIST}{made.pk}/").content.decode()


def test_marketing_decides_and_a_missing_asset_is_a_form_error(client, rep, marketer):
    made = _ask(rep)
    client.force_login(marketer)
    html = client.get(f"{LIST}{made.pk}/").content.decode()
    assert 'id="request-status"' in html
    answer = client.post(f"{LIST}{made.pk}/status/", {"status": "done", "note": ""})
    assert answer.status_code == 400
    assert "Link the asset that answers the request" in answer.content.decode()
    answer = client.post(f"{LIST}{made.pk}/status/", {"status": "planned", "note": "Q1"})
    assert answer.status_code == 302
    made.refresh_from_db()
    assert (made.status, made.status_note) == ("planned", "Q1")


def test_sales_posting_a_decision_is_refused_on_the_form(client, rep):
    made = _ask(rep)
    client.force_login(rep)
    answer = client.post(f"{LIST}{made.pk}/status/", {"status": "planned"})
    assert answer.status_code == 403
    made.refresh_from_db()
    assert made.status == "open"


def test_outsiders_and_anonymous_people_see_nothing(client, outsider, rep):
    made = _ask(rep)
    assert client.get(LIST).status_code == 302
    client.force_login(outsider)
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{made.pk}/").status_code == 403
    assert client.post(f"{LIST}{made.pk}/vote/", {"action": "vote"}).status_code == 403


def test_an_unknown_request_is_a_404(client, rep):
    client.force_login(rep)
    assert client.get(f"{LIST}999/").status_code == 404
    assert client.post(f"{LIST}999/comment/", {"body": "x"}).status_code == 404
