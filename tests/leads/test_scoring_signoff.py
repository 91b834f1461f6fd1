"""Safe to sign: a version's page warns when fine-tuning did not show it better than the version in
force, and an approval is given only on a confirmation page that names what changes (rules,
grades, new MQLs). SQLite and PostgreSQL."""

import html
import re

import numpy as np
import pytest
from django.db import connection
from django.urls import reverse

from leads.models import Lead, ScoringApproval, ScoringModel, ScoringModelEvent, Stage
from leads.scoring import services as scoring
from leads.scoring import sql as scoring_sql
from leads.scoring.compiled import compiled_model
from leads.scoring.models import ModelAction, ModelOrigin, ModelStatus
from leads.scoring.rules import spec_of
from leads.scoring.tuning.evaluate import verdict
from tests.leads.test_scoring_services import SPEC, activate, good_fit

pytestmark = pytest.mark.django_db

# against SPEC: one fit rule added, one removed, one changed, and a lower MQL bar
PROPOSED_RULES = [
    {"key": "vp", "field": "title", "op": "contains", "value": ["vp", "director"], "points": 20, "group": "seniority"},
    {"key": "chief", "field": "title", "op": "contains", "value": "chief", "points": 25, "group": "seniority"},
    {"key": "big", "field": "company_size", "op": "gte", "value": 100, "points": 30},
    {"key": "software", "label": "Software industry", "field": "industry", "op": "in", "value": ["Software"], "points": 15},
    {"key": "student", "field": "title", "op": "contains", "value": "student", "points": -40},
]  # fmt: skip


def scored_leads() -> dict[str, list[Lead]]:
    """Leads scored by the active SPEC (grades A >= 60, B >= 40, C >= 20), and what the proposal
    does to them:
    - 3 new directors of big software companies in DE: fit 50 (B) -> 65 (A), and 65 >= the new
      bar of 50: they become MQLs. One of them has a title with an umlaut (Python decides it).
    - 1 such director already accepted by sales (SAL): B -> A, but sales has it: no new MQL.
    - 2 heads of operations (120 employees, DE, software): fit 30 (C) -> 45 (B); 45 < 50.
    - 1 student: fit -10 (D) -> 5 (D): no change.
    - 1 director never scored: no grade to change (left out of the grade count)."""
    leads = {
        "directors": [
            good_fit(industry="Software"),
            good_fit(industry="Software"),
            good_fit(industry="Software", title="Directorin Öffentlichkeitsarbeit"),
        ],
        "accepted": [good_fit(industry="Software", stage=Stage.SAL)],
        "heads": [
            good_fit(industry="Software", title="Head of Operations", company_size=120)
            for _ in range(2)
        ],
        "student": [good_fit(industry="Software", title="Student", company_size=120)],
    }
    scoring.leads_rescore(lead_ids=[lead.pk for group in leads.values() for lead in group])
    leads["unscored"] = [good_fit(industry="Software", stage=Stage.SAL)]
    return leads


def _proposal(marketer, client=None, **create) -> ScoringModel:
    """The proposal, proposed from the page when a client is given (which counts the preview:
    eager in tests), else through the service."""
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    spec = {**SPEC, "fit_rules": PROPOSED_RULES, "mql_total": 50}
    draft = scoring.scoring_model_create(
        name="Software first", spec=spec, by=marketer, based_on=active, **create
    )
    if client is None:
        return scoring.scoring_model_propose(model=draft, by=marketer)
    client.force_login(marketer)
    client.post(reverse("leads:scoring_model_decide", args=[draft.pk, "propose"]))
    return ScoringModel.objects.get(pk=draft.pk)


def tuned_proposal(marketer, level: str) -> ScoringModel:
    """A proposal carrying a fine-tuning report whose verdict (the real evaluate.verdict over a
    holdout) is `level`."""
    active = ScoringModel.objects.get(status=ModelStatus.ACTIVE)
    y = np.array([0, 1] * 40)
    base = y * 1.0 + np.random.default_rng(7).normal(0, 1.0, len(y))
    proposal = {
        "better": base + y * 2.0,
        "worse": base - y * 0.8,
        "within_noise": base + np.random.default_rng(6).normal(0, 0.3, len(y)),
    }[level]
    measured = verdict(proposal, base, y, seed=1, active_label=active.label)
    assert measured["level"] == level
    report = {
        "kind": "tuning",
        "summary": "Learned from 40 leads won and 40 lost.",
        "model": {"based_on": active.pk},
        "proposal": {"auc": measured["proposal_auc"]},
        "active": {"auc": measured["active_auc"]},
        "verdict": measured,
    }
    return _proposal(marketer, system="tuning", origin=ModelOrigin.TUNING, report=report)


def _page(client, user, model: ScoringModel) -> str:
    client.force_login(user)
    response = client.get(reverse("leads:scoring_model", args=[model.pk]))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _approve_url(model: ScoringModel) -> str:
    return reverse("leads:scoring_model_decide", args=[model.pk, "approve"])


def _confirmation(client, user, model: ScoringModel) -> str:
    client.force_login(user)
    response = client.get(_approve_url(model))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _read_at(page: str) -> str:
    return re.search(r'name="read_at" value="([^"]+)"', page).group(1)


def _part(page: str, id: str) -> str:
    """The text of the element with this id, up to the end of its list or section."""
    start = page.index(f'id="{id}"')
    ends = [page.find(tag, start) for tag in ("</ul>", "</section>", "</p>")]
    return re.sub(r"<[^>]+>", " ", page[start : min(e for e in ends if e != -1)])


def _section(page: str, id: str) -> str:
    start = page.index(f'id="{id}"')
    return page[start : page.index("</section>", start)]


def _words(text: str) -> str:
    return " ".join(text.split())


# --- the warning -----------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["worse", "within_noise"])
def test_a_proposal_not_shown_better_carries_a_warning_at_the_top(
    client, marketer, marketing_manager, level
):
    proposal = tuned_proposal(marketer, level)
    page = _page(client, marketing_manager, proposal)
    warning = _words(_section(page, "verdict"))
    assert 'role="alert"' in page
    # at the top: before the diff and the definition
    assert page.index('id="verdict"') < page.index("<h2>Definition</h2>")
    assert proposal.report["verdict"]["message"] in page
    assert "Approving it is allowed, but" in page
    assert ("worse than the version in force" if level == "worse" else "not clearly better") in (
        warning
    )
    # and the confirmation says it again
    confirmation = _confirmation(client, marketing_manager, proposal)
    assert 'role="alert"' in confirmation
    assert proposal.report["verdict"]["message"] in confirmation
    assert "Approving it is allowed, but" in confirmation


def test_a_better_proposal_gets_a_calm_line_with_its_numbers(client, marketer, sales_manager):
    proposal = tuned_proposal(marketer, "better")
    measured = proposal.report["verdict"]
    for page in (
        _page(client, sales_manager, proposal),
        _confirmation(client, sales_manager, proposal),
    ):
        assert 'role="alert"' not in page
        assert "Approving it is allowed" not in page
        line = _words(_part(page, "verdict"))
        assert "Measured on the fine-tuning holdout" in line
        assert f"AUC {measured['proposal_auc']:.3f} against {measured['active_auc']:.3f}" in line


def test_a_hand_made_version_says_it_was_not_measured(client, marketer, marketing_manager):
    proposal = _proposal(marketer)
    assert proposal.report == {}
    page = _page(client, marketing_manager, proposal)
    line = _words(_part(page, "verdict"))
    assert "not measured against the active version on a holdout" in line
    assert 'role="alert"' not in page
    # a draft too, measured or not
    draft = scoring.scoring_model_copy(model=proposal, by=marketer)
    assert "not measured against the active version" in _page(client, marketer, draft)


def test_a_tuned_proposal_edited_afterwards_is_no_longer_covered_by_its_verdict(
    client, marketer, marketing_manager
):
    proposal = tuned_proposal(marketer, "better")
    scoring.scoring_model_withdraw(model=proposal, by=marketer)
    scoring.scoring_model_update(model=proposal, by=marketer, name="Software first, edited")
    scoring.scoring_model_propose(model=proposal, by=marketer)
    page = _page(client, marketing_manager, proposal)
    assert "edited after fine-tuning measured them" in page
    assert "Measured on the fine-tuning holdout" not in page


def test_a_report_older_than_the_verdict_says_it_has_none(client, marketer, marketing_manager):
    proposal = tuned_proposal(marketer, "worse")
    report = {k: v for k, v in proposal.report.items() if k != "verdict"}
    ScoringModel.objects.filter(pk=proposal.pk).update(report=report)
    page = _page(client, marketing_manager, proposal)
    assert "older than the verdict" in page and 'role="alert"' not in page


# --- what changes ---------------------------------------------------------------------------------


def test_the_grade_changes_are_counted_over_the_scored_leads(marketer):
    activate(SPEC)
    scored_leads()
    proposal = _proposal(marketer)
    moves = [{"from": "B", "to": "A", "count": 4}, {"from": "C", "to": "B", "count": 2}]
    assert scoring.scoring_model_grade_changes(model=proposal) == moves
    assert scoring.scoring_model_grade_changes(model=proposal, use_sql=False) == moves
    assert scoring.scoring_model_grade_changes(model=proposal, batch_size=2, use_sql=False) == moves
    assert scoring.scoring_model_newly_qualifying(model=proposal) == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL count is PostgreSQL's")
def test_the_sql_grade_count_leaves_the_undecided_leads_to_python(marketer):
    activate(SPEC)
    umlaut = scored_leads()["directors"][2]
    proposal = _proposal(marketer)
    # the umlaut title makes the title rules NULL in SQL: only Python scores that lead
    sql, params = scoring_sql.python_leads_statement(compiled_model(proposal))
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "lo": 0, "hi": 2**62})
        assert [row[0] for row in cursor.fetchall()] == [umlaut.pk]
    assert scoring.scoring_model_grade_changes(model=proposal, use_sql=True)[0]["count"] == 4


def test_the_confirmation_names_the_rules_and_counts_grades_and_new_mqls(
    client, marketer, marketing_manager
):
    activate(SPEC)
    scored_leads()
    proposal = _proposal(marketer, client)
    preview = proposal.report["activation_preview"]
    assert (preview["count"], preview["grade_changes"]) == (3, 6)

    page = _confirmation(client, marketing_manager, proposal)
    assert _words(_part(page, "rules-added")).endswith("+ fit: Software industry (15 points)")
    removed = _words(_part(page, "rules-removed"))
    assert "− fit:" in removed and "DE" in removed and "(10 points)" in removed
    assert "Software" not in removed
    changed = _words(_part(page, "rules-changed"))
    assert "~ fit:" in changed and "points 20 → 30" in changed and "Software" not in changed
    assert "mql_total: 100 → 50" in _words(_part(page, "settings-changed"))
    assert "1 added, 1 removed, 1 changed" in page
    assert "3 leads in new, nurturing or recycled would become MQLs" in _words(
        _part(page, "new-mqls")
    )
    assert "6 leads would change grade" in _words(_part(page, "grade-changes"))
    moves = re.findall(r"<tr><td>(\w)</td><td>(\w)</td><td>(\d+)</td></tr>", page)
    assert moves == [("B", "A", "4"), ("C", "B", "2")]
    assert "Yours is the first approval" in page and "sales manager" in page
    assert ScoringApproval.objects.count() == 0  # reading approves nothing

    # the model page says the grade count too
    assert "6 leads would change grade" in _words(
        _part(_page(client, marketer, proposal), "grade-changes")
    )


def test_the_second_approval_says_it_activates(client, marketer, marketing_manager, sales_manager):
    proposal = _proposal(marketer)
    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    page = _confirmation(client, sales_manager, proposal)
    assert "Yours is the second approval" in page
    assert "Approve and activate" in page
    assert f"Already approved by {marketing_manager}" in _section(page, "effect")


def test_a_confirmation_without_a_count_says_so(client, marketer, sales_manager):
    proposal = _proposal(marketer)  # through the service: nothing counted
    page = _confirmation(client, sales_manager, proposal)
    assert "Not counted yet" in page
    client.post(reverse("leads:scoring_model_preview", args=[proposal.pk]), {"next": "approve"})
    page = _confirmation(client, sales_manager, proposal)
    assert "Not counted yet" not in page and "would change grade" in page


# --- the approval ---------------------------------------------------------------------------------


def test_an_approval_without_the_confirmation_approves_nothing(client, marketer, marketing_manager):
    proposal = _proposal(marketer)
    read_at = _read_at(_confirmation(client, marketing_manager, proposal))
    response = client.post(_approve_url(proposal), {"note": "ok", "read_at": read_at})
    assert response.status_code == 400
    assert "I have read what changes" in html.unescape(response.content.decode())
    assert 'id="confirm-errors"' in response.content.decode()
    assert not ScoringApproval.objects.filter(model=proposal).exists()
    assert not ScoringModelEvent.objects.filter(model=proposal, action=ModelAction.APPROVED)
    assert ScoringModel.objects.get(pk=proposal.pk).status == ModelStatus.PROPOSED


def test_an_approval_with_the_confirmation_is_recorded_and_the_second_activates(
    client, marketer, marketing_manager, sales_manager, django_capture_on_commit_callbacks
):
    activate(SPEC)
    leads = scored_leads()
    proposal = _proposal(marketer, client)
    page = _confirmation(client, marketing_manager, proposal)
    response = client.post(
        _approve_url(proposal),
        {"note": "Agreed on Monday", "confirm": "on", "read_at": _read_at(page)},
    )
    assert response.status_code == 302
    approval = ScoringApproval.objects.get(model=proposal)
    assert (approval.by, approval.note) == (marketing_manager, "Agreed on Monday")
    assert ScoringModel.objects.get(pk=proposal.pk).status == ModelStatus.PROPOSED

    page = _confirmation(client, sales_manager, proposal)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_approve_url(proposal), {"confirm": "on", "read_at": _read_at(page)})
    assert response.status_code == 302
    assert ScoringModel.objects.get(pk=proposal.pk).status == ModelStatus.ACTIVE
    # the figures the managers read are what the activation did
    directors = Lead.objects.filter(pk__in=[x.pk for x in leads["directors"]])
    assert [lead.stage for lead in directors] == [Stage.MQL] * 3
    assert Lead.objects.filter(pk__in=[x.pk for x in leads["heads"]], grade="B").count() == 2


def test_a_version_changed_after_it_was_read_is_not_approved(client, marketer, marketing_manager):
    proposal = _proposal(marketer)
    read_at = _read_at(_confirmation(client, marketing_manager, proposal))
    scoring.scoring_model_withdraw(model=proposal, by=marketer)
    scoring.scoring_model_update(
        model=proposal, by=marketer, spec={**spec_of(proposal), "mql_total": 10}
    )
    scoring.scoring_model_propose(model=proposal, by=marketer)
    client.force_login(marketing_manager)
    response = client.post(_approve_url(proposal), {"confirm": "on", "read_at": read_at})
    assert response.status_code == 400
    assert "changed after you opened it" in html.unescape(response.content.decode())
    assert not ScoringApproval.objects.filter(model=proposal).exists()
    # the page shown with the refusal describes the version as it is now, and approves it
    page = html.unescape(response.content.decode())
    assert "mql_total: 100 → 10" in _words(_part(page, "settings-changed"))
    response = client.post(_approve_url(proposal), {"confirm": "on", "read_at": _read_at(page)})
    assert response.status_code == 302
    assert ScoringApproval.objects.filter(model=proposal, by=marketing_manager).exists()


@pytest.mark.parametrize("who", ["rep", "marketer"])
def test_only_the_managers_reach_the_confirmation(client, people, who):
    proposal = _proposal(people["marketer"])
    client.force_login(people[who])
    assert client.get(_approve_url(proposal)).status_code == 403
    response = client.post(
        _approve_url(proposal), {"confirm": "on", "read_at": proposal.updated_at.isoformat()}
    )
    assert response.status_code == 403
    assert not ScoringApproval.objects.exists()
    assert ">Approve<" not in _page(client, people[who], proposal)


def test_a_manager_who_approved_is_sent_back_to_the_version(client, marketer, marketing_manager):
    proposal = _proposal(marketer)
    scoring.scoring_model_approve(model=proposal, by=marketing_manager)
    client.force_login(marketing_manager)
    response = client.get(_approve_url(proposal))
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:scoring_model", args=[proposal.pk])


def test_a_verdict_against_a_version_since_replaced_is_not_taken_as_safe(
    client, marketer, marketing_manager
):
    proposal = tuned_proposal(marketer, "better")
    measured_against = proposal.report["model"]["based_on"]
    now_active = activate(SPEC, name="Replaced meanwhile")
    line = _words(_part(_page(client, marketing_manager, proposal), "verdict"))
    assert "Not measured against the version in force" in line
    assert f"measured against v{measured_against}, then in force" in line
    assert f"{now_active.label}, in force now, has not been compared with it" in line
