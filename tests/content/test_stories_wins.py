"""The Wins page carries the win story: its reasons, the rep's sentence and the content that
helped, for every won lead that has one, in a fixed number of queries."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from content.stories.services import story_record
from leads.announcements import WINS_PAGE_SIZE, wins_page
from leads.models import Announcement
from tests.content.test_stories_data import asset, close

pytestmark = pytest.mark.django_db

URL = reverse("leads:announcements")


def test_a_win_with_a_story_shows_its_reasons_sentence_and_content(client, marketer, rep):
    helped = asset("Bank case study")
    told = close(owner=rep, company="Initech")
    untold = close(owner=rep, company="Hooli", at=timezone.now() - dt.timedelta(days=2))
    Announcement.objects.create(lead=told.lead, title="New customer: Initech", body="We won")
    story_record(
        stage_change=told,
        by=rep,
        reasons=["proof", "value"],
        sentence="The <b>bank</b> case study settled it.",
        assets=[helped.pk],
    )
    client.force_login(marketer)

    body = client.get(URL).content.decode()

    row = re.search(rf'<tr data-lead="{told.lead_id}">(.*?)</tr>', body, re.S).group(1)
    assert "Proof: references and case studies" in row and "Value for the price" in row
    assert "“The &lt;b&gt;bank&lt;/b&gt; case study settled it.”" in row
    assert "Content that helped:</span> Bank case study" in row
    assert "New customer: Initech" in row
    other = re.search(rf'<tr data-lead="{untold.lead_id}">(.*?)</tr>', body, re.S).group(1)
    assert "win-story" not in other


def test_each_win_gets_its_own_story(rep):
    closes = [close(owner=rep, at=timezone.now() - dt.timedelta(hours=h)) for h in range(3)]
    for closed, reason in zip(closes, ["value", "speed", "support"], strict=True):
        story_record(stage_change=closed, by=rep, reasons=[reason])
    page = wins_page()
    assert [[r.code for r in w.story.reasons.all()] for w in page.wins] == [
        ["value"],
        ["speed"],
        ["support"],
    ]


def test_stories_add_a_fixed_number_of_queries(client, marketer, rep, django_assert_num_queries):
    helped = asset()
    now = timezone.now()
    for i in range(WINS_PAGE_SIZE + 3):
        closed = close(owner=rep, at=now - dt.timedelta(hours=i))
        if i % 2:
            story_record(stage_change=closed, by=rep, reasons=["value"], assets=[helped.pk])
    client.force_login(marketer)
    # the page's five (session, user, bell, owner picker, wins with the story's id) and the
    # stories with their reasons and content
    with django_assert_num_queries(8):
        response = client.get(URL)
    assert response.content.decode().count('class="win-story"') == WINS_PAGE_SIZE // 2
