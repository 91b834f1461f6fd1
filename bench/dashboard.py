"""Every dashboard page's server time at scale, next to the raw SQL of its main figure. Not a
test: it prints figures.

    .venv/bin/python bench/dashboard.py [--database-url postgres://postgres@127.0.0.1:5432/bench_seed]
        [--repeat 7] [--only NAME ...] [--explain]

Uses the leads already in the database, e.g. one filled by `bench/seed.py` (1,000,000 leads and
about 10 touchpoints each by default): the demo company, its people and its history. It applies
pending migrations, rebuilds the KPI rollups (`manage.py kpis_rebuild`, timed), runs ANALYZE, then
for each page requests it in-process through Django's test client as the role that works there
(so "server time" is the whole request: middleware, queries, template; no network) and prints the
median and worst of --repeat runs after one warm-up, the number of queries one request makes, and,
measured in the same run, the time of one raw aggregate SQL statement that computes the page's
main figure straight from the tables (the reference: how fast the database answers the question
by itself) and the page ÷ raw ratio. Target: every page <= 300 ms.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
PARSER.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_seed")
PARSER.add_argument("--repeat", type=int, default=7)
PARSER.add_argument("--only", nargs="*", help="page names to run (default: all)")
PARSER.add_argument(
    "--explain", action="store_true", help="print the three slowest queries of each page"
)
PARSER.add_argument("--no-rebuild", action="store_true", help="skip rebuilding the rollups")
ARGS = PARSER.parse_args()
if not ARGS.database_url.startswith(("postgres://", "postgresql://")):
    sys.exit("The benchmark measures PostgreSQL: pass a postgres:// URL.")
os.environ["DATABASE_URL"] = ARGS.database_url
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignment.settings")
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from alignment.models import Role, User  # noqa: E402
from kpis import selectors  # noqa: E402
from kpis.selectors.goals import goals_timezone  # noqa: E402

settings.ALLOWED_HOSTS = ["*"]
settings.SECURE_SSL_REDIRECT = False  # in-process requests are plain HTTP
# no collectstatic here: plain static URLs instead of the manifest's hashed ones
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
TARGET_MS = 300


def _month_bounds() -> tuple[str, str, str]:
    now = timezone.now()
    tz = goals_timezone()
    month = selectors.month_period(now.strftime("%Y-%m"), tz=tz)
    week = selectors.iso_week_of(now, tz=tz)
    return month.start.isoformat(), month.end.isoformat(), week


MONTH_START, MONTH_END, THIS_WEEK = _month_bounds()
LAST_MONTH = selectors.months_back(timezone.now().strftime("%Y-%m"), 2)[0]

# the reference for each page: one statement that computes its main figure from the tables
RAW_FUNNEL = f"""
    SELECT count(*), count(*) FILTER (WHERE f >= 1), count(*) FILTER (WHERE f >= 2),
           count(*) FILTER (WHERE f >= 5)
    FROM (SELECT c.lead_id, max(CASE m.payload->>'to' WHEN 'mql' THEN 1 WHEN 'sal' THEN 2
                 WHEN 'sql' THEN 3 WHEN 'opportunity' THEN 4 WHEN 'won' THEN 5 ELSE 0 END) f
          FROM leads_leadevent c LEFT JOIN leads_leadevent m
            ON m.lead_id = c.lead_id AND m.type = 'lead.stage_changed'
          WHERE c.type = 'lead.created' AND c.occurred_at >= '{MONTH_START}'
            AND c.occurred_at < '{MONTH_END}'
          GROUP BY c.lead_id) t
"""
RAW_ACCEPTANCE = f"""
    SELECT count(*) FILTER (WHERE type = 'lead.accepted'), count(*)
    FROM leads_leadevent WHERE type IN ('lead.accepted', 'lead.rejected')
      AND occurred_at >= '{MONTH_START}' AND occurred_at < '{MONTH_END}'
"""
RAW_OPEN_LOAD = """
    SELECT owner_id, count(*) FROM leads_lead
    WHERE stage IN ('mql', 'sal', 'sql', 'opportunity') AND owner_id IS NOT NULL GROUP BY owner_id
"""
RAW_WON_PAGE = "SELECT id FROM leads_lead WHERE stage = 'won' ORDER BY created_at DESC LIMIT 51"
RAW_LIST_PAGE = "SELECT id FROM leads_lead ORDER BY created_at DESC, id DESC LIMIT 51"
RAW_CLOCKS = """
    SELECT count(*) FROM sla_slaclock WHERE status IN ('pending', 'warned')
"""

# (name, role, path, reference SQL)
PAGES = [
    ("home: marketer", Role.MARKETER, "/", RAW_ACCEPTANCE),
    ("home: marketing manager", Role.MARKETING_MANAGER, "/", RAW_ACCEPTANCE),
    ("home: sales manager", Role.SALES_MANAGER, "/", RAW_OPEN_LOAD),
    ("home: sales rep", Role.SALES_REP, "/", RAW_CLOCKS),
    ("home: admin", Role.ADMIN, "/", RAW_ACCEPTANCE),
    ("kpis: this month", Role.MARKETER, "/kpis/", RAW_FUNNEL),
    ("kpis: this week", Role.MARKETER, f"/kpis/?period={THIS_WEEK}", RAW_FUNNEL),
    ("kpis: last month", Role.MARKETER, f"/kpis/?period={LAST_MONTH}", RAW_FUNNEL),
    ("kpis: month, one source", Role.MARKETER, "/kpis/?source=1", RAW_FUNNEL),
    ("kpis: month, one rep", Role.SALES_MANAGER, "/kpis/?rep={rep}", RAW_FUNNEL),
    ("kpis: feedback CSV", Role.MARKETER, "/kpis/?export=feedback", RAW_ACCEPTANCE),
    ("kpis: goals", Role.MARKETING_MANAGER, "/kpis/goals/", RAW_ACCEPTANCE),
    ("leads: newest", Role.MARKETER, "/leads/", RAW_LIST_PAGE),
    ("leads: won", Role.MARKETER, "/leads/?stage=won", RAW_WON_PAGE),
    ("leads: unassigned MQLs", Role.SALES_MANAGER, "/leads/?view=unassigned", RAW_LIST_PAGE),
    ("wins", Role.MARKETER, "/leads/wins/", RAW_WON_PAGE),
    ("people and routing", Role.SALES_MANAGER, "/people/", RAW_OPEN_LOAD),
    ("sla queue", Role.SALES_REP, "/sla/queue/", RAW_CLOCKS),
]


def _user(role: str) -> User:
    if role == Role.ADMIN:
        return (
            User.objects.filter(is_superuser=True).order_by("id").first()
            or User.objects.filter(role=role).order_by("id").first()
        )
    if role == Role.SALES_REP:
        # the rep with the most open leads: the heaviest queue
        return (
            User.objects.filter(role=role, is_active=True)
            .annotate(n=django.db.models.Count("owned_leads"))
            .order_by("-n")
            .first()
        )
    return User.objects.filter(role=role, is_active=True).order_by("id").first()


def _raw_ms(sql: str) -> float:
    times = []
    with connection.cursor() as cursor:
        for _ in range(max(3, ARGS.repeat // 2)):
            started = time.perf_counter()
            cursor.execute(sql)
            cursor.fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _page(client: Client, path: str) -> tuple[list[float], int, int, list[dict]]:
    response = client.get(path)  # warm-up
    times = []
    for _ in range(ARGS.repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    return times, response.status_code, len(queries), queries.captured_queries


def main() -> None:
    call_command("migrate", verbosity=0)
    if not ARGS.no_rebuild:
        started = time.perf_counter()
        call_command("kpis_rebuild", verbosity=0)
        print(f"kpis_rebuild: {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT count(*) FROM leads_lead")
        (leads,) = cursor.fetchone()
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'leads_touchpoint'")
        (touchpoints,) = cursor.fetchone()
    print(f"{leads:,} leads, ~{touchpoints:,} touchpoints; {ARGS.repeat} runs per page\n")
    print(
        f"{'page':<28} {'status':>6} {'median ms':>10} {'worst ms':>9} {'queries':>8} "
        f"{'raw SQL ms':>11} {'ratio':>6}  target"
    )
    rep = _user(Role.SALES_REP)
    failures = []
    for name, role, path, raw in PAGES:
        if ARGS.only and name not in ARGS.only:
            continue
        user = _user(role)
        client = Client()
        client.force_login(user)
        times, status, count, captured = _page(client, path.format(rep=rep.pk))
        median, worst = statistics.median(times), max(times)
        raw_ms = _raw_ms(raw)
        ok = median <= TARGET_MS and status == 200
        if not ok:
            failures.append(name)
        print(
            f"{name:<28} {status:>6} {median:>10.1f} {worst:>9.1f} {count:>8} {raw_ms:>11.1f} "
            f"{median / raw_ms if raw_ms else 0:>6.1f}  {'ok' if ok else 'MISSED'}"
        )
        if ARGS.explain and captured:
            for query in sorted(captured, key=lambda q: -float(q["time"]))[:3]:
                print(f"    {float(query['time']) * 1000:7.1f} ms: {query['sql'][:300]}")
    print()
    print(
        "every page within the target"
        if not failures
        else f"over {TARGET_MS} ms or not 200: {', '.join(failures)}"
    )


if __name__ == "__main__":
    main()
