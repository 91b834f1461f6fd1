"""The lead list page: search, filters, sorting, the total, saved views, the CSV export, the bulk
actions, and the create and edit pages, for each role."""

import csv
import datetime as dt
import io
import re

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from leads import selectors
from leads.list_views import total_text
from leads.models import Assignment, EventType, Lead, LeadEvent, Reason, Stage
from leads.selectors import LeadCount, LeadListFilters
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")
EXPORT = reverse("leads:export")
LEAD_LINK = re.compile(r'href="/leads/(\d+)/"')
NOON = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def shown(response) -> list[int]:
    return [int(pk) for pk in LEAD_LINK.findall(response.content.decode())]


def export_rows(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.parametrize("role", ["marketer", "marketing_manager", "rep", "sales_manager", "admin"])
def test_every_team_role_sees_the_list_the_export_and_the_create_and_edit_forms(
    client, people, role
):
    lead = LeadFactory(company="Initech")
    client.force_login(people[role])
    assert "Initech" in client.get(LIST).content.decode()
    assert client.get(EXPORT).status_code == 200
    assert client.get(reverse("leads:create")).status_code == 200
    assert client.get(reverse("leads:edit", args=[lead.pk])).status_code == 200


def test_a_person_without_a_team_role_gets_403_and_a_visitor_the_login(client, outsider):
    lead = LeadFactory()
    assert client.get(LIST).status_code == 302
    assert client.get(EXPORT).status_code == 302
    client.force_login(outsider)
    for url in (LIST, EXPORT, reverse("leads:create"), reverse("leads:edit", args=[lead.pk])):
        assert client.get(url).status_code == 403, url


def test_search_finds_a_first_name_anywhere(client, marketer):
    anna = LeadFactory(first_name="Anna", last_name="Schmidt", company="Test GmbH")
    LeadFactory(first_name="Bob", last_name="Jones", company="Other Ltd")
    client.force_login(marketer)
    assert shown(client.get(LIST, {"q": "Anna"})) == [anna.pk]
    assert shown(client.get(LIST, {"q": "test gmbh"})) == [anna.pk]


def test_filters_by_owner_unassigned_source_campaign_grade_score_and_stage(
    client, marketer, rep, other_rep
):
    google, linkedin = SourceFactory(name="Google"), SourceFactory(name="LinkedIn")
    spring = CampaignFactory(name="Spring")
    a = LeadFactory(owner=rep, source=google, campaign=spring, grade="A", score=80, stage="mql")
    b = LeadFactory(owner=other_rep, source=linkedin, grade="B", score=40, stage="sal")
    c = LeadFactory(owner=None, source=google, grade="A", score=10, stage="mql")
    client.force_login(marketer)

    def ids(**params) -> set[int]:
        response = client.get(LIST, params)
        assert response.status_code == 200, response.content.decode()
        return set(shown(response))

    assert ids(owner=rep.pk) == {a.pk}
    assert ids(owner="none") == {c.pk}
    assert ids(source=google.pk) == {a.pk, c.pk}
    assert ids(campaign=spring.pk) == {a.pk}
    assert ids(grade="A") == {a.pk, c.pk}
    assert ids(score_min=20, score_max=80) == {a.pk, b.pk}
    assert ids(stage=["mql", "sal"]) == {a.pk, b.pk, c.pk}
    assert ids(stage="sal") == {b.pk}
    assert ids(source=google.pk, owner="none", stage="mql") == {c.pk}


def test_owner_me_and_the_menus_mine_link_show_the_viewers_leads(client, rep, other_rep):
    mine = LeadFactory(owner=rep)
    LeadFactory(owner=other_rep)
    client.force_login(rep)
    assert shown(client.get(LIST, {"owner": "me"})) == [mine.pk]
    assert shown(client.get(LIST, {"mine": "1"})) == [mine.pk]


def test_dates_are_whole_days_in_the_viewers_time_zone(client, marketer):
    # 23:30 UTC on 30 November is already 1 December in Berlin
    late = LeadFactory(created_at=dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC))
    early = LeadFactory(created_at=dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC))
    client.force_login(marketer)
    marketer.working_timezone = "UTC"
    marketer.save(update_fields=["working_timezone"])
    assert set(
        shown(client.get(LIST, {"created_from": "2026-11-30", "created_to": "2026-11-30"}))
    ) == {
        late.pk,
        early.pk,
    }
    marketer.working_timezone = "Europe/Berlin"
    marketer.save(update_fields=["working_timezone"])
    assert shown(client.get(LIST, {"created_from": "2026-12-01"})) == [late.pk]
    assert shown(client.get(LIST, {"created_to": "2026-11-30"})) == [early.pk]


def test_updated_dates_filter_too():
    old = LeadFactory()
    Lead.objects.filter(pk=old.pk).update(updated_at=NOON - dt.timedelta(days=10))
    new = LeadFactory()
    Lead.objects.filter(pk=new.pk).update(updated_at=NOON)
    filters = LeadListFilters(updated_from=NOON - dt.timedelta(days=1))
    assert [x.pk for x in selectors.leads_list(filters=filters)] == [new.pk]
    filters = LeadListFilters(updated_before=NOON - dt.timedelta(days=1))
    assert [x.pk for x in selectors.leads_list(filters=filters)] == [old.pk]


def test_a_wrong_filter_is_shown_in_place_and_lists_nothing(client, marketer):
    LeadFactory()
    client.force_login(marketer)
    response = client.get(LIST, {"score_min": "50", "score_max": "10", "created_from": "soon"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "The upper score is below the lower one." in body
    assert "Enter a valid date." in body
    assert shown(response) == []
    assert client.get(EXPORT, {"stage": "nowhere"}).status_code == 400


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["Able", "Baker", "Baker", "Carter"]),
        ("-name", ["Carter", "Baker", "Baker", "Able"]),
        ("company", ["Carter", "Baker", "Baker", "Able"]),
        ("-score", ["Baker", "Baker", "Able", "Carter"]),
        ("score", ["Carter", "Able", "Baker", "Baker"]),
        ("created", ["Baker", "Baker", "Carter", "Able"]),
        ("-created", ["Able", "Carter", "Baker", "Baker"]),
    ],
)
def test_columns_sort_with_id_settling_ties(client, marketer, sort, expected):
    rows = [
        ("Baker", "Beta", 50, 3),
        ("Baker", "Beta", 50, 3),
        ("Able", "Zeta", 40, 1),
        ("Carter", "Alpha", 10, 2),
    ]
    leads = [
        LeadFactory(
            first_name="Pat",
            last_name=last,
            company=company,
            score=score,
            created_at=NOON - dt.timedelta(days=days),
        )
        for last, company, score, days in rows
    ]
    client.force_login(marketer)
    response = client.get(LIST, {"sort": sort})
    order = shown(response)
    by_pk = {lead.pk: lead.last_name for lead in leads}
    assert [by_pk[pk] for pk in order] == expected
    # the two equal Bakers: id decides, ascending with the column, descending against it
    bakers = [pk for pk in order if by_pk[pk] == "Baker"]
    assert bakers == sorted(bakers, reverse=sort.startswith("-"))


def test_a_header_sorts_and_a_second_click_turns_the_order(client, marketer):
    LeadFactory()
    client.force_login(marketer)
    body = client.get(LIST, {"q": "acme"}).content.decode()
    assert 'href="?q=acme&amp;sort=name"' in body  # names ascend first
    assert 'href="?q=acme&amp;sort=-score"' in body  # scores descend first
    body = client.get(LIST, {"q": "acme", "sort": "name"}).content.decode()
    assert 'aria-sort="ascending"' in body and 'href="?q=acme&amp;sort=-name"' in body


def test_the_total_is_exact_on_sqlite_and_read_as_a_sentence(client, marketer):
    LeadFactory.create_batch(55)
    client.force_login(marketer)
    assert "55 leads" in client.get(LIST).content.decode()
    assert "55 leads" in client.get(LIST, {"page": 2}).content.decode()
    assert "1 lead<" in client.get(LIST, {"q": LeadFactory(last_name="Zyx").email}).content.decode()
    assert total_text(LeadCount(12_345, exact=False)) == "about 12,300 leads"
    assert total_text(LeadCount(1_234_567, exact=False)) == "about 1,230,000 leads"
    assert total_text(LeadCount(1_250, exact=True)) == "1,250 leads"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner's estimate")
def test_on_postgresql_a_large_result_is_the_planners_estimate_and_a_small_one_counted():
    now = timezone.now()
    Lead.objects.bulk_create(
        Lead(email=f"p{i}@x.example", stage="won" if i < 5 else "new", created_at=now)
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")
    everything = selectors.leads_count_estimate(selectors.leads_list())
    assert not everything.exact and 2000 < everything.value < 4000
    won = selectors.leads_count_estimate(selectors.leads_list(stage="won"))
    assert won == LeadCount(5, exact=True)


def test_saved_views_are_links_to_filters(client, rep, other_rep):
    my_mql = LeadFactory(owner=rep, stage=Stage.MQL)
    LeadFactory(owner=rep, stage=Stage.WON)
    LeadFactory(owner=other_rep, stage=Stage.MQL)
    unassigned = LeadFactory(owner=None, stage=Stage.MQL)
    nurturing = LeadFactory(owner=None, stage=Stage.NURTURING)
    client.force_login(rep)
    body = client.get(LIST).content.decode()
    links = dict(
        (label, href.replace("&amp;", "&"))
        for href, label in re.findall(r'<a href="\?([^"]+)"[^>]*>([^<]+)</a>', body)
    )
    assert shown(client.get(f"{LIST}?{links['My open MQLs']}")) == [my_mql.pk]
    assert shown(client.get(f"{LIST}?{links['Unassigned MQLs']}")) == [unassigned.pk]
    open_ids = set(shown(client.get(f"{LIST}?{links['All open']}")))
    assert {my_mql.pk, unassigned.pk, nurturing.pk} <= open_ids
    assert (
        'aria-current="page">Unassigned MQLs'
        in client.get(f"{LIST}?{links['Unassigned MQLs']}").content.decode()
    )


def test_the_export_is_the_filtered_list_in_its_order_with_formulas_neutralised(client, marketer):
    google = SourceFactory(name="Google")
    LeadFactory(company="Elsewhere")
    first = LeadFactory(company="=HYPERLINK(1)", source=google, score=10, first_name="Anna")
    second = LeadFactory(company="Acme", source=google, score=90, first_name="Anna")
    client.force_login(marketer)
    response = client.get(EXPORT, {"q": "anna", "source": google.pk, "sort": "-score"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = export_rows(response)
    assert [int(r["id"]) for r in rows] == [second.pk, first.pk]
    assert rows[1]["company"] == "'=HYPERLINK(1)"
    assert rows[0]["source"] == "google"
    # the API's export columns, shared
    from leads.api.export import EXPORT_COLUMNS

    assert list(rows[0]) == [header for header, _ in EXPORT_COLUMNS]


def test_the_list_links_the_export_with_the_same_filters(client, marketer):
    client.force_login(marketer)
    body = client.get(LIST, {"q": "anna", "grade": "A", "page": 2}).content.decode()
    assert 'href="/leads/export/?q=anna&amp;grade=A"' in body


def test_list_queries_are_pinned(client, marketer, sales_manager, django_assert_num_queries):
    LeadFactory.create_batch(20)
    client.force_login(marketer)
    # session, user, the bell, sales people, sources, campaigns, the page (not full: no count)
    with django_assert_num_queries(7):
        assert client.get(LIST).status_code == 200
    LeadFactory.create_batch(40)
    client.force_login(sales_manager)
    # ... and the recycle reasons, and for a full page a count; PostgreSQL asks the planner
    # first and counts because its estimate is small
    with django_assert_num_queries(9 if connection.vendor == "sqlite" else 10):
        response = client.get(LIST, {"stage": "new", "sort": "-score"})
    assert len(shown(response)) == 50


def test_a_rep_and_a_marketer_have_no_assign_and_a_marketer_no_recycle(client, rep, marketer):
    LeadFactory()
    client.force_login(rep)
    body = client.get(LIST).content.decode()
    assert 'name="lead"' in body and "bulk/recycle" in body and "bulk/assign" not in body
    client.force_login(marketer)
    body = client.get(LIST).content.decode()
    assert 'name="lead"' not in body and "bulk/" not in body


def test_bulk_assign_reports_each_lead_done_and_refused(client, sales_manager, rep, other_rep):
    free = LeadFactory(first_name="Free", last_name="Lead", stage=Stage.MQL)
    taken = LeadFactory(first_name="Taken", last_name="Lead", stage=Stage.MQL, owner=rep)
    client.force_login(sales_manager)
    response = client.post(
        reverse("leads:bulk_assign"),
        {"lead": [free.pk, taken.pk], "rep": rep.pk, "next": "stage=mql"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"{LIST}?stage=mql"
    body = response.content.decode()
    assert f"Assigned 1 lead to {rep}: Free Lead." in body
    assert f"Not changed: Taken Lead is already assigned to {rep}." in body
    assert Lead.objects.get(pk=free.pk).owner == rep
    assert Assignment.objects.filter(lead=free, by=sales_manager).count() == 1
    assert not Assignment.objects.filter(lead=taken).exists()


@pytest.mark.parametrize("role", ["marketer", "marketing_manager", "rep"])
def test_only_sales_managers_and_admins_may_bulk_assign(client, people, rep, role):
    lead = LeadFactory()
    client.force_login(people[role])
    response = client.post(reverse("leads:bulk_assign"), {"lead": [lead.pk], "rep": rep.pk})
    assert response.status_code == 403
    assert Lead.objects.get(pk=lead.pk).owner is None


def test_bulk_without_a_ticked_lead_or_a_rep_says_so_on_the_list(client, admin_user):
    LeadFactory(company="Still Listed")
    client.force_login(admin_user)
    response = client.post(reverse("leads:bulk_assign"), {"next": "q=still"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Tick at least one lead first." in body and "Choose the rep who gets the leads." in body
    assert "Still Listed" in body


def test_a_rep_bulk_recycles_his_own_leads_and_is_told_about_the_others(client, rep, other_rep):
    mine = LeadFactory(first_name="Mine", last_name="Lead", stage=Stage.MQL, owner=rep)
    theirs = LeadFactory(first_name="Their", last_name="Lead", stage=Stage.MQL, owner=other_rep)
    won = LeadFactory(first_name="Won", last_name="Lead", stage=Stage.WON, owner=rep)
    reason = Reason.objects.get(kind="recycle", code="timing")
    client.force_login(rep)
    response = client.post(
        reverse("leads:bulk_recycle"),
        {"lead": [mine.pk, theirs.pk, won.pk], "reason": reason.pk},
        follow=True,
    )
    body = response.content.decode()
    assert "Recycled 1 lead to marketing: Mine Lead." in body
    assert "Their Lead is not assigned to you; ask a sales manager to reassign it." in body
    assert "Won Lead is Won; it cannot move to Recycled." in body
    stages = dict(Lead.objects.values_list("pk", "stage"))
    assert (stages[mine.pk], stages[theirs.pk], stages[won.pk]) == ("recycled", "mql", "won")


def test_a_reason_that_needs_a_note_is_refused_per_lead(client, marketing_manager):
    lead = LeadFactory(first_name="Noted", last_name="Lead", stage=Stage.REJECTED)
    reason = Reason.objects.get(kind="recycle", code="other")
    client.force_login(marketing_manager)
    body = client.post(
        reverse("leads:bulk_recycle"), {"lead": [lead.pk], "reason": reason.pk}, follow=True
    ).content.decode()
    assert "needs a note" in body
    assert Lead.objects.get(pk=lead.pk).stage == Stage.REJECTED


def test_a_marketer_may_not_bulk_recycle(client, marketer):
    lead = LeadFactory(stage=Stage.REJECTED)
    reason = Reason.objects.get(kind="recycle", code="timing")
    client.force_login(marketer)
    response = client.post(reverse("leads:bulk_recycle"), {"lead": [lead.pk], "reason": reason.pk})
    assert response.status_code == 403
    assert Lead.objects.get(pk=lead.pk).stage == Stage.REJECTED


def test_create_goes_through_intake(client, rep):
    source = SourceFactory(name="Webinar")
    client.force_login(rep)
    response = client.post(
        reverse("leads:create"),
        {
            "email": "Grace@Navy.example",
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "Navy",
            "company_size": "5000",
            "source": source.pk,
        },
    )
    lead = Lead.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/leads/{lead.pk}/"
    assert (lead.email, lead.company, lead.company_size, lead.source) == (
        "grace@navy.example",
        "Navy",
        5000,
        source,
    )
    event = LeadEvent.objects.get(lead=lead, type=EventType.LEAD_CREATED)
    assert event.actor == rep


def test_create_with_a_known_email_names_the_lead_that_has_it(client, marketer):
    existing = LeadFactory(email="ada@engines.example", first_name="Ada", last_name="Lovelace")
    client.force_login(marketer)
    response = client.post(reverse("leads:create"), {"email": "ADA@engines.example"})
    assert response.status_code == 400
    body = response.content.decode()
    assert (
        f'<a href="/leads/{existing.pk}/">Ada Lovelace (lead {existing.pk})</a> already has this email'
        in body
    )
    assert Lead.objects.count() == 1


def test_create_errors_are_shown_in_place(client, marketer):
    client.force_login(marketer)
    response = client.post(reverse("leads:create"), {"email": "not an email", "company_size": "-1"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid email address." in body
    assert "Ensure this value is greater than or equal to 0." in body
    assert not Lead.objects.exists()


def test_edit_goes_through_lead_update(client, rep):
    lead = LeadFactory(company="Old Name", email="e@x.example")
    client.force_login(rep)
    form = client.get(reverse("leads:edit", args=[lead.pk])).content.decode()
    assert 'value="Old Name"' in form and "e@x.example" in form
    data = {"first_name": lead.first_name, "last_name": lead.last_name, "company": "New Name"}
    response = client.post(reverse("leads:edit", args=[lead.pk]), data)
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.company == "New Name"
    event = LeadEvent.objects.get(lead=lead, type=EventType.LEAD_UPDATED)
    assert event.payload["changes"]["company"] == ["Old Name", "New Name"]
    assert event.actor == rep


def test_edit_refusals_are_shown_in_place(client, rep):
    lead = LeadFactory()
    client.force_login(rep)
    response = client.post(reverse("leads:edit", args=[lead.pk]), {"company": "x" * 201})
    assert response.status_code == 400
    assert "Ensure this value has at most 200 characters" in response.content.decode()
    assert client.get(reverse("leads:edit", args=[10**9])).status_code == 404


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the rare-search plan")
@pytest.mark.parametrize("order", ["name", "-name", "company", "-score", "-updated", "created"])
def test_common_and_rare_searches_list_the_same_leads_in_every_order(monkeypatch, order):
    Lead.objects.bulk_create(
        Lead(
            email=f"p{i}@acme.example",
            first_name="Anna" if i % 3 else "Bo",
            last_name=f"Family{i % 7}",
            company=f"Acme {i % 5}",
            score=i % 11,
            created_at=NOON - dt.timedelta(minutes=i % 13),
        )
        for i in range(300)
    )
    monkeypatch.setattr(selectors, "SEARCH_COMMON", 1)
    walked = [lead.pk for lead in selectors.leads_list(q="anna", order=order)[:51]]
    monkeypatch.setattr(selectors, "SEARCH_COMMON", 10**9)
    collected = [lead.pk for lead in selectors.leads_list(q="anna", order=order)[:51]]
    assert walked == collected and len(walked) == 51
