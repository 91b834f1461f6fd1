"""Fine-tuning runs as the tuning page shows them (queued, running, proposed, unchanged,
not_proposed, failed), and the lock that lets one run at a time.

Kept in the database (`TuningRun`), not in Django's cache: with the default per-process cache
(`make run`) the web process never saw what a separate Celery worker wrote there. A run that
proposes a version also leaves its report on that version for good; a run's row says what one
click, command or weekly job came to, and the page lists the latest ones.

- Queueing (a click on the page) adds a queued run. It is refused, with a message for the page,
  while another run waits or runs; one that has waited longer than LOCK_TTL for a worker is closed
  as failed and a new one may be queued.
- The lock is a row: `tuning_lock()` moves the queued run to running, however long it waited (the
  process that claims first runs it: its task, or the command or weekly job arriving first); a run
  nobody queued gets a new running row. A unique index lets one row be running, so
  of two processes claiming at once, on any machine, one gets False. A run that has been running
  longer than LOCK_TTL died with its worker: it is marked failed and the next claim goes ahead.
- The states recorded after a claim land on the claimed run (remembered in a context variable,
  per thread), even when a slow run was taken over meanwhile. Recorded without a claim, a state
  closes the queued run (its task could not be started) or, with none, is a run of its own.
"""

from contextvars import ContextVar
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from alignment.lib.errors import DomainError
from leads.scoring.models import TuningRun, TuningState

# a run holding the lock longer than this died; the next run may go ahead
LOCK_TTL = 3600
FINISHED = (
    TuningState.PROPOSED,
    TuningState.UNCHANGED,
    TuningState.NOT_PROPOSED,
    TuningState.FAILED,
)

_claimed: ContextVar[int | None] = ContextVar("tuning_run_claimed", default=None)


class TuningBusy(DomainError):
    """Another tuning run waits or runs; nothing was queued."""


def _expire_stale(now: datetime, *, queued: bool) -> None:
    """Close runs whose worker is gone: running for over LOCK_TTL, and with `queued` (a new click,
    not a worker arriving for it), waiting as long."""
    cutoff = now - timedelta(seconds=LOCK_TTL)
    TuningRun.objects.filter(state=TuningState.RUNNING, started_at__lt=cutoff).update(
        state=TuningState.FAILED,
        message="Stopped: no result an hour after it started (its worker stopped); "
        "a later run may go ahead.",
        finished_at=now,
    )
    if queued:
        TuningRun.objects.filter(state=TuningState.QUEUED, created_at__lt=cutoff).update(
            state=TuningState.FAILED,
            message="No worker took it up within an hour; a later click queued another.",
            finished_at=now,
        )


def _apply(run: TuningRun, *, state: str, message: str, details: dict, now: datetime) -> None:
    run.state, run.message = state, message
    if "by" in details:
        run.by = str(details.pop("by") or "")[:150]
    if "model_id" in details:
        run.model_id = details.pop("model_id")
    if "summary" in details:
        run.summary = details.pop("summary") or ""
    run.options = {**run.options, **details.pop("options", {}), **details}
    if state == TuningState.RUNNING and run.started_at is None:
        run.started_at = now
    if state in FINISHED:
        run.finished_at = now


def _busy_message(run: TuningRun) -> str:
    who = f" by {run.by}" if run.by else ""
    when = timezone.localtime(run.at).strftime("%Y-%m-%d %H:%M")
    if run.state == TuningState.RUNNING:
        return f"A tuning run is in progress (started{who} at {when}); start another when it ends."
    return (
        f"A tuning run is already waiting for a worker (queued{who} at {when}); its result "
        "appears here when it ends."
    )


def tuning_status_record(*, state: str, message: str = "", **details) -> dict:
    """Record a run's state: `queued` adds a run (refused with TuningBusy while another waits or
    runs); the other states update the run this thread claimed with tuning_lock(). Details `by`,
    `model_id` and `summary` have their columns; `options` and any other detail are kept as JSON."""
    if state not in TuningState.values:
        raise ValueError(f"Unknown tuning state {state!r}.")
    now = timezone.now()
    if state == TuningState.QUEUED:
        _expire_stale(now, queued=True)
        live = TuningRun.objects.filter(state__in=(TuningState.QUEUED, TuningState.RUNNING))
        busy = live.order_by("-state").first()  # a running one first: "running" > "queued"
        if busy is not None:
            raise TuningBusy(_busy_message(busy))
        run = TuningRun(created_at=now)
        _apply(run, state=state, message=message, details=dict(details), now=now)
        try:
            with transaction.atomic():
                run.save()
        except IntegrityError:  # queued at the same instant by another request
            raise TuningBusy(
                "A tuning run was queued a moment ago; its result appears here when it ends."
            ) from None
        return tuning_status_of(run)
    claimed = _claimed.get()
    run = None
    if claimed is not None:
        run = TuningRun.objects.filter(pk=claimed).first()
    if run is None and state != TuningState.RUNNING:
        run = TuningRun.objects.filter(state=TuningState.QUEUED).first()
    if run is None:
        run = TuningRun(created_at=now)
    _apply(run, state=state, message=message, details=dict(details), now=now)
    run.save()
    return tuning_status_of(run)


def tuning_status_of(run: TuningRun) -> dict:
    """A run as the page and the callers of tuning_status() read it."""
    return {
        **run.options,
        "id": run.pk,
        "state": run.state,
        "message": run.message,
        "at": run.at.isoformat(),
        "by": run.by,
        "model_id": run.model_id,
        "summary": run.summary,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def tuning_status() -> dict | None:
    """The latest run, or None before the first."""
    run = TuningRun.objects.first()
    return tuning_status_of(run) if run else None


def tuning_runs(*, limit: int = 6) -> list[TuningRun]:
    """The latest runs, newest first, with the version each proposed (one query)."""
    return list(TuningRun.objects.select_related("model")[:limit])


def tuning_lock() -> bool:
    """Claim the right to run; False while another run holds it."""
    now = timezone.now()
    _expire_stale(now, queued=False)
    if TuningRun.objects.filter(state=TuningState.RUNNING).exists():
        return False
    queued = TuningRun.objects.filter(state=TuningState.QUEUED).first()
    try:
        with transaction.atomic():
            if queued is not None:
                taken = TuningRun.objects.filter(pk=queued.pk, state=TuningState.QUEUED).update(
                    state=TuningState.RUNNING, started_at=now
                )
                if taken != 1:  # another process claimed it first
                    return False
                run_id = queued.pk
            else:
                run_id = TuningRun.objects.create(
                    state=TuningState.RUNNING, created_at=now, started_at=now
                ).pk
    except IntegrityError:  # another run was claimed at the same moment
        return False
    _claimed.set(run_id)
    return True


def tuning_unlock() -> None:
    """Release this thread's claim; a claimed run still running ended without a result."""
    claimed = _claimed.get()
    if claimed is None:
        return
    TuningRun.objects.filter(pk=claimed, state=TuningState.RUNNING).update(
        state=TuningState.FAILED,
        message="The run stopped without a result.",
        finished_at=timezone.now(),
    )
    _claimed.set(None)
