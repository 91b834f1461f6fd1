"""`seed_content_demo` fills every loop through its services (each row with its event) on top of
the demo company, and a second run changes nothing."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from content.models import Asset, AssetUse, ContentRequest, DealStory, LeadFlag, Objection
from leads.demo import demo_seed
from leads.models import LeadEvent

pytestmark = pytest.mark.django_db


def test_the_content_demo_fills_each_loop_once(capsys):
    demo_seed(leads=600, seed=7, touchpoints_per_lead=2)

    call_command("seed_content_demo")

    assert Asset.objects.count() == 10
    uses = AssetUse.objects.filter(kind="shared")
    assert uses.exists()
    assert all(u.touchpoint.kind == "content_shared" for u in uses)
    assert Objection.objects.exists() and Objection.objects.exclude(answer=None).exists()
    assert LeadFlag.objects.filter(status="resolved").count() == 1
    assert LeadFlag.objects.filter(status="open").exists()
    assert DealStory.objects.filter(outcome="won").exists()
    assert ContentRequest.objects.filter(status="planned").count() == 1
    events = set(LeadEvent.objects.values_list("type", flat=True))
    assert {"asset.created", "content.shared", "objection.logged", "flag.raised"} <= events
    assert {"flag.resolved", "story.recorded", "content_request.created"} <= events
    counts = [m.objects.count() for m in (Asset, AssetUse, Objection, LeadFlag, DealStory)]

    call_command("seed_content_demo")

    assert "nothing to do" in capsys.readouterr().out
    assert [m.objects.count() for m in (Asset, AssetUse, Objection, LeadFlag, DealStory)] == counts


def test_without_the_demo_company_it_says_what_to_run():
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("seed_content_demo")
    assert not Asset.objects.exists()
