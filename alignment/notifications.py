"""In-app notifications (the bell and /notifications/) and their email, once per person and key.

Any app notifies through `notify()` inside its own transaction: SLA warnings, breaches and
reassignments now, lead flags and mentions later. The dedupe key names the occasion
("sla.breached:clock:123:user:45"); the unique (user, key) constraint, not a read-then-write,
makes a second call with the same key, from another worker at the same moment or from a task run
again, a no-op that returns None.

The email is never sent inline (the caller's transaction may still roll back). After commit
`notify()` queues `alignment.notifications_send` (quietly giving up if the broker is down), and a
beat job every minute runs it too, so a lost kick only delays the email. The protocol, per row:

1. claim: a conditional UPDATE sets `email_claimed_at` on a row still pending whose claim is free
   or stale (older than EMAIL_CLAIM_TIMEOUT); only one of two racing senders gets the row;
2. send with `send_mail` (text + HTML);
3. mark `sent` (`emailed_at`); on an error record `email_error`, count the attempt and free the
   claim, so the next run tries again; a refused recipient, or a row still failing a day after it
   was created, is marked `failed` (kept, visible in `email_error`).

A sender that dies between 1 and 3 leaves its claim behind; once stale, the next run claims and
sends the row again. That is at-least-once with dedupe: no email is lost to a dead worker; a
duplicate needs the worker to die in the moment after the mail server accepted the message and
before the `sent` mark commits. The timeout is far longer than one send (EMAIL_TIMEOUT, 10 s), so
a live sender is never overtaken.
"""

import logging
import smtplib
import unicodedata
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from alignment.lib.timezones import (
    DATETIME_ZONE_FORMAT,
    company_timezone,
    format_datetime,
    zone_or_none,
)
from alignment.models import EmailStatus, Notification, User
from leads.models import Lead

logger = logging.getLogger(__name__)

# a claim older than this was left by a sender that died: the email is due again
EMAIL_CLAIM_TIMEOUT = timedelta(minutes=10)
# an email still failing this long after its notification is given up (the bell still shows it)
EMAIL_GIVE_UP_AFTER = timedelta(days=1)
SEND_BATCH = 200
SUBJECT_MAX = 120
KEY_MAX = Notification._meta.get_field("key").max_length
TITLE_MAX = Notification._meta.get_field("title").max_length


def _one_line(text: str, limit: int) -> str:
    """`text` fit for a subject line: control characters and line breaks become single spaces,
    and past `limit` characters it is cut with an ellipsis."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _relative(url: str) -> bool:
    # "//host/..." is a link to another site, however relative it looks
    return url == "" or (url.startswith("/") and not url.startswith("//") and "\\" not in url)


# --- writes ----------------------------------------------------------------------------------------


def notify(
    *,
    user: User,
    kind: str,
    key: str,
    title: str,
    body: str,
    url: str = "",
    lead: Lead | None = None,
    email: bool = True,
) -> Notification | None:
    """Notify `user` once per `key`; returns the new notification, or None when that key had
    already notified them. Call it inside the transaction that decides the occasion: the row
    commits or rolls back with it, and the email goes out after commit."""
    if not key or len(key) > KEY_MAX:
        raise ValueError(f"A notification key must have 1 to {KEY_MAX} characters: {key!r}")
    if not _relative(url):
        raise ValueError(f"A notification links to a page of this site (/...), not {url!r}")
    row = Notification(
        user=user,
        kind=kind,
        key=key,
        title=_one_line(title, TITLE_MAX),
        body=body,
        url=url,
        lead=lead,
        email_status=EmailStatus.PENDING if email else EmailStatus.SKIPPED,
    )
    try:
        # a savepoint: the caller's transaction survives a duplicate
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        if Notification.objects.filter(user=user, key=key).exists():
            return None  # another call with this key got there first
        raise
    if email:
        notifications_send_after_commit()
    return row


def notification_read(*, notification: Notification, now: datetime | None = None) -> bool:
    """Mark one notification read; False when it already was."""
    now = now or timezone.now()
    done = Notification.objects.filter(pk=notification.pk, read_at=None).update(read_at=now)
    if done:
        notification.read_at = now
    return bool(done)


def notifications_read_all(*, user: User, now: datetime | None = None) -> int:
    """Mark every unread notification of `user` read; returns how many."""
    return Notification.objects.filter(user=user, read_at=None).update(
        read_at=now or timezone.now()
    )


# --- reads -----------------------------------------------------------------------------------------


def notifications_unread_count(*, user: User) -> int:
    """The bell's number: one COUNT on the (user, read_at) index."""
    return Notification.objects.filter(user=user, read_at=None).count()


def notifications_for(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    """A person's notifications, newest first."""
    qs = Notification.objects.filter(user=user)
    if unread_only:
        qs = qs.filter(read_at=None)
    return qs.order_by("-created_at", "-id")


# --- the email, after commit -----------------------------------------------------------------------


def _message(notification: Notification) -> tuple[str, str, str]:
    """Subject, plain text and HTML of one notification's email; its time in the reader's own
    working time zone, with the zone named."""
    user = notification.user
    zone = zone_or_none(user.working_timezone) or company_timezone()
    context = {
        "notification": notification,
        "user": user,
        "when": format_datetime(notification.created_at, fmt=DATETIME_ZONE_FORMAT, zone=zone),
        "link": f"{settings.SITE_URL}{notification.url}" if notification.url else "",
        "notifications_link": f"{settings.SITE_URL}/notifications/",
    }
    return (
        _one_line(notification.title, SUBJECT_MAX),
        render_to_string("alignment/email/notification.txt", context),
        render_to_string("alignment/email/notification.html", context),
    )


def _claim(notification: Notification, now: datetime) -> bool:
    return (
        Notification.objects.filter(pk=notification.pk, email_status=EmailStatus.PENDING)
        .filter(Q(email_claimed_at=None) | Q(email_claimed_at__lt=now - EMAIL_CLAIM_TIMEOUT))
        .update(email_claimed_at=now, email_attempts=F("email_attempts") + 1)
        == 1
    )


def _send_one(notification: Notification, now: datetime, mail_connection) -> str:
    """Claim, send and mark one row; returns what became of it: sent, skipped, failed, retry or
    taken (another sender has it)."""
    if not _claim(notification, now):
        return "taken"
    user = notification.user
    mine = Notification.objects.filter(pk=notification.pk, email_claimed_at=now)
    if not user.is_active or not user.email:
        mine.update(email_status=EmailStatus.SKIPPED, email_error="")
        return "skipped"
    try:
        subject, text, html = _message(notification)
        send_mail(
            subject,
            text,
            settings.DEFAULT_FROM_EMAIL,
            [user.email],
            html_message=html,
            connection=mail_connection,
        )
    except Exception as error:
        # the server refused this address: trying again will not help
        permanent = isinstance(error, smtplib.SMTPRecipientsRefused)
        given_up = permanent or notification.created_at < now - EMAIL_GIVE_UP_AFTER
        logger.warning(
            "Notification %s: email to user %s failed%s: %s",
            notification.pk,
            user.pk,
            " (given up)" if given_up else "; the next run retries",
            error,
        )
        mine.update(
            email_claimed_at=None,
            email_status=EmailStatus.FAILED if given_up else EmailStatus.PENDING,
            email_error=f"{type(error).__name__}: {error}"[:2000],
        )
        return "failed" if given_up else "retry"
    mine.update(email_status=EmailStatus.SENT, emailed_at=timezone.now(), email_error="")
    return "sent"


def notifications_send_pending(
    *, now: datetime | None = None, limit: int = SEND_BATCH
) -> dict[str, int]:
    """Send every email still due, once each; returns counts by outcome (sent, skipped, retry,
    failed, taken). Safe to run twice at once: each row is claimed before it is sent."""
    counts = {"sent": 0, "skipped": 0, "retry": 0, "failed": 0, "taken": 0}
    fixed_now = now
    after_id = 0
    mail_connection = None
    try:
        while True:
            now = fixed_now or timezone.now()
            rows = list(
                Notification.objects.filter(email_status=EmailStatus.PENDING, pk__gt=after_id)
                .filter(
                    Q(email_claimed_at=None) | Q(email_claimed_at__lt=now - EMAIL_CLAIM_TIMEOUT)
                )
                .select_related("user")
                .order_by("pk")[:limit]
            )
            if not rows:
                return counts
            if mail_connection is None:
                # one connection for the whole pass, opened when there is something to send
                mail_connection = get_connection()
            for row in rows:
                after_id = row.pk
                outcome = _send_one(row, now, mail_connection)
                counts[outcome] += 1
                if outcome in ("retry", "failed"):
                    # a broken connection must not fail the rows after it
                    mail_connection.close()
    finally:
        if mail_connection is not None:
            mail_connection.close()


@shared_task(name="alignment.notifications_send", ignore_result=True)
def notifications_send_task() -> None:
    """Send the notification emails still due (queued after each commit that notifies, and every
    minute by beat)."""
    notifications_send_pending()


def _kick() -> None:
    """Queue the sender now; if the broker cannot take the message, the beat job will."""
    try:
        notifications_send_task.apply_async(retry=False)
    except Exception as error:  # the broker is down: nothing is lost, the rows wait
        logger.warning("Notifications: could not queue the sender (%s); the beat job will.", error)


def notifications_send_after_commit() -> None:
    """Queue the sender once per transaction, after it commits."""
    if not connection.in_atomic_block:
        _kick()
        return
    if any(func is _kick for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_kick, robust=True)


__all__ = [
    "EMAIL_CLAIM_TIMEOUT",
    "notification_read",
    "notifications_for",
    "notifications_read_all",
    "notifications_send_after_commit",
    "notifications_send_pending",
    "notifications_send_task",
    "notifications_unread_count",
    "notify",
]
