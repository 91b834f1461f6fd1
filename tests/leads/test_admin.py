import pytest
from django.urls import reverse

from leads.models import AssignmentRule

pytestmark = pytest.mark.django_db


def test_admin_refuses_a_rule_with_a_bad_condition(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:leads_assignmentrule_add"),
        {
            "name": "Broken",
            "position": 1,
            "active": "on",
            "conditions": '[{"field": "country", "op": "near", "value": "DE"}]',
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "unknown op" in response.content.decode()
    assert not AssignmentRule.objects.exists()


def test_admin_pages_render_for_the_pipeline(client, admin_user):
    client.force_login(admin_user)
    for name in ("lead", "touchpoint", "campaign", "reason", "assignmentrule", "importjob"):
        assert client.get(reverse(f"admin:leads_{name}_changelist")).status_code == 200, name
