import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alignment.lib.errors import DomainError
from leads.admin import LEADS_NEVER_DELETED
from leads.models import (
    LEAD_TEXT_FIELDS,
    AssignmentRule,
    EventType,
    Lead,
    LeadEvent,
    OutboxEntry,
    Stage,
    Touchpoint,
    TouchpointKind,
)
from tests.factories import LeadFactory, TouchpointFactory, UserFactory

pytestmark = pytest.mark.django_db

# columns the scoring model may rewrite after a data change; none of them is lead data
SCORE_COLUMNS = {
    "fit_score",
    "engagement_score",
    "score",
    "grade",
    "scored_with_id",
    "engagement_anchor_at",
    "engagement_sums",
}


def change_url(lead: Lead) -> str:
    return reverse("admin:leads_lead_change", args=[lead.pk])


def change_form_data(client, lead: Lead) -> dict:
    """What the browser would post back from the lead's change page, unchanged."""
    response = client.get(change_url(lead))
    assert response.status_code == 200
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        data[name] = "" if value is None else value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
    return data


def lead_update_columns(queries) -> list[set[str]]:
    """The columns each UPDATE of leads_lead sets."""
    found = []
    for query in queries.captured_queries:
        sql = query["sql"]
        if re.match(r'UPDATE "?leads_lead"? ', sql):
            set_clause = sql.split(" WHERE ")[0]
            found.append(set(re.findall(r'"?(\w+)"? = ', set_clause.split(" SET ", 1)[1])))
    return found


def action_names(page) -> list[str]:
    form = page.context["action_form"]
    return [] if form is None else [value for value, _ in form.fields["action"].choices if value]


def updated_events(lead: Lead) -> list[LeadEvent]:
    return list(LeadEvent.objects.filter(lead_id=lead.pk, type=EventType.LEAD_UPDATED))


def test_admin_refuses_a_rule_with_a_bad_condition(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:leads_assignmentrule_add"),
        {
            "name": "Broken",
            "position": 1,
            "active": "on",
            "conditions": '[{"field": "country", "op": "near", "value": "DE"}]',
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "unknown op" in response.content.decode()
    assert not AssignmentRule.objects.exists()


@pytest.mark.parametrize(
    "name",
    [
        "lead",
        "touchpoint",
        "campaign",
        "reason",
        "assignmentrule",
        "importjob",
        "stagechange",
        "assignment",
        "mergerecord",
        "announcement",
        "leadevent",
        "outboxentry",
    ],
)
def test_admin_pages_render_for_the_pipeline(client, admin_user, name):
    client.force_login(admin_user)
    assert client.get(reverse(f"admin:leads_{name}_changelist")).status_code == 200


def test_only_the_plain_lead_data_is_editable(client, admin_user):
    lead = LeadFactory()
    client.force_login(admin_user)

    form = client.get(change_url(lead)).context["adminform"].form

    assert set(form.fields) == {*LEAD_TEXT_FIELDS, "company_size", "source", "campaign"}


def test_editing_the_company_goes_through_the_service(client, admin_user):
    lead = LeadFactory(company="Acme")
    client.force_login(admin_user)
    data = change_form_data(client, lead)
    data["company"] = "Acme Robotics"

    with CaptureQueriesContext(connection) as queries:
        response = client.post(change_url(lead), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    lead.refresh_from_db()
    assert lead.company == "Acme Robotics"
    [event] = updated_events(lead)
    assert event.payload == {"changes": {"company": ["Acme", "Acme Robotics"]}}
    assert event.actor_id == admin_user.pk
    assert event.system == "admin"
    updates = lead_update_columns(queries)
    data_updates = [columns - SCORE_COLUMNS for columns in updates]
    # one UPDATE writes the data, and it sets only the changed column; none touches another
    assert [columns for columns in data_updates if columns] == [{"company", "updated_at"}]


def test_read_only_fields_posted_anyway_are_not_changed(client, admin_user, rep):
    lead = LeadFactory(company="Acme", email="buyer@acme.example")
    before = Lead.objects.get(pk=lead.pk)
    client.force_login(admin_user)
    data = change_form_data(client, lead)
    data.update(
        company="Acme Robotics",
        stage=Stage.WON,
        owner=str(rep.pk),
        score="99",
        fit_score="99",
        mql_count="7",
        email="someone@else.example",
        deal_value="100000",
        attributes='{"vip": true}',
    )

    response = client.post(change_url(lead), data)

    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.company == "Acme Robotics"
    assert (lead.stage, lead.owner_id, lead.mql_count) == (Stage.NEW, None, 0)
    assert lead.email == "buyer@acme.example"
    assert lead.deal_value is None and lead.attributes == before.attributes
    assert (lead.score, lead.fit_score) != (99, 99)
    [event] = updated_events(lead)
    assert set(event.payload["changes"]) == {"company"}


def test_saving_an_unchanged_lead_writes_nothing(client, admin_user):
    lead = LeadFactory()
    client.force_login(admin_user)
    data = change_form_data(client, lead)

    with CaptureQueriesContext(connection) as queries:
        response = client.post(change_url(lead), data)

    assert response.status_code == 302
    assert updated_events(lead) == []
    assert lead_update_columns(queries) == []


def test_a_refusal_of_the_service_is_shown_on_the_form(client, db):
    # staff with every Django permission on leads, but no team role: the service says no
    clerk = UserFactory(username="clerk", role="", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename__in=["view_lead", "change_lead"]))
    lead = LeadFactory(company="Acme")
    client.force_login(clerk)
    data = change_form_data(client, lead)
    data["company"] = "Acme Robotics"

    response = client.post(change_url(lead), data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "may not do lead.edit" in " ".join(form.non_field_errors())
    assert "may not do lead.edit" in response.content.decode()
    lead.refresh_from_db()
    assert lead.company == "Acme"
    assert updated_events(lead) == []


def test_a_refusal_naming_a_field_is_shown_at_that_field(client, admin_user, monkeypatch):
    def refuse(**kwargs):
        raise DomainError("Company is on the embargo list.", field="company")

    monkeypatch.setattr("leads.admin.lead_update", refuse)
    lead = LeadFactory(company="Acme")
    client.force_login(admin_user)
    data = change_form_data(client, lead)
    data["company"] = "Embargoed Ltd"

    response = client.post(change_url(lead), data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {"company": ["Company is on the embargo list."]}
    # the page shows what was typed, to correct it
    assert form["company"].value() == "Embargoed Ltd"
    lead.refresh_from_db()
    assert lead.company == "Acme"


def test_a_lead_cannot_be_added_in_the_admin(client, admin_user):
    client.force_login(admin_user)

    assert client.get(reverse("admin:leads_lead_add")).status_code == 403
    response = client.post(reverse("admin:leads_lead_add"), {"email": "new@lead.example"})

    assert response.status_code == 403
    assert not Lead.objects.exists()


def test_deleting_a_lead_is_refused_with_the_reason(client, admin_user):
    lead = LeadFactory()
    client.force_login(admin_user)
    delete_url = reverse("admin:leads_lead_delete", args=[lead.pk])

    response = client.get(delete_url)
    assert response.status_code == 302
    assert response["Location"] == change_url(lead)
    response = client.post(delete_url, {"post": "yes"}, follow=True)

    assert LEADS_NEVER_DELETED in response.content.decode()
    assert Lead.objects.filter(pk=lead.pk).exists()
    # and the change page offers no delete link
    assert delete_url not in client.get(change_url(lead)).content.decode()


def test_the_lead_list_has_no_delete_action(client, admin_user):
    lead = LeadFactory()
    client.force_login(admin_user)
    changelist = reverse("admin:leads_lead_changelist")

    page = client.get(changelist)
    response = client.post(
        changelist, {"action": "delete_selected", "_selected_action": [lead.pk], "post": "yes"}
    )

    assert "delete_selected" not in action_names(page)
    assert response.status_code in (200, 302)
    assert Lead.objects.filter(pk=lead.pk).exists()


def test_a_missing_lead_delete_url_goes_back_to_the_list(client, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("admin:leads_lead_delete", args=[987654]))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:leads_lead_changelist")


@pytest.mark.parametrize(
    "name", ["touchpoint", "stagechange", "assignment", "mergerecord", "announcement"]
)
def test_history_cannot_be_added_in_the_admin(client, admin_user, name):
    client.force_login(admin_user)

    assert client.get(reverse(f"admin:leads_{name}_add")).status_code == 403


def test_a_touchpoint_is_shown_but_cannot_be_changed_or_deleted(client, admin_user):
    touchpoint = TouchpointFactory(kind=TouchpointKind.WEB_VISIT)
    client.force_login(admin_user)
    url = reverse("admin:leads_touchpoint_change", args=[touchpoint.pk])

    page = client.get(url)
    changed = client.post(url, {"lead": touchpoint.lead_id, "kind": TouchpointKind.DEMO_REQUEST})
    deleted = client.post(
        reverse("admin:leads_touchpoint_delete", args=[touchpoint.pk]), {"post": "yes"}
    )

    assert page.status_code == 200 and "adminform" in page.context
    assert changed.status_code == 403 and deleted.status_code == 403
    touchpoint.refresh_from_db()
    assert touchpoint.kind == TouchpointKind.WEB_VISIT
    assert Touchpoint.objects.filter(pk=touchpoint.pk).exists()


def make_event(lead: Lead, type: str = EventType.LEAD_WON) -> LeadEvent:
    return LeadEvent.objects.create(lead_id=lead.pk, type=type, system="test")


def test_the_event_log_is_searched_by_lead_id_and_filtered_by_type(client, admin_user):
    lead, other = LeadFactory(), LeadFactory()
    won = make_event(lead)
    updated = make_event(lead, EventType.LEAD_UPDATED)
    make_event(other)
    client.force_login(admin_user)
    changelist = reverse("admin:leads_leadevent_changelist")

    by_lead = client.get(changelist, {"q": str(lead.pk)})
    by_type = client.get(changelist, {"q": str(lead.pk), "type": EventType.LEAD_WON})
    by_text = client.get(changelist, {"q": "acme"}, follow=True)

    assert {e.pk for e in by_lead.context["cl"].result_list} == {won.pk, updated.pk}
    assert [e.pk for e in by_type.context["cl"].result_list] == [won.pk]
    assert list(by_text.context["cl"].result_list) == []
    assert "is not a number" in by_text.content.decode()


def test_an_event_is_read_only(client, admin_user):
    event = make_event(LeadFactory())
    client.force_login(admin_user)

    page = client.get(reverse("admin:leads_leadevent_change", args=[event.pk]))
    changed = client.post(
        reverse("admin:leads_leadevent_change", args=[event.pk]), {"type": "lead.lost"}
    )

    assert page.status_code == 200
    assert reverse("admin:leads_lead_change", args=[event.lead_id]) in page.content.decode()
    assert changed.status_code == 403
    assert client.get(reverse("admin:leads_leadevent_add")).status_code == 403
    event.refresh_from_db()
    assert event.type == EventType.LEAD_WON


def test_retry_gives_failed_outbox_entries_another_round(client, admin_user):
    event = make_event(LeadFactory())
    now = timezone.now()
    failed = OutboxEntry.objects.create(
        event=event,
        reaction="leads.announcements.won_reaction",
        attempts=8,
        failed_at=now,
        available_at=now + timezone.timedelta(hours=1),
        last_error="Traceback...\nSMTPServerDisconnected: Connection unexpectedly closed\n",
    )
    done = OutboxEntry.objects.create(
        event=event, reaction="leads.other", attempts=1, dispatched_at=now
    )
    client.force_login(admin_user)
    changelist = reverse("admin:leads_outboxentry_changelist")

    listing = client.get(changelist, {"state": "failed"})
    response = client.post(
        changelist, {"action": "retry", "_selected_action": [failed.pk, done.pk]}, follow=True
    )

    assert [e.pk for e in listing.context["cl"].result_list] == [failed.pk]
    assert "SMTPServerDisconnected: Connection unexpectedly closed" in listing.content.decode()
    text = response.content.decode()
    assert "1 outbox entry will be tried again" in text
    assert "1 already dispatched left alone" in text
    failed.refresh_from_db()
    assert (failed.failed_at, failed.attempts) == (None, 0)
    assert failed.available_at <= timezone.now()
    done.refresh_from_db()
    assert done.attempts == 1 and done.dispatched_at == now


def test_retry_needs_the_change_permission_on_the_outbox(client, db):
    failed = OutboxEntry.objects.create(
        event=make_event(LeadFactory()),
        reaction="leads.other",
        attempts=8,
        failed_at=timezone.now(),
    )
    viewer = UserFactory(username="viewer", role="", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_outboxentry"))
    client.force_login(viewer)
    changelist = reverse("admin:leads_outboxentry_changelist")

    page = client.get(changelist)
    client.post(changelist, {"action": "retry", "_selected_action": [failed.pk]})

    assert page.status_code == 200
    assert "retry" not in action_names(page)
    failed.refresh_from_db()
    assert failed.failed_at is not None and failed.attempts == 8


def test_an_admin_sees_the_retry_action(client, admin_user):
    client.force_login(admin_user)

    page = client.get(reverse("admin:leads_outboxentry_changelist"))

    assert action_names(page) == ["retry"]
