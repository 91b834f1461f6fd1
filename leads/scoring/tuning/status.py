"""The last tuning run's state (queued, running, proposed, unchanged, failed), for the page.

Kept in Django's cache, not in a table: a run that proposes a version leaves its report on that
version for good; this only says what the latest click or weekly job came to. With the default
in-process cache a separate Celery worker's states are not seen by the web process; set CACHE_URL
(Redis) to share them.
"""

from django.core.cache import cache
from django.utils import timezone

STATUS_KEY = "leads:scoring_tuning:status"
LOCK_KEY = "leads:scoring_tuning:lock"
STATUS_TTL = 30 * 86400
# a run holding the lock longer than this died; the next run may go ahead
LOCK_TTL = 3600


def tuning_status_record(*, state: str, message: str = "", **details) -> dict:
    status = {
        "state": state,
        "message": message,
        "at": timezone.now().isoformat(),
        **details,
    }
    cache.set(STATUS_KEY, status, STATUS_TTL)
    return status


def tuning_status() -> dict | None:
    return cache.get(STATUS_KEY)


def tuning_lock() -> bool:
    """Claim the right to run; False while another run holds it."""
    return cache.add(LOCK_KEY, timezone.now().isoformat(), LOCK_TTL)


def tuning_unlock() -> None:
    cache.delete(LOCK_KEY)
