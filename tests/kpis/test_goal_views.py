"""Setting the shared goals from /kpis/goals/: managers and admins write through kpis.services,
everyone else reads; each refusal and each broken rule is a sentence in place."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from kpis.models import Goal, Metric, PeriodKind
from kpis.services import goal_create

pytestmark = pytest.mark.django_db

URL = reverse("kpis:goals")
DECEMBER = dt.date(2026, 12, 1)


def posted(**fields) -> dict:
    data = {
        "metric": Metric.MQLS_DELIVERED,
        "period_kind": PeriodKind.MONTH,
        "period_start": DECEMBER.isoformat(),
        "target": "120",
        "marketing": "on",
        "note": "",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_a_marketing_manager_sets_a_goal_from_the_page(client, marketing_manager):
    client.force_login(marketing_manager)
    page = client.get(URL).content.decode()
    # the figures offered are the ones a goal can be read from
    assert f'value="{Metric.SLA_RESPONSE_ATTAINMENT}"' in page
    assert 'id="goal-new"' in page

    response = client.post(URL, posted(sales="on", note="  Q4 push  "))

    assert response.status_code == 302 and response["Location"] == URL
    goal = Goal.objects.get()
    assert (goal.metric, goal.period_kind, goal.period_start) == (
        Metric.MQLS_DELIVERED,
        PeriodKind.MONTH,
        DECEMBER,
    )
    assert goal.target == Decimal("120") and goal.marketing and goal.sales
    assert goal.note == "Q4 push" and goal.created_by == marketing_manager
    listing = client.get(URL).content.decode()
    assert "Goal set: MQLs delivered." in listing
    assert f'data-goal="{goal.pk}"' in listing and "Marketing and sales" in listing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"period_start": "2026-12-02"}, "A month&#x27;s goal starts on the 1st of a month"),
        ({"target": "0"}, "The target must be greater than zero."),
        (
            {"metric": Metric.MQL_ACCEPTANCE_RATE, "target": "140"},
            "MQL acceptance rate is a percentage: the target is at most 100.",
        ),
        ({"marketing": None}, "A goal belongs to marketing, to sales or to both."),
        ({"target": "abc"}, "Enter a number."),
    ],
)
def test_a_broken_rule_is_shown_in_place_and_nothing_is_saved(client, admin_user, fields, message):
    client.force_login(admin_user)
    response = client.post(URL, posted(**fields))
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert 'class="errorlist' in body  # next to its field, not only at the top
    assert not Goal.objects.exists()


def test_a_sales_manager_may_not_set_a_goal_for_marketing_alone(client, sales_manager):
    client.force_login(sales_manager)
    response = client.post(URL, posted())
    assert response.status_code == 400
    assert "A sales manager sets the goals sales owns" in response.content.decode()
    assert not Goal.objects.exists()
    # the form starts with the manager's own team ticked
    page = client.get(URL).content.decode()
    assert 'name="sales" id="id_sales" checked' in page
    assert 'name="marketing" id="id_marketing" checked' not in page


def test_the_same_figure_and_period_twice_is_refused_with_a_sentence(client, admin_user):
    goal_create(
        by=admin_user,
        metric=Metric.MQLS_DELIVERED,
        period_kind=PeriodKind.MONTH,
        period_start=DECEMBER,
        target=100,
        marketing=True,
    )
    client.force_login(admin_user)
    response = client.post(URL, posted())
    assert response.status_code == 400
    assert "There is already a goal for MQLs delivered" in response.content.decode()
    assert Goal.objects.count() == 1


def test_a_manager_changes_and_deletes_a_goal(client, marketing_manager):
    goal = goal_create(
        by=marketing_manager,
        metric=Metric.PIPELINE_CREATED,
        period_kind=PeriodKind.QUARTER,
        period_start=dt.date(2026, 10, 1),
        target="250000",
        marketing=True,
    )
    client.force_login(marketing_manager)
    edit = reverse("kpis:goal_edit", args=[goal.pk])
    page = client.get(edit).content.decode()
    assert 'value="250000.00"' in page and 'value="2026-10-01"' in page

    response = client.post(
        edit,
        posted(
            metric=Metric.PIPELINE_CREATED,
            period_kind=PeriodKind.QUARTER,
            period_start="2026-10-01",
            target="300000",
        ),
    )
    assert response.status_code == 302
    goal.refresh_from_db()
    assert goal.target == Decimal("300000")
    assert "€300,000" in client.get(URL).content.decode()

    response = client.post(edit, posted(period_kind=PeriodKind.WEEK, period_start="2026-10-01"))
    assert response.status_code == 400
    assert "A week&#x27;s goal starts on a Monday" in response.content.decode()

    response = client.post(reverse("kpis:goal_delete", args=[goal.pk]))
    assert response.status_code == 302
    assert not Goal.objects.exists()


def test_a_marketing_manager_may_not_delete_a_goal_sales_owns_alone(
    client, sales_manager, marketing_manager
):
    goal = goal_create(
        by=sales_manager,
        metric=Metric.CUSTOMERS_WON,
        period_kind=PeriodKind.MONTH,
        period_start=DECEMBER,
        target=10,
        sales=True,
    )
    client.force_login(marketing_manager)
    response = client.post(reverse("kpis:goal_delete", args=[goal.pk]))
    assert response.status_code == 400
    assert "A marketing manager sets the goals marketing owns" in response.content.decode()
    assert Goal.objects.filter(pk=goal.pk).exists()


@pytest.mark.parametrize("person", ["marketer", "rep"])
def test_others_read_the_goals_and_are_told_who_sets_them(client, request, admin_user, person):
    goal = goal_create(
        by=admin_user,
        metric=Metric.REVENUE_WON,
        period_kind=PeriodKind.MONTH,
        period_start=DECEMBER,
        target="50000",
        sales=True,
    )
    user = request.getfixturevalue(person)
    client.force_login(user)
    page = client.get(URL).content.decode()
    assert f'data-goal="{goal.pk}"' in page and "€50,000" in page
    assert "Goals are set by a marketing manager, a sales manager or an admin" in page
    assert 'id="goal-new"' not in page and "Change</a>" not in page

    for address in (URL, reverse("kpis:goal_edit", args=[goal.pk])):
        response = client.post(address, posted())
        assert response.status_code == 403
        assert "Ask one of them to set or change a goal." in response.content.decode()
    assert client.post(reverse("kpis:goal_delete", args=[goal.pk])).status_code == 403
    assert client.get(reverse("kpis:goal_edit", args=[goal.pk])).status_code == 403
    goal.refresh_from_db()
    assert goal.target == Decimal("50000")


def test_empty_state_says_what_to_do(client, marketing_manager, marketer):
    client.force_login(marketing_manager)
    assert "No goal is set yet. Set the first one above" in client.get(URL).content.decode()
    client.force_login(marketer)
    assert "A marketing manager, a sales manager or an admin sets them here" in (
        client.get(URL).content.decode()
    )


def test_the_kpi_page_goals_card_links_to_the_goals_page(client, marketer):
    client.force_login(marketer)
    body = client.get(reverse("kpis:page")).content.decode()
    assert f'href="{URL}"' in body
