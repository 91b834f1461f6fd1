"""The alignment agreement: drafts, validation, and the two managers' sign-off (the mechanism
scoring uses, alignment.signoff). SQLite and PostgreSQL."""

import importlib
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from alignment.lib.errors import PermissionDenied
from alignment.signoff import VersionAction, VersionStatus
from leads.models import ScoringModel
from sla import agreements
from sla.agreements import AgreementError
from sla.models import Agreement, AgreementApproval, AgreementEvent
from sla.selectors import agreement_active, agreement_diff, agreement_history
from tests.factories import UserFactory
from tests.leads.test_scoring_concurrency import in_thread, wait_for_lock_waiters

pytestmark = pytest.mark.django_db

INSTALLED = importlib.import_module("sla.migrations.0002_installed_agreement")


@pytest.fixture(autouse=True)
def _installed_agreement(db):
    """Transactional tests elsewhere truncate every table when they end, and with it the
    agreement the migration installed; put it back as a fresh install has it."""
    if not Agreement.objects.exists():
        INSTALLED.add_installed_agreement(apps, None)


def installed() -> Agreement:
    return Agreement.objects.get(status=VersionStatus.ACTIVE)


def proposal(by, **changes) -> Agreement:
    draft = agreements.agreement_create_draft(by=by)
    agreements.agreement_update(agreement=draft, by=by, **({"response_hours": "2"} | changes))
    return agreements.agreement_propose(agreement=draft, by=by)


# --- a fresh install ------------------------------------------------------------------------------


def test_a_fresh_database_has_exactly_one_agreement_in_force():
    assert Agreement.objects.filter(status="active").count() == 1
    active = agreement_active()
    assert active.version == 1
    assert active.created_by is None
    assert active.notes == "installed default"
    assert active.scoring_model == ScoringModel.objects.get(status="active")
    assert active.approvals.count() == 0
    assert (active.response_hours, active.decision_hours) == (4, 16)
    assert active.calendar["timezone"] == "Europe/Berlin"
    assert [e.action for e in AgreementEvent.objects.filter(agreement=active)] == [
        "created",
        "activated",
    ]


def test_the_installed_agreement_is_in_the_shape_of_a_new_one():
    """The migration freezes the defaults; they agree with the model's."""
    fresh = Agreement(version=99)
    active = installed()
    for name in ("response_hours", "decision_hours", "followup_attempts", "followup_days"):
        assert getattr(fresh, name) == getattr(active, name), name
    assert fresh.calendar == active.calendar
    assert fresh.warn_share == active.warn_share


# --- drafts ---------------------------------------------------------------------------------------


def test_a_draft_copies_the_agreement_in_force(marketing_manager):
    active = installed()
    draft = agreements.agreement_create_draft(by=marketing_manager)
    assert (draft.status, draft.version, draft.based_on) == ("draft", 2, active)
    assert draft.created_by == marketing_manager
    assert agreement_diff(active, draft) == []
    assert draft.scoring_model == ScoringModel.objects.get(status="active")


def test_people_other_than_the_two_managers_may_not_draft(marketer, rep, admin_user):
    for person in (marketer, rep, admin_user):
        with pytest.raises(PermissionDenied):
            agreements.agreement_create_draft(by=person)
    assert Agreement.objects.count() == 1


def test_an_edit_changes_a_draft_and_records_what_changed(sales_manager):
    draft = agreements.agreement_create_draft(by=sales_manager)
    agreements.agreement_update(
        agreement=draft,
        by=sales_manager,
        response_hours="2.5",
        report_recipients=["Leadership@Example.com", "leadership@example.com", "cfo@example.com"],
        review_date=timezone.localdate() + timedelta(days=90),
    )
    draft.refresh_from_db()
    assert draft.response_hours == Decimal("2.50")
    assert draft.report_recipients == ["leadership@example.com", "cfo@example.com"]
    edited = AgreementEvent.objects.get(agreement=draft, action=VersionAction.EDITED)
    assert edited.details["changed"] == ["response_hours", "report_recipients", "review_date"]


def test_validation_errors_name_every_field_and_change_nothing(marketing_manager):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    before = Agreement.objects.filter(pk=draft.pk).values().get()
    with pytest.raises(AgreementError) as refused:
        agreements.agreement_update(
            agreement=draft,
            by=marketing_manager,
            response_hours="0",
            acceptance_rate_committed="120",
            warn_share="1.2",
            report_recipients=["not an address"],
            review_date=timezone.localdate() - timedelta(days=1),
            calendar={**draft.calendar, "hours": {"mon": [["17:00", "09:00"]]}},
            notes="this valid change must not be saved either",
        )
    assert set(refused.value.errors) == {
        "response_hours",
        "acceptance_rate_committed",
        "warn_share",
        "report_recipients",
        "review_date",
        "calendar.hours.mon",
    }
    assert "not an address" in refused.value.errors["report_recipients"][0]
    assert Agreement.objects.filter(pk=draft.pk).values().get() == before
    assert not AgreementEvent.objects.filter(agreement=draft, action="edited").exists()


def test_deciding_cannot_be_due_before_the_first_touch(marketing_manager):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    with pytest.raises(AgreementError, match="decision cannot be due before") as refused:
        agreements.agreement_update(
            agreement=draft, by=marketing_manager, response_hours="8", decision_hours="4"
        )
    assert list(refused.value.errors) == ["decision_hours"]


def test_the_calendar_is_stored_in_its_normal_form(marketing_manager):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    calendar = {
        "timezone": "America/New_York",
        "hours": {"mon": [["13:00", "17:00"], ["9:00", "12:00"]], "fri": [["09:00", "15:00"]]},
        "country": "us",
        "subdivision": "NY",
        "closed_days": ["2026-12-24"],
    }
    agreements.agreement_update(agreement=draft, by=marketing_manager, calendar=calendar)
    draft.refresh_from_db()
    assert draft.calendar["hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert draft.calendar["hours"]["tue"] == []
    assert draft.calendar["country"] == "US"


def test_a_retired_scoring_model_cannot_be_the_mql_definition(marketing_manager):
    retired = ScoringModel.objects.create(name="old", status="retired")
    draft = agreements.agreement_create_draft(by=marketing_manager)
    with pytest.raises(AgreementError, match="retired") as refused:
        agreements.agreement_update(agreement=draft, by=marketing_manager, scoring_model=retired)
    assert list(refused.value.errors) == ["scoring_model"]


def test_only_a_draft_is_edited(marketing_manager):
    proposed = proposal(marketing_manager)
    with pytest.raises(AgreementError, match="withdraw it to a draft first"):
        agreements.agreement_update(agreement=proposed, by=marketing_manager, notes="x")
    with pytest.raises(AgreementError, match="copy it to a new draft instead"):
        agreements.agreement_update(agreement=installed(), by=marketing_manager, notes="x")


def test_unknown_settings_are_refused(marketing_manager):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    with pytest.raises(AgreementError, match="Unknown settings: status"):
        agreements.agreement_update(agreement=draft, by=marketing_manager, status="active")


def test_a_draft_can_be_discarded_and_its_history_stays(marketing_manager):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    agreements.agreement_discard(agreement=draft, by=marketing_manager)
    assert not Agreement.objects.filter(pk=draft.pk).exists()
    assert AgreementEvent.objects.filter(agreement_label__startswith="v2", action="discarded")


# --- the sign-off ---------------------------------------------------------------------------------


def test_a_proposal_takes_effect_when_both_managers_approved_it(marketing_manager, sales_manager):
    previous = installed()
    proposed = proposal(marketing_manager)
    assert proposed.diff["summary"] == "1 change: first touch"
    agreements.agreement_approve(agreement=proposed, by=marketing_manager)
    proposed.refresh_from_db()
    assert proposed.status == "proposed"
    assert agreement_active() == previous
    agreements.agreement_approve(agreement=proposed, by=sales_manager, note="fine by sales")
    proposed.refresh_from_db()
    previous.refresh_from_db()
    assert proposed.status == "active" and proposed.activated_at is not None
    assert (previous.status, previous.retired_at is not None) == ("retired", True)
    assert agreement_active() == proposed
    assert Agreement.objects.filter(status="active").count() == 1
    assert proposed.diff_base == previous
    assert proposed.diff["changes"] == [
        {
            "field": "response_hours",
            "label": "First touch",
            "old": "within 4 business hours of assignment",
            "new": "within 2 business hours of assignment",
        }
    ]
    assert sorted(AgreementApproval.objects.values_list("role", flat=True)) == [
        "marketing_manager",
        "sales_manager",
    ]
    actions = list(
        AgreementEvent.objects.filter(agreement=proposed).values_list("action", flat=True)
    )
    assert actions == ["created", "edited", "proposed", "approved", "approved", "activated"]
    assert AgreementEvent.objects.filter(agreement=previous, action="retired").exists()


def test_the_same_side_cannot_approve_twice(marketing_manager):
    proposed = proposal(marketing_manager)
    agreements.agreement_approve(agreement=proposed, by=marketing_manager)
    with pytest.raises(AgreementError, match="already approved"):
        agreements.agreement_approve(agreement=proposed, by=marketing_manager)
    colleague = UserFactory(username="mm2", role="marketing_manager")
    with pytest.raises(AgreementError, match="for marketing; it now needs a sales manager"):
        agreements.agreement_approve(agreement=proposed, by=colleague)
    proposed.refresh_from_db()
    assert proposed.status == "proposed" and proposed.approvals.count() == 1


def test_a_draft_cannot_be_approved(marketing_manager, sales_manager):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    with pytest.raises(AgreementError, match="only a proposed version can be approved"):
        agreements.agreement_approve(agreement=draft, by=sales_manager)
    assert not AgreementApproval.objects.exists()


def test_people_other_than_the_managers_cannot_approve(marketing_manager, rep, admin_user):
    proposed = proposal(marketing_manager)
    for person in (rep, admin_user):
        with pytest.raises(PermissionDenied):
            agreements.agreement_approve(agreement=proposed, by=person)


def test_an_approval_of_what_was_not_read_is_refused(marketing_manager, sales_manager):
    proposed = proposal(marketing_manager)
    read_at = proposed.updated_at
    agreements.agreement_withdraw(agreement=proposed, by=marketing_manager)
    agreements.agreement_update(agreement=proposed, by=marketing_manager, response_hours="1")
    agreements.agreement_propose(agreement=proposed, by=marketing_manager)
    with pytest.raises(AgreementError, match="changed after you opened it"):
        agreements.agreement_approve(agreement=proposed, by=sales_manager, read_at=read_at)
    assert not AgreementApproval.objects.exists()
    agreements.agreement_approve(
        agreement=proposed,
        by=sales_manager,
        read_at=Agreement.objects.get(pk=proposed.pk).updated_at,
    )
    assert AgreementApproval.objects.count() == 1


def test_withdrawing_or_sending_back_drops_the_approvals(marketing_manager, sales_manager):
    proposed = proposal(marketing_manager)
    agreements.agreement_approve(agreement=proposed, by=marketing_manager)
    with pytest.raises(AgreementError, match="Say why"):
        agreements.agreement_send_back(agreement=proposed, by=sales_manager, note=" ")
    agreements.agreement_send_back(agreement=proposed, by=sales_manager, note="4h is too tight")
    proposed.refresh_from_db()
    assert proposed.status == "draft" and proposed.approvals.count() == 0
    event = AgreementEvent.objects.get(agreement=proposed, action="sent_back")
    assert event.details["approvals_dropped"] == [f"{marketing_manager} (marketing_manager)"]


def test_a_proposal_identical_to_the_agreement_in_force_is_refused(
    marketing_manager, sales_manager
):
    signed = proposal(marketing_manager)
    agreements.agreement_approve(agreement=signed, by=marketing_manager)
    agreements.agreement_approve(agreement=signed, by=sales_manager)
    draft = agreements.agreement_create_draft(by=marketing_manager)
    with pytest.raises(AgreementError, match="nothing to propose"):
        agreements.agreement_propose(agreement=draft, by=marketing_manager)
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_a_review_date_passed_since_the_draft_was_saved_stops_the_proposal(marketing_manager):
    draft = agreements.agreement_create_draft(by=marketing_manager)
    Agreement.objects.filter(pk=draft.pk).update(
        review_date=timezone.localdate() - timedelta(days=1), notes="changed"
    )
    with pytest.raises(AgreementError, match="review date has passed"):
        agreements.agreement_propose(agreement=draft, by=marketing_manager)


def test_history_lists_every_version_with_its_approvals(marketing_manager, sales_manager):
    proposed = proposal(marketing_manager)
    agreements.agreement_approve(agreement=proposed, by=marketing_manager)
    agreements.agreement_approve(agreement=proposed, by=sales_manager)
    history = list(agreement_history())
    assert [(a.version, a.status) for a in history] == [(2, "active"), (1, "retired")]
    assert [a.by for a in history[0].approvals.all()] == [marketing_manager, sales_manager]


def test_the_demo_ends_with_an_agreement_in_force():
    call_command("seed_demo", leads=20, seed=1, stdout=io.StringIO(), verbosity=0)
    active = agreement_active()
    assert active is not None
    assert active.scoring_model == ScoringModel.objects.get(status="active")


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks (SELECT ... FOR UPDATE) need PostgreSQL; SQLite serialises writes",
)
@pytest.mark.django_db(transaction=True)
def test_two_managers_approving_at_the_same_moment_put_it_in_force_once(
    marketing_manager, sales_manager
):
    previous = installed()
    proposed = proposal(marketing_manager)
    errors: list = []
    with transaction.atomic():
        # hold the row so that both approvals queue on the lock and run one after the other
        Agreement.objects.select_for_update().get(pk=proposed.pk)
        threads = [
            in_thread(
                lambda person=person: agreements.agreement_approve(agreement=proposed, by=person),
                errors,
            )
            for person in (marketing_manager, sales_manager)
        ]
        wait_for_lock_waiters(2)
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    proposed.refresh_from_db()
    previous.refresh_from_db()
    assert (proposed.status, previous.status) == ("active", "retired")
    assert AgreementApproval.objects.filter(agreement=proposed).count() == 2
    assert AgreementEvent.objects.filter(agreement=proposed, action="activated").count() == 1
    assert AgreementEvent.objects.filter(agreement=previous, action="retired").count() == 1
