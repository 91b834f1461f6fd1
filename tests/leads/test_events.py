"""The write boundary, the event log and the outbox: one test per source of change, the
transaction they share, the dispatcher's claims and order, and a broker outage."""

import ast
import io
import pathlib
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alignment.celery import app as celery_app
from alignment.lib.errors import DomainError
from leads import events, services
from leads.importing.services import leads_import
from leads.models import (
    Announcement,
    EventType,
    ImportJob,
    ImportStatus,
    Lead,
    LeadEvent,
    OutboxEntry,
    Stage,
    StageChange,
)
from tests.conftest import wait_for
from tests.factories import LeadFactory, RepFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("alignment", "leads", "sla", "kpis")


def types_of(lead: Lead) -> list[str]:
    return list(
        LeadEvent.objects.filter(lead_id=lead.pk).order_by("id").values_list("type", flat=True)
    )


def lead_updates(queries) -> list[str]:
    """The UPDATE statements of leads_lead that set lead data (not the score columns)."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith('UPDATE "leads_lead"') and '"fit_score" =' not in q["sql"]
    ]


# --- one test per source of change -------------------------------------------------------------


def test_a_service_call_writes_only_the_changed_field_and_its_event(marketer):
    lead = LeadFactory(company="Engines", title="CTO")
    with CaptureQueriesContext(connection) as queries:
        services.lead_update(
            lead=lead, changes={"company": "Engines Ltd", "title": "CTO"}, by=marketer
        )
    [update] = lead_updates(queries.captured_queries)
    assert '"company" =' in update and '"title"' not in update and '"stage"' not in update
    event = LeadEvent.objects.get(lead_id=lead.pk, type=EventType.LEAD_UPDATED)
    assert event.payload == {"changes": {"company": ["Engines", "Engines Ltd"]}}
    assert (event.actor, event.system) == (marketer, "")


def test_nothing_changed_writes_nothing(marketer):
    lead = LeadFactory(company="Engines")
    services.lead_update(lead=lead, changes={"company": "Engines"}, by=marketer)
    assert types_of(lead) == []


def test_a_refused_change_leaves_neither_row_nor_event(marketer):
    lead = LeadFactory(company="Engines")
    with pytest.raises(DomainError, match="Company size must be a whole number"):
        services.lead_update(
            lead=lead, changes={"company": "X", "company_size": "many"}, by=marketer
        )
    with pytest.raises(DomainError, match="cannot be changed here"):
        services.lead_update(lead=lead, changes={"stage": "won"}, by=marketer)
    assert Lead.objects.get(pk=lead.pk).company == "Engines"
    assert types_of(lead) == []


def test_the_event_commits_or_rolls_back_with_the_change(marketer):
    lead = LeadFactory(company="Engines")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.lead_update(lead=lead, changes={"company": "Gone"}, by=marketer)
        assert EventType.LEAD_UPDATED in types_of(lead)
        raise RuntimeError("the caller's transaction fails after the service")
    assert Lead.objects.get(pk=lead.pk).company == "Engines"
    assert types_of(lead) == []


def test_a_page_action_writes_its_events(client, marketer):
    lead = LeadFactory()
    client.force_login(marketer)
    response = client.post(reverse("leads:move", args=[lead.pk]), {"to": Stage.NURTURING})
    assert response.status_code == 302
    assert types_of(lead) == [EventType.LEAD_STAGE_CHANGED]
    event = LeadEvent.objects.get(lead_id=lead.pk)
    change = StageChange.objects.get(lead=lead)
    assert event.payload["stage_change_id"] == change.pk
    assert (event.payload["from"], event.payload["to"], event.actor) == (
        "new",
        "nurturing",
        marketer,
    )


def test_a_command_writes_its_events(tmp_path, marketer):
    path = tmp_path / "leads.csv"
    path.write_text("email,company\nada@engines.example,Engines\n")
    call_command("import_leads", str(path), stdout=io.StringIO())
    lead = Lead.objects.get(email="ada@engines.example")
    created = LeadEvent.objects.get(lead_id=lead.pk, type=EventType.LEAD_CREATED)
    assert (created.system, created.payload["email"]) == ("import", "ada@engines.example")


def test_an_import_writes_created_and_updated_events_in_bulk(marketer):
    existing = LeadFactory(email="bob@widgets.example", company="Widgets")
    content = b"email,company\nada@engines.example,Engines\nbob@widgets.example,Widgets Inc\n"
    leads_import(file=io.BytesIO(content), filename="leads.csv", by=marketer)
    ada = Lead.objects.get(email="ada@engines.example")
    assert EventType.LEAD_CREATED in types_of(ada)
    updated = LeadEvent.objects.get(lead_id=existing.pk, type=EventType.LEAD_UPDATED)
    assert updated.payload["changes"]["company"] == ["Widgets", "Widgets Inc"]
    assert (updated.actor, updated.system) == (marketer, "import")


def _logged(after_id: int) -> tuple[list, list]:
    """The events after `after_id` and their outbox entries, in id order, without ids/times."""
    rows = list(
        LeadEvent.objects.filter(pk__gt=after_id)
        .order_by("pk")
        .values_list("pk", "lead_id", "type", "occurred_at", "actor_id", "system", "payload")
    )
    position = {row[0]: n for n, row in enumerate(rows)}
    entries = [
        (position[event_id], reaction, lead_id, attempts, last_error, created == available)
        for event_id, reaction, lead_id, attempts, last_error, created, available in (
            OutboxEntry.objects.filter(event_id__in=position)
            .order_by("pk")
            .values_list(
                "event_id",
                "reaction",
                "lead_id",
                "attempts",
                "last_error",
                "created_at",
                "available_at",
            )
        )
    ]
    return [row[1:] for row in rows], entries


def test_bulk_events_are_the_rows_and_entries_one_by_one_writes(rep, settings):
    settings.OUTBOX_REACTIONS = {
        EventType.LEAD_STAGE_CHANGED: ["r.clock", "r.other"],
        "touchpoint.recorded[sales]": ["r.clock"],
        "*": ["r.every"],
    }
    settings.OUTBOX_REACTION_GATES = {}
    lead, other = LeadFactory(), LeadFactory()
    at = timezone.now()
    new = [
        events.NewEvent(
            type=EventType.LEAD_STAGE_CHANGED,
            lead_id=lead.pk,
            occurred_at=at,
            payload={"from": "new", "to": "mql", "deal_value": None},
            system="x",
        ),
        events.NewEvent(
            type=EventType.TOUCHPOINT_RECORDED,
            lead_id=other.pk,
            occurred_at=at,
            payload={"kind": "call", "sales": True, "at": at},
            actor_id=rep.pk,
        ),
        events.NewEvent(
            type=EventType.TOUCHPOINT_RECORDED,
            lead_id=other.pk,
            occurred_at=at,
            payload={"kind": "page_view", "sales": False, "note": "é ' \" \\ ;"},
            system="x",
        ),
        events.NewEvent(
            type="scoring.activated", lead_id=None, occurred_at=at, payload={}, system="x"
        ),
        events.NewEvent(
            type=EventType.LEAD_ASSIGNED, lead_id=lead.pk, occurred_at=at, payload={}, system="y"
        ),
    ] * 3
    start = LeadEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for event in new:
        events.event_record_from(event, by=rep if event.actor_id else None)
    middle = LeadEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    # batches of two: the ids and the entries still follow the given order across statements
    assert events.events_record_bulk(new, batch_size=2) == len(new)

    one_by_one, bulk = _logged(start), _logged(middle)
    assert bulk[0] == one_by_one[0][: len(new)]
    assert bulk[1] == [e for e in one_by_one[1] if e[0] < len(new)]
    assert [e[1] for e in bulk[1][:5]] == ["r.clock", "r.other", "r.every", "r.every", "r.clock"]


def test_an_imported_outcome_is_history_that_nothing_reacts_to(marketer):
    content = b"email,company,outcome\nada@engines.example,Engines,won\n"
    mapping = {"outcome": {"column": "outcome", "won": ["won"], "lost": ["lost"]}}
    leads_import(file=io.BytesIO(content), filename="won.csv", by=marketer, mapping=mapping)
    ada = Lead.objects.get(email="ada@engines.example")
    assert ada.stage == Stage.WON
    assert {EventType.LEAD_STAGE_CHANGED, EventType.LEAD_WON} <= set(types_of(ada))
    assert not OutboxEntry.objects.exists()  # no announcement of a win from the past


def test_a_touchpoint_is_one_event_with_its_facts(rep):
    lead = LeadFactory(owner=rep, stage=Stage.MQL, mql_at=timezone.now())
    tp = services.touchpoint_record(lead=lead, kind="call", by=rep)
    event = LeadEvent.objects.get(lead_id=lead.pk, type=EventType.TOUCHPOINT_RECORDED)
    assert event.payload == {
        "touchpoint_id": tp.pk,
        "kind": "call",
        "campaign_id": None,
        "sales": True,
        "first_sales_touch": True,
    }
    assert event.occurred_at == tp.occurred_at


def test_a_rep_cannot_log_sales_activity_on_another_reps_lead(rep, other_rep, sales_manager):
    lead = LeadFactory(owner=other_rep, stage=Stage.MQL, mql_at=timezone.now())
    with pytest.raises(DomainError, match="not assigned to you"):
        services.touchpoint_record(lead=lead, kind="call", by=rep)
    assert Lead.objects.get(pk=lead.pk).first_sales_touch_at is None
    assert types_of(lead) == []
    services.touchpoint_record(lead=lead, kind="call", by=sales_manager)  # managers may
    assert Lead.objects.get(pk=lead.pk).first_sales_touch_at is not None


def test_a_crafted_post_for_another_reps_lead_is_a_form_error(client, rep, other_rep):
    lead = LeadFactory(owner=other_rep, stage=Stage.MQL, mql_at=timezone.now())
    client.force_login(rep)
    response = client.post(reverse("leads:touchpoint", args=[lead.pk]), {"kind": "call"})
    assert response.status_code == 400
    assert "not assigned to you" in response.content.decode()
    assert not lead.touchpoints.exists()


def test_a_merge_keeps_the_duplicates_events_and_names_them(sales_manager, marketer):
    survivor, duplicate = LeadFactory(company=""), LeadFactory(company="Engines")
    services.lead_update(lead=duplicate, changes={"title": "CTO"}, by=marketer)
    services.lead_merge(survivor=survivor, duplicate=duplicate, by=sales_manager)
    merged = LeadEvent.objects.get(lead_id=survivor.pk, type=EventType.LEAD_MERGED)
    assert merged.payload["merged_lead_id"] == duplicate.pk
    assert merged.payload["filled"]["company"] == ["", "Engines"]
    # the duplicate's own history is still in the log under its id
    assert LeadEvent.objects.filter(lead_id=duplicate.pk, type=EventType.LEAD_UPDATED).exists()


# --- the log is append-only ----------------------------------------------------------------------


def test_events_are_never_updated_or_deleted_by_the_application(marketer):
    lead = LeadFactory()
    services.lead_update(lead=lead, changes={"company": "X"}, by=marketer)
    event = LeadEvent.objects.get(type=EventType.LEAD_UPDATED)
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        LeadEvent.objects.filter(pk=event.pk).update(type="x")
    with pytest.raises(TypeError):
        LeadEvent.objects.all().delete()


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="the append-only trigger is PostgreSQL's"
)
def test_postgresql_refuses_any_update_of_an_event(marketer):
    lead = LeadFactory()
    services.lead_update(lead=lead, changes={"company": "X"}, by=marketer)
    with (
        pytest.raises(Exception, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE leads_leadevent SET type = 'x'")


# --- the outbox and its dispatcher ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def _won_announcement_only(settings):
    """The outbox is tested through one reaction, the won announcement: the SLA clocks react to
    stage changes too, and their entries would blur the counts (tests/sla covers them)."""
    settings.OUTBOX_REACTIONS = {EventType.LEAD_WON: ["leads.announcements.won_reaction"]}


def _won(lead: Lead, by) -> None:
    services.lead_move(lead=lead, to=Stage.WON, by=by, deal_value="1000")


@pytest.fixture
def opportunity(rep):
    return LeadFactory(owner=rep, stage=Stage.OPPORTUNITY, deal_value=500, company="Engines")


def test_a_won_lead_is_announced_after_commit_through_the_outbox(
    opportunity, rep, marketer, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _won(opportunity, rep)
        entry = OutboxEntry.objects.get()
        assert (entry.reaction, entry.dispatched_at) == ("leads.announcements.won_reaction", None)
        assert not Announcement.objects.exists()  # nothing happens before the commit
    assert len(callbacks) == 1  # one kick per transaction
    entry.refresh_from_db()
    assert entry.dispatched_at is not None and entry.attempts == 1
    assert Announcement.objects.get().lead_id == opportunity.pk
    assert len(smtp_server.messages) == 1
    # the beat job's next pass finds nothing left to do: nothing runs twice
    assert events.outbox_dispatch().done == 0
    assert len(smtp_server.messages) == 1


def test_an_entry_claimed_by_another_dispatcher_is_left_alone(opportunity, rep):
    _won(opportunity, rep)
    entry = OutboxEntry.objects.get()
    OutboxEntry.objects.filter(pk=entry.pk).update(claimed_at=timezone.now())
    result = events.outbox_dispatch()
    assert (result.done, result.waiting) == (0, 1)
    assert not Announcement.objects.exists()


def test_a_failing_reaction_backs_off_and_holds_back_that_leads_later_entries(
    settings, marketer, rep
):
    settings.OUTBOX_REACTIONS = {
        EventType.LEAD_UPDATED: ["tests.leads.test_events.failing_reaction"],
        EventType.LEAD_STAGE_CHANGED: ["tests.leads.test_events.failing_reaction"],
    }
    first, second = LeadFactory(), LeadFactory()
    services.lead_update(lead=first, changes={"company": "fail"}, by=marketer)
    services.lead_move(lead=first, to=Stage.NURTURING, by=marketer)
    services.lead_update(lead=second, changes={"company": "fine"}, by=marketer)
    seen.clear()
    result = events.outbox_dispatch()
    # the failed entry waits, and so does the later one of the same lead; the other lead goes on
    assert (result.done, result.failed, result.waiting) == (1, 1, 1)
    assert seen == [("fine", second.pk)]
    failed = OutboxEntry.objects.get(lead_id=first.pk, event__type=EventType.LEAD_UPDATED)
    assert failed.attempts == 1 and failed.available_at > timezone.now()
    assert "it failed on purpose" in failed.last_error
    # given up after the last attempt; a retry from the admin gives it another round
    OutboxEntry.objects.filter(pk=failed.pk).update(
        attempts=events.MAX_ATTEMPTS - 1, available_at=timezone.now()
    )
    events.outbox_dispatch()
    failed.refresh_from_db()
    assert failed.failed_at is not None
    assert events.outbox_backlog()["failed"] == 1
    assert events.outbox_retry(ids=[failed.pk]) == 1
    failed.refresh_from_db()
    assert (failed.failed_at, failed.attempts) == (None, 0)


seen: list[tuple[str, int]] = []


def failing_reaction(event: LeadEvent) -> None:
    """A reaction for the tests: fails for a lead whose company is 'fail'."""
    lead = Lead.objects.get(pk=event.lead_id)
    if lead.company == "fail":
        raise RuntimeError("it failed on purpose")
    seen.append((lead.company, lead.pk))


def test_dispatched_entries_are_pruned_after_a_week_and_their_events_stay(opportunity, rep):
    _won(opportunity, rep)
    events.outbox_dispatch()
    entry = OutboxEntry.objects.get()
    assert events.outbox_prune() == 0  # dispatched just now: kept
    OutboxEntry.objects.update(dispatched_at=timezone.now() - events.PRUNE_AFTER * 2)
    assert events.outbox_prune() == 1
    assert not OutboxEntry.objects.exists()
    assert LeadEvent.objects.filter(pk=entry.event_id).exists()


@pytest.fixture
def dead_broker():
    """The broker points at a port where nothing listens, and tasks are really sent."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_transport_options, conf.task_always_eager)
    conf.broker_url = "redis://127.0.0.1:1/0"
    conf.broker_transport_options = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1}
    conf.CELERY_TASK_ALWAYS_EAGER = False
    _fresh_connections()
    try:
        yield
    finally:
        conf.broker_url, conf.broker_transport_options = saved[0], saved[1]
        conf.CELERY_TASK_ALWAYS_EAGER = saved[2]
        _fresh_connections()


def _fresh_connections() -> None:
    """Forget the app's pool and producers, so the next send uses the broker URL now set (kombu
    keeps one pool per URL: the normal one is left open for the tests after this one)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_with_the_broker_down_nothing_is_lost_and_it_is_dispatched_once_when_back(
    client, opportunity, rep, marketer, smtp_server, django_capture_on_commit_callbacks, dead_broker
):
    client.force_login(rep)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("leads:move", args=[opportunity.pk]), {"to": Stage.WON, "deal_value": "900"}
        )
    assert response.status_code == 302  # the page works while the broker is down
    assert Lead.objects.get(pk=opportunity.pk).stage == Stage.WON
    # a touchpoint and a new lead are accepted too
    client.force_login(marketer)
    response = client.post(
        reverse("leads:touchpoint", args=[opportunity.pk]), {"kind": "web_visit"}
    )
    assert response.status_code == 302
    services.lead_intake(data={"email": "new@example.com"}, system="website")
    # and an upload: the job waits, queued, for the resume job
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("leads:import"),
            {"file": SimpleUploadedFile("up.csv", b"email\nup@example.com\n")},
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and job.status == ImportStatus.QUEUED
    entry = OutboxEntry.objects.get()
    assert entry.dispatched_at is None and not Announcement.objects.exists()
    assert events.outbox_backlog()["pending"] == 1
    # the broker is back: the beat job's pass dispatches it, and a second pass does nothing
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
    assert events.outbox_dispatch().done == 1
    assert events.outbox_dispatch().done == 0
    assert Announcement.objects.count() == 1 and len(smtp_server.messages) == 1


def test_health_reports_the_outbox_backlog_and_its_age(client, opportunity, rep, settings):
    _won(opportunity, rep)  # no commit in this test: the entry stays undispatched
    OutboxEntry.objects.update(created_at=timezone.now() - timezone.timedelta(minutes=10))
    settings.OUTBOX_STALE_SECONDS = 300
    body = client.get("/health/").json()
    outbox = body["checks"]["outbox"]
    assert outbox["pending"] == 1 and outbox["oldest_age_seconds"] >= 600
    assert outbox["ok"] is False and body["status"] != "ok"


# --- explicit calls only -------------------------------------------------------------------------


def _project_modules():
    for package in PROJECT_PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_business_logic_hangs_on_django_signals():
    offenders = []
    for path in _project_modules():
        text = path.read_text()
        # (a field's own pre_save(obj, add) method, which a bulk writer calls, is no signal)
        for needle in (
            r"Signal\(",
            "@receiver",
            r"\.connect\(",
            r"post_save\b",
            r"pre_save\b(?!\()",
        ):
            if re.search(needle, text):
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_project_modules_import_each_other_at_module_top_level_only():
    nested = []
    for path in _project_modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        nested.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert nested == []


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_dispatches_the_won_announcement_once(smtp_server, celery_worker_process):
    rep = RepFactory(username="closer")
    UserFactory(username="mkt", role="marketer")
    lead = LeadFactory(owner=rep, stage=Stage.OPPORTUNITY, deal_value=500, company="Engines")
    services.lead_move(lead=lead, to=Stage.WON, by=rep, deal_value="1000")  # commits: kicks
    wait_for(lambda: OutboxEntry.objects.filter(dispatched_at__isnull=False).exists(), timeout=60)
    wait_for(lambda: len(smtp_server.messages) == 1, timeout=30)
    assert Announcement.objects.get().lead_id == lead.pk
    # the beat job's pass afterwards finds nothing to do
    assert events.outbox_dispatch().done == 0


def test_an_intake_that_would_take_another_leads_email_is_refused(marketer):
    LeadFactory(email="ada@engines.example")
    crm = LeadFactory(email=None, external_id="crm-1")
    with pytest.raises(DomainError, match="belongs to another lead"):
        services.lead_intake(
            data={"external_id": "crm-1", "email": "ada@engines.example"}, system="crm"
        )
    assert Lead.objects.get(pk=crm.pk).email is None
