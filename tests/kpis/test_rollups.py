"""The KPI rollup (stage stays): the replay's rules on their own, the outbox reaction keeping
the rows in step with the lead services (filters follow a changed source and owner), and the
rebuild command putting back what was lost."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kpis import selectors
from kpis.models import StageStay
from kpis.rollups.replay import Event, Touch, replay
from kpis.rollups.services import stays_verify
from leads.intake import lead_update
from leads.models import OutboxEntry, Stage
from leads.routing import lead_assign
from tests.factories import RepFactory, SourceFactory
from tests.kpis.history import W47, new_lead, settle, utc, walk, won_path

STAYS = "kpis.rollups.services.stays_reaction"


def moved(pk, frm, to, at, **payload):
    return Event(pk, "lead.stage_changed", at, {"from": frm, "to": to, **payload})


def test_the_replay_follows_time_not_id_and_closes_each_stay():
    t = utc(11, 16, 9)
    events = [
        # written out of order, as seeded and imported history is
        moved(4, "sal", "rejected", t + timedelta(hours=5), reason="bad_fit"),
        moved(3, "mql", "sal", t + timedelta(hours=2)),
        Event(1, "lead.created", t, {}),
        moved(9, "new", "mql", t + timedelta(hours=1)),
        Event(10, "touchpoint.recorded", t + timedelta(hours=3), {}),
    ]
    created, stays = replay(events)
    assert created == t
    assert [(s.stage, s.exit_to, s.exit_reason) for s in stays] == [
        ("lead", "", ""),
        ("mql", "sal", ""),
        ("sal", "rejected", "bad_fit"),
        ("rejected", "", ""),
    ]
    assert stays[1].left_at - stays[1].entered_at == timedelta(hours=1)
    assert stays[-1].left_at is None
    # the creation row carries how far the lead got: SAL is the second funnel stage
    assert stays[0].furthest == 2


def test_a_win_carries_its_cycle_and_its_campaign_touches_up_to_the_opportunity():
    t = utc(11, 2, 9)
    events = [
        Event(1, "lead.created", t, {}),
        moved(2, "new", "mql", t + timedelta(days=1)),
        moved(3, "mql", "sal", t + timedelta(days=2)),
        moved(4, "sal", "sql", t + timedelta(days=3)),
        moved(5, "sql", "opportunity", t + timedelta(days=4), deal_value="1000"),
        moved(6, "opportunity", "won", t + timedelta(days=9), deal_value="1200.50"),
    ]
    touches = [
        Touch(t + timedelta(hours=1), 1, campaign_id=7),
        Touch(t + timedelta(days=3), 2, campaign_id=8),
        # after the move into opportunity: credits neither the pipeline nor the win
        Touch(t + timedelta(days=5), 3, campaign_id=9),
    ]
    _, stays = replay(events, touches)
    opportunity, won = stays[-2], stays[-1]
    assert (opportunity.deal_value, won.deal_value) == (Decimal("1000.00"), Decimal("1200.50"))
    assert (won.mql_at, won.opened_at) == (t + timedelta(days=1), t + timedelta(days=4))
    assert (opportunity.first_campaign_id, opportunity.last_campaign_id) == (7, 8)
    assert (won.first_campaign_id, won.last_campaign_id) == (7, 8)
    assert stays[0].furthest == 5


@pytest.mark.django_db
def test_the_reaction_keeps_the_rows_what_a_replay_says_and_follows_source_and_owner(
    marketer, sales_manager
):
    google, linkedin = SourceFactory(name="Google"), SourceFactory(name="LinkedIn")
    lead = walk(
        new_lead(utc(11, 16, 7), source=google),
        (Stage.MQL, utc(11, 17, 8)),
        (Stage.REJECTED, utc(11, 17, 9), {"reason": "bad_fit"}),
    )
    other = won_path(new_lead(utc(11, 16, 7), source=google), 16, 900)
    settle()
    assert stays_verify([lead.pk, other.pk]) == []
    assert selectors.mql_acceptance(period=W47, source_id=google.pk).rejected == 1

    # the source changes: the rows follow, so the filters read the lead's current source
    lead_update(lead=lead, changes={"source": linkedin}, by=marketer)
    settle()
    assert selectors.mql_acceptance(period=W47, source_id=google.pk).mqls == 1
    assert selectors.mql_acceptance(period=W47, source_id=linkedin.pk).rejected == 1
    # and the owner
    rep = RepFactory()
    lead_assign(lead=other, rep=rep, by=sales_manager)
    settle()
    assert set(StageStay.objects.filter(lead=other).values_list("owner_id", flat=True)) == {rep.pk}
    assert selectors.lead_funnel(period=W47, rep_id=rep.pk).leads == 1
    assert stays_verify([lead.pk, other.pk]) == []


@pytest.mark.django_db
def test_a_change_that_regroups_nothing_queues_nothing_for_the_rollup(marketer):
    lead = new_lead(utc(11, 16, 7))
    settle()
    lead_update(lead=lead, changes={"title": "CTO"}, by=marketer)
    assert not OutboxEntry.objects.filter(reaction=STAYS, dispatched_at=None).exists()
    lead_update(lead=lead, changes={"source": SourceFactory()}, by=marketer)
    assert OutboxEntry.objects.filter(reaction=STAYS, dispatched_at=None).count() == 1


@pytest.mark.django_db
def test_the_rebuild_command_puts_back_what_was_lost():
    leads = [won_path(new_lead(utc(11, 16, 7)), 16, 100 * n) for n in range(1, 4)]
    settle()
    before = sorted(StageStay.objects.values_list("lead_id", "stage", "entered_at", "left_at"))
    StageStay.objects.filter(lead=leads[0]).delete()
    StageStay.objects.filter(lead=leads[1], stage=Stage.WON).update(deal_value=1)
    assert stays_verify([lead.pk for lead in leads]) == [leads[0].pk, leads[1].pk]

    out = StringIO()
    call_command("kpis_rebuild", "--batch", "2", stdout=out)
    assert out.getvalue().startswith(f"Rebuilt {len(before)} stage stays in ")
    assert stays_verify([lead.pk for lead in leads]) == []
    after = sorted(StageStay.objects.values_list("lead_id", "stage", "entered_at", "left_at"))
    assert after == before
    with pytest.raises(CommandError, match="--batch must be at least 1"):
        call_command("kpis_rebuild", "--batch", "0")


@pytest.mark.django_db
def test_a_rebuild_of_many_rows_writes_what_the_replay_says():
    """Over 100 rows a batch is written with COPY on PostgreSQL (bulk_create elsewhere)."""
    leads = [won_path(new_lead(utc(11, 16, 7)), 16, 100 + n) for n in range(20)]
    settle()
    StageStay.objects.all().delete()
    call_command("kpis_rebuild", stdout=StringIO())
    assert StageStay.objects.count() == 20 * 6  # creation, MQL, SAL, SQL, opportunity, won
    assert stays_verify([lead.pk for lead in leads]) == []
    won = StageStay.objects.get(lead=leads[3], stage=Stage.WON)
    assert (won.from_stage, won.exit_to, won.left_at) == (Stage.OPPORTUNITY, "", None)
