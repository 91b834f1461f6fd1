"""The agreement pages: the one in force in words, the history, a version with its changes, the
draft form with its errors in place, and the sign-off behind a confirmation."""

import html
import importlib
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alignment.signoff import VersionStatus
from sla import agreements
from sla.models import Agreement, AgreementApproval

pytestmark = pytest.mark.django_db

INSTALLED = importlib.import_module("sla.migrations.0002_installed_agreement")


@pytest.fixture(autouse=True)
def _installed_agreement(db):
    """Transactional tests elsewhere truncate the agreement the migration installed."""
    if not Agreement.objects.exists():
        INSTALLED.add_installed_agreement(apps, None)


def page(client, user, url, status=200) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == status
    return html.unescape(response.content.decode())


def form_data(agreement: Agreement, **changes) -> dict:
    data = {
        "name": agreement.name,
        "scoring_model": agreement.scoring_model_id or "",
        "response_hours": "4",
        "decision_hours": "16",
        "followup_attempts": "3",
        "followup_days": "10",
        "commitment_period": "week",
        "mqls_committed": "50",
        "acceptance_rate_committed": "70",
        "pipeline_committed": "0",
        "timezone": "Europe/Berlin",
        "hours_mon": "09:00-17:00",
        "hours_tue": "09:00-17:00",
        "hours_wed": "09:00-17:00",
        "hours_thu": "09:00-17:00",
        "hours_fri": "09:00-17:00",
        "hours_sat": "closed",
        "hours_sun": "",
        "country": "DE",
        "subdivision": "",
        "closed_days": "",
        "warn_percent": "75",
        "notify_manager_on_breach": "on",
        "reassign_after_hours": "",
        "on_reassign": "restart",
        "report_recipients": "",
        "report_to_managers": "on",
        "review_date": "",
        "notes": "",
    }
    return data | changes


def proposed(by, **changes) -> Agreement:
    draft = agreements.agreement_create_draft(by=by)
    agreements.agreement_update(agreement=draft, by=by, **({"response_hours": "2"} | changes))
    return agreements.agreement_propose(agreement=draft, by=by)


@pytest.mark.parametrize("who", ["marketer", "marketing_manager", "rep", "sales_manager", "admin"])
def test_every_team_member_reads_the_agreement_in_force(client, people, who):
    text = page(client, people[who], reverse("sla:agreement"))
    assert "Alignment agreement v1" in text
    assert "within 4 business hours of assignment" in text
    assert "50 MQLs a week" in text
    assert "70% of them accepted by sales" in text
    assert "Mon–Fri 09:00–17:00 Europe/Berlin, public holidays of DE" in text
    assert "at 75% of the allowed time" in text
    assert "Installed with the product" in text
    assert "No review date is set" in text
    assert ("Start a draft" in text) is (who in ("marketing_manager", "sales_manager"))
    for url in (
        reverse("sla:agreement_history"),
        reverse("sla:agreement_version", args=[Agreement.objects.get().pk]),
    ):
        page(client, people[who], url)


def test_someone_on_neither_team_sees_no_agreement(client, outsider):
    page(client, outsider, reverse("sla:agreement"), status=403)


def test_a_passed_review_date_is_a_warning(client, rep):
    Agreement.objects.update(review_date=timezone.localdate() - timedelta(days=3))
    text = page(client, rep, reverse("sla:agreement"))
    assert 'id="review-passed"' in text and "has passed" in text


def test_a_future_review_date_is_shown(client, rep):
    day = timezone.localdate() + timedelta(days=30)
    Agreement.objects.update(review_date=day)
    text = page(client, rep, reverse("sla:agreement"))
    assert f"Next review on <strong>{day.isoformat()}</strong>" in text
    assert "has passed" not in text


def test_times_are_shown_in_the_viewers_zone(client, marketing_manager, sales_manager):
    proposal = proposed(marketing_manager)
    agreements.agreement_approve(agreement=proposal, by=marketing_manager)
    at = AgreementApproval.objects.get().at
    sales_manager.working_timezone = "America/New_York"
    sales_manager.save()
    text = page(client, sales_manager, reverse("sla:agreement_version", args=[proposal.pk]))
    local = timezone.localtime(at, ZoneInfo("America/New_York"))
    assert local.strftime("%Y-%m-%d %H:%M") in text


def test_a_manager_starts_a_draft_and_edits_it(client, sales_manager):
    client.force_login(sales_manager)
    response = client.post(reverse("sla:agreement_new"))
    draft = Agreement.objects.get(status=VersionStatus.DRAFT)
    assert response.url == reverse("sla:agreement_edit", args=[draft.pk])
    text = page(client, sales_manager, response.url)
    assert 'value="09:00-17:00"' in text and 'value="closed"' in text
    response = client.post(
        response.url,
        form_data(
            draft,
            response_hours="2",
            hours_mon="08:00-12:00, 13:00-17:00",
            closed_days="2026-12-24\n2026-12-31",
            report_recipients="Board@Example.com\ncfo@example.com",
            warn_percent="80",
            reassign_after_hours="4",
        ),
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert str(draft.response_hours) == "2.00"
    assert draft.calendar["hours"]["mon"] == [["08:00", "12:00"], ["13:00", "17:00"]]
    assert draft.calendar["hours"]["sat"] == []
    assert draft.calendar["closed_days"] == ["2026-12-24", "2026-12-31"]
    assert draft.report_recipients == ["board@example.com", "cfo@example.com"]
    assert str(draft.warn_share) == "0.800"
    text = page(client, sales_manager, reverse("sla:agreement_version", args=[draft.pk]))
    assert "within 2 business hours of assignment" in text  # the change, in words
    assert "to the next eligible rep 4 business hours after a breach" in text


def test_the_edit_form_shows_each_problem_on_its_field(client, marketing_manager):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    client.force_login(marketing_manager)
    response = client.post(
        reverse("sla:agreement_edit", args=[draft.pk]),
        form_data(
            draft,
            hours_tue="17:00-09:00",
            hours_wed="nine to five",
            report_recipients="not-an-address",
            acceptance_rate_committed="150",
            review_date=(timezone.localdate() - timedelta(days=1)).isoformat(),
        ),
    )
    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    # the form's own check first: a shift it cannot read
    assert re.search(r'id="field-hours_wed">.*?errorlist.*?nine to five', text, re.S)
    response = client.post(
        reverse("sla:agreement_edit", args=[draft.pk]),
        form_data(
            draft,
            hours_tue="17:00-09:00",
            report_recipients="not-an-address",
            acceptance_rate_committed="150",
            review_date=(timezone.localdate() - timedelta(days=1)).isoformat(),
        ),
    )
    assert response.status_code == 400
    text = html.unescape(response.content.decode())
    errors = dict(
        re.findall(
            r'id="field-(\w+)">\s*<label[^>]*>[^<]*</label>\s*<ul class="errorlist"><li>([^<]*)',
            text,
        )
    )
    assert "does not end after it starts" in errors["hours_tue"]
    assert "not an email address" in errors["report_recipients"]
    assert "at most 100" in errors["acceptance_rate_committed"]
    assert "review date has passed" in errors["review_date"]
    draft.refresh_from_db()
    assert draft.calendar["hours"]["tue"] == [["09:00", "17:00"]]  # nothing saved


def test_people_other_than_the_managers_cannot_draft_or_edit(
    client, marketer, rep, marketing_manager
):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    for person in (marketer, rep):
        client.force_login(person)
        assert client.post(reverse("sla:agreement_new")).status_code == 403
        assert client.get(reverse("sla:agreement_edit", args=[draft.pk])).status_code == 403
        assert (
            client.get(reverse("sla:agreement_decide", args=[draft.pk, "approve"])).status_code
            == 403
        )


def test_the_approval_flow_from_proposal_to_agreement_in_force(
    client, marketing_manager, sales_manager
):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    agreements.agreement_update(agreement=draft, by=marketing_manager, mqls_committed=80)
    client.force_login(marketing_manager)
    client.post(reverse("sla:agreement_decide", args=[draft.pk, "propose"]))
    draft.refresh_from_db()
    assert draft.status == VersionStatus.PROPOSED

    approve = reverse("sla:agreement_decide", args=[draft.pk, "approve"])
    text = page(client, marketing_manager, approve)
    assert "Yours is the first approval" in text and "sales manager approves it too" in text
    assert "50 MQLs a week" in text and "80 MQLs a week" in text  # what changes, in words
    read_at = re.search(r'name="read_at" value="([^"]+)"', text).group(1)
    # without the tick nothing is approved
    response = client.post(approve, {"read_at": read_at})
    assert response.status_code == 400 and not AgreementApproval.objects.exists()
    client.post(approve, {"read_at": read_at, "confirm": "on"})
    assert AgreementApproval.objects.count() == 1

    text = page(client, sales_manager, approve)
    assert "Yours is the second approval" in text
    read_at = re.search(r'name="read_at" value="([^"]+)"', text).group(1)
    response = client.post(approve, {"read_at": read_at, "confirm": "on", "note": "agreed"})
    assert response.url == reverse("sla:agreement")
    draft.refresh_from_db()
    assert draft.status == VersionStatus.ACTIVE
    text = page(client, sales_manager, reverse("sla:agreement"))
    assert "Alignment agreement v2" in text and "80 MQLs a week" in text
    assert f"{marketing_manager} (marketing manager) approved" in text
    assert f"{sales_manager} (sales manager) approved" in text
    history = page(client, sales_manager, reverse("sla:agreement_history"))
    assert "1 change: mqls committed" in history and "Retired" in history


def test_an_approval_of_a_version_changed_since_it_was_read_is_refused(
    client, marketing_manager, sales_manager
):
    proposal = proposed(marketing_manager)
    approve = reverse("sla:agreement_decide", args=[proposal.pk, "approve"])
    read_at = re.search(
        r'name="read_at" value="([^"]+)"', page(client, sales_manager, approve)
    ).group(1)
    agreements.agreement_withdraw(agreement=proposal, by=marketing_manager)
    agreements.agreement_update(agreement=proposal, by=marketing_manager, response_hours="1")
    agreements.agreement_propose(agreement=proposal, by=marketing_manager)
    client.force_login(sales_manager)
    response = client.post(approve, {"read_at": read_at, "confirm": "on"})
    assert response.status_code == 400
    assert "changed after you opened it" in html.unescape(response.content.decode())
    assert not AgreementApproval.objects.exists()


def test_send_back_needs_a_reason_shown_on_the_page(client, marketing_manager, sales_manager):
    proposal = proposed(marketing_manager)
    client.force_login(sales_manager)
    url = reverse("sla:agreement_decide", args=[proposal.pk, "send-back"])
    response = client.post(url, {"note": ""})
    assert response.status_code == 400
    assert "Say why the proposal is sent back." in html.unescape(response.content.decode())
    client.post(url, {"note": "too tight for the holidays"})
    proposal.refresh_from_db()
    assert proposal.status == VersionStatus.DRAFT
    text = page(client, sales_manager, reverse("sla:agreement_version", args=[proposal.pk]))
    assert "Sent back by" in text and "too tight for the holidays" in text


def test_the_version_page_shows_its_diff(client, marketing_manager, rep):
    proposal = proposed(marketing_manager, followup_attempts=5)
    text = page(client, rep, reverse("sla:agreement_version", args=[proposal.pk]))
    assert re.search(
        r"Follow-up attempts</td><td>at least 3 attempts</td><td><strong>at least 5", text
    )
    assert "Approve…" not in text  # a rep reads, never approves


def test_the_history_reads_a_fixed_number_of_queries(
    client, marketing_manager, sales_manager, django_assert_max_num_queries
):
    def signed():
        proposal = proposed(marketing_manager, response_hours=str(Agreement.objects.count()))
        agreements.agreement_approve(agreement=proposal, by=marketing_manager)
        agreements.agreement_approve(agreement=proposal, by=sales_manager)

    client.force_login(sales_manager)
    signed()
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("sla:agreement_history"))
    for _ in range(3):
        signed()
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("sla:agreement_history"))
    assert response.content.decode().count("<tr>") == 1 + 5
    assert len(many) == len(few)
    for url in (reverse("sla:agreement"), reverse("sla:agreement_history")):
        with django_assert_max_num_queries(8):
            client.get(url)
