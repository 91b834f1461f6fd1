"""In-app notifications (the bell and /notifications/) and their email, once per person and key.
SQLite and PostgreSQL; two connections racing need PostgreSQL."""

import datetime as dt
import socket
import threading
from email import message_from_bytes, policy

import pytest
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alignment import notifications as notifications_module
from alignment.models import EmailStatus, Notification
from alignment.notifications import (
    EMAIL_CLAIM_TIMEOUT,
    notification_read,
    notifications_for,
    notifications_read_all,
    notifications_send_pending,
    notifications_unread_count,
    notify,
)
from tests.conftest import wait_for
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two connections racing for a row need PostgreSQL; SQLite serialises every write",
)


def breach(user, n: int = 1, **kwargs):
    defaults = {
        "user": user,
        "kind": "sla.breached",
        "key": f"sla.breached:clock:{n}:user:{user.pk}",
        "title": f"SLA breached: lead {n}",
        "body": "Nobody called within 4 business hours.",
        "url": f"/leads/{n}/",
    }
    return notify(**{**defaults, **kwargs})


def parsed(envelope):
    return message_from_bytes(envelope.content, policy=policy.default)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


# --- notify: once per key --------------------------------------------------------------------------


def test_notifying_twice_with_the_same_key_keeps_one_row(rep):
    first = breach(rep)
    second = breach(rep, title="a second wording")
    assert first is not None and second is None
    assert Notification.objects.get().title == "SLA breached: lead 1"


def test_the_same_key_notifies_each_person_once(rep, sales_manager):
    assert breach(rep) is not None
    assert breach(sales_manager, key=f"sla.breached:clock:1:user:{rep.pk}") is not None
    assert Notification.objects.count() == 2


def test_a_duplicate_leaves_the_callers_transaction_usable(rep):
    with transaction.atomic():
        breach(rep)
        assert breach(rep) is None
        breach(rep, n=2)  # the savepoint rolled back only the duplicate
    assert Notification.objects.count() == 2


def test_a_notification_links_only_to_this_site(rep):
    for url in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        with pytest.raises(ValueError, match="links to a page of this site"):
            breach(rep, url=url)
    assert not Notification.objects.exists()


def test_a_notification_can_name_its_lead(rep):
    lead = LeadFactory()
    n = breach(rep, lead=lead)
    assert Notification.objects.get(pk=n.pk).lead == lead


def test_notify_queues_the_sender_once_after_commit(rep, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        breach(rep, n=1)
        breach(rep, n=2)
        breach(rep, n=3, email=False)
    assert len(callbacks) == 1


def test_a_broker_outage_does_not_fail_the_notify(
    rep, monkeypatch, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):
        raise OSError("broker down")

    monkeypatch.setattr(notifications_module.notifications_send_task, "apply_async", down)
    with django_capture_on_commit_callbacks(execute=True):
        assert breach(rep) is not None
    assert Notification.objects.get().email_status == EmailStatus.PENDING  # beat will send it


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_notifying_at_once_write_one_row():
    user = UserFactory(username="racer")
    start = threading.Barrier(2)
    results: list = []
    errors: list = []

    def worker():
        try:
            start.wait(timeout=30)
            with transaction.atomic():
                results.append(breach(user))
        except BaseException as error:  # surfaced in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r is None for r in results) == [False, True]
    assert Notification.objects.count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_duplicate_waiting_on_an_uncommitted_insert_that_rolls_back_is_written():
    user = UserFactory(username="racer")
    inserted, release = threading.Event(), threading.Event()
    results: list = []

    def first():
        try:
            with transaction.atomic():
                breach(user)
                inserted.set()
                release.wait(timeout=30)
                transaction.set_rollback(True)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    assert inserted.wait(timeout=30)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    results.append(breach(user))  # waits for the first insert, which then rolls back
    thread.join(timeout=60)
    timer.join()
    assert results[0] is not None
    assert Notification.objects.count() == 1


# --- the email ------------------------------------------------------------------------------------


def test_the_email_is_sent_once_with_text_and_escaped_html(smtp_server, rep, settings):
    settings.SITE_URL = "https://pipeline.example.com"
    rep.working_timezone = "Europe/Berlin"
    rep.save()
    breach(
        rep,
        title="Breached: <script>x</script>\nInjected: header",
        body="Call <b>Ada</b> & Co",
        url="/leads/7/",
    )
    assert notifications_send_pending()["sent"] == 1
    assert notifications_send_pending()["sent"] == 0  # a second run finds nothing due
    assert len(smtp_server.messages) == 1
    envelope = smtp_server.messages[0]
    assert envelope.rcpt_tos == [rep.email]
    message = parsed(envelope)
    assert message["Subject"] == "Breached: <script>x</script> Injected: header"
    assert message["Injected"] is None
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Call <b>Ada</b> & Co" in text
    assert "https://pipeline.example.com/leads/7/" in text
    assert "Call &lt;b&gt;Ada&lt;/b&gt; &amp; Co" in html and "<b>Ada</b>" not in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert 'href="https://pipeline.example.com/leads/7/"' in html
    assert "CET" in text or "CEST" in text  # the reader's own zone, named
    row = Notification.objects.get()
    assert row.email_status == EmailStatus.SENT and row.emailed_at is not None
    assert row.email_attempts == 1 and row.email_error == ""


def test_a_failed_send_is_retried_on_the_next_run_and_sent_once(smtp_server, rep, settings):
    port = settings.EMAIL_PORT
    settings.EMAIL_PORT = closed_port()  # the mail server is down
    breach(rep)
    assert notifications_send_pending()["retry"] == 1
    row = Notification.objects.get()
    assert row.email_status == EmailStatus.PENDING and row.email_claimed_at is None
    assert row.emailed_at is None and "Connection" in row.email_error
    assert smtp_server.messages == []

    settings.EMAIL_PORT = port  # back up
    assert notifications_send_pending()["sent"] == 1
    assert notifications_send_pending()["sent"] == 0
    assert len(smtp_server.messages) == 1
    row.refresh_from_db()
    assert row.email_status == EmailStatus.SENT and row.email_attempts == 2
    assert row.email_error == ""


def test_a_send_still_failing_after_a_day_is_given_up_and_kept(rep, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    n = breach(rep)
    Notification.objects.filter(pk=n.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    assert notifications_send_pending()["failed"] == 1
    row = Notification.objects.get()
    assert row.email_status == EmailStatus.FAILED and row.email_error
    assert notifications_send_pending() == {
        "sent": 0,
        "skipped": 0,
        "retry": 0,
        "failed": 0,
        "taken": 0,
    }
    assert notifications_unread_count(user=rep) == 1  # the bell still shows it


def test_a_sender_that_died_after_its_claim_is_taken_over_once_the_claim_is_stale(smtp_server, rep):
    n = breach(rep)
    died_at = timezone.now()
    # a worker claimed the row and died before sending
    Notification.objects.filter(pk=n.pk).update(email_claimed_at=died_at, email_attempts=1)
    assert notifications_send_pending(now=died_at + dt.timedelta(minutes=1))["sent"] == 0
    assert smtp_server.messages == []
    later = died_at + EMAIL_CLAIM_TIMEOUT + dt.timedelta(seconds=1)
    assert notifications_send_pending(now=later)["sent"] == 1
    assert notifications_send_pending(now=later)["sent"] == 0
    assert len(smtp_server.messages) == 1


def test_two_senders_claiming_one_row_send_it_once(smtp_server, rep):
    n = breach(rep)
    now = timezone.now()
    row = Notification.objects.select_related("user").get(pk=n.pk)
    # the second sender read the row as pending before the first claimed it
    assert notifications_module._claim(row, now)
    assert notifications_module._send_one(row, now, None) == "taken"
    assert smtp_server.messages == []


def test_no_email_without_an_address_when_inactive_or_not_asked_for(smtp_server, rep):
    no_address = UserFactory(username="noaddress", email="")
    gone = UserFactory(username="gone", is_active=False)
    breach(no_address)
    breach(gone)
    quiet = breach(rep, email=False)
    assert quiet.email_status == EmailStatus.SKIPPED
    assert notifications_send_pending()["skipped"] == 2
    assert smtp_server.messages == []
    assert set(Notification.objects.values_list("email_status", flat=True)) == {EmailStatus.SKIPPED}
    assert Notification.objects.filter(emailed_at__isnull=False).count() == 0


def test_the_task_sends_what_is_due(smtp_server, rep):
    breach(rep)
    notifications_module.notifications_send_task.delay()  # eager in tests
    assert len(smtp_server.messages) == 1


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_email_once_after_commit(smtp_server, celery_worker_process):
    user = UserFactory(username="paged")
    with transaction.atomic():
        breach(user)
        breach(user)  # the same key: no second row, no second email
    wait_for(lambda: len(smtp_server.messages) == 1, timeout=60)
    wait_for(lambda: Notification.objects.get().email_status == EmailStatus.SENT, timeout=30)
    # the beat job's pass afterwards finds nothing to do
    assert notifications_send_pending()["sent"] == 0
    assert len(smtp_server.messages) == 1


def test_the_beat_schedule_runs_the_sender_every_minute():
    entry = django_settings.CELERY_BEAT_SCHEDULE["notifications-send"]
    assert entry["task"] == "alignment.notifications_send"
    assert entry["schedule"] == crontab(minute="*")
    assert 0 < entry["options"]["expires"] <= 60
    assert "alignment.notifications_send" in notifications_module.notifications_send_task.app.tasks


# --- reads and marks -------------------------------------------------------------------------------


def test_the_unread_count_and_the_list_newest_first(rep, other_rep):
    for n in range(1, 4):
        breach(rep, n=n)
    breach(other_rep, n=9)
    assert notifications_unread_count(user=rep) == 3
    newest = list(notifications_for(user=rep))
    assert [n.title for n in newest] == [f"SLA breached: lead {n}" for n in (3, 2, 1)]
    assert notification_read(notification=newest[0]) is True
    assert notification_read(notification=newest[0]) is False
    assert notifications_unread_count(user=rep) == 2
    assert len(notifications_for(user=rep, unread_only=True)) == 2
    assert notifications_read_all(user=rep) == 2
    assert notifications_unread_count(user=rep) == 0
    assert notifications_unread_count(user=other_rep) == 1


# --- the page and the bell -------------------------------------------------------------------------


def test_the_bell_shows_the_unread_count_with_a_label(client, rep):
    client.force_login(rep)
    for n in range(1, 4):
        breach(rep, n=n)
    body = client.get(reverse("leads:list")).content.decode()
    assert 'aria-label="3 unread notifications"' in body
    assert 'class="bell-count" aria-hidden="true">3<' in body
    assert 'href="/notifications/"' in body
    assert 'href="/sla/agreement/">Agreement<' in body
    notifications_read_all(user=rep)
    body = client.get(reverse("leads:list")).content.decode()
    assert "bell-count" not in body and 'aria-label="Notifications, none unread"' in body


def test_one_unread_notification_is_singular(client, rep):
    client.force_login(rep)
    breach(rep)
    assert b'aria-label="1 unread notification"' in client.get(reverse("notifications")).content


def test_the_bell_is_not_shown_to_anonymous_visitors(client, db):
    body = client.get(reverse("login")).content.decode()
    assert "bell" not in body and "Agreement" not in body


def test_the_page_lists_ones_own_newest_first_unread_highlighted(client, rep, other_rep):
    client.force_login(rep)
    breach(rep, n=1, title="Older & <i>wiser</i>")
    read = breach(rep, n=2, title="Already read")
    notification_read(notification=read)
    breach(rep, n=3, title="Newest")
    breach(other_rep, n=4, title="Someone else's")
    body = client.get(reverse("notifications")).content.decode()
    assert body.index("Newest") < body.index("Already read") < body.index("Older &amp;")
    assert "<i>wiser</i>" not in body
    assert "Someone else" not in body
    assert body.count('<li class="unread">') == 2 and body.count('<li class="read">') == 1
    unread = client.get(reverse("notifications") + "?unread=1").content.decode()
    assert "Already read" not in unread and "Newest" in unread


def test_the_page_shows_times_in_the_viewers_zone(client, rep):
    rep.working_timezone = "Asia/Tokyo"
    rep.save()
    client.force_login(rep)
    n = breach(rep)
    Notification.objects.filter(pk=n.pk).update(
        created_at=dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC)
    )
    assert b"2026-03-03 08:30" in client.get(reverse("notifications")).content


def test_opening_one_marks_it_read_and_goes_to_its_page(client, rep):
    client.force_login(rep)
    n = breach(rep, url="/leads/5/")
    response = client.post(reverse("notification_open", args=[n.pk]))
    assert response.status_code == 302 and response["Location"] == "/leads/5/"
    n.refresh_from_db()
    assert n.read_at is not None


def test_opening_needs_a_post_and_ones_own_notification(client, rep, other_rep):
    n = breach(other_rep)
    client.force_login(rep)
    assert client.get(reverse("notification_open", args=[n.pk])).status_code == 405
    assert client.post(reverse("notification_open", args=[n.pk])).status_code == 404
    n.refresh_from_db()
    assert n.read_at is None


def test_one_without_a_link_goes_back_to_the_list(client, rep):
    client.force_login(rep)
    n = breach(rep, url="")
    response = client.post(reverse("notification_open", args=[n.pk]))
    assert response["Location"] == reverse("notifications")


def test_mark_all_read(client, rep, other_rep):
    client.force_login(rep)
    breach(rep, n=1)
    breach(rep, n=2)
    breach(other_rep, n=3)
    response = client.post(reverse("notifications_read_all"))
    assert response.status_code == 302 and response["Location"] == reverse("notifications")
    assert notifications_unread_count(user=rep) == 0
    assert notifications_unread_count(user=other_rep) == 1


def test_the_page_needs_a_login(client, db):
    response = client.get(reverse("notifications"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_page_forms_carry_csrf_tokens(rep):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(rep)
    n = breach(rep)
    assert csrf_client.post(reverse("notification_open", args=[n.pk])).status_code == 403
    body = csrf_client.get(reverse("notifications")).content.decode()
    # log out, mark all read, and the one notification
    assert body.count("csrfmiddlewaretoken") == 3


@pytest.mark.parametrize("count", [1, 60])
def test_the_page_has_a_fixed_number_of_queries(client, rep, count, django_assert_num_queries):
    client.force_login(rep)
    for n in range(count):
        breach(rep, n=n, lead=LeadFactory() if n < 3 else None)
    # session, user, the page's rows, the bell's count
    with django_assert_num_queries(4):
        response = client.get(reverse("notifications"))
    assert response.status_code == 200
    assert response.content.decode().count("notification-title") == min(count, 50)
