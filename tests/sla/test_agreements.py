"""The alignment agreement: versions, the two-manager sign-off, validation. SQLite and PostgreSQL."""

import pytest

from leads.models import ScoringModel
from sla.models import Agreement
from sla.selectors import agreement_active

pytestmark = pytest.mark.django_db


def test_a_fresh_database_has_exactly_one_agreement_in_force():
    assert Agreement.objects.filter(status="active").count() == 1
    active = agreement_active()
    assert active.version == 1
    assert active.created_by is None
    assert active.notes == "installed default"
    assert active.scoring_model == ScoringModel.objects.get(status="active")
    assert active.approvals.count() == 0
