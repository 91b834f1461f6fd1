"""schemathesis on the stories' operations only (the suite's tests/alignment/test_api_schemathesis
runs every operation): generated requests with a key holding every scope, acting as a sales
manager, against a won and a lost lead; no server error, every answer within the schema."""

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from alignment.api_keys import api_key_create
from alignment.models import API_SCOPES
from content.stories.services import story_record
from leads.models import Stage
from tests.alignment.test_api_schemathesis import api_schema  # noqa: F401 (the fixture)
from tests.content.test_stories_data import close

schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="stor")


@pytest.fixture
def bearer(db, sales_manager) -> dict[str, str]:
    cache.clear()
    won = close(owner=sales_manager)
    close(outcome=Stage.LOST, owner=sales_manager)
    story_record(stage_change=won, by=sales_manager, reasons=["value"])
    _, raw = api_key_create(name="schemathesis", scopes=list(API_SCOPES), as_user=sales_manager)
    return {"Authorization": f"Bearer {raw}"}


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_stories_operations_answer_within_their_schema(case, bearer):
    case.call_and_validate(headers=bearer, excluded_checks=[positive_data_acceptance])
