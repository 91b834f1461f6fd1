"""Voice of the prospect's services: who may log what a prospect said (a rep on his own leads, a
sales manager or an admin on any, not marketing), what is kept (trimmed text, the lead's
campaign at the time, the competitor), and marketing linking the sales-ready asset that answers
one; each write with its event."""

import pytest

from alignment.lib.errors import DomainError, PermissionDenied
from content.models import Asset, Objection
from content.suggestions import suggested_assets
from content.voice.services import may_log_objection, objection_answer, objection_log
from leads.models import EventType, LeadEvent
from tests.factories import CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db


def asset(*, ready=True, title="Acme comparison"):
    return Asset.objects.create(
        title=title,
        kind="one_pager",
        funnel_stage="decision",
        url=f"https://example.com/{title.replace(' ', '-')}",
        sales_ready=ready,
    )


def test_a_rep_logs_on_his_own_lead_with_the_campaign_of_the_moment(rep):
    campaign = CampaignFactory()
    lead = LeadFactory(owner=rep, campaign=campaign)

    objection = objection_log(
        lead=lead,
        by=rep,
        category="competitor",
        competitor="  Acme   Corp ",
        text="  Acme does it for half the price.  ",
    )
    lead.campaign = CampaignFactory()
    lead.save()

    objection.refresh_from_db()
    assert objection.campaign == campaign  # not the lead's later campaign
    assert objection.text == "Acme does it for half the price."
    assert (objection.kind, objection.category, objection.competitor) == (
        "objection",
        "competitor",
        "Acme Corp",
    )
    assert objection.logged_by == rep
    event = LeadEvent.objects.get(type=EventType.OBJECTION_LOGGED)
    assert event.lead_id == lead.pk and event.actor_id == rep.pk
    assert event.payload == {
        "objection_id": objection.pk,
        "kind": "objection",
        "category": "competitor",
        "competitor": "Acme Corp",
        "campaign_id": campaign.pk,
    }


def test_a_rep_may_not_log_on_someone_elses_lead(rep, other_rep):
    lead = LeadFactory(owner=other_rep)
    with pytest.raises(DomainError, match="is not assigned to you"):
        objection_log(lead=lead, by=rep, category="price", text="Too dear.")
    assert not Objection.objects.exists()
    assert not may_log_objection(lead=lead, user=rep)
    assert may_log_objection(lead=lead, user=other_rep)


@pytest.mark.parametrize("who", ["sales_manager", "admin_user"])
def test_a_sales_manager_or_admin_logs_on_any_lead(request, who, rep):
    user = request.getfixturevalue(who)
    lead = LeadFactory(owner=rep)
    objection = objection_log(lead=lead, by=user, kind="question", category="security", text="SSO?")
    assert objection.kind == "question" and objection.logged_by == user
    assert may_log_objection(lead=lead, user=user)


@pytest.mark.parametrize("who", ["marketer", "marketing_manager", "outsider"])
def test_marketing_and_outsiders_may_not_log(request, who, rep):
    user = request.getfixturevalue(who)
    lead = LeadFactory(owner=rep)
    with pytest.raises(PermissionDenied):
        objection_log(lead=lead, by=user, category="price", text="Too dear.")
    assert not may_log_objection(lead=lead, user=user)
    assert not LeadEvent.objects.filter(type=EventType.OBJECTION_LOGGED).exists()


def test_nobody_may_not_log(rep):
    with pytest.raises(DomainError, match="logged by a person"):
        objection_log(lead=LeadFactory(owner=rep), by=None, category="price", text="x")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"text": "   "}, "text", "Write down what the prospect said"),
        ({"text": "x" * 2001}, "text", "under 2,000 characters"),
        ({"category": "weather"}, "category", "Pick a category"),
        ({"kind": "rant"}, "kind", "question or an objection"),
        ({"competitor": "A" * 101}, "competitor", "under 100 characters"),
    ],
)
def test_bad_input_is_refused_with_its_field(rep, changes, field, message):
    values = {"category": "price", "text": "Too dear.", **changes}
    with pytest.raises(DomainError, match=message) as refused:
        objection_log(lead=LeadFactory(owner=rep), by=rep, **values)
    assert refused.value.field == field
    assert not Objection.objects.exists()


def test_text_of_exactly_the_limit_is_kept(rep):
    objection = objection_log(
        lead=LeadFactory(owner=rep), by=rep, category="other", text="y" * 2000
    )
    assert len(objection.text) == 2000


def test_marketing_links_a_sales_ready_answer_then_unlinks_it(rep, marketer):
    objection = objection_log(lead=LeadFactory(owner=rep), by=rep, category="price", text="Dear.")
    answer = asset()

    objection_answer(objection=objection, asset_or_none=answer, by=marketer)
    objection.refresh_from_db()
    assert (objection.answer, objection.answered_by) == (answer, marketer)

    objection_answer(objection=objection, asset_or_none=None, by=marketer)
    objection.refresh_from_db()
    assert (objection.answer, objection.answered_by) == (None, None)
    payloads = list(
        LeadEvent.objects.filter(type=EventType.OBJECTION_ANSWERED)
        .order_by("id")
        .values_list("payload", "lead_id")
    )
    assert payloads == [
        ({"objection_id": objection.pk, "asset_id": answer.pk}, objection.lead_id),
        ({"objection_id": objection.pk, "asset_id": None}, objection.lead_id),
    ]


def test_an_answer_must_be_sales_ready_and_exist(rep, marketer):
    objection = objection_log(lead=LeadFactory(owner=rep), by=rep, category="price", text="Dear.")
    draft = asset(ready=False)
    with pytest.raises(DomainError, match="not sales ready") as refused:
        objection_answer(objection=objection, asset_or_none=draft, by=marketer)
    assert refused.value.field == "answer"
    gone = asset(title="gone")
    gone_id = gone.pk
    gone.delete()
    gone.pk = gone_id
    with pytest.raises(DomainError, match="no such asset"):
        objection_answer(objection=objection, asset_or_none=gone, by=marketer)
    objection.refresh_from_db()
    assert objection.answer is None
    assert not LeadEvent.objects.filter(type=EventType.OBJECTION_ANSWERED).exists()


@pytest.mark.parametrize("who", ["rep", "sales_manager"])
def test_sales_may_not_link_answers(request, who, rep):
    user = request.getfixturevalue(who)
    objection = objection_log(lead=LeadFactory(owner=rep), by=rep, category="price", text="Dear.")
    with pytest.raises(PermissionDenied):
        objection_answer(objection=objection, asset_or_none=asset(), by=user)


def test_an_answer_is_suggested_on_a_lead_with_a_like_objection(rep, marketer):
    first = objection_log(
        lead=LeadFactory(owner=rep), by=rep, category="competitor", competitor="Acme", text="A"
    )
    answer = asset()
    objection_answer(objection=first, asset_or_none=answer, by=marketer)
    other = LeadFactory(owner=rep, industry="Retail", title="Clerk")
    objection_log(lead=other, by=rep, category="competitor", competitor="acme", text="B")

    suggested = {s.asset.pk: s for s in suggested_assets(lead=other, limit=5)}
    assert answer.pk in suggested
