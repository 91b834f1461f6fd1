"""The lead page offers each viewer only what the services would let him do: moves, touchpoint
kinds, the reasons of the chosen move; reassignment shows availability and load, asks before an
away or full rep, and notifies the new owner once. Money reads in the company's currency."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.urls import reverse

from alignment.lib.money import format_money
from alignment.models import Notification
from leads.forms import MoveForm, TouchpointForm
from leads.models import Assignment, Lead, Reason, ReasonKind, Stage
from leads.routing import lead_assign
from tests.factories import LeadFactory, RepFactory

pytestmark = pytest.mark.django_db

MARKETING_KINDS = {"web_visit", "email_open", "form_submit", "demo_request"}
SALES_KINDS = {"call", "sales_email", "meeting", "note"}


def _page(client, user, lead) -> str:
    client.force_login(user)
    response = client.get(reverse("leads:detail", args=[lead.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _offered(form) -> set[str]:
    return {value for value, _ in form.fields[_field(form)].choices}


def _field(form) -> str:
    return "to" if isinstance(form, MoveForm) else "kind"


# --- what each role is offered -------------------------------------------------------------------


def test_marketer_is_offered_qualify_and_nurture_and_marketing_kinds(marketer, rep):
    lead = LeadFactory(stage=Stage.NEW, owner=rep)
    assert _offered(MoveForm(lead=lead, user=marketer)) == {Stage.NURTURING, Stage.MQL}
    kinds = _offered(TouchpointForm(lead=lead, user=marketer))
    assert kinds >= MARKETING_KINDS and not kinds & SALES_KINDS


def test_marketer_on_an_mql_gets_no_sales_move_but_a_sentence(client, marketer, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    form = MoveForm(lead=lead, user=marketer)
    assert form.moves == []
    body = _page(client, marketer, lead)
    assert 'id="move-refusal"' in body and "your role does not make these moves" in body
    assert "may not do" not in body


def test_rep_on_his_own_mql_is_offered_the_sales_moves_and_kinds(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    assert _offered(MoveForm(lead=lead, user=rep)) == {Stage.SAL, Stage.REJECTED, Stage.RECYCLED}
    assert _offered(TouchpointForm(lead=lead, user=rep)) == SALES_KINDS


def test_rep_on_a_new_lead_of_his_is_not_offered_qualify(client, rep):
    lead = LeadFactory(stage=Stage.NEW, owner=rep)
    body = _page(client, rep, lead)
    assert MoveForm(lead=lead, user=rep).moves == []
    assert "lead.qualify" not in body and "may not do" not in body


def test_rep_on_another_reps_lead_sees_no_sales_move_and_why(client, rep, other_rep):
    lead = LeadFactory(stage=Stage.MQL, owner=other_rep, first_name="Ada", last_name="Moss")
    assert MoveForm(lead=lead, user=rep).moves == []
    assert _offered(TouchpointForm(lead=lead, user=rep)) == set()
    body = _page(client, rep, lead)
    assert "is not assigned to you; ask a sales manager to reassign it." in body
    assert "only its owner or a sales manager can log sales activity" in body
    assert f'action="/leads/{lead.pk}/move/"' not in body


def test_sales_manager_is_offered_every_sales_move_on_any_lead(sales_manager, rep):
    lead = LeadFactory(stage=Stage.SQL, owner=rep)
    offered = _offered(MoveForm(lead=lead, user=sales_manager))
    assert offered == {Stage.OPPORTUNITY, Stage.RECYCLED, Stage.LOST}
    assert _offered(TouchpointForm(lead=lead, user=sales_manager)) == SALES_KINDS


def test_a_final_stage_says_so(client, sales_manager, rep):
    lead = LeadFactory(stage=Stage.WON, owner=rep, deal_value=Decimal("48000"))
    body = _page(client, sales_manager, lead)
    assert "Won is a final stage" in body


def test_the_page_renders_for_each_role(client, people, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep, deal_value=Decimal("1200.5"))
    for user in (people["marketer"], people["marketing_manager"], people["rep"]):
        body = _page(client, user, lead)
        assert 'id="assign"' not in body
    for user in (people["sales_manager"], people["admin"]):
        assert 'id="assign"' in _page(client, user, lead)


def test_a_posted_kind_the_viewer_may_not_log_is_an_error_in_place(client, marketer, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(marketer)
    response = client.post(reverse("leads:touchpoint", args=[lead.pk]), {"kind": "call"})
    assert response.status_code == 400
    assert "not a kind of touchpoint you can log on this lead" in response.content.decode()
    assert not lead.touchpoints.exists()


# --- reasons ------------------------------------------------------------------------------------


def test_reasons_are_grouped_by_the_move_that_takes_them(rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    groups = {to: reasons for to, _, reasons in MoveForm(lead=lead, user=rep).reason_groups()}
    assert set(groups) == {Stage.REJECTED, Stage.RECYCLED}
    assert {r.kind for r in groups[Stage.REJECTED]} == {ReasonKind.REJECT}
    # recycling takes only reasons that recycle: "Bad fit" closes the lead, it is not offered
    assert all(r.recycles for r in groups[Stage.RECYCLED])
    assert "bad_fit" not in {r.code for r in groups[Stage.RECYCLED]}
    assert not any(r.kind == ReasonKind.LOST for rs in groups.values() for r in rs)


def test_the_page_renders_one_optgroup_per_move(client, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    body = _page(client, rep, lead)
    assert '<optgroup label="Rejected">' in body and '<optgroup label="Recycled">' in body
    assert "Chose a competitor" not in body  # a lost reason, for no move from MQL


@pytest.mark.parametrize(
    ("kind", "code", "error"),
    [
        # a recycle reason is listed, but under Recycled: the form says which move it belongs to
        (ReasonKind.RECYCLE, "timing", "That reason is not one for Rejected"),
        # a lost reason is for no move from MQL: it is not among the choices at all
        (ReasonKind.LOST, "price", "Choose one of the reasons listed for this move."),
    ],
)
def test_a_reason_of_another_kind_is_a_form_error_in_place(client, rep, kind, code, error):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    reason = Reason.objects.get(kind=kind, code=code)
    client.force_login(rep)
    response = client.post(
        reverse("leads:move", args=[lead.pk]), {"to": "rejected", "reason": reason.pk}
    )
    assert response.status_code == 400
    assert error in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL


def test_a_reason_of_the_move_is_accepted(client, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    bad_fit = Reason.objects.get(kind=ReasonKind.REJECT, code="bad_fit")
    client.force_login(rep)
    response = client.post(
        reverse("leads:move", args=[lead.pk]), {"to": "rejected", "reason": bad_fit.pk}
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.stage, lead.last_reason) == (Stage.REJECTED, bad_fit)


def test_a_reason_left_selected_for_a_move_without_reasons_is_ignored(client, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    bad_fit = Reason.objects.get(kind=ReasonKind.REJECT, code="bad_fit")
    client.force_login(rep)
    response = client.post(
        reverse("leads:move", args=[lead.pk]), {"to": "sal", "reason": bad_fit.pk}
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.stage, lead.last_reason) == (Stage.SAL, None)


# --- reassignment -------------------------------------------------------------------------------


def test_reassign_shows_availability_capacity_and_open_load(client, sales_manager, rep):
    away = RepFactory(username="away", first_name="Alma", last_name="Away", available=False)
    LeadFactory.create_batch(2, stage=Stage.MQL, owner=rep)
    LeadFactory(stage=Stage.WON, owner=rep)  # closed: not open load
    lead = LeadFactory(stage=Stage.MQL)
    body = _page(client, sales_manager, lead)
    assert f"{rep} — available, 2 of 50 open" in body
    assert f"{away} — away, 0 of 50 open" in body


def test_reassign_page_reads_loads_in_one_grouped_query(
    client, sales_manager, rep, other_rep, django_assert_num_queries
):
    LeadFactory.create_batch(3, stage=Stage.MQL, owner=rep)
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(sales_manager)
    client.get(reverse("leads:detail", args=[lead.pk]))  # warm up the session
    for n in range(5):
        RepFactory(username=f"more{n}")
    # session, user, lead, timeline (merges, events, reasons), score explanation (model,
    # touchpoints), the move's reasons, the reps and their open leads (one grouped query however
    # many reps), the bell, the SLA clocks, and the feedback cards: the suggested content (one
    # query when the library is empty), the lead's objections, its flags
    with django_assert_num_queries(PAGE_QUERIES):
        response = client.get(reverse("leads:detail", args=[lead.pk]))
    assert response.status_code == 200


PAGE_QUERIES = 16


def _assign(client, lead, rep, **extra):
    return client.post(reverse("leads:assign", args=[lead.pk]), {"rep": rep.pk, **extra})


def test_assigning_an_away_rep_asks_first_and_changes_nothing(client, sales_manager, rep):
    away = RepFactory(username="away", available=False)
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(sales_manager)
    response = _assign(client, lead, away, note="cover for the week")
    body = response.content.decode()
    assert response.status_code == 200
    assert f"{away} is away (not taking new leads)." in body
    assert "Reassign anyway" in body and 'name="confirm" value="1"' in body
    assert 'value="cover for the week"' in body
    assert Lead.objects.get(pk=lead.pk).owner == rep
    assert not Assignment.objects.exists() and not Notification.objects.exists()


def test_assigning_a_full_rep_asks_first(client, sales_manager, rep):
    full = RepFactory(username="full", capacity=2)
    LeadFactory.create_batch(2, stage=Stage.SAL, owner=full)
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(sales_manager)
    body = _assign(client, lead, full).content.decode()
    assert f"{full} is full: 2 open leads for a capacity of 2." in body
    assert Lead.objects.get(pk=lead.pk).owner == rep


def test_confirming_assigns_and_notifies_the_new_owner_once(
    client, sales_manager, rep, django_capture_on_commit_callbacks
):
    away = RepFactory(username="away", available=False)
    lead = LeadFactory(stage=Stage.MQL, owner=rep, company="Hooli")
    client.force_login(sales_manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = _assign(client, lead, away, confirm="1", note="while Rita is out")
    assert response.status_code == 302
    assert Lead.objects.get(pk=lead.pk).owner == away
    note = Notification.objects.get()
    assert note.user == away and note.kind == "lead.assigned"
    assert note.url == reverse("leads:detail", args=[lead.pk])
    assert "was assigned to you by" in note.title and "while Rita is out" in note.body


def test_an_available_rep_is_assigned_without_a_question(client, sales_manager, rep, other_rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    client.force_login(sales_manager)
    response = _assign(client, lead, other_rep)
    assert response.status_code == 302
    assert Lead.objects.get(pk=lead.pk).owner == other_rep
    assert list(Notification.objects.values_list("user", flat=True)) == [other_rep.pk]


def test_assigning_oneself_notifies_nobody(sales_manager, rep):
    lead = LeadFactory(stage=Stage.MQL, owner=rep)
    lead_assign(lead=lead, rep=sales_manager, by=sales_manager)
    assert not Notification.objects.exists()


# --- money --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("48000.00"), "€48,000"),
        (Decimal("1250.5"), "€1,250.50"),
        (1234567, "€1,234,567"),
        ("99.99", "€99.99"),
        (Decimal("-1200"), "−€1,200"),
        (Decimal("-0.001"), "€0"),
        (0, "€0"),
        (None, ""),
        ("", ""),
        ("n/a", ""),
    ],
)
def test_money_reads_with_the_currency_and_thousands_separators(value, text):
    assert format_money(value) == text


def test_money_follows_the_company_currency(settings):
    settings.COMPANY_CURRENCY = "USD"
    assert format_money(Decimal("48000")) == "$48,000"
    settings.COMPANY_CURRENCY = "CHF"
    assert format_money(Decimal("-48000.5")) == "−CHF 48,000.50"


def test_money_filter_in_templates():
    rendered = Template("{{ a|money }}|{{ b|money|default:'—' }}|{{ c|money:0 }}").render(
        Context({"a": Decimal("48000.00"), "b": None, "c": Decimal("1999.6")})
    )
    assert rendered == "€48,000|—|€2,000"


def test_the_lead_page_shows_the_deal_value_as_money(client, rep):
    lead = LeadFactory(stage=Stage.OPPORTUNITY, owner=rep, deal_value=Decimal("48000.00"))
    body = _page(client, rep, lead)
    assert '<dd id="deal-value">€48,000</dd>' in body
    assert "48000.00" not in body


def test_the_lead_card_links_to_the_edit_form(client, marketer):
    lead = LeadFactory()
    assert f'href="{reverse("leads:edit", args=[lead.pk])}"' in _page(client, marketer, lead)
