import datetime as dt
import re

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from leads import selectors
from leads.models import Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the trigram index and the planner's choices exist only on PostgreSQL "
    "(run with DATABASE_URL=postgres://...)",
)


def names(q: str, **filters) -> list[str]:
    return [lead.last_name for lead in selectors.leads_list(q=q, **filters)]


@pytest.fixture
def ada():
    return LeadFactory(
        first_name="Ada",
        last_name="Lovelace",
        email="countess@engines.example",
        company="Analytical Engines Ltd",
    )


@pytest.fixture
def others():
    LeadFactory(first_name="Grace", last_name="Hopper", email="grace@navy.example", company="Navy")
    LeadFactory(
        first_name="Alan", last_name="Turing", email="alan@bletchley.example", company="GCHQ"
    )


@pytest.mark.parametrize(
    "q",
    ["ada", "ovela", "countess", "@engines.exa", "lytical eng", "ada love", "ada lovelace"],
    ids=[
        "first name",
        "inside last name",
        "email",
        "email domain",
        "company",
        "first last",
        "full",
    ],
)
def test_search_finds_a_part_of_any_field(ada, others, q):
    assert names(q) == ["Lovelace"]


def test_search_ignores_case_and_extra_spaces(ada, others):
    assert names("LOVELACE") == ["Lovelace"]
    assert names("  Ada   LOVE ") == ["Lovelace"]
    assert names("Analytical ENGINES") == ["Lovelace"]


def test_a_search_that_matches_nothing_lists_nothing(ada, others):
    assert names("zzyzx") == []
    assert names("lovelace ada") == []  # last name, then the email: never across two fields


def test_one_or_two_letters_find_words_that_start_with_them(others):
    LeadFactory(first_name="Li", last_name="Wu", email="li.wu@example.com", company="Panda")
    LeadFactory(first_name="Kim", last_name="Kawum", email="kim@example.com", company="Wuxi Steel")
    LeadFactory(first_name="Rob", last_name="Miller", email="rob@nowu.example", company="Dublin")
    # Wu (and li.wu@), Wuxi Steel; not Kawum, nowu or Dublin, where the letters are inside a word
    assert sorted(names("wu")) == ["Kawum", "Wu"]
    assert sorted(names("W")) == ["Kawum", "Wu"]
    assert names("li") == ["Wu"]
    assert names("p") == ["Wu"]  # Panda, not Hopper


def test_a_search_without_letters_or_digits_lists_nothing(ada):
    assert names("@") == []
    assert names("-- .") == []
    assert names("   ") == ["Lovelace"]  # blank: no search at all


def test_like_wildcards_in_a_search_are_plain_characters():
    LeadFactory(last_name="Percent", company="100% Organic")
    LeadFactory(last_name="Digits", company="1000 Organic")
    LeadFactory(last_name="Under", company="Snake_case Ltd")
    LeadFactory(last_name="Other", company="Snakexcase Ltd")
    assert names("100%") == ["Percent"]
    assert names("100% organic") == ["Percent"]
    assert names("snake_case") == ["Under"]


def test_search_keeps_the_list_order_and_the_other_filters(rep):
    now = timezone.now()
    for days, last, owner in [(3, "Old", rep), (1, "New", rep), (2, "Middle", None)]:
        LeadFactory(
            last_name=last, company="Initech", owner=owner, created_at=now - dt.timedelta(days=days)
        )
    assert names("initech") == ["New", "Middle", "Old"]
    assert names("initech", owner_id=rep.pk) == ["New", "Old"]
    assert names("initech", stage="won") == []


def test_list_page_with_a_search_has_a_fixed_number_of_queries(
    client, marketer, django_assert_num_queries
):
    LeadFactory.create_batch(30, first_name="Pat", last_name="Smith", company="Initech")
    LeadFactory.create_batch(5, first_name="Pat", last_name="Smith", company="Umbrella")
    client.force_login(marketer)
    # session, user, the bell's unread count, the filters' sales people, sources and campaigns,
    # and on PostgreSQL whether the search is common, then one leads query
    queries = 8 if connection.vendor == "postgresql" else 7
    for q, shown in [("initech", 30), ("umbrella", 5), ("nobody", 0), ("in", 30)]:
        with django_assert_num_queries(queries):
            response = client.get(reverse("leads:list"), {"q": q})
        assert response.status_code == 200
        assert len(re.findall(rb'href="/leads/\d+/"', response.content)) == shown


def test_list_page_pages_through_a_search(client, marketer):
    now = timezone.now()
    for i in range(55):
        LeadFactory(
            last_name=f"Match{i:02}", company="Initech", created_at=now - dt.timedelta(minutes=i)
        )
    LeadFactory(last_name="Elsewhere", company="Umbrella")
    client.force_login(marketer)
    first = client.get(reverse("leads:list"), {"q": "INITECH"}).content.decode()
    second = client.get(reverse("leads:list"), {"q": "INITECH", "page": 2}).content.decode()
    assert "Match00" in first and "Match49" in first and "Match50" not in first
    assert "page=2" in first and "q=INITECH" in first
    assert "Match50" in second and "Match54" in second and "Match49" not in second
    assert "Elsewhere" not in first + second
    assert "find words that start with them" in first


def bulk_leads(count: int, *, company: str = "Acme Widgets", start: int = 0) -> None:
    now = timezone.now()
    Lead.objects.bulk_create(
        Lead(
            first_name=f"Person{i}",
            last_name=f"Family{i % 97}",
            email=f"person{i}@acme{i % 13}.example",
            company=company,
            created_at=now - dt.timedelta(minutes=i),
        )
        for i in range(start, start + count)
    )


@postgres_only
@pytest.mark.parametrize("q", ["widgets", "person1234", "family42 zz", "person9@acme9", "ac"])
def test_common_and_rare_searches_list_the_same_page(monkeypatch, q):
    """Walking the list and collecting the matches through the index give the same leads in the
    same order, whichever way leads_list judges the search."""
    bulk_leads(3000)
    bulk_leads(50, company="Acme Gadgets", start=3000)
    monkeypatch.setattr(selectors, "SEARCH_COMMON", 1)  # every search is common
    walked = [lead.pk for lead in selectors.leads_list(q=q)[:51]]
    monkeypatch.setattr(selectors, "SEARCH_COMMON", 10**9)  # every search is rare
    collected = [lead.pk for lead in selectors.leads_list(q=q)[:51]]
    assert walked == collected
    assert len(walked) == {"person1234": 1, "family42 zz": 0, "person9@acme9": 1}.get(q, 51)


@postgres_only
def test_the_trigram_index_exists_after_migrate():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'lead_search_trgm'")
        (definition,) = cursor.fetchone()
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone() == (1,)
    assert "USING gin" in definition and "gin_trgm_ops" in definition
    for column in ("first_name", "last_name", "email", "company"):
        assert column in definition


def explain(qs) -> str:
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@postgres_only
def test_rare_searches_read_the_trigram_index_not_the_table():
    bulk_leads(20_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")
    for q in ["person1234", "person1234 family70", "person1234@acme12.example", "zq"]:
        plan = explain(selectors.leads_list(q=q)[:51])
        assert "lead_search_trgm" in plan, (q, plan)
        assert "Seq Scan on leads_lead" not in plan, (q, plan)
        assert "lead_created" not in plan, (q, plan)


@postgres_only
def test_a_search_rare_among_the_newest_leads_is_not_read_by_walking_the_list():
    """PostgreSQL's statistics can make a rare search look common (they sample a few hundred
    values); walking the list for it then reads the whole table (4 to 9 s at a million leads)."""
    bulk_leads(20_000, company="Newco")
    oldest = Lead.objects.order_by("created_at", "id")
    Lead.objects.filter(pk__in=oldest.values("pk")[:2000]).update(company="Oldco")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")
    # the statistics say a tenth of the leads are at Oldco; now five are
    Lead.objects.filter(pk__in=oldest.values("pk")[5:2000]).update(company="Newco")
    planner_alone = (
        Lead.objects.alias(search=selectors.LeadSearchText())
        .filter(search__contains="oldco")
        .order_by("-created_at", "-id")
    )
    assert "lead_created" in explain(planner_alone[:51])  # it would walk all 20,000 leads
    # (whether it then reads the index or, believing a tenth of the table matches, the table,
    # is PostgreSQL's choice; with true statistics it is the index, see the test above)
    plan = explain(selectors.leads_list(q="oldco")[:51])
    assert "lead_created" not in plan, plan
    assert [lead.company for lead in selectors.leads_list(q="oldco")] == ["Oldco"] * 5


@postgres_only
def test_a_common_search_walks_the_list_newest_first():
    bulk_leads(20_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")
    plan = explain(selectors.leads_list(q="acme widgets")[:51])
    assert "Index Scan Backward using lead_created" in plan, plan
    assert "Seq Scan on leads_lead" not in plan, plan
