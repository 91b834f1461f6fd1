"""The won announcement email, sent through a real SMTP server."""

from decimal import Decimal
from email import message_from_bytes, policy
from email.utils import getaddresses

import pytest
from django.utils import timezone

from leads.announcements import SUBJECT_MAX, announcement_email, announcement_for_won
from leads.models import Announcement, Stage
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


def won_lead(company: str, deal_value: str = "12000.00"):
    return LeadFactory(
        company=company, stage=Stage.WON, won_at=timezone.now(), deal_value=Decimal(deal_value)
    )


def parsed(envelope):
    return message_from_bytes(envelope.content, policy=policy.default)


def header_addresses(message, *names: str) -> set[str]:
    values = [str(v) for name in names for v in message.get_all(name, [])]
    return {address.lower() for _, address in getaddresses(values)}


def test_a_company_with_a_line_break_is_announced_to_every_marketer_in_bcc(
    smtp_server, settings, marketer, marketing_manager, rep
):
    inactive = UserFactory(username="gone", role=marketer.role, is_active=False)
    announcement = announcement_for_won(lead=won_lead("Acme\nInjected: header"))

    sent = announcement_email(announcement=announcement)

    assert sent == 2
    assert len(smtp_server.messages) == 1
    envelope = smtp_server.messages[0]
    message = parsed(envelope)
    assert message["Subject"].strip() == "New customer: Acme Injected: header (€12,000)"
    assert "\n" not in announcement.title and "\r" not in announcement.title
    assert message["Injected"] is None  # the company name did not become a header
    marketers = {marketer.email, marketing_manager.email}
    assert marketers <= set(envelope.rcpt_tos)
    assert rep.email not in envelope.rcpt_tos and inactive.email not in envelope.rcpt_tos
    shown = header_addresses(message, "To", "Cc", "Bcc")
    # To: the pipeline's own address; Bcc is never a header
    assert shown == {address.lower() for _, address in getaddresses([settings.DEFAULT_FROM_EMAIL])}
    assert not marketers & shown
    assert "We won Acme Injected: header!" in message.get_body(("plain",)).get_content()
    announcement.refresh_from_db()
    assert announcement.emailed_at is not None


@pytest.mark.parametrize(
    ("company", "subject"),
    [
        ("Acme\r\nBcc: victim@example.com", "New customer: Acme Bcc: victim@example.com (€1)"),
        ("Tab\there\x07and\x1bescape", "New customer: Tab here and escape (€1)"),
        ("Line\u2028sep\u2029para\x85next", "New customer: Line sep para next (€1)"),
        ("  many   spaces  ", "New customer: many spaces (€1)"),
    ],
)
def test_the_subject_is_one_line_of_single_spaces(smtp_server, marketer, company, subject):
    announcement = announcement_for_won(lead=won_lead(company, "1.00"))

    announcement_email(announcement=announcement)

    message = parsed(smtp_server.messages[0])
    assert announcement.title == subject
    assert message["Subject"].strip() == subject
    assert message["Bcc"] is None


def test_a_long_company_name_is_shortened_but_the_deal_value_stays(smtp_server, marketer):
    announcement = announcement_for_won(lead=won_lead("Very Long Company " * 11, "987654.32"))

    announcement_email(announcement=announcement)

    # a non-ASCII subject travels as folded encoded words, which unfold with a leading space
    subject = parsed(smtp_server.messages[0])["Subject"].strip()
    assert subject == announcement.title
    assert len(subject) == SUBJECT_MAX
    assert subject.startswith("New customer: Very Long Company Very")
    assert subject.endswith("… (€987,654.32)")


def test_an_announcement_stored_with_a_line_break_is_still_sent(smtp_server, marketer):
    lead = won_lead("Old")
    old = Announcement.objects.create(lead=lead, title="New customer: Old\nCo", body="We won Old!")

    assert announcement_email(announcement=old) == 1
    assert announcement_email(announcement=old) == 0  # claimed: a second run sends nothing

    assert len(smtp_server.messages) == 1
    assert parsed(smtp_server.messages[0])["Subject"] == "New customer: Old Co"
