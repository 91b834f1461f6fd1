import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from alignment.lib.errors import DomainError, PermissionDenied
from content.flags.services import flag_raise
from content.voice.services import objection_log
from leads import services
from leads.models import (
    Announcement,
    Assignment,
    Lead,
    LeadEvent,
    MergeRecord,
    Reason,
    Source,
    Stage,
    StageChange,
    Touchpoint,
)
from tests.factories import (
    AssignmentRuleFactory,
    CampaignFactory,
    LeadFactory,
    PoolMemberFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

# The lifecycle as the two teams agreed it, written out by hand: (from, to) pairs that are allowed.
ALLOWED = {
    ("new", "nurturing"),
    ("new", "mql"),
    ("nurturing", "mql"),
    ("mql", "sal"),
    ("mql", "rejected"),
    ("mql", "recycled"),
    ("sal", "sql"),
    ("sal", "recycled"),
    ("sal", "lost"),
    ("sql", "opportunity"),
    ("sql", "recycled"),
    ("sql", "lost"),
    ("opportunity", "won"),
    ("opportunity", "lost"),
    ("lost", "recycled"),
    ("rejected", "recycled"),
    ("recycled", "nurturing"),
    ("recycled", "mql"),
}
REQUIRED = {
    "rejected": {"reason": "bad_fit"},
    "recycled": {"reason": "timing"},
    "lost": {"reason": "price"},
    "opportunity": {"deal_value": "12000"},
    "won": {"deal_value": "15000"},
}


def _move(lead, to, by, **extra):
    return services.lead_move(lead=lead, to=to, by=by, **{**REQUIRED.get(to, {}), **extra})


@pytest.mark.parametrize("from_stage", Stage.values)
@pytest.mark.parametrize("to_stage", Stage.values)
def test_every_move_is_allowed_or_refused_as_agreed(admin_user, from_stage, to_stage):
    lead = LeadFactory(stage=from_stage, owner=admin_user)
    if (from_stage, to_stage) in ALLOWED:
        _move(lead, to_stage, admin_user)
        lead.refresh_from_db()
        assert lead.stage == to_stage
        change = StageChange.objects.get(lead=lead)
        assert (change.from_stage, change.to_stage, change.by) == (from_stage, to_stage, admin_user)
    else:
        with pytest.raises(DomainError) as err:
            _move(lead, to_stage, admin_user)
        assert f"is {Stage(from_stage).label}" in str(err.value)
        assert "Allowed from" in str(err.value)
        lead.refresh_from_db()
        assert lead.stage == from_stage
        assert not StageChange.objects.filter(lead=lead).exists()


def test_refusal_names_the_allowed_stages(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    with pytest.raises(DomainError) as err:
        services.lead_move(lead=lead, to=Stage.WON, by=rep, deal_value=10)
    assert "Allowed from MQL: SAL (accepted), Rejected, Recycled." in str(err.value)


# who may move a lead (owned by `rep`) to each stage
ROLE_EXPECTATIONS = [
    # (from, to, allowed roles)
    ("new", "mql", {"marketer", "marketing_manager", "admin"}),
    ("new", "nurturing", {"marketer", "marketing_manager", "admin"}),
    ("mql", "sal", {"rep", "sales_manager", "admin"}),
    ("mql", "rejected", {"rep", "sales_manager", "admin"}),
    ("sal", "sql", {"rep", "sales_manager", "admin"}),
    ("sql", "opportunity", {"rep", "sales_manager", "admin"}),
    ("opportunity", "won", {"rep", "sales_manager", "admin"}),
    ("opportunity", "lost", {"rep", "sales_manager", "admin"}),
    ("rejected", "recycled", {"rep", "sales_manager", "marketing_manager", "admin"}),
]


@pytest.mark.parametrize(("from_stage", "to_stage", "allowed"), ROLE_EXPECTATIONS)
def test_who_may_make_each_move(people, from_stage, to_stage, allowed):
    for who, user in people.items():
        lead = LeadFactory(stage=from_stage, owner=people["rep"])
        if who in allowed:
            _move(lead, to_stage, user)
            lead.refresh_from_db()
            assert lead.stage == to_stage, who
        else:
            with pytest.raises(PermissionDenied):
                _move(lead, to_stage, user)
            lead.refresh_from_db()
            assert lead.stage == from_stage, who


def test_rep_cannot_decide_another_reps_lead(rep, other_rep):
    lead = LeadFactory(stage=Stage.MQL, owner=other_rep)
    with pytest.raises(DomainError, match="not assigned to you"):
        services.lead_accept(lead=lead, by=rep)
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL


def test_reject_without_reason_is_refused(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    with pytest.raises(DomainError, match="needs a reason"):
        services.lead_reject(lead=lead, by=rep, reason=None)
    assert not StageChange.objects.exists()


def test_reject_with_a_lost_reason_is_refused(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    price = Reason.objects.get(kind="lost", code="price")
    with pytest.raises(DomainError, match="not a reason for Rejected"):
        services.lead_reject(lead=lead, by=rep, reason=price)


def test_other_reason_needs_a_note(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    with pytest.raises(DomainError, match="needs a note"):
        services.lead_reject(lead=lead, by=rep, reason="other")
    services.lead_reject(lead=lead, by=rep, reason="other", note="Reseller, not an end customer")
    assert StageChange.objects.get().note == "Reseller, not an end customer"


def test_not_ready_rejection_recycles_to_marketing(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    services.lead_reject(lead=lead, by=rep, reason="not_ready")
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED
    assert lead.owner is None
    change = StageChange.objects.get()
    assert (change.to_stage, change.reason.code) == ("recycled", "not_ready")


def test_admin_can_extend_reason_codes(rep):
    Reason.objects.create(kind="reject", code="reseller", label="Reseller, not a buyer")
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    services.lead_reject(lead=lead, by=rep, reason="reseller")
    assert Lead.objects.get(pk=lead.pk).last_reason.code == "reseller"


def test_inactive_reason_is_refused(rep):
    Reason.objects.filter(kind="reject", code="competitor").update(active=False)
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    with pytest.raises(DomainError, match="Unknown reason"):
        services.lead_reject(lead=lead, by=rep, reason="competitor")


@pytest.mark.parametrize("to_stage", ["opportunity", "won"])
def test_deal_value_is_required(rep, to_stage):
    start = "sql" if to_stage == "opportunity" else "opportunity"
    lead = LeadFactory(stage=start, owner=rep)
    with pytest.raises(DomainError, match="needs a deal value"):
        services.lead_move(lead=lead, to=to_stage, by=rep)
    with pytest.raises(DomainError, match="greater than zero"):
        services.lead_move(lead=lead, to=to_stage, by=rep, deal_value="-5")
    with pytest.raises(DomainError, match="must be a number"):
        services.lead_move(lead=lead, to=to_stage, by=rep, deal_value="lots")
    assert Lead.objects.get(pk=lead.pk).stage == start


def test_won_reuses_the_opportunity_deal_value(rep):
    lead = LeadFactory(stage=Stage.SQL, owner=rep)
    services.lead_move(lead=lead, to=Stage.OPPORTUNITY, by=rep, deal_value="9000.50")
    services.lead_move(lead=lead, to=Stage.WON, by=rep)
    lead.refresh_from_db()
    assert lead.deal_value == Decimal("9000.50")
    assert lead.won_at is not None


def test_system_move_needs_a_name():
    lead = LeadFactory()
    with pytest.raises(DomainError, match="person or a named system"):
        services.lead_move(lead=lead, to=Stage.MQL)
    services.lead_move(lead=lead, to=Stage.MQL, system="scoring")
    assert StageChange.objects.get().by_system == "scoring"


def test_history_is_append_only(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    services.lead_accept(lead=lead, by=rep)
    change = StageChange.objects.get()
    change.note = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        change.save()


def test_full_path_records_each_stage_with_timestamps(marketer, rep):
    lead = LeadFactory(owner=rep)
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    services.lead_accept(lead=lead, by=rep)
    services.lead_move(lead=lead, to=Stage.SQL, by=rep)
    services.lead_move(lead=lead, to=Stage.OPPORTUNITY, by=rep, deal_value=500)
    services.lead_move(lead=lead, to=Stage.LOST, by=rep, reason="competitor", note="Went with X")
    lead.refresh_from_db()
    assert [c.to_stage for c in lead.stage_changes.all()] == [
        "mql",
        "sal",
        "sql",
        "opportunity",
        "lost",
    ]
    assert all(getattr(lead, f"{s}_at") for s in ("mql", "sal", "sql", "opportunity", "lost"))
    assert lead.last_reason.code == "competitor"


def test_recycled_lead_can_become_mql_again_and_is_counted(marketer, rep, sales_manager):
    lead = LeadFactory()
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    first_mql = Lead.objects.get(pk=lead.pk).first_mql_at
    services.lead_recycle(lead=lead, by=sales_manager, reason="timing")
    services.lead_move(lead=lead, to=Stage.NURTURING, by=marketer)
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    lead.refresh_from_db()
    assert lead.mql_count == 2  # one re-MQL
    assert lead.first_mql_at == first_mql
    assert lead.mql_at > first_mql


def test_mql_event_is_written_once_per_crossing(marketer, sales_manager, mql_events):
    lead = LeadFactory()
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    with pytest.raises(DomainError):
        services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    services.lead_recycle(lead=lead, by=sales_manager, reason="timing")
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    assert mql_events == [lead.pk, lead.pk]


def test_becoming_mql_routes_the_lead_and_records_the_rule(marketer, rep):
    member = PoolMemberFactory(rule=AssignmentRuleFactory(name="Germany"), rep=rep)
    member.rule.conditions = [{"field": "country", "op": "eq", "value": "DE"}]
    member.rule.save()
    lead = LeadFactory(country="DE")
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    lead.refresh_from_db()
    assert lead.owner == rep
    assignment = Assignment.objects.get(lead=lead)
    assert (assignment.rule_name, assignment.by_system) == ("Germany", "routing")


def test_mql_without_matching_rule_stays_unassigned(marketer):
    lead = LeadFactory(country="FR")
    services.lead_move(lead=lead, to=Stage.MQL, by=marketer)
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL and lead.owner is None


# --- won announcement ---------------------------------------------------------------------------


def _won_ready(rep):
    campaign = CampaignFactory(name="Spring webinar")
    lead = LeadFactory(
        stage=Stage.OPPORTUNITY,
        owner=rep,
        company="Globex",
        source=Source.objects.create(name="LinkedIn", key="linkedin"),
    )
    TouchpointFactory(lead=lead, kind="webinar_attended", campaign=campaign)
    TouchpointFactory(lead=lead, kind="demo_request")
    return lead


def test_won_is_announced_once_after_commit_over_real_smtp(
    smtp_server, rep, marketer, marketing_manager, django_capture_on_commit_callbacks
):
    lead = _won_ready(rep)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.lead_move(lead=lead, to=Stage.WON, by=rep, deal_value="48000")
        assert not Announcement.objects.exists()  # nothing before commit
    assert len(callbacks) == 1
    callbacks[0]()
    callbacks[0]()  # the task running twice sends nothing more
    announcement = Announcement.objects.get(lead=lead)
    assert announcement.title == "New customer: Globex (€48,000)"
    assert announcement.details["campaigns"] == ["Spring webinar"]
    assert announcement.details["source"] == "LinkedIn"
    assert announcement.details["rep"] == str(rep)
    assert announcement.details["touchpoint_count"] == 2
    assert announcement.emailed_at is not None
    assert len(smtp_server.messages) == 1
    envelope = smtp_server.messages[0]
    # the marketers in Bcc, and the pipeline's own address in To:
    assert sorted(envelope.rcpt_tos) == sorted(
        [marketer.email, marketing_manager.email, "pipeline@localhost"]
    )
    text = envelope.content.decode()
    assert "Globex" in text and "Spring webinar" in text and "48,000" in text


def test_lost_lead_is_not_announced(rep, marketer, django_capture_on_commit_callbacks):
    lead = _won_ready(rep)
    with django_capture_on_commit_callbacks(execute=True):
        services.lead_move(lead=lead, to=Stage.LOST, by=rep, reason="price")
    assert not Announcement.objects.exists()
    assert mail.outbox == []


# --- touchpoints ----------------------------------------------------------------------------------


def test_first_sales_touch_after_mql_is_recorded_once(rep):
    mql_at = timezone.now() - dt.timedelta(hours=5)
    lead = LeadFactory(stage=Stage.MQL, owner=rep, mql_at=mql_at)
    services.touchpoint_record(lead=lead, kind="note", by=rep)  # a note is not a touch
    assert Lead.objects.get(pk=lead.pk).first_sales_touch_at is None
    first = mql_at + dt.timedelta(hours=1)
    services.touchpoint_record(lead=lead, kind="call", occurred_at=first, by=rep)
    services.touchpoint_record(lead=lead, kind="sales_email", by=rep)
    assert Lead.objects.get(pk=lead.pk).first_sales_touch_at == first


def test_sales_touch_before_mql_does_not_count(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep, mql_at=timezone.now())
    services.touchpoint_record(
        lead=lead, kind="call", occurred_at=timezone.now() - dt.timedelta(days=3), by=rep
    )
    assert Lead.objects.get(pk=lead.pk).first_sales_touch_at is None


def test_touchpoint_kinds_follow_roles(marketer, rep):
    lead = LeadFactory()
    with pytest.raises(PermissionDenied):
        services.touchpoint_record(lead=lead, kind="call", by=marketer)
    with pytest.raises(PermissionDenied):
        services.touchpoint_record(lead=lead, kind="webinar_attended", by=rep)
    services.touchpoint_record(lead=lead, kind="webinar_attended", by=marketer)
    assert Touchpoint.objects.count() == 1


def test_touchpoint_in_the_future_or_unknown_kind_is_refused(marketer):
    lead = LeadFactory()
    with pytest.raises(DomainError, match="future"):
        services.touchpoint_record(
            lead=lead,
            kind="web_visit",
            occurred_at=timezone.now() + dt.timedelta(days=1),
            by=marketer,
        )
    with pytest.raises(DomainError, match="Unknown touchpoint kind"):
        services.touchpoint_record(lead=lead, kind="telepathy", by=marketer)
    assert not Touchpoint.objects.exists()


def test_touchpoint_matches_campaign_by_utm(marketer):
    campaign = CampaignFactory(utm_campaign="spring-2026")
    tp = services.touchpoint_record(
        lead=LeadFactory(),
        kind="email_click",
        metadata={"utm_campaign": "Spring-2026"},
        by=marketer,
    )
    assert tp.campaign == campaign


# --- intake and duplicates ------------------------------------------------------------------------


def test_intake_matches_external_id_before_email(marketer):
    by_id = LeadFactory(email="a@x.example", external_id="crm-1")
    LeadFactory(email="b@x.example")
    result = services.lead_intake(
        data={"external_id": "crm-1", "email": "B@X.example", "title": "CTO"}, by=marketer
    )
    assert result.lead == by_id and not result.created and result.changed
    assert Lead.objects.get(pk=by_id.pk).title == "CTO"


def test_intake_matches_email_case_insensitively_and_is_idempotent(marketer):
    lead = LeadFactory(email="ada@example.com", company="Engines")
    result = services.lead_intake(
        data={"email": " ADA@Example.com ", "company": "Engines"}, by=marketer
    )
    assert result.lead == lead and not result.created and not result.changed
    assert Lead.objects.count() == 1


def test_intake_normalises_source_and_keeps_unknown_fields_typed(marketer):
    services.lead_intake(
        data={"email": "a@b.example", "source": "Google", "seats": 25}, by=marketer
    )
    services.lead_intake(data={"email": "c@d.example", "source": "google "}, by=marketer)
    assert Source.objects.count() == 1
    assert Lead.objects.get(email="a@b.example").attributes == {"seats": 25}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"company": "Nameless"}, "needs an email or an external id"),
        ({"email": "not-an-email"}, "not a valid email"),
        ({"email": "a@b.example", "company_size": "big"}, "whole number"),
    ],
)
def test_intake_bad_input_is_refused_and_writes_nothing(marketer, data, message):
    with pytest.raises(DomainError, match=message):
        services.lead_intake(data=data, by=marketer)
    assert not Lead.objects.exists()


def test_outsider_cannot_create_leads(outsider):
    with pytest.raises(PermissionDenied):
        services.lead_intake(data={"email": "x@y.example"}, by=outsider)


def test_merge_moves_everything_and_loses_nothing(marketer, rep, sales_manager):
    survivor = LeadFactory(email="ada@example.com", title="", attributes={"seats": 10})
    duplicate = LeadFactory(
        email=None, external_id="crm-77", title="CTO", attributes={"seats": 99, "plan": "pro"}
    )
    TouchpointFactory(lead=survivor)
    TouchpointFactory(lead=duplicate, kind="demo_request")
    services.lead_move(lead=duplicate, to=Stage.MQL, by=marketer)
    services.lead_merge(survivor=survivor, duplicate=duplicate, by=sales_manager)
    survivor.refresh_from_db()
    assert not Lead.objects.filter(pk=duplicate.pk).exists()
    assert survivor.touchpoints.count() == 2
    # the duplicate's move came along (the survivor may also cross into MQL on its own: the
    # merged demo request is rescored)
    assert survivor.stage_changes.filter(to_stage="mql", by=marketer).count() == 1
    assert survivor.external_id == "crm-77"
    assert survivor.title == "CTO"
    assert survivor.attributes == {"seats": 10, "plan": "pro"}
    record = MergeRecord.objects.get(survivor=survivor)
    assert record.snapshot["lead"]["external_id"] == "crm-77"
    assert record.snapshot["lead"]["attributes"] == {"seats": 99, "plan": "pro"}


def test_merge_keeps_what_sales_said_about_the_duplicate(sales_manager):
    survivor, duplicate = LeadFactory(), LeadFactory()
    objection = objection_log(
        lead=duplicate, by=sales_manager, category="price", text="Too expensive for us"
    )
    flag = flag_raise(lead=duplicate, by=sales_manager, reason="duplicate", comment="Same person")

    services.lead_merge(survivor=survivor, duplicate=duplicate, by=sales_manager)

    objection.refresh_from_db()
    flag.refresh_from_db()
    assert (objection.lead_id, flag.lead_id) == (survivor.pk, survivor.pk)
    moved = LeadEvent.objects.get(type="lead.merged").payload["moved"]
    assert (moved["objections"], moved["flags"], moved["stories"]) == (1, 1, 0)


def test_merge_is_for_managers_and_not_into_itself(marketer, marketing_manager):
    a, b = LeadFactory(), LeadFactory()
    with pytest.raises(PermissionDenied):
        services.lead_merge(survivor=a, duplicate=b, by=marketer)
    with pytest.raises(DomainError, match="into itself"):
        services.lead_merge(survivor=a, duplicate=a, by=marketing_manager)
    assert Lead.objects.count() == 2
