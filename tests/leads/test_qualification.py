"""Qualification is a move: a lead that meets the active MQL definition becomes an MQL through
the lifecycle service at the events that can make it qualify, and is routed."""

import io

import pytest
from django.urls import reverse

from leads import services
from leads.importing.services import leads_import
from leads.models import EventType, Lead, LeadEvent, Stage
from leads.scoring import services as scoring
from leads.scoring.models import ModelStatus, ScoringModel
from leads.scoring.rules import spec_of
from tests.factories import LeadFactory, PoolMemberFactory, RepFactory
from tests.leads.test_scoring_services import SPEC, activate, good_fit, with_changes

pytestmark = pytest.mark.django_db

# fit 50 (director, 500 employees, DE) is enough on its own
LOW_BAR = with_changes(mql_total=50, mql_fit=40)


@pytest.fixture
def pool():
    """One routing rule for every lead, with a rep who takes two open leads at most."""
    member = PoolMemberFactory(rep=RepFactory(username="ria", capacity=2))
    return member.rep


def test_a_new_lead_that_meets_the_definition_becomes_an_mql_and_is_routed(marketer, pool):
    activate(LOW_BAR)
    lead = services.lead_intake(
        data={
            "email": "ada@engines.example",
            "title": "Director",
            "company_size": 500,
            "country": "DE",
        },
        system="website",
    ).lead
    lead = Lead.objects.get(pk=lead.pk)
    assert (lead.stage, lead.owner) == (Stage.MQL, pool)
    types = list(
        LeadEvent.objects.filter(lead_id=lead.pk).order_by("id").values_list("type", flat=True)
    )
    assert types == [
        EventType.LEAD_CREATED,
        EventType.SCORE_CHANGED,
        EventType.LEAD_STAGE_CHANGED,
        EventType.LEAD_MQL,
        EventType.LEAD_ASSIGNED,
    ]
    change = LeadEvent.objects.get(lead_id=lead.pk, type=EventType.SCORE_CHANGED)
    assert (change.payload["before"]["qualifies"], change.payload["after"]["qualifies"]) == (
        False,
        True,
    )


def test_a_changed_field_that_makes_a_lead_qualify_moves_it(marketer, pool):
    activate(LOW_BAR)
    lead = good_fit(title="")  # fit 30: below the fit threshold
    services.lead_update(lead=lead, changes={"company": "Engines"}, by=marketer)
    assert Lead.objects.get(pk=lead.pk).stage == Stage.NEW
    services.lead_update(lead=lead, changes={"title": "Director"}, by=marketer)
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL


def test_an_import_qualifies_the_leads_that_meet_the_definition_but_not_historical_ones(
    marketer, pool
):
    activate(LOW_BAR)
    content = (
        b"email,title,company_size,country,outcome\n"
        b"ada@engines.example,Director,500,DE,\n"
        b"bob@widgets.example,Student,5,US,\n"
        b"cy@gears.example,Director,500,DE,won\n"
    )
    mapping = {"outcome": {"column": "outcome", "won": ["won"], "lost": ["lost"]}}
    result = leads_import(
        file=io.BytesIO(content), filename="leads.csv", by=marketer, mapping=mapping
    )
    assert result.qualified == 1
    assert "1 leads meet the MQL definition and became MQLs" in result.summary()
    stages = dict(Lead.objects.values_list("email", "stage"))
    assert stages == {
        "ada@engines.example": Stage.MQL,
        "bob@widgets.example": Stage.NEW,
        "cy@gears.example": Stage.WON,
    }
    assert Lead.objects.get(email="ada@engines.example").owner == pool


def test_activation_qualifies_the_leads_it_lifts_and_respects_capacity(
    marketer, marketing_manager, sales_manager, pool, django_capture_on_commit_callbacks
):
    activate(SPEC)  # mql_total 100: fit 50 alone is not enough
    fresh = [good_fit() for _ in range(3)]
    recycled = good_fit(stage=Stage.RECYCLED, mql_count=1)
    scoring.leads_rescore(lead_ids=[x.pk for x in [*fresh, recycled]])
    assert set(Lead.objects.values_list("stage", flat=True)) == {Stage.NEW, Stage.RECYCLED}

    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=marketer, name="Lower the bar")
    scoring.scoring_model_update(model=draft, by=marketer, spec={**spec_of(draft), "mql_total": 50})
    proposal = scoring.scoring_model_propose(model=draft, by=marketer)
    assert scoring.scoring_model_newly_qualifying(model=proposal) == 4
    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    with django_capture_on_commit_callbacks(execute=True):
        scoring.scoring_model_approve(model=proposal, by=sales_manager)

    leads = Lead.objects.filter(pk__in=[x.pk for x in [*fresh, recycled]])
    assert sorted(lead.stage for lead in leads) == [Stage.MQL] * 4
    owned = [lead.owner_id for lead in leads]
    # the rep takes two; the overflow waits unassigned for a sales manager, it never floods them
    assert owned.count(pool.pk) == 2 and owned.count(None) == 2
    activated = LeadEvent.objects.get(type=EventType.SCORING_ACTIVATED)
    assert activated.lead_id is None and activated.payload["model_id"] == proposal.pk


def test_activation_leaves_a_recycled_lead_that_already_met_the_old_definition(
    marketer, marketing_manager, sales_manager, django_capture_on_commit_callbacks
):
    activate(LOW_BAR)
    recycled = good_fit(stage=Stage.RECYCLED, mql_count=1)
    scoring.leads_rescore(lead_ids=[recycled.pk])  # meets the old bar: sales sent it back anyway
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=marketer, name="Even lower")
    scoring.scoring_model_update(model=draft, by=marketer, spec={**spec_of(draft), "mql_total": 45})
    proposal = scoring.scoring_model_propose(model=draft, by=marketer)
    assert scoring.scoring_model_newly_qualifying(model=proposal) == 0
    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    with django_capture_on_commit_callbacks(execute=True):
        scoring.scoring_model_approve(model=proposal, by=sales_manager)
    assert Lead.objects.get(pk=recycled.pk).stage == Stage.RECYCLED


def test_a_lead_that_sales_has_does_not_count_as_newly_qualifying(marketer):
    activate(SPEC)
    LeadFactory(stage=Stage.SAL, title="Director", company_size=500, country="DE")
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=marketer, name="Lower")
    scoring.scoring_model_update(model=draft, by=marketer, spec={**spec_of(draft), "mql_total": 50})
    assert scoring.scoring_model_newly_qualifying(model=draft) == 0


def test_the_version_page_says_beforehand_how_many_leads_will_qualify(client, marketer):
    activate(SPEC)
    for _ in range(2):
        scoring.leads_rescore(lead_ids=[good_fit().pk])
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=marketer, name="Lower the bar")
    scoring.scoring_model_update(model=draft, by=marketer, spec={**spec_of(draft), "mql_total": 50})
    client.force_login(marketer)
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert "Not counted yet" in page
    # proposing counts in the background (eager in tests); the page then shows the figure
    client.post(reverse("leads:scoring_model_decide", args=[draft.pk, "propose"]))
    page = client.get(reverse("leads:scoring_model", args=[draft.pk])).content.decode()
    assert "<strong>2</strong> leads in new, nurturing or recycled would meet" in page
    assert ScoringModel.objects.get(pk=draft.pk).report["activation_preview"]["count"] == 2
