"""Scoring versions and their sign-off, the real-time update and MQL crossing, the explanation,
full rescoring and score history. SQLite and PostgreSQL."""

import datetime as dt
import io
import random

import pytest
from django.core.management import call_command
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from alignment.lib.errors import DomainError, PermissionDenied
from alignment.models import Role
from leads import events, services
from leads.models import (
    Lead,
    ScoreSnapshot,
    ScoringApproval,
    ScoringModel,
    ScoringModelEvent,
    ScoringRun,
    Stage,
    StageChange,
    Touchpoint,
)
from leads.scoring import services as scoring
from leads.scoring import sql as scoring_sql
from leads.scoring.engagement import Anchored, engagement_at
from leads.scoring.models import ModelStatus, RunKind, RunStatus, SnapshotKind
from leads.scoring.rules import spec_of, validate_spec
from leads.scoring.selectors import lead_score_explain, lead_score_history
from leads.scoring.tasks import scoring_runs_resume
from tests.factories import (
    CampaignFactory,
    LeadFactory,
    TouchpointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SPEC = {
    "half_life_days": 10.0,
    "mql_total": 100,
    "mql_fit": 40,
    "grade_a": 60,
    "grade_b": 40,
    "grade_c": 20,
    "group_caps": {"seniority": 30, "web": 10},
    "fit_rules": [
        {"key": "vp", "field": "title", "op": "contains", "value": ["vp", "director"], "points": 20, "group": "seniority"},
        {"key": "chief", "field": "title", "op": "contains", "value": "chief", "points": 25, "group": "seniority"},
        {"key": "big", "field": "company_size", "op": "gte", "value": 100, "points": 20},
        {"key": "dach", "field": "country", "op": "in", "value": ["DE", "AT", "CH"], "points": 10},
        {"key": "student", "field": "title", "op": "contains", "value": "student", "points": -40},
    ],
    "engagement_rules": [
        {"key": "demo", "kind": "demo_request", "points": 60},
        {"key": "webinar", "kind": "webinar_attended", "points": 20},
        {"key": "web", "kind": "web_visit", "points": 3, "group": "web"},
        {"key": "click", "kind": "email_click", "points": 4, "group": "web"},
    ],
}  # fmt: skip


def activate(spec: dict | None = None, name: str = "Test model") -> ScoringModel:
    """Make a version active directly (the sign-off has its own tests)."""
    ScoringModel.objects.filter(status=ModelStatus.ACTIVE).update(status=ModelStatus.RETIRED)
    return ScoringModel.objects.create(
        name=name, status=ModelStatus.ACTIVE, **validate_spec(spec or SPEC)
    )


def with_changes(**changes) -> dict:
    return {**SPEC, **changes}


def good_fit(**extra) -> Lead:
    """fit 50: director (20) + 500 employees (20) + DE (10)."""
    return LeadFactory(
        **{"title": "Director", "company_size": 500, "country": "DE", "industry": "", **extra}
    )


def score_touchpoint(lead: Lead, touchpoint: Touchpoint, *, now):
    """The real-time update as touchpoint_record makes it: the row locked, then scored."""
    with transaction.atomic():
        return scoring.lead_score_touchpoint(
            locked=scoring.lead_lock_for_scoring(lead.pk), touchpoint=touchpoint, now=now
        )


def fresh(lead: Lead) -> Lead:
    return Lead.objects.get(pk=lead.pk)


# --- the default model -----------------------------------------------------------------------------


def test_a_fresh_install_has_one_active_default_model_that_scores(marketer):
    model = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    assert model.origin == "default"
    assert validate_spec(spec_of(model)) == spec_of(model)
    lead = services.lead_intake(
        data={
            "email": "ada@engines.example",
            "title": "VP Engineering",
            "company_size": 350,
            "industry": "Software",
            "country": "DE",
        },
        by=marketer,
    ).lead
    assert (lead.fit_score, lead.grade) == (20 + 15 + 15 + 10, "A")
    services.touchpoint_record(lead=lead, kind="demo_request", system="website")
    assert fresh(lead).stage == Stage.MQL


# --- versions and sign-off -------------------------------------------------------------------------


def _proposal(by, **changes) -> ScoringModel:
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=by, name="Spring tuning")
    spec = {**spec_of(draft), **changes}
    scoring.scoring_model_update(model=draft, by=by, spec=spec)
    return scoring.scoring_model_propose(model=draft, by=by, note="lower the bar a little")


def test_a_version_moves_draft_proposed_active_retired(
    marketer, marketing_manager, sales_manager, django_capture_on_commit_callbacks
):
    old = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    proposal = _proposal(marketer, mql_total=90)
    assert proposal.status == ModelStatus.PROPOSED
    assert proposal.diff_base == old
    assert proposal.diff["settings"] == [{"name": "mql_total", "from": 100, "to": 90}]

    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    assert fresh_model(proposal).status == ModelStatus.PROPOSED  # one side is not enough
    with django_capture_on_commit_callbacks(execute=True):
        scoring.scoring_model_approve(model=proposal, by=sales_manager, note="agreed in the QBR")

    assert fresh_model(proposal).status == ModelStatus.ACTIVE
    assert fresh_model(old).status == ModelStatus.RETIRED
    assert ScoringModel.objects.filter(status=ModelStatus.ACTIVE).count() == 1
    approvals = list(ScoringApproval.objects.filter(model=proposal).values_list("by", "role"))
    assert approvals == [
        (marketing_manager.pk, Role.MARKETING_MANAGER),
        (sales_manager.pk, Role.SALES_MANAGER),
    ]
    audit = list(
        ScoringModelEvent.objects.order_by("at", "id").values_list("model_label", "action", "by")
    )
    assert [(a, b) for _, a, b in audit if _.startswith(f"v{proposal.pk}")] == [
        ("created", marketer.pk),
        ("edited", marketer.pk),
        ("proposed", marketer.pk),
        ("approved", marketing_manager.pk),
        ("approved", sales_manager.pk),
        ("activated", sales_manager.pk),
    ]
    assert ScoringModelEvent.objects.filter(model=old, action="retired").exists()
    run = ScoringRun.objects.get(model=proposal)
    assert (run.kind, run.status) == (RunKind.ACTIVATION, RunStatus.DONE)


def fresh_model(model: ScoringModel) -> ScoringModel:
    return ScoringModel.objects.get(pk=model.pk)


def test_the_database_allows_only_one_active_version():
    with pytest.raises(IntegrityError), transaction.atomic():
        ScoringModel.objects.create(name="Second", status=ModelStatus.ACTIVE, **validate_spec(SPEC))


def test_illegal_moves_are_refused_with_a_readable_reason(marketer, marketing_manager):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    draft = scoring.scoring_model_copy(model=active, by=marketer)
    with pytest.raises(DomainError, match="only a proposed version can be approved"):
        scoring.scoring_model_approve(model=draft, by=marketing_manager)
    with pytest.raises(
        DomainError, match=r"is Draft; it cannot become Draft\. Allowed from Draft: Proposed\."
    ):
        scoring.scoring_model_withdraw(model=draft, by=marketer)
    with pytest.raises(DomainError, match="same as the active version"):
        scoring.scoring_model_propose(model=draft, by=marketer)
    scoring.scoring_model_update(model=draft, by=marketer, spec={**spec_of(draft), "mql_fit": 30})
    scoring.scoring_model_propose(model=draft, by=marketer)
    with pytest.raises(
        DomainError,
        match=r"is Proposed; it cannot become Proposed\. Allowed from Proposed: Draft, Active\.",
    ):
        scoring.scoring_model_propose(model=draft, by=marketer)
    with pytest.raises(DomainError, match="withdraw it to a draft first"):
        scoring.scoring_model_update(model=draft, by=marketer, name="sneaky edit")
    with pytest.raises(DomainError, match="copy it to a new draft instead"):
        scoring.scoring_model_update(model=active, by=marketer, name="sneaky edit")
    with pytest.raises(DomainError, match="Only a draft can be discarded"):
        scoring.scoring_model_discard(model=active, by=marketer)
    assert fresh_model(active).status == ModelStatus.ACTIVE
    assert fresh_model(draft).status == ModelStatus.PROPOSED


def test_both_managers_are_needed_and_nobody_approves_twice(
    marketer, marketing_manager, sales_manager
):
    proposal = _proposal(marketer, mql_fit=35)
    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    with pytest.raises(DomainError, match="You have already approved"):
        scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    second_marketing = UserFactory(username="mm2", role=Role.MARKETING_MANAGER)
    with pytest.raises(DomainError, match="for marketing; it now needs a sales manager"):
        scoring.scoring_model_approve(model=proposal, by=second_marketing)
    # a marketing manager who becomes sales manager is still the same person
    marketing_manager.role = Role.SALES_MANAGER
    marketing_manager.save()
    with pytest.raises(DomainError, match="You have already approved"):
        scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    assert fresh_model(proposal).status == ModelStatus.PROPOSED
    assert ScoringApproval.objects.filter(model=proposal).count() == 1


@pytest.mark.parametrize("who", ["marketer", "rep", "admin", "outsider"])
def test_only_the_two_managers_may_approve(people, who):
    proposal = _proposal(people["marketer"], mql_fit=35)
    with pytest.raises(PermissionDenied):
        scoring.scoring_model_approve(model=proposal, by=people[who])
    assert not ScoringApproval.objects.exists()


def test_sales_may_not_propose_and_a_change_needs_an_actor(sales_manager, rep):
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    for person in (sales_manager, rep):
        with pytest.raises(PermissionDenied):
            scoring.scoring_model_copy(model=active, by=person)
    with pytest.raises(DomainError, match="needs a person or a named system"):
        scoring.scoring_model_create(name="x", spec=SPEC)


def test_withdrawing_or_sending_back_drops_the_approvals(
    marketer, marketing_manager, sales_manager
):
    proposal = _proposal(marketer, mql_fit=35)
    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    scoring.scoring_model_withdraw(model=proposal, by=marketer, note="one more rule")
    assert fresh_model(proposal).status == ModelStatus.DRAFT
    assert not ScoringApproval.objects.exists()
    scoring.scoring_model_propose(model=proposal, by=marketer)
    with pytest.raises(DomainError, match="Say why"):
        scoring.scoring_model_send_back(model=proposal, by=sales_manager, note=" ")
    scoring.scoring_model_send_back(model=proposal, by=sales_manager, note="fit too low for us")
    assert fresh_model(proposal).status == ModelStatus.DRAFT
    event = ScoringModelEvent.objects.get(model=proposal, action="sent_back")
    assert (event.by, event.by_role, event.note) == (
        sales_manager,
        Role.SALES_MANAGER,
        "fit too low for us",
    )


def test_fine_tuning_proposes_as_a_system_and_still_needs_both_managers(
    marketing_manager, sales_manager, django_capture_on_commit_callbacks
):
    tuned = scoring.scoring_model_create(
        name="Tuned on won/lost",
        spec=with_changes(mql_total=95),
        system="tuning",
        origin="tuning",
        report={"auc": 0.81},
    )
    scoring.scoring_model_propose(model=tuned, system="tuning")
    assert fresh_model(tuned).status == ModelStatus.PROPOSED
    assert ScoringModelEvent.objects.get(model=tuned, action="proposed").by_system == "tuning"
    scoring.scoring_model_approve(model=tuned, by=marketing_manager)
    with django_capture_on_commit_callbacks(execute=True):
        scoring.scoring_model_approve(model=tuned, by=sales_manager)
    assert fresh_model(tuned).status == ModelStatus.ACTIVE
    assert fresh_model(tuned).report == {"auc": 0.81}


def test_engagement_rules_name_existing_campaigns(marketer):
    campaign = CampaignFactory(name="Spring webinar")
    rules = [{"kind": "webinar_attended", "campaign": campaign.pk, "points": 30}]
    spec = with_changes(engagement_rules=rules, group_caps={"seniority": 30})
    model = scoring.scoring_model_create(name="Campaign bonus", spec=spec, by=marketer)
    assert model.engagement_rules[0]["label"] == "Webinar attended in campaign Spring webinar"
    spec["engagement_rules"] = [{"kind": "webinar_attended", "campaign": 987654, "points": 30}]
    with pytest.raises(DomainError, match="names campaign 987654, which does not exist"):
        scoring.scoring_model_create(name="x", spec=spec, by=marketer)


def test_activation_retires_the_old_version_and_rescores_every_lead(
    marketer, marketing_manager, sales_manager, django_capture_on_commit_callbacks
):
    leads = [good_fit() for _ in range(7)]
    for lead in leads[:3]:
        services.touchpoint_record(lead=lead, kind="webinar_attended", system="website")
    untouched = LeadFactory(title="", company_size=None, country="", industry="")
    call_command("rescore", stdout=io.StringIO())  # everybody scored by the old version
    never_scored = LeadFactory()
    proposal = _proposal(marketer, fit_rules=[], engagement_rules=[], group_caps={}, mql_fit=0)
    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    with django_capture_on_commit_callbacks(execute=True):
        scoring.scoring_model_approve(model=proposal, by=sales_manager)
    assert set(Lead.objects.values_list("scored_with", flat=True)) == {proposal.pk}
    assert set(Lead.objects.values_list("score", flat=True)) == {0}
    # history: every lead whose score changed, with before and after; none for the unchanged one
    snapshots = ScoreSnapshot.objects.filter(kind=SnapshotKind.MODEL_CHANGE)
    assert set(snapshots.values_list("lead", flat=True)) == {lead.pk for lead in leads}
    snapshot = snapshots.get(lead=leads[0])
    assert (snapshot.model, snapshot.total, snapshot.grade) == (proposal, 0, "D")
    # under the default model: director 20 + 500 employees 15 + DE 10; a webinar 15
    assert snapshot.previous_fit == 45 and snapshot.previous_grade == "B"
    assert snapshot.previous_total == pytest.approx(60, abs=1e-3)
    assert not ScoreSnapshot.objects.filter(lead__in=[untouched, never_scored]).exists()


# --- real time -------------------------------------------------------------------------------------


def test_a_touchpoint_updates_the_score_inside_its_transaction(marketer):
    activate()
    lead = good_fit()
    with transaction.atomic():
        services.touchpoint_record(lead=lead, kind="webinar_attended", by=marketer)
        inside = fresh(lead)
        assert (inside.fit_score, inside.grade) == (50, "B")
        assert inside.score == pytest.approx(70, abs=1e-3)
        assert lead.score == inside.score  # the caller's object is updated too
        transaction.set_rollback(True)
    assert fresh(lead).score == 0  # rolled back with the touchpoint
    assert not Touchpoint.objects.exists()


def test_crossing_the_mql_definition_moves_the_lead_once(marketer, mql_events):
    activate()
    lead = good_fit()
    services.touchpoint_record(lead=lead, kind="webinar_attended", by=marketer)  # 70
    assert fresh(lead).stage == Stage.NEW
    services.touchpoint_record(lead=lead, kind="demo_request", system="website")  # 130
    assert lead.stage == Stage.MQL
    change = StageChange.objects.get(lead=lead)
    assert (change.from_stage, change.to_stage, change.by_system) == ("new", "mql", "scoring")
    services.touchpoint_record(lead=lead, kind="demo_request", system="website")
    assert mql_events == [lead.pk]
    assert fresh(lead).mql_count == 1


def test_decay_alone_never_moves_a_lead_and_a_recycled_lead_must_cross_again(
    marketer, sales_manager, mql_events
):
    activate()
    lead = good_fit()
    services.touchpoint_record(lead=lead, kind="demo_request", system="website")
    services.lead_recycle(lead=fresh(lead), by=sales_manager, reason="timing")
    # still above the line: a new touchpoint is not a new crossing
    services.touchpoint_record(lead=lead, kind="web_visit", by=marketer)
    assert fresh(lead).stage == Stage.RECYCLED
    # five half-lives pass: the score sinks below the line, nothing happens by itself
    _age(lead, days=50)
    assert scoring.lead_score_now(lead=fresh(lead)) < 60
    services.touchpoint_record(lead=lead, kind="web_visit", by=marketer)
    assert fresh(lead).stage == Stage.RECYCLED
    # a real crossing again
    services.touchpoint_record(lead=lead, kind="demo_request", system="website")
    assert fresh(lead).stage == Stage.MQL
    assert mql_events == [lead.pk, lead.pk]
    assert fresh(lead).mql_count == 2


def _age(lead: Lead, *, days: float) -> None:
    """Let `days` pass for one lead: its touchpoints and its anchor move back in time."""
    delta = dt.timedelta(days=days)
    Touchpoint.objects.filter(lead=lead).update(occurred_at=F("occurred_at") - delta)
    Lead.objects.filter(pk=lead.pk).update(engagement_anchor_at=F("engagement_anchor_at") - delta)


def test_a_score_that_decay_lifts_over_the_line_does_not_cross_by_itself(sales_manager, mql_events):
    # a capped positive group and an uncapped negative rule: decay can raise the total
    spec = with_changes(
        mql_total=70,
        group_caps={"seniority": 30, "intent": 40},
        engagement_rules=[
            {"key": "demo", "kind": "demo_request", "points": 100, "group": "intent"},
            {"key": "open", "kind": "email_open", "points": -30},
        ],
    )
    activate(spec)
    recycled = good_fit(stage=Stage.RECYCLED, mql_count=1)
    new = good_fit()
    t0 = timezone.now() - dt.timedelta(days=12)
    for lead in (recycled, new):
        for kind in ("email_open", "demo_request"):
            tp = TouchpointFactory(lead=lead, kind=kind, occurred_at=t0)
            score_touchpoint(lead, tp, now=t0)
        assert fresh(lead).score == pytest.approx(50 + 40 - 30)  # 60: below 70 at t0
        assert scoring.lead_score_now(lead=fresh(lead)) > 70  # 1.2 half-lives later: above
    assert mql_events == []  # no job moves anybody
    # an event without points: the recycled lead did not cross at this event, so it stays
    services.touchpoint_record(lead=recycled, kind="call", by=sales_manager)
    assert fresh(recycled).stage == Stage.RECYCLED
    # a lead that was never an MQL becomes one at its first event above the line
    services.touchpoint_record(lead=new, kind="call", by=sales_manager)
    assert fresh(new).stage == Stage.MQL
    assert mql_events == [new.pk]


def test_a_changed_field_rescores_the_lead_and_can_cross(marketer, mql_events):
    activate()
    lead = good_fit(title="Analyst", email="ana@globex.example")  # fit 30
    services.touchpoint_record(lead=lead, kind="demo_request", system="website")  # 90
    assert (fresh(lead).grade, fresh(lead).stage) == ("C", Stage.NEW)
    result = services.lead_intake(
        data={"email": "ana@globex.example", "title": "Chief Data Officer"}, by=marketer
    )
    lead = fresh(lead)
    assert (lead.fit_score, lead.grade) == (55, "B")
    assert lead.stage == Stage.MQL and result.lead.stage == Stage.MQL
    assert mql_events == [lead.pk]


def test_a_lead_scored_for_the_first_time_counts_its_earlier_touchpoints(marketer):
    activate()
    lead = good_fit()
    TouchpointFactory(lead=lead, kind="webinar_attended")  # e.g. written by a bulk import
    services.touchpoint_record(lead=lead, kind="email_click", by=marketer)
    assert fresh(lead).score == pytest.approx(50 + 20 + 4, abs=1e-3)


def test_once_a_new_version_rescored_a_lead_its_events_use_that_version(marketer):
    activate()
    lead = good_fit()
    services.touchpoint_record(lead=lead, kind="webinar_attended", by=marketer)
    rules = [{"key": "webinar", "kind": "webinar_attended", "points": 5}]
    second = activate(with_changes(engagement_rules=rules, group_caps={"seniority": 30}))
    call_command("rescore", stdout=io.StringIO())
    services.touchpoint_record(lead=lead, kind="webinar_attended", by=marketer)
    lead = fresh(lead)
    assert lead.scored_with_id == second.pk
    assert lead.engagement_sums == {"_": pytest.approx(10, abs=1e-3)}


def test_without_an_active_model_touchpoints_are_still_recorded(marketer):
    ScoringModel.objects.update(status=ModelStatus.RETIRED)
    lead = good_fit()
    services.touchpoint_record(lead=lead, kind="demo_request", by=marketer)
    assert Touchpoint.objects.count() == 1
    assert fresh(lead).score == 0 and fresh(lead).stage == Stage.NEW


def test_the_stored_form_through_the_database_matches_a_direct_recomputation():
    activate()
    rng = random.Random(7)
    model = scoring.scoring_model_active()
    leads = [good_fit() for _ in range(5)]
    start = timezone.now() - dt.timedelta(days=300)
    now = start
    history: dict[int, list] = {lead.pk: [] for lead in leads}
    for _ in range(120):
        now += dt.timedelta(hours=rng.uniform(0, 60))
        lead = rng.choice(leads)
        occurred_at = now - dt.timedelta(days=rng.choice([0, 0, rng.uniform(0, 90)]))
        kind = rng.choice(["demo_request", "webinar_attended", "web_visit", "email_click", "call"])
        tp = TouchpointFactory(lead=lead, kind=kind, occurred_at=occurred_at)
        score_touchpoint(lead, tp, now=now)
        history[lead.pk].append((kind, None, {}, occurred_at))
    for lead in leads:
        stored = Anchored.from_lead(fresh(lead))
        for at in (now, now + dt.timedelta(days=45)):
            expected = _direct(model, history[lead.pk], at)
            assert engagement_at(model, stored, at) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def _direct(model, rows, at) -> float:
    groups: dict[str, float] = {}
    for kind, campaign_id, metadata, occurred_at in rows:
        for bucket, points in model.touchpoint_points(kind, campaign_id, metadata).items():
            weight = 0.5 ** ((at - occurred_at).total_seconds() / model.half_life_seconds)
            groups[bucket] = groups.get(bucket, 0.0) + points * weight
    return sum(
        min(model.group_caps[g], s) if g in model.group_caps else s for g, s in groups.items()
    )


# --- explanation -----------------------------------------------------------------------------------


def test_the_explanation_shows_rules_points_caps_grade_and_distance(marketer):
    activate()
    lead = good_fit(title="Chief of Staff, VP", country="AT")
    at = timezone.now()
    for days_ago in (0, 10, 20):  # three webinars: 20 + 10 + 5 points after decay
        TouchpointFactory(
            lead=lead, kind="webinar_attended", occurred_at=at - dt.timedelta(days=days_ago)
        )
    for _ in range(5):  # 15 points of web visits, capped at 10
        TouchpointFactory(lead=lead, kind="web_visit", occurred_at=at)
    explanation = lead_score_explain(lead=lead, at=at)

    assert explanation["model"]["label"].startswith("v")
    assert [(r["key"], r["points"], r["value"]) for r in explanation["fit"]["rules"]] == [
        ("vp", 20, "Chief of Staff, VP"),
        ("chief", 25, "Chief of Staff, VP"),
        ("big", 20, 500),
        ("dach", 10, "AT"),
    ]
    assert explanation["fit"]["groups"] == [
        {"name": "seniority", "kind": "fit", "cap": 30, "raw": 45, "applied": 30, "capped": True}
    ]
    assert explanation["fit"]["score"] == 60 and explanation["grade"] == "A"
    webinar = explanation["engagement"]["rules"][0]
    assert (webinar["key"], webinar["occurrences"], webinar["undecayed"]) == ("webinar", 3, 60)
    assert webinar["points"] == pytest.approx(35)
    web_group = explanation["engagement"]["groups"][0]
    assert (web_group["name"], web_group["raw"], web_group["applied"], web_group["capped"]) == (
        "web",
        15,
        10,
        True,
    )
    assert explanation["engagement"]["score"] == pytest.approx(45)
    assert explanation["total"] == pytest.approx(105)
    assert explanation["mql"]["qualifies"] is True

    later = lead_score_explain(lead=lead, at=at + dt.timedelta(days=10))
    assert later["engagement"]["score"] == pytest.approx(17.5 + 7.5)
    assert later["mql"]["total_short"] == pytest.approx(100 - 85)
    assert later["mql"]["fit_short"] == 0


def test_the_explanation_agrees_with_the_stored_score(marketer):
    activate()
    lead = good_fit()
    for kind in ("webinar_attended", "web_visit", "web_visit", "email_click", "web_visit"):
        services.touchpoint_record(lead=lead, kind=kind, by=marketer)
    at = timezone.now() + dt.timedelta(days=3)
    explained = lead_score_explain(lead=fresh(lead), at=at)["total"]
    assert scoring.lead_score_now(lead=fresh(lead), at=at) == pytest.approx(explained, rel=1e-9)


def test_the_explanation_costs_two_queries(django_assert_num_queries):
    activate()
    lead = good_fit()
    TouchpointFactory(lead=lead, kind="webinar_attended")
    lead_score_explain(lead=lead)  # compiles the version once per process
    with django_assert_num_queries(2):
        lead_score_explain(lead=lead)


def test_the_explanation_fragment_renders(marketer):
    activate()
    lead = good_fit(title="Student")
    TouchpointFactory(lead=lead, kind="webinar_attended")
    html = render_to_string(
        "leads/scoring/_explanation.html", {"explanation": lead_score_explain(lead=lead)}
    )
    assert "grade D" in html
    assert "title contains student" in html and "-40" in html
    assert "Webinar attended" in html and "1 × 20" in html
    assert "Short of the MQL definition" in html and "on fit" in html


# --- full rescore ----------------------------------------------------------------------------------


def _realtime_history(leads, seed=3) -> dt.datetime:
    rng = random.Random(seed)
    campaign = CampaignFactory()
    now = timezone.now() - dt.timedelta(days=120)
    for _ in range(150):
        now += dt.timedelta(hours=rng.uniform(0, 18))
        lead = rng.choice(leads)
        tp = TouchpointFactory(
            lead=lead,
            kind=rng.choice(["demo_request", "webinar_attended", "web_visit", "email_click"]),
            occurred_at=now - dt.timedelta(days=rng.choice([0, 0, 0, rng.uniform(0, 60)])),
            campaign=campaign if rng.random() < 0.3 else None,
            metadata={"page": rng.choice(["pricing", "blog"])},
        )
        score_touchpoint(lead, tp, now=now)
    return now


RESCORE_SPEC = with_changes(
    engagement_rules=[
        *SPEC["engagement_rules"],
        {"key": "pricing", "kind": "web_visit", "metadata": {"page": "pricing"}, "points": 5, "group": "web"},
    ],
    fit_rules=[
        *SPEC["fit_rules"],
        {"key": "seats", "field": "attributes.seats", "op": "between", "value": [10, 100], "points": 7},
    ],
)  # fmt: skip


@pytest.mark.parametrize("use_sql", [False, True], ids=["python", "sql"])
def test_a_rescore_gives_the_real_time_values(use_sql):
    if use_sql and connection.vendor != "postgresql":
        pytest.skip("the set-based SQL path is PostgreSQL's; SQLite uses the Python path")
    activate(RESCORE_SPEC)
    leads = [good_fit(attributes={"seats": s}) for s in (5, "12", 50.5, None, "x", 100)]
    leads.append(good_fit(stage=Stage.WON))  # every stage is scored, none is moved
    last = _realtime_history(leads)
    model = scoring.scoring_model_active()
    realtime = {lead.pk: fresh(lead) for lead in leads}

    run = scoring.scoring_run_create(batch_size=4)
    scoring.scoring_run_execute(run_id=run.pk, at=last + dt.timedelta(hours=1), use_sql=use_sql)

    for lead in leads:
        before, after = realtime[lead.pk], fresh(lead)
        assert (after.fit_score, after.grade, after.stage) == (
            before.fit_score,
            before.grade,
            before.stage,
        )
        for at in (last + dt.timedelta(hours=1), last + dt.timedelta(days=30)):
            assert engagement_at(model, Anchored.from_lead(after), at) == pytest.approx(
                engagement_at(model, Anchored.from_lead(before), at), rel=1e-9, abs=1e-9
            )
        assert after.score == pytest.approx(
            after.fit_score
            + engagement_at(model, Anchored.from_lead(after), after.engagement_anchor_at)
        )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="compares the SQL path with Python")
def test_the_sql_and_python_rescores_store_the_same_values():
    activate(RESCORE_SPEC)
    leads = [good_fit(attributes={"seats": s}) for s in (5, "12", 50.5, None)]
    _realtime_history(leads, seed=11)
    at = timezone.now()
    model = scoring.scoring_model_active()
    results = []
    for use_sql in (False, True):
        lo, hi = min(x.pk for x in leads), max(x.pk for x in leads)
        with transaction.atomic():
            if use_sql:
                scoring_sql.rescore_batch_postgres(model, lo=lo, hi=hi, at=at, snapshots=False)
            else:
                scoring_sql.rescore_batch_python(model, lo=lo, hi=hi, at=at, snapshots=False)
        results.append({lead.pk: fresh(lead) for lead in leads})
    for lead in leads:
        python, sql = results[0][lead.pk], results[1][lead.pk]
        assert (sql.fit_score, sql.grade, sql.engagement_anchor_at) == (
            python.fit_score,
            python.grade,
            python.engagement_anchor_at,
        )
        assert sql.engagement_score == pytest.approx(python.engagement_score, rel=1e-12)
        assert (sql.engagement_sums or {}).keys() == (python.engagement_sums or {}).keys()
        for key, value in (python.engagement_sums or {}).items():
            assert sql.engagement_sums[key] == pytest.approx(value, rel=1e-12)


def test_the_rescore_command_reports_and_never_moves_stages():
    activate()
    above = [good_fit() for _ in range(3)]
    for lead in above:
        TouchpointFactory(lead=lead, kind="demo_request")  # 110: above the line, but no event
    LeadFactory.create_batch(2)
    out = io.StringIO()
    call_command("rescore", "--batch-size", "2", stdout=out)
    text = out.getvalue()
    assert "batches of 2 leads" in text
    assert "100%  5 / 5" in text
    assert "Done: 5 leads rescored in" in text
    assert "Stages are not changed by a rescore; MQL crossings happen only on events." in text
    assert "3 leads in new, nurturing or recycled meet the MQL definition now." in text
    assert set(Lead.objects.values_list("stage", flat=True)) == {Stage.NEW}
    run = ScoringRun.objects.get()
    assert (run.status, run.processed, run.last_lead_id) == (
        RunStatus.DONE,
        5,
        max(Lead.objects.values_list("pk", flat=True)),
    )
    assert not ScoreSnapshot.objects.exists()  # a manual rescore is no model change


def test_bulk_writers_rescore_the_leads_they_wrote_without_moving_them():
    activate()
    written = [good_fit() for _ in range(3)]  # e.g. an import's bulk_create
    other = good_fit()
    for lead in written + [other]:
        TouchpointFactory(lead=lead, kind="demo_request")
    # they now meet the definition: the rescore names them for the caller to move, moves none
    crossing = scoring.leads_rescore(lead_ids=[x.pk for x in written] + [987654])
    assert crossing == sorted(x.pk for x in written)
    for lead in written:
        assert (fresh(lead).score, fresh(lead).stage) == (pytest.approx(110, abs=1e-3), Stage.NEW)
    assert fresh(other).scored_with_id is None


def test_a_full_refresh_recounts_touchpoints_moved_by_a_merge(marketer):
    activate()
    survivor, duplicate = good_fit(), good_fit()
    services.touchpoint_record(lead=survivor, kind="webinar_attended", by=marketer)
    services.touchpoint_record(lead=duplicate, kind="webinar_attended", by=marketer)
    Touchpoint.objects.filter(lead=duplicate).update(lead=survivor)
    scoring.lead_score_refresh(locked=fresh(survivor))
    assert fresh(survivor).score == pytest.approx(70, abs=1e-3)  # fields only: stale engagement
    scoring.lead_score_refresh(locked=fresh(survivor), full=True)
    assert fresh(survivor).score == pytest.approx(90, abs=1e-3)


def test_the_rescore_command_needs_an_active_model():
    ScoringModel.objects.update(status=ModelStatus.RETIRED)
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no active scoring model"):
        call_command("rescore", stdout=io.StringIO())


def test_a_rescore_resumes_where_a_transient_failure_stopped_it(monkeypatch):
    activate()
    LeadFactory.create_batch(5)
    real = scoring_sql.rescore_batch_python
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring_sql, "rescore_batch_python", flaky)
    run = scoring.scoring_run_create(batch_size=2)
    with pytest.raises(OperationalError):
        scoring.scoring_run_execute(run_id=run.pk, use_sql=False)
    run.refresh_from_db()
    assert (run.status, run.processed) == (RunStatus.QUEUED, 2)
    done = scoring.scoring_run_execute(run_id=run.pk, use_sql=False)
    assert (done.status, done.processed) == (RunStatus.DONE, 5)
    assert scoring.scoring_run_execute(run_id=run.pk) is None  # claimed once: a rerun does nothing


def test_a_rescore_of_a_retired_version_stops():
    old = activate()
    run = scoring.scoring_run_create(model=old)
    activate(with_changes(mql_total=90))
    LeadFactory()
    done = scoring.scoring_run_execute(run_id=run.pk)
    assert done.status == RunStatus.SUPERSEDED
    assert Lead.objects.get().scored_with_id is None


def test_stalled_rescores_are_queued_again():
    activate()
    LeadFactory.create_batch(3)
    run = scoring.scoring_run_create()
    ScoringRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    scoring_runs_resume.delay()  # eager in tests
    run.refresh_from_db()
    assert (run.status, run.processed) == (RunStatus.DONE, 3)


# --- score history ---------------------------------------------------------------------------------


def test_the_score_at_each_mql_transition_is_kept_with_its_explanation(
    marketer, marketing_manager, sales_manager
):
    activate()
    lead = good_fit()
    services.touchpoint_record(lead=lead, kind="demo_request", system="website")
    manual = good_fit(title="")
    services.lead_move(lead=manual, to=Stage.MQL, by=marketer)  # any MQL transition counts
    snapshot = ScoreSnapshot.objects.get(lead=lead, kind=SnapshotKind.MQL)
    assert snapshot.total == pytest.approx(110, abs=1e-3) and snapshot.grade == "B"
    assert [r["key"] for r in snapshot.explanation["fit"]["rules"]] == ["vp", "big", "dach"]
    assert ScoreSnapshot.objects.filter(lead=manual, kind=SnapshotKind.MQL).count() == 1

    # the model changes: the reason the lead was routed stays readable
    proposal = _proposal(marketer, fit_rules=[], engagement_rules=[], group_caps={})
    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    scoring.scoring_model_approve(model=proposal, by=sales_manager)
    # the activation's rescore runs from the outbox (the kick after commit is already pending
    # in this test's transaction, queued by the earlier stage changes' SLA reactions)
    events.outbox_dispatch()
    history = lead_score_history(lead=lead)
    assert [s.kind for s in history] == [SnapshotKind.MODEL_CHANGE, SnapshotKind.MQL]
    assert history[0].total == 0 and history[0].previous_total == pytest.approx(110, abs=1e-3)
    assert history[1].explanation == snapshot.explanation
