"""Intake racing other writers, on PostgreSQL (SQLite serialises whole-database writes)."""

import threading

import pytest
from django.db import connection, transaction

from leads import services
from leads.models import EventType, Lead, LeadEvent, Stage
from tests.factories import LeadFactory
from tests.leads.test_scoring_concurrency import in_thread, wait_for_lock_waiters

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks (SELECT ... FOR UPDATE) need PostgreSQL; SQLite serialises writes",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_two_intakes_of_one_new_person_make_one_lead(marketer):
    errors: list = []
    first_written, release = threading.Event(), threading.Event()

    def first():
        with transaction.atomic():
            services.lead_intake(data={"email": "ada@engines.example", "company": "A"}, by=marketer)
            first_written.set()
            release.wait(timeout=30)

    one = in_thread(first, errors)
    assert first_written.wait(timeout=30)
    # the second insert waits on the unique email until the first commits, then updates it
    two = in_thread(
        lambda: services.lead_intake(
            data={"email": "ADA@engines.example", "title": "CTO"}, by=marketer
        ),
        errors,
    )
    wait_for_lock_waiters(1)
    release.set()
    for thread in (one, two):
        thread.join(timeout=60)
    assert errors == []
    lead = Lead.objects.get()
    assert (lead.company, lead.title) == ("A", "CTO")
    types = list(LeadEvent.objects.filter(lead_id=lead.pk).values_list("type", flat=True))
    assert types.count(EventType.LEAD_CREATED) == 1
    assert types.count(EventType.LEAD_UPDATED) == 1


def test_an_intake_during_a_stage_move_loses_no_move(marketer):
    lead = LeadFactory(email="bob@widgets.example", company="Widgets", title="")
    errors: list = []
    moved, release = threading.Event(), threading.Event()

    def move():
        with transaction.atomic():
            services.lead_move(lead=Lead.objects.get(pk=lead.pk), to=Stage.MQL, by=marketer)
            moved.set()
            release.wait(timeout=30)

    mover = in_thread(move, errors)
    assert moved.wait(timeout=30)
    intake = in_thread(
        lambda: services.lead_intake(
            data={"email": "bob@widgets.example", "company": "Widgets Inc"}, system="crm"
        ),
        errors,
    )
    wait_for_lock_waiters(1)  # the intake waits for the move's row lock
    release.set()
    for thread in (mover, intake):
        thread.join(timeout=60)
    assert errors == []
    lead.refresh_from_db()
    # the move stands and the intake's change is on top of it
    assert (lead.stage, lead.mql_count, lead.company) == (Stage.MQL, 1, "Widgets Inc")
    assert lead.mql_at is not None
    assert LeadEvent.objects.filter(lead_id=lead.pk, type=EventType.LEAD_MQL).count() == 1
