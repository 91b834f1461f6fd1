"""The lead page shows the lead's SLA clocks, for every role."""

import pytest
from django.urls import reverse

from leads import events
from leads.lifecycle import lead_move
from leads.models import Stage
from leads.routing import lead_assign
from leads.services import touchpoint_record
from sla.templatetags.sla_clocks import business_duration
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_the_lead_page_shows_its_clocks_with_status_and_business_time(
    client, rep, sales_manager, marketer
):
    lead = LeadFactory(stage=Stage.NURTURING)
    lead_move(lead=lead, to=Stage.MQL, by=marketer)
    lead_assign(lead=lead, rep=rep, by=sales_manager)
    touchpoint_record(lead=lead, kind="call", by=rep)
    events.outbox_dispatch()
    for who in (marketer, rep):
        client.force_login(who)
        html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
        clocks = html.split('id="sla-clocks"')[1].split("</section>")[0]
        assert "Response (first touch)" in clocks and "Decision (accept or reject)" in clocks
        assert 'class="badge clock-met">Met' in clocks
        assert 'class="badge clock-pending">Pending' in clocks
        assert "of business time" in clocks


def test_a_lead_without_clocks_shows_no_clock_card(client, marketer):
    lead = LeadFactory()
    client.force_login(marketer)
    assert (
        'id="sla-clocks"'
        not in client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 min"), (59, "0 min"), (45 * 60, "45 min"), (7200, "2 h"), (7800, "2 h 10 min")],
)
def test_business_time_reads_in_hours_and_minutes(seconds, words):
    assert business_duration(seconds) == words
