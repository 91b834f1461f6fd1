"""The Wins page: every won lead (the demo's and imported ones too, with or without an
announcement), newest first, in keyset pages, filtered by period and owner."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.announcements import WINS_PAGE_SIZE
from leads.intake import source_for
from leads.models import Announcement, Stage
from tests.factories import CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db

URL = reverse("leads:announcements")


def won(company: str, *, at: dt.datetime, owner=None, deal_value="48000.00", **fields):
    # written as the demo and the importer write them: stage and won_at, no announcement
    return LeadFactory(
        company=company,
        stage=Stage.WON,
        won_at=at,
        stage_changed_at=at,
        owner=owner,
        deal_value=Decimal(deal_value),
        **fields,
    )


def listed(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-lead="(\d+)"', response.content.decode())]


def test_won_leads_without_announcements_are_listed_newest_first(client, marketer, rep):
    now = timezone.now()
    campaign = CampaignFactory(name="Spring webinar")
    older = won(
        "Initech", at=now - dt.timedelta(days=3), owner=rep, first_name="Ann", last_name="Lee"
    )
    newer = won(
        "Hooli",
        at=now - dt.timedelta(days=1),
        owner=rep,
        source=source_for("LinkedIn"),
        campaign=campaign,
    )
    LeadFactory(company="Still open", stage=Stage.OPPORTUNITY, owner=rep)
    Announcement.objects.create(lead=newer, title="New customer: Hooli (€48,000)", body="We won")
    client.force_login(marketer)

    response = client.get(URL)

    assert response.status_code == 200
    assert listed(response) == [newer.pk, older.pk]
    body = response.content.decode()
    assert "No customer won yet" not in body and "Still open" not in body
    assert "Ann Lee" in body and str(rep) in body
    assert body.count("€48,000") >= 2
    assert "LinkedIn · Spring webinar" in body
    assert "New customer: Hooli (€48,000)" in body


def test_the_won_date_is_shown_in_the_viewers_time_zone(client, marketer):
    marketer.working_timezone = "America/New_York"
    marketer.save()
    won("Globex", at=dt.datetime(2026, 3, 2, 3, 30, tzinfo=dt.UTC))
    client.force_login(marketer)
    body = client.get(URL).content.decode()
    # 03:30 UTC is the evening before in New York
    assert re.search(r"<td data-label=\"Won\"><span>[^<]*22:30", body)
    assert "2026" in body


def test_pages_follow_each_other_without_gaps_or_repeats(client, marketer):
    now = timezone.now()
    same_moment = now - dt.timedelta(hours=2)
    leads = [won(f"Tie {i}", at=same_moment) for i in range(WINS_PAGE_SIZE + 3)]
    leads += [won(f"Later {i}", at=now - dt.timedelta(minutes=i)) for i in range(4)]
    client.force_login(marketer)

    seen, address, pages = [], URL, 0
    while address:
        response = client.get(address)
        assert response.status_code == 200
        seen += listed(response)
        pages += 1
        found = re.search(r'href="\?([^"]*)" rel="next"', response.content.decode())
        address = f"{URL}?{found.group(1).replace('&amp;', '&')}" if found else None

    assert pages == 2
    assert sorted(seen) == sorted(lead.pk for lead in leads)
    assert len(seen) == len(set(seen))
    assert seen[:4] == [lead.pk for lead in leads[-4:]]  # newest first
    # ties on the won date come in descending id order
    ties = seen[4:]
    assert ties == sorted(ties, reverse=True)


def test_a_page_costs_a_fixed_number_of_queries(client, marketer, rep, django_assert_num_queries):
    now = timezone.now()
    for i in range(WINS_PAGE_SIZE + 5):
        lead = won(f"Customer {i}", at=now - dt.timedelta(hours=i), owner=rep)
        if i % 2:
            Announcement.objects.create(lead=lead, title=f"New customer {i}", body="b")
    client.force_login(marketer)
    # session, user, the bell's unread count, the owner picker, one query for the wins with
    # owner, source, campaign and announcement joined
    with django_assert_num_queries(5):
        response = client.get(URL)
    assert len(listed(response)) == WINS_PAGE_SIZE


def test_period_and_owner_filters(client, marketer, rep, other_rep):
    now = timezone.now()
    recent = won("Recent", at=now - dt.timedelta(minutes=5), owner=rep)
    quarter = won("Quarter", at=now - dt.timedelta(days=60), owner=other_rep)
    old = won("Old", at=now - dt.timedelta(days=400), owner=rep)
    client.force_login(marketer)

    assert listed(client.get(URL, {"period": "all"})) == [recent.pk, quarter.pk, old.pk]
    assert listed(client.get(URL, {"period": "90d"})) == [recent.pk, quarter.pk]
    assert listed(client.get(URL, {"period": "month"})) == [recent.pk]
    assert listed(client.get(URL, {"owner": rep.pk})) == [recent.pk, old.pk]
    assert listed(client.get(URL, {"owner": other_rep.pk, "period": "90d"})) == [quarter.pk]


def test_empty_states_say_what_to_do(client, marketer, rep):
    client.force_login(marketer)
    body = client.get(URL).content.decode()
    assert "No customer won yet. When sales moves an opportunity to won" in body
    won("Old", at=timezone.now() - dt.timedelta(days=400), owner=rep)
    body = client.get(URL, {"period": "90d"}).content.decode()
    assert "No customer was won for these filters. Pick a longer period or another owner" in body


def test_an_unknown_owner_or_period_is_an_error_in_place(client, marketer):
    won("Hooli", at=timezone.now())
    client.force_login(marketer)
    response = client.get(URL, {"owner": "999999", "period": "decade"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Owner: Select a valid choice." in body
    assert "Period: Select a valid choice. decade is not one of the available choices." in body
    assert listed(response) == []


def test_a_cursor_not_given_out_by_the_page_starts_at_the_newest(client, marketer):
    lead = won("Hooli", at=timezone.now())
    client.force_login(marketer)
    for cursor in ("garbage", "2026-01-01T00:00:00_x", "2026-01-01T00:00:00_5"):
        response = client.get(URL, {"before": cursor})
        assert response.status_code == 200
        assert listed(response) == [lead.pk]
