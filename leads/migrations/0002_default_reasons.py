from django.db import migrations

# (kind, code, label, recycles, requires_note)
REASONS = [
    ("reject", "bad_fit", "Bad fit", False, False),
    ("reject", "wrong_contact", "Wrong or fake contact", False, False),
    ("reject", "no_budget", "No budget", False, False),
    ("reject", "no_authority", "No authority", False, False),
    ("reject", "not_ready", "Not ready yet (recycle to marketing)", True, False),
    ("reject", "duplicate", "Duplicate", False, False),
    ("reject", "competitor", "Competitor", False, False),
    ("reject", "student_job_seeker", "Student or job seeker", False, False),
    ("reject", "other", "Other (explain in the note)", False, True),
    ("recycle", "not_ready", "Not ready yet", True, False),
    ("recycle", "no_response", "No response after follow-up", True, False),
    ("recycle", "timing", "Bad timing, revisit later", True, False),
    ("recycle", "other", "Other (explain in the note)", True, True),
    ("lost", "price", "Price", False, False),
    ("lost", "competitor", "Chose a competitor", False, False),
    ("lost", "no_decision", "No decision", False, False),
    ("lost", "no_budget", "No budget", False, False),
    ("lost", "timing", "Timing", False, False),
    ("lost", "other", "Other (explain in the note)", False, True),
]


def add_reasons(apps, schema_editor):
    Reason = apps.get_model("leads", "Reason")
    for position, (kind, code, label, recycles, requires_note) in enumerate(REASONS):
        Reason.objects.get_or_create(
            kind=kind,
            code=code,
            defaults={
                "label": label,
                "recycles": recycles,
                "requires_note": requires_note,
                "position": position,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]
    operations = [migrations.RunPython(add_reasons, migrations.RunPython.noop)]
