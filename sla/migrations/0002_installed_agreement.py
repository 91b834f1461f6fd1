"""A fresh install has an agreement in force: version 1, approved by nobody (installed with the
product), pointing at the active scoring model (leads 0004 ships one), with the shipped defaults:
first touch within 4 business hours, a decision within 16, 3 follow-ups within 10 days, 50 MQLs a
week at a 70% acceptance rate, Mon-Fri 09:00-17:00 Berlin time. Frozen here on purpose: a
migration must not change when the code does."""

from decimal import Decimal

from django.db import migrations
from django.utils import timezone

INSTALLED_NAME = "Alignment agreement"
INSTALLED_NOTE = "installed default"

INSTALLED_CALENDAR = {
    "timezone": "Europe/Berlin",
    "hours": {
        "mon": [["09:00", "17:00"]],
        "tue": [["09:00", "17:00"]],
        "wed": [["09:00", "17:00"]],
        "thu": [["09:00", "17:00"]],
        "fri": [["09:00", "17:00"]],
        "sat": [],
        "sun": [],
    },
    "country": "DE",
    "subdivision": "",
    "closed_days": [],
}


def add_installed_agreement(apps, schema_editor):
    Agreement = apps.get_model("sla", "Agreement")
    AgreementEvent = apps.get_model("sla", "AgreementEvent")
    ScoringModel = apps.get_model("leads", "ScoringModel")
    if Agreement.objects.filter(status="active").exists():
        return
    now = timezone.now()
    agreement = Agreement.objects.create(
        version=(
            Agreement.objects.order_by("-version").values_list("version", flat=True).first() or 0
        )
        + 1,
        name=INSTALLED_NAME,
        status="active",
        scoring_model=ScoringModel.objects.filter(status="active").first(),
        response_hours=Decimal("4"),
        decision_hours=Decimal("16"),
        followup_attempts=3,
        followup_days=10,
        commitment_period="week",
        mqls_committed=50,
        acceptance_rate_committed=Decimal("70"),
        pipeline_committed=Decimal("0"),
        calendar=INSTALLED_CALENDAR,
        warn_share=Decimal("0.750"),
        notify_manager_on_breach=True,
        reassign_after_hours=None,
        on_reassign="restart",
        report_recipients=[],
        report_to_managers=True,
        review_date=None,
        notes=INSTALLED_NOTE,
        created_at=now,
        updated_at=now,
        activated_at=now,
    )
    for action in ("created", "activated"):
        AgreementEvent.objects.create(
            agreement=agreement,
            agreement_label=f"v{agreement.version} {agreement.name}",
            action=action,
            by_system="migration",
            note=INSTALLED_NOTE if action == "created" else "",
            at=now,
        )


class Migration(migrations.Migration):
    dependencies = [("sla", "0001_agreement"), ("leads", "0004_default_scoring_model")]
    # going back leaves the row: 0001's reversal drops the table with it
    operations = [migrations.RunPython(add_installed_agreement, migrations.RunPython.noop)]
