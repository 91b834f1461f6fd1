"""The weekly SLA report: build (archive) a week's figures once, and email them exactly once per
(week, recipient).

Exactly once: the report row is unique per ISO week (a concurrent build loses the insert and
reads the winner's row, so every email of a week shows the same archived figures); each recipient
has one delivery row, unique per (report, email), created with INSERT ... ON CONFLICT DO NOTHING.
A sender claims a delivery with one conditional UPDATE (pending or failed -> sending); only the
sender whose UPDATE changed the row sends that email. A send that raises (SMTP refused, server
down) gives the claim back as "failed" and the next hourly run retries it, up to MAX_ATTEMPTS. A
claim whose worker died mid-send stays "sending" and is never sent again automatically: the
message may have left, and a second copy is worse than a missing one (the archive page shows it).

The schedule: the beat job runs hourly; `sla_report_due_week` names the previous ISO week once
it is Monday 08:00 or later in the agreement's time zone (which may differ from the server's and
change with a new agreement version), so a missed Monday run is caught up by the next one.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from alignment.lib.errors import DomainError
from alignment.models import Role, User
from kpis import selectors
from sla.models import Agreement
from sla.report.figures import (
    agreement_timezone,
    report_context,
    report_figures,
    subject_for,
    week_start_local,
)
from sla.report.models import DeliveryStatus, SlaReport, SlaReportDelivery
from sla.selectors import agreement_active

logger = logging.getLogger(__name__)

# Monday at this hour (agreement's zone) the previous week's report is due
SEND_HOUR = 8
MAX_ATTEMPTS = 5


def _agreement() -> Agreement:
    agreement = agreement_active()
    if agreement is None:
        raise DomainError("No agreement is in force, so there is nothing to report against.")
    return agreement


def sla_report_recipients(*, agreement: Agreement) -> list[str]:
    """The agreement's report addresses, and the active managers of both teams when it says so;
    each address once (compared without case)."""
    emails = [str(e).strip() for e in agreement.report_recipients or [] if str(e).strip()]
    if agreement.report_to_managers:
        emails += list(
            User.objects.filter(
                is_active=True, role__in=(Role.MARKETING_MANAGER, Role.SALES_MANAGER)
            )
            .exclude(email="")
            .order_by("pk")
            .values_list("email", flat=True)
        )
    unique: dict[str, str] = {}
    for email in emails:
        unique.setdefault(email.lower(), email)
    return list(unique.values())


def last_complete_week(*, now: datetime, agreement: Agreement | None = None) -> str:
    """The ISO week before the one `now` falls in, in the agreement's zone."""
    zone = ZoneInfo(agreement_timezone(agreement or _agreement()))
    return selectors.iso_week_label(now.astimezone(zone).date() - timedelta(days=7))


def sla_report_due_week(*, now: datetime) -> str | None:
    """The week whose report the hourly job should send now: the previous ISO week, once it is
    Monday SEND_HOUR:00 in the agreement's zone (until then, the week before was last week's)."""
    agreement = agreement_active()
    if agreement is None:
        return None
    zone = ZoneInfo(agreement_timezone(agreement))
    local = now.astimezone(zone)
    if local < week_start_local(local.date(), zone, SEND_HOUR):
        return None
    return last_complete_week(now=now, agreement=agreement)


def sla_report_preview(*, week: str, now: datetime | None = None) -> dict:
    """The figures of any week (the current one counted up to now), not archived."""
    return report_figures(week=week, agreement=_agreement(), now=now or timezone.now())


def _check_complete(week: str, *, agreement: Agreement, now: datetime) -> None:
    period = selectors.iso_week_period(week, tz=agreement_timezone(agreement))
    if period.end > now:
        raise DomainError(
            f"{period.label} is not over yet, so its report cannot be sent or archived; "
            f"preview it at /sla/reports/preview/?week={period.label}."
        )


def sla_report_build(*, week: str, now: datetime | None = None) -> SlaReport:
    """The archived report of a finished ISO week: built from the figures at the first call,
    the same row (same figures) at every later or concurrent one."""
    now = now or timezone.now()
    agreement = _agreement()
    period = selectors.iso_week_period(week, tz=agreement_timezone(agreement))
    existing = SlaReport.objects.filter(week=period.label).first()
    if existing is not None:
        return existing
    _check_complete(period.label, agreement=agreement, now=now)
    figures = report_figures(week=period.label, agreement=agreement, now=now)
    try:
        with transaction.atomic():
            return SlaReport.objects.create(
                week=period.label,
                period_start=period.start,
                period_end=period.end,
                agreement=agreement,
                figures=figures,
                created_at=now,
            )
    except IntegrityError:  # a concurrent build archived the week first
        return SlaReport.objects.get(week=period.label)


def sla_report_render(*, figures: dict) -> tuple[str, str, str]:
    """Subject, plain text and HTML of the email (user text escaped in the HTML)."""
    context = report_context(figures)
    return (
        subject_for(figures),
        render_to_string("sla/email/report.txt", context),
        render_to_string("sla/email/report.html", context),
    )


@dataclass
class SendResult:
    week: str
    report: SlaReport | None
    text: str = ""
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    already_sent: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        parts = [f"{self.week}: sent to {len(self.sent)}"]
        if self.already_sent:
            parts.append(f"already sent to {len(self.already_sent)}")
        if self.failed:
            parts.append(f"failed for {len(self.failed)} (retried on the next run)")
        return ", ".join(parts)


def _claim(delivery: SlaReportDelivery, now: datetime) -> bool:
    claimable = Q(status=DeliveryStatus.PENDING) | Q(
        status=DeliveryStatus.FAILED, attempts__lt=MAX_ATTEMPTS
    )
    return (
        SlaReportDelivery.objects.filter(claimable, pk=delivery.pk).update(
            status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        == 1
    )


def sla_report_send(*, week: str, dry_run: bool = False, now: datetime | None = None) -> SendResult:
    """Email a finished week's report to each recipient once (see the module doc). A dry run
    renders the plain text only: nothing is archived, claimed or sent."""
    now = now or timezone.now()
    agreement = _agreement()
    label = selectors.iso_week_period(week, tz=agreement_timezone(agreement)).label
    recipients = sla_report_recipients(agreement=agreement)
    if dry_run:
        archived = SlaReport.objects.filter(week=label).first()
        figures = (
            archived.figures
            if archived
            else report_figures(week=label, agreement=agreement, now=now)
        )
        _, text, _ = sla_report_render(figures=figures)
        return SendResult(week=label, report=archived, text=text, recipients=recipients)

    report = sla_report_build(week=label, now=now)
    SlaReportDelivery.objects.bulk_create(
        [SlaReportDelivery(report=report, email=email) for email in recipients],
        ignore_conflicts=True,
    )
    subject, text, html = sla_report_render(figures=report.figures)
    result = SendResult(week=label, report=report, text=text, recipients=recipients)
    deliveries = list(report.deliveries.all())
    claimed = []
    for delivery in deliveries:
        if _claim(delivery, now):
            claimed.append(delivery)
        elif delivery.status == DeliveryStatus.SENT:
            result.already_sent.append(delivery.email)
    if not claimed:
        return result
    try:
        connection = get_connection()
        connection.open()
    except Exception as error:
        for delivery in claimed:
            _failed(delivery, error, result)
        return result
    try:
        for delivery in claimed:
            message = EmailMultiAlternatives(
                subject=subject, body=text, to=[delivery.email], connection=connection
            )
            message.attach_alternative(html, "text/html")
            try:
                message.send()
            except Exception as error:
                _failed(delivery, error, result)
                continue
            SlaReportDelivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.SENT, sent_at=timezone.now(), error=""
            )
            result.sent.append(delivery.email)
    finally:
        connection.close()
    return result


def _failed(delivery: SlaReportDelivery, error: Exception, result: SendResult) -> None:
    text = f"{type(error).__name__}: {error}"[:2000]
    logger.warning("SLA report %s to %s failed: %s", result.week, delivery.email, text)
    SlaReportDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED, error=text
    )
    result.failed[delivery.email] = text
