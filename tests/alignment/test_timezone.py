"""Time zones as people meet them: each person types and reads times in their working_timezone;
anonymous visitors, unknown zones and emails use the company's TIME_ZONE."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from alignment.middleware import WorkingTimezoneMiddleware
from alignment.models import User
from alignment.templatetags.datetimes import local_datetime
from leads import services
from leads.announcements import won_story
from leads.forms import TouchpointForm
from leads.models import Lead, Stage, Touchpoint, TouchpointKind
from tests.factories import LeadFactory, TouchpointFactory, UserFactory

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# a winter instant: Berlin is UTC+1 (13:00), New York UTC-5 (07:00)
NOON_UTC = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)


def _local_minutes_ago(zone: ZoneInfo, minutes: int) -> dt.datetime:
    """What a person in `zone` reads on their wall clock `minutes` ago, to the minute."""
    local = timezone.localtime(timezone.now(), zone) - dt.timedelta(minutes=minutes)
    return local.replace(second=0, microsecond=0)


def _post_call(client, lead, occurred_at: str):
    return client.post(
        reverse("leads:touchpoint", args=[lead.pk]),
        {"kind": TouchpointKind.CALL, "occurred_at": occurred_at, "note": "Discovery call"},
    )


def _zone_seen_by_view(request) -> str:
    response = HttpResponse()
    response.zone = timezone.get_current_timezone_name()
    return response


def _zone_for(user) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return WorkingTimezoneMiddleware(_zone_seen_by_view)(request).zone


def test_berlin_rep_logs_a_call_from_30_minutes_ago_at_the_right_instant(client, rep):
    rep.working_timezone = "Europe/Berlin"
    rep.save(update_fields=["working_timezone"])
    lead = LeadFactory(stage=Stage.MQL, owner=rep, mql_at=timezone.now() - dt.timedelta(hours=3))
    local = _local_minutes_ago(BERLIN, 30)
    client.force_login(rep)

    response = _post_call(client, lead, local.strftime("%Y-%m-%dT%H:%M"))

    assert response.status_code == 302, response.content.decode()
    tp = Touchpoint.objects.get(lead=lead)
    assert tp.occurred_at == local.astimezone(dt.UTC)
    assert dt.timedelta(minutes=29) < timezone.now() - tp.occurred_at < dt.timedelta(minutes=32)


def test_new_york_rep_call_is_stored_at_the_right_instant_not_hours_early(client, rep):
    rep.working_timezone = "America/New_York"
    rep.save(update_fields=["working_timezone"])
    lead = LeadFactory(stage=Stage.MQL, owner=rep, mql_at=timezone.now() - dt.timedelta(days=1))
    local = _local_minutes_ago(NEW_YORK, 120)
    client.force_login(rep)

    # browsers send seconds when the input's step allows them
    response = _post_call(client, lead, local.strftime("%Y-%m-%dT%H:%M:%S"))

    assert response.status_code == 302, response.content.decode()
    tp = Touchpoint.objects.get(lead=lead)
    assert tp.occurred_at == local.astimezone(dt.UTC)
    assert dt.timedelta(minutes=119) < timezone.now() - tp.occurred_at < dt.timedelta(minutes=122)


def test_a_call_in_the_future_of_the_reps_own_clock_is_still_refused(client, rep):
    rep.working_timezone = "Europe/Berlin"
    rep.save(update_fields=["working_timezone"])
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(rep)

    response = _post_call(client, lead, _local_minutes_ago(BERLIN, -30).strftime("%Y-%m-%dT%H:%M"))

    assert response.status_code == 400
    assert "cannot happen in the future" in response.content.decode()
    assert not Touchpoint.objects.filter(lead=lead).exists()


def test_anonymous_visitor_gets_the_company_time_zone(settings, db):
    settings.TIME_ZONE = "Asia/Tokyo"
    assert _zone_for(AnonymousUser()) == "Asia/Tokyo"


def test_person_with_an_unknown_zone_gets_the_company_time_zone(settings, rep):
    settings.TIME_ZONE = "Asia/Tokyo"
    # written around the validator, as a bad import or an old tz database would leave it
    User.objects.filter(pk=rep.pk).update(working_timezone="Mars/Olympus_Mons")
    rep.refresh_from_db()
    assert _zone_for(rep) == "Asia/Tokyo"


def test_signed_in_person_gets_their_zone_only_for_their_request(settings, rep):
    settings.TIME_ZONE = "Asia/Tokyo"
    rep.working_timezone = "America/New_York"
    assert _zone_for(rep) == "America/New_York"
    # the zone does not leak into whatever this thread runs next
    assert timezone.get_current_timezone_name() == "Asia/Tokyo"


def test_new_people_work_in_the_company_time_zone(settings, db):
    settings.TIME_ZONE = "Europe/Lisbon"
    assert User.objects.create_user("newcomer").working_timezone == "Europe/Lisbon"
    assert UserFactory(username="another").working_timezone == "Europe/Lisbon"


@pytest.mark.parametrize(
    ("zone", "shown", "not_shown"),
    [
        ("Europe/Berlin", "2025-01-15 13:00", "2025-01-15 07:00"),
        ("America/New_York", "2025-01-15 07:00", "2025-01-15 13:00"),
    ],
)
def test_lead_page_shows_the_touchpoint_time_in_the_viewers_zone(
    client, rep, zone, shown, not_shown
):
    rep.working_timezone = zone
    rep.save(update_fields=["working_timezone"])
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    # through the service, as a page would: the timeline reads its event
    services.touchpoint_record(lead=lead, kind=TouchpointKind.CALL, occurred_at=NOON_UTC, by=rep)
    client.force_login(rep)

    page = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()

    assert f"<time>{shown}</time>" in page
    assert not_shown not in page
    assert "2025-01-15 12:00" not in page
    assert f"Times in {zone}" in page


def test_person_with_an_unknown_zone_reads_company_time(client, settings, rep):
    settings.TIME_ZONE = "Europe/Berlin"
    User.objects.filter(pk=rep.pk).update(working_timezone="Nowhere/Special")
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    services.touchpoint_record(lead=lead, kind=TouchpointKind.CALL, occurred_at=NOON_UTC, by=rep)
    client.force_login(rep)

    page = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()

    assert "<time>2025-01-15 13:00</time>" in page
    assert "Times in Europe/Berlin" in page


def test_touchpoint_widget_shows_its_value_as_the_persons_local_wall_clock():
    with timezone.override(BERLIN):
        form = TouchpointForm(
            initial={"occurred_at": NOON_UTC}, lead=Lead(), user=User(role="marketer")
        )
        html = str(form["occurred_at"])
    assert 'type="datetime-local"' in html
    assert 'value="2025-01-15T13:00"' in html


def test_stored_iso_text_is_shown_in_the_viewers_zone():
    # score explanations and announcement details keep their instants as ISO text
    with timezone.override(NEW_YORK):
        assert local_datetime(NOON_UTC.isoformat()) == "2025-01-15 07:00"
    assert local_datetime("not a date") == ""


def test_won_email_shows_times_in_the_company_zone_whoever_triggers_it(settings, rep):
    settings.TIME_ZONE = "Europe/Berlin"
    lead = LeadFactory(stage=Stage.WON, owner=rep, company="Acme")
    TouchpointFactory(lead=lead, kind=TouchpointKind.DEMO_REQUEST, occurred_at=NOON_UTC)
    story = won_story(lead=lead)

    # a New York viewer's request is active: the email, read by many, stays in company time
    with timezone.override(NEW_YORK):
        text = render_to_string("leads/email/won.txt", {"story": story, "lead": lead})
        html = render_to_string("leads/email/won.html", {"story": story, "lead": lead})

    for body in (text, html):
        assert "2025-01-15 13:00 CET" in body
        assert "Times are in Europe/Berlin." in body
        assert "07:00" not in body
