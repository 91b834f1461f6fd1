"""How cheap the SLA flagging job stays with a million running clocks, and how fast assignment
starts clocks. Not a test: it prints figures.

    .venv/bin/python bench/sla.py [--clocks 1000000] [--due 50] [--assign 10000]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_sla]

Drops and creates the database (its name must contain "bench"), migrates it, and writes
`--clocks` running clocks in one INSERT ... SELECT (due over the next 30 days, a few hundred real
leads and reps behind the ones that come due). Then, in the same run:

1. the job's scan at steady state: `clocks_flag` when nothing is due (what the beat job does
   almost every minute), against the best hand-written SQL for the same three questions (running
   clocks past their warning point, past their due time, past their reassignment time) on the
   same partial indexes; the ratio (target at most 1.5 and under 2 s);
2. a minute's worth of work: `--due` clocks come due and the job marks and notifies them (the
   owner and the sales manager), once; a second run finds nothing;
3. `--assign` MQLs assigned through `lead_assign` and the outbox reaction that starts their
   clocks: the time per assignment and per reaction.
"""

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dbutil import recreate_database  # noqa: E402

REPEATS = 7
TARGET_RATIO = 1.5
TARGET_SECONDS = 2.0

# the same three questions the job's claims ask, read only, in one statement as the job's claims
# are: the floor of the scan
REFERENCE_SQL = (
    "(SELECT 'warn', id FROM sla_slaclock WHERE status = 'pending' AND ended_at IS NULL "
    "AND warn_at <= %(now)s AND due_at > %(now)s ORDER BY warn_at LIMIT 2000) UNION ALL "
    "(SELECT 'breach', id FROM sla_slaclock WHERE status IN ('pending', 'warned') "
    "AND ended_at IS NULL AND due_at <= %(now)s ORDER BY due_at LIMIT 2000) UNION ALL "
    "(SELECT 'reassign', id FROM sla_slaclock WHERE status = 'breached' AND reassigned_at IS NULL "
    "AND ended_at IS NULL AND reassign_at IS NOT NULL AND reassign_at <= %(now)s "
    "ORDER BY reassign_at LIMIT 2000)"
)


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clocks", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=50)
    parser.add_argument("--assign", type=int, default=10_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_sla")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("The benchmark measures PostgreSQL: pass a postgres:// URL.")
    recreate_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alignment.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.urls import reverse
    from django.utils import timezone

    from alignment.models import Notification, Role, User
    from leads import events
    from leads.models import Lead, LeadEvent, Stage
    from leads.routing import lead_assign
    from sla.clocks.flagging import clocks_flag
    from sla.clocks.models import SlaClock
    from sla.selectors import agreement_active

    call_command("migrate", verbosity=0)
    # a worker loads the URLconf once (the notifications link to lead pages): not part of a run
    reverse("leads:list")
    agreement = agreement_active()
    manager = User.objects.create(username="bench_manager", role=Role.SALES_MANAGER)
    reps = [
        User.objects.create(username=f"bench_rep{i}", role=Role.SALES_REP, email=f"r{i}@x.example")
        for i in range(20)
    ]
    # the leads behind the clocks that come due; the others are lead ids only (a clock has no
    # foreign key to its lead: it outlives a merged duplicate)
    real = Lead.objects.bulk_create(
        Lead(email=f"due{i}@bench.example", stage=Stage.MQL, owner=reps[i % len(reps)])
        for i in range(args.due)
    )
    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # every clock running; due from one hour to 30 days ahead, warned 30 minutes before
        cursor.execute(
            """
            INSERT INTO sla_slaclock (lead_id, kind, agreement_id, owner_id, status,
                start_event_id, started_at, warn_at, due_at, cancel_reason, updated_at)
            SELECT 10000000 + g, CASE WHEN g %% 2 = 0 THEN 'response' ELSE 'decision' END, %s,
                %s, 'pending', 10000000 + g, %s,
                %s + make_interval(secs => 3600 + (g * 2591.0) %% 2592000) - interval '30 minutes',
                %s + make_interval(secs => 3600 + (g * 2591.0) %% 2592000),
                '', %s
            FROM generate_series(1, %s) AS g
            """,
            [agreement.pk, reps[0].pk, now, now, now, now, args.clocks],
        )
        cursor.execute("ANALYZE sla_slaclock")
    loaded = time.perf_counter() - started
    running = SlaClock.objects.filter(ended_at__isnull=True).count()
    print(f"PostgreSQL {connection.pg_version // 10000}, {os.cpu_count()} cores")
    print(f"{running:,} running clocks written in {loaded:.1f} s")

    # 1. steady state: nothing is due
    def job():
        result = clocks_flag(now=now)
        assert not (result.warned or result.breached or result.reassigned)

    def reference():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(REFERENCE_SQL, {"now": now})
            cursor.fetchall()

    job()  # warm the caches and the plans
    reference()
    job_seconds = best_of(job)
    reference_seconds = best_of(reference)
    ratio = job_seconds / reference_seconds
    verdict = "within" if ratio <= TARGET_RATIO and job_seconds < TARGET_SECONDS else "NOT within"
    print(f"\n1. the job's scan with nothing due (best of {REPEATS}):")
    print(f"   flagging job (clocks_flag)        {job_seconds * 1000:9.2f} ms")
    print(f"   hand-written SQL, same questions  {reference_seconds * 1000:9.2f} ms")
    print(
        f"   ratio {ratio:.2f} ({verdict} the target of {TARGET_RATIO} and {TARGET_SECONDS:.0f} s)"
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + REFERENCE_SQL, {"now": now})
        scans = [row[0].strip() for row in cursor.fetchall() if "Scan" in row[0]]
    print(f"   plan of the questions: {' / '.join(scans)}")

    # 2. a minute's worth: `due` clocks come due
    event_ids = list(LeadEvent.objects.order_by("-id").values_list("id", flat=True)[:1]) or [0]
    SlaClock.objects.bulk_create(
        SlaClock(
            lead=lead,
            kind="response",
            agreement=agreement,
            owner=lead.owner,
            start_event_id=event_ids[0] + 1 + i,
            started_at=now - dt.timedelta(hours=5),
            warn_at=now - dt.timedelta(hours=2),
            due_at=now - dt.timedelta(seconds=30),
        )
        for i, lead in enumerate(real)
    )
    started = time.perf_counter()
    result = clocks_flag(now=now)
    busy = time.perf_counter() - started
    again = clocks_flag(now=now)
    notified = Notification.objects.filter(kind="sla.breached").count()
    print(f"\n2. {args.due} clocks due among {running:,}:")
    print(
        f"   {busy * 1000:.1f} ms: {len(result.breached)} breached, {result.notified} "
        f"notifications ({notified} stored: owner and sales manager); a second run marks "
        f"{len(again.breached)} and notifies {again.notified}"
    )

    # 3. starting clocks through assignment
    if not args.assign:
        return
    SlaClock.objects.filter(lead_id__gte=10_000_000).delete()
    leads = Lead.objects.bulk_create(
        Lead(email=f"mql{i}@bench.example", stage=Stage.MQL) for i in range(args.assign)
    )
    events.events_record_bulk(
        [
            events.NewEvent(
                type="lead.stage_changed",
                lead_id=lead.pk,
                occurred_at=now,
                payload={"from": "nurturing", "to": "mql"},
                system="bench",
            )
            for lead in leads
        ],
        react=False,
    )
    started = time.perf_counter()
    for i, lead in enumerate(leads):
        lead_assign(lead=lead, rep=reps[i % len(reps)], by=manager)
    assigned = time.perf_counter() - started
    started = time.perf_counter()
    dispatched = 0
    while True:
        done = events.outbox_dispatch(limit=2000).done
        dispatched += done
        if not done:
            break
    reacted = time.perf_counter() - started
    clocks = SlaClock.objects.filter(lead__in=leads, ended_at__isnull=True).count()
    print(f"\n3. {args.assign:,} MQLs assigned (lead_assign) and their clocks started (outbox):")
    print(
        f"   assignments {assigned:.1f} s ({assigned / args.assign * 1000:.2f} ms each); "
        f"reactions {reacted:.1f} s ({reacted / max(dispatched, 1) * 1000:.2f} ms per entry, "
        f"{dispatched:,} entries); {clocks:,} clocks running"
    )
    print(f"   clocks started per second: {clocks / reacted:,.0f}")


if __name__ == "__main__":
    main()
