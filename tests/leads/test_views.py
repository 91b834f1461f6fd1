import pytest
from django.urls import reverse

from leads import services
from leads.models import Assignment, Lead, Stage, StageChange, Touchpoint
from tests.factories import LeadFactory, TouchpointFactory

pytestmark = pytest.mark.django_db


def test_list_page_has_a_fixed_number_of_queries(client, marketer, rep, django_assert_num_queries):
    LeadFactory.create_batch(30, owner=rep)
    client.force_login(marketer)
    # session, user, the bell's unread count, the filters' sales people, sources and campaigns,
    # one leads query with owner/source/campaign joined (a page that is not full needs no count)
    with django_assert_num_queries(7):
        response = client.get(reverse("leads:list"))
    assert response.status_code == 200
    assert response.content.count(b'href="/leads/') >= 30


def test_list_filters_by_stage_and_mine(client, rep, other_rep):
    LeadFactory(company="Mine Inc", owner=rep, stage=Stage.MQL)
    LeadFactory(company="Theirs Inc", owner=other_rep, stage=Stage.MQL)
    LeadFactory(company="Fresh Inc", stage=Stage.NEW)
    client.force_login(rep)
    body = client.get(reverse("leads:list"), {"stage": "mql", "mine": "1"}).content.decode()
    assert "Mine Inc" in body and "Theirs Inc" not in body and "Fresh Inc" not in body


def test_detail_shows_timeline(client, marketer, rep):
    lead = LeadFactory(company="Initech", owner=rep)
    TouchpointFactory(lead=lead, kind="demo_request")
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    client.force_login(rep)
    body = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Initech" in body
    assert "Demo request" in body
    assert "New → MQL" in body


def test_reject_without_reason_shows_form_error_and_changes_nothing(client, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(rep)
    response = client.post(reverse("leads:move", args=[lead.pk]), {"to": "rejected"})
    assert response.status_code == 400
    assert "needs a reason" in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL
    assert not StageChange.objects.exists()


def test_accept_from_the_page(client, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(rep)
    response = client.post(reverse("leads:move", args=[lead.pk]), {"to": "sal"})
    assert response.status_code == 302
    assert Lead.objects.get(pk=lead.pk).stage == Stage.SAL


def test_move_to_a_stage_not_offered_is_a_form_error(client, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(rep)
    response = client.post(reverse("leads:move", args=[lead.pk]), {"to": "won", "deal_value": "5"})
    assert response.status_code == 400
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL


def test_marketer_cannot_accept_from_the_page(client, marketer, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(marketer)
    response = client.post(reverse("leads:move", args=[lead.pk]), {"to": "sal"})
    assert response.status_code == 400
    # the page offers a marketer no sales move; a forged post is refused in words, not in codes
    assert "not a move you can make from MQL" in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL


def test_log_a_call(client, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(rep)
    response = client.post(
        reverse("leads:touchpoint", args=[lead.pk]), {"kind": "call", "note": "Left a voicemail"}
    )
    assert response.status_code == 302
    tp = Touchpoint.objects.get()
    assert (tp.kind, tp.metadata, tp.created_by) == ("call", {"note": "Left a voicemail"}, rep)


def test_reassign_by_sales_manager(client, sales_manager, rep, other_rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(sales_manager)
    response = client.post(reverse("leads:assign", args=[lead.pk]), {"rep": other_rep.pk})
    assert response.status_code == 302
    assert Lead.objects.get(pk=lead.pk).owner == other_rep
    assert Assignment.objects.get().previous_owner == rep


def test_rep_has_no_reassign_form_and_cannot_post_it(client, rep, other_rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(rep)
    assert 'id="assign"' not in client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    response = client.post(reverse("leads:assign", args=[lead.pk]), {"rep": other_rep.pk})
    assert response.status_code == 400
    assert Lead.objects.get(pk=lead.pk).owner == rep


def test_merge_from_the_page(client, marketing_manager):
    keep = LeadFactory(email="keep@x.example")
    dup = LeadFactory(email=None, external_id="crm-9")
    client.force_login(marketing_manager)
    response = client.post(reverse("leads:merge", args=[keep.pk]), {"duplicate": "crm-9"})
    assert response.status_code == 302
    assert not Lead.objects.filter(pk=dup.pk).exists()
    response = client.post(reverse("leads:merge", args=[keep.pk]), {"duplicate": "nobody@x"})
    assert response.status_code == 400
    assert "No lead with" in response.content.decode()


def test_feedback_page_moved_to_the_kpi_page_for_good(client, marketer):
    client.force_login(marketer)
    response = client.get(reverse("leads:feedback"), {"days": "30"})
    assert response.status_code == 301
    assert response["Location"] == reverse("kpis:page") + "#feedback"


def test_wins_page_lists_announcements(client, rep, marketer, django_capture_on_commit_callbacks):
    lead = LeadFactory(stage=Stage.OPPORTUNITY, owner=rep, company="Hooli")
    with django_capture_on_commit_callbacks(execute=True):
        services.lead_move(lead=lead, to=Stage.WON, by=rep, deal_value=1000)
    client.force_login(marketer)
    body = client.get(reverse("leads:announcements")).content.decode()
    assert "New customer: Hooli" in body
    assert "€1,000" in body
