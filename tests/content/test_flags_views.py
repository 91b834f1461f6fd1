"""Lead flags on the pages: the lead page's card and its posts (errors on a small page, never a
500), marketing's /content/flags/ list and the two homes' flag sections."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alignment.models import Role
from content.flags.services import flag_comment, flag_raise, flag_resolve
from content.models import FlagMessage, FlagStatus, LeadFlag
from tests.factories import CampaignFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_mkt(db):
    return UserFactory(username="mia", first_name="Mia", last_name="Marketing", role=Role.MARKETER)


@pytest.fixture
def lead(rep, owner_mkt):
    return LeadFactory(
        first_name="Ada",
        last_name="Lovelace",
        owner=rep,
        campaign=CampaignFactory(name="Spring webinar", marketing_owner=owner_mkt),
    )


def _card(client, lead) -> str:
    html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    if 'id="flags"' not in html:
        return ""
    return html.split('id="flags"')[1].split("</section>")[0]


def _raise(lead, by, reason="wrong_routing", comment="Munich lead routed to Hamburg."):
    return flag_raise(lead=lead, by=by, reason=reason, comment=comment)


# --- the lead page -------------------------------------------------------------------------------


def test_the_owner_sees_the_flag_form_and_marketing_sees_no_card_without_flags(
    client, lead, rep, owner_mkt, other_rep
):
    client.force_login(rep)
    card = _card(client, lead)
    assert "Flag for marketing" in card and 'name="reason"' in card
    assert reverse("content:flag_raise", args=[lead.pk]) in card
    client.force_login(owner_mkt)
    assert _card(client, lead) == ""
    client.force_login(other_rep)
    assert _card(client, lead) == ""


def test_a_rep_flags_his_lead_from_the_page(client, lead, rep):
    client.force_login(rep)
    answer = client.post(
        reverse("content:flag_raise", args=[lead.pk]),
        {"reason": "wrong_routing", "comment": "Munich lead routed to Hamburg."},
    )
    assert answer.status_code == 302
    assert answer.url == reverse("leads:detail", args=[lead.pk]) + "#flags"
    flag = LeadFlag.objects.get()
    assert (flag.lead, flag.raised_by, flag.reason) == (lead, rep, "wrong_routing")
    card = _card(client, lead)
    assert f'id="flag-{flag.pk}"' in card and "Wrong routing" in card
    assert "Munich lead routed to Hamburg." in card and "1 open" in card


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"reason": "", "comment": "x"}, "Pick what is wrong."),
        ({"reason": "wrong_data", "comment": ""}, "Say what is wrong with the lead."),
        ({"reason": "nonsense", "comment": "x"}, "Select a valid choice"),
    ],
)
def test_a_bad_flag_shows_the_form_again_with_its_error(client, lead, rep, data, error):
    client.force_login(rep)
    answer = client.post(reverse("content:flag_raise", args=[lead.pk]), data)
    assert answer.status_code == 400
    html = answer.content.decode()
    assert error in html and 'id="flag-back"' in html and 'name="comment"' in html
    assert not LeadFlag.objects.exists()


def test_a_second_open_flag_of_the_same_reason_is_a_form_error(client, lead, rep):
    _raise(lead, rep)
    client.force_login(rep)
    answer = client.post(
        reverse("content:flag_raise", args=[lead.pk]),
        {"reason": "wrong_routing", "comment": "again"},
    )
    assert answer.status_code == 400 and "already has an open flag" in answer.content.decode()


def test_someone_who_may_not_flag_gets_a_refusal_not_a_500(client, lead, other_rep, marketer):
    for who in (other_rep, marketer):
        client.force_login(who)
        answer = client.post(
            reverse("content:flag_raise", args=[lead.pk]), {"reason": "other", "comment": "x"}
        )
        assert answer.status_code == 400
        assert 'id="flag-refusal"' in answer.content.decode()
    assert not LeadFlag.objects.exists()


def test_posts_about_a_missing_lead_or_flag_answer_404(client, rep):
    client.force_login(rep)
    for url in (
        reverse("content:flag_raise", args=[999999]),
        reverse("content:flag_comment", args=[999999]),
        reverse("content:flag_resolve", args=[999999]),
        reverse("content:flag_reopen", args=[2**64]),
    ):
        assert client.post(url, {"body": "x"}).status_code == 404


def test_a_get_on_a_post_url_is_refused(client, lead, rep):
    client.force_login(rep)
    assert client.get(reverse("content:flag_raise", args=[lead.pk])).status_code == 405


def test_the_thread_shows_messages_and_marketing_replies_and_resolves(client, lead, rep, owner_mkt):
    flag = _raise(lead, rep)
    client.force_login(owner_mkt)
    card = _card(client, lead)
    assert reverse("content:flag_comment", args=[flag.pk]) in card
    assert reverse("content:flag_resolve", args=[flag.pk]) in card
    answer = client.post(
        reverse("content:flag_comment", args=[flag.pk]), {"body": "Which territory?"}
    )
    assert answer.status_code == 302 and answer.url.endswith(f"#flag-{flag.pk}")
    assert FlagMessage.objects.get().author == owner_mkt
    client.force_login(rep)
    card = _card(client, lead)
    assert "Which territory?" in card and "Mia Marketing" in card
    assert reverse("content:flag_resolve", args=[flag.pk]) not in card  # a rep does not resolve
    client.force_login(owner_mkt)
    answer = client.post(
        reverse("content:flag_resolve", args=[flag.pk]),
        {"outcome": "rerouted", "resolution": "Rule fixed."},
    )
    assert answer.status_code == 302
    flag.refresh_from_db()
    assert flag.status == FlagStatus.RESOLVED and flag.outcome == "rerouted"
    client.force_login(rep)
    card = _card(client, lead)
    assert "Resolved: Rerouted" in card and "Rule fixed." in card
    assert reverse("content:flag_comment", args=[flag.pk]) not in card
    assert reverse("content:flag_reopen", args=[flag.pk]) in card


def test_a_declined_flag_without_a_note_is_a_form_error(client, lead, rep, owner_mkt):
    flag = _raise(lead, rep)
    client.force_login(owner_mkt)
    answer = client.post(
        reverse("content:flag_resolve", args=[flag.pk]), {"outcome": "declined", "resolution": ""}
    )
    assert answer.status_code == 400
    html = answer.content.decode()
    assert "the rep is owed a reason" in html and 'name="outcome"' in html
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN


def test_a_rep_posting_a_resolution_is_refused_on_a_small_page(client, lead, rep):
    flag = _raise(lead, rep)
    client.force_login(rep)
    answer = client.post(reverse("content:flag_resolve", args=[flag.pk]), {"outcome": "fixed"})
    assert answer.status_code == 400 and 'id="flag-refusal"' in answer.content.decode()
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN


def test_the_flagger_reopens_a_resolved_flag_from_the_page(client, lead, rep, owner_mkt):
    flag = _raise(lead, rep)
    flag_resolve(flag=flag, by=owner_mkt, outcome="fixed")
    client.force_login(rep)
    answer = client.post(reverse("content:flag_reopen", args=[flag.pk]), {"body": "Still wrong."})
    assert answer.status_code == 302
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN and FlagMessage.objects.get().body == "Still wrong."


def test_user_text_is_escaped(client, lead, rep):
    _raise(lead, rep, comment="<script>alert(1)</script>")
    client.force_login(rep)
    card = _card(client, lead)
    assert "<script>alert(1)</script>" not in card and "&lt;script&gt;" in card


# --- marketing's list ------------------------------------------------------------------------------


def test_the_list_shows_open_flags_oldest_first_and_filters(client, lead, rep, owner_mkt):
    newer = _raise(lead, rep, reason="wrong_data", comment="Phone is wrong.")
    older = _raise(lead, rep)
    LeadFlag.objects.filter(pk=older.pk).update(raised_at=timezone.now() - timedelta(days=3))
    flag_comment(flag=newer, by=owner_mkt, body="Checking the form.")
    client.force_login(owner_mkt)
    html = client.get(reverse("content:flags")).content.decode()
    open_part = html.split('id="flags-open"')[1].split("</section>")[0]
    assert open_part.index(f"flags-row-{older.pk}") < open_part.index(f"flags-row-{newer.pk}")
    assert "3\xa0days" in open_part and "Spring webinar" in open_part and "rep" in open_part
    assert "Checking the form." in open_part and "no reply yet" in open_part
    assert 'id="flags-resolved"' not in html
    html = client.get(reverse("content:flags"), {"reason": "wrong_data"}).content.decode()
    assert f"flags-row-{newer.pk}" in html and f"flags-row-{older.pk}" not in html


def test_the_list_of_resolved_flags_shows_the_outcome(client, lead, rep, owner_mkt):
    flag = _raise(lead, rep)
    flag_resolve(flag=flag, by=owner_mkt, outcome="explained", resolution="Territory is right.")
    client.force_login(rep)
    html = client.get(reverse("content:flags"), {"status": "resolved"}).content.decode()
    part = html.split('id="flags-resolved"')[1].split("</section>")[0]
    assert "Explained, nothing to change" in part and "Territory is right." in part
    assert 'id="flags-open"' not in html


def test_junk_filters_fall_back_and_outsiders_are_refused(client, outsider, marketer):
    client.force_login(marketer)
    assert client.get(reverse("content:flags"), {"status": "x", "reason": "y"}).status_code == 200
    client.force_login(outsider)
    assert client.get(reverse("content:flags")).status_code == 403


# --- the homes -------------------------------------------------------------------------------------


def test_marketings_home_lists_open_flags_with_their_age(client, lead, rep, owner_mkt):
    flag = _raise(lead, rep)
    LeadFlag.objects.filter(pk=flag.pk).update(raised_at=timezone.now() - timedelta(days=2))
    client.force_login(owner_mkt)
    html = client.get("/").content.decode()
    section = html.split('id="home-flags"')[1].split("</section>")[0]
    assert "1 open" in section and "Ada Lovelace" in section and "2\xa0days" in section
    assert reverse("content:flags") in section


def test_the_reps_home_shows_his_open_flags_and_whether_marketing_replied(
    client, lead, rep, owner_mkt, other_rep
):
    client.force_login(rep)
    assert 'id="home-my-flags"' not in client.get("/").content.decode()
    flag = _raise(lead, rep)
    section = client.get("/").content.decode().split('id="home-my-flags"')[1].split("</section>")[0]
    assert "Ada Lovelace" in section and "Waiting for marketing" in section
    flag_comment(flag=flag, by=owner_mkt, body="On it.")
    section = client.get("/").content.decode().split('id="home-my-flags"')[1].split("</section>")[0]
    assert "Marketing replied" in section and "On it." in section
    client.force_login(other_rep)
    assert 'id="home-my-flags"' not in client.get("/").content.decode()
