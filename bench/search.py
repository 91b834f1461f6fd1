"""The lead list's search on PostgreSQL with a million leads. Not a test: it prints figures.

    .venv/bin/python bench/search.py [--database-url postgres://postgres@127.0.0.1:5432/bench_seed]
        [--fill [--leads 1000000]] [--repeat 15] [--no-planner-alone]

By default it uses the leads already in the database, e.g. one filled by
`bench/seed.py --leads 1000000` (the demo company; touchpoints do not matter here). With --fill it
drops and re-creates the database (its name must contain "bench") and fills leads_lead with one
INSERT ... SELECT FROM generate_series: names, companies and emails drawn from word lists, created
one after another over two years. Either way it applies pending migrations (0006 builds the
trigram index: timed), adds five leads with rare names, runs ANALYZE, and then, for each kind of
search, times what the list page does: `leads_list(q=...)` and reading one page (PAGE_SIZE + 1
rows, newest first), median and p95 over --repeat runs after one warm-up. It prints how
leads_list judged each search (common: the page is read by walking the list newest first; rare:
the matches are collected through the trigram index and sorted), the plan of the page query from
EXPLAIN ANALYZE, and, for a few rare searches that PostgreSQL's statistics make look common, how
long the same query takes when the planner alone chooses. Target: <= 100 ms per search.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

from bench.dbutil import recreate_database  # noqa: E402

PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
PARSER.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_seed")
PARSER.add_argument("--fill", action="store_true", help="re-create the database and fill it")
PARSER.add_argument("--leads", type=int, default=1_000_000, help="with --fill")
PARSER.add_argument("--repeat", type=int, default=15)
PARSER.add_argument(
    "--no-planner-alone", action="store_true", help="skip timing the planner's own choice"
)
ARGS = PARSER.parse_args()
if not ARGS.database_url.startswith(("postgres://", "postgresql://")):
    sys.exit("The benchmark measures PostgreSQL: pass a postgres:// URL.")
if ARGS.fill:
    recreate_database(ARGS.database_url)
os.environ["DATABASE_URL"] = ARGS.database_url
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignment.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.utils import timezone  # noqa: E402

from leads import demo, selectors  # noqa: E402
from leads.models import Lead  # noqa: E402
from leads.views import PAGE_SIZE  # noqa: E402

# People whose names occur once in a million leads, created a year ago: a walk down the list
# newest first would pass most of the table before finding them.
RARE_PEOPLE = [
    ("Ada", "Lovelace", "Analytical Engines Ltd"),
    ("Grace", "Hopper", "Cobol Compilers Inc."),
    ("Edsger", "Dijkstra", "Shortest Paths B.V."),
    ("Barbara", "Liskov", "Substitution Labs"),
    ("Tony", "Hoare", "Quicksort Holding plc"),
]
SEARCHES = [
    ("rare name", ["lovelace", "ada love", "grace hopper", "dijkstra", "liskov"]),
    ("common company word", ["chemicals", "software", "holding", "logistics", "summit"]),
    (
        "email fragment",
        ["@summit", "anna.schmidt", "schmidt@", "edsger.dij", "tony.hoare@hoare-bench.example"],
    ),
    ("no match", ["zzyzx", "qwertz", "lovelacex", "xylophone", "nordwind chemicals zz"]),
    ("1-2 letters", ["li", "wu", "zo", "xq", "a"]),
]

# for --fill: the demo company's own vocabulary, so the searches above mean the same there
LEGAL = (
    "GmbH", "AG", "Inc.", "LLC", "Ltd", "plc", "SAS", "B.V.", "AB", "S.L."
)  # fmt: skip

FILL_SQL = """
INSERT INTO leads_lead (
    email, first_name, last_name, title, phone, company, industry, country, website,
    utm_source, utm_medium, utm_campaign, utm_term, utm_content, stage, stage_changed_at,
    mql_count, attributes, fit_score, engagement_score, score, grade, created_at, updated_at)
SELECT lower(p.first || '.' || p.last || g.i || '@' || replace(lower(c.words), ' ', '-'))
           || '.example',
       p.first, p.last, '', '', c.words || ' ' || c.legal, '', '', '', '', '', '', '', '',
       'new', t.at, 0, '{}', 0, 0, 0, '', t.at, t.at
FROM generate_series(1, %(n)s) AS g(i)
CROSS JOIN LATERAL (
    SELECT (%(first)s::text[])[1 + floor(random() * cardinality(%(first)s::text[]))::int] AS first,
           (%(last)s::text[])[1 + floor(random() * cardinality(%(last)s::text[]))::int] AS last
    WHERE g.i > 0
) p
CROSS JOIN LATERAL (
    SELECT btrim((%(a)s::text[])[1 + floor(random() * cardinality(%(a)s::text[]))::int] || ' '
                 || (%(b)s::text[])[1 + floor(random() * cardinality(%(b)s::text[]))::int] || ' '
                 || (%(c)s::text[])[1 + floor(random() * cardinality(%(c)s::text[]))::int])
               AS words,
           (%(legal)s::text[])[1 + floor(random() * cardinality(%(legal)s::text[]))::int] AS legal
    WHERE g.i > 0
) c
CROSS JOIN LATERAL (
    SELECT now() - interval '730 days' * (1 - g.i::float8 / %(n)s)
           + interval '1 second' * floor(random() * 60) AS at
) t
"""


def fill(n: int) -> None:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            FILL_SQL,
            {
                # lists: psycopg2 sends a list as an ARRAY (a tuple would be a row)
                "n": n,
                "first": list(demo._FIRST_NAMES),
                "last": list(demo._LAST_NAMES),
                "a": list(demo._COMPANY_A),
                "b": list(demo._COMPANY_B),
                "c": list(demo._COMPANY_C),
                "legal": list(LEGAL),
            },
        )
    print(
        f"fill: {n:,} leads by INSERT ... SELECT FROM generate_series in "
        f"{time.perf_counter() - started:.1f} s"
    )


def add_rare_people() -> None:
    long_ago = timezone.now() - timedelta(days=365)
    Lead.objects.bulk_create(
        [
            Lead(
                first_name=first,
                last_name=last,
                company=company,
                email=f"{first}.{last}@{last}-bench.example".lower(),
                created_at=long_ago,
            )
            for first, last, company in RARE_PEOPLE
        ],
        ignore_conflicts=True,
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def page(q: str) -> tuple[float, int]:
    started = time.perf_counter()
    rows = list(selectors.leads_list(q=q)[: PAGE_SIZE + 1])
    return (time.perf_counter() - started) * 1000, len(rows)


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def plan_summary(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        explained = cursor.fetchone()[0][0]
    parts = []
    for node in plan_nodes(explained["Plan"]):
        if node.get("Relation Name") == "leads_lead" or node.get("Index Name"):
            if node.get("Relation Name") not in (None, "leads_lead"):
                continue  # the joined owner, source and campaign
            name = node["Node Type"] + (f" {node['Index Name']}" if node.get("Index Name") else "")
            removed = node.get("Rows Removed by Filter", 0) + node.get(
                "Rows Removed by Index Recheck", 0
            )
            parts.append(
                f"{name} (rows {node['Actual Rows']}"
                + (f", removed {removed}" if removed else "")
                + ")"
            )
        elif node["Node Type"] in ("Sort", "Incremental Sort"):
            parts.append(node["Node Type"])
    return " -> ".join(reversed(parts)) + f"; {explained['Execution Time']:.1f} ms"


def verdict(q: str) -> str:
    started = time.perf_counter()
    common = selectors._search_is_common(*selectors._search_lookup(q))
    elapsed = (time.perf_counter() - started) * 1000
    return f"{'common' if common else 'rare'} (judged in {elapsed:.1f} ms)"


def traps(limit: int = 3) -> list[str]:
    """Companies that PostgreSQL's statistics sampled twice: rare, but it thinks them common."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT split_part(v, chr(10), 3) AS company FROM pg_stats,
                   unnest(histogram_bounds::text::text[]) AS v
            WHERE tablename = 'lead_search_trgm'
            GROUP BY 1 HAVING count(*) > 1 ORDER BY count(*) DESC, 1 LIMIT %s
            """,
            [limit],
        )
        return [row[0] for row in cursor.fetchall()]


def main() -> None:
    if ARGS.fill:
        call_command("migrate", "leads", "0005_lead_events", verbosity=0)
        fill(ARGS.leads)
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        leads = [f"leads.{m.name}" for m, _ in pending if m.app_label == "leads"]
        others = len(pending) - len(leads)
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        print(
            f"migrate ({', '.join(leads)}{f' and {others} more' if others else ''}): "
            f"{time.perf_counter() - started:.1f} s"
        )
    add_rare_people()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")
        cursor.execute("SELECT count(*) FROM leads_lead")
        leads = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('lead_search_trgm'))")
        index_size = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
    print(
        f"PostgreSQL {connection.pg_version // 10000}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}, shared_buffers {shared_buffers}"
    )
    print(f"dataset: {leads:,} leads; trigram index lead_search_trgm {index_size}")
    print(
        f"leads_list: common = {selectors.SEARCH_COMMON} matches among the newest "
        f"{selectors.SEARCH_WINDOW} leads; {ARGS.repeat} timed runs per search after a warm-up"
    )
    print()

    worst = 0.0
    for kind, searches in [*SEARCHES, ("rare, looks common to the planner", traps())]:
        if not searches:
            print(f"{kind}: none in these statistics\n")
            continue
        times: list[float] = []
        print(f"{kind}")
        for q in searches:
            page(q)
            runs = [page(q) for _ in range(ARGS.repeat)]
            ms = [t for t, _ in runs]
            times += ms
            qs = selectors.leads_list(q=q)[: PAGE_SIZE + 1]
            sql, params = qs.query.sql_with_params()
            print(
                f"  {q!r:28} {runs[0][1]:>3} rows  median {statistics.median(ms):6.1f} ms  "
                f"p95 {percentile(ms, 0.95):6.1f} ms  {verdict(q)}"
            )
            print(f"  {'':28} plan: {plan_summary(sql, params)}")
        median, p95 = statistics.median(times), percentile(times, 0.95)
        worst = max(worst, p95)
        print(f"  => {kind}: median {median:.1f} ms, p95 {p95:.1f} ms")
        print()

    if not ARGS.no_planner_alone:
        print("the same rare searches when the planner alone chooses (no judging, plain order):")
        for q in traps():
            plain = (
                Lead.objects.select_related("owner", "source", "campaign")
                .alias(search=selectors.LeadSearchText())
                .filter(search__contains=q)
                .order_by("-created_at", "-id")[: PAGE_SIZE + 1]
            )
            sql, params = plain.query.sql_with_params()
            print(f"  {q!r:28} plan: {plan_summary(sql, params)}")
        print()
    print(f"worst p95 {worst:.1f} ms (target <= 100 ms); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
