import pytest

from alignment.lib.errors import PermissionDenied
from alignment.permissions import Action, can, require

# Written out by hand on purpose: this table is the agreement, the code must match it.
# Columns: marketer, marketing_manager, rep, sales_manager, admin, outsider
EXPECTED = {
    Action.VIEW: "111110",
    Action.LEAD_CREATE: "111110",
    Action.LEAD_EDIT: "111110",
    Action.LEAD_IMPORT: "110010",
    Action.LEAD_QUALIFY: "110010",
    Action.LEAD_DECIDE: "001110",
    Action.LEAD_PROGRESS: "001110",
    Action.LEAD_RECYCLE: "011110",
    Action.LEAD_ASSIGN: "000110",
    Action.LEAD_MERGE: "010110",
    Action.TOUCHPOINT_MARKETING: "110010",
    Action.TOUCHPOINT_SALES: "001110",
    Action.CAMPAIGN_MANAGE: "110110",
    Action.ROUTING_MANAGE: "000110",
    Action.SCORING_PROPOSE: "110010",
    # sign-off is by the two managers in person; an admin account cannot stand in for either team
    Action.SCORING_APPROVE: "010100",
    Action.AGREEMENT_SIGN: "010100",
    Action.API_KEY_MANAGE: "000010",
    Action.WEBHOOKS_MANAGE: "000010",
    Action.GOAL_MANAGE: "010110",
    Action.CONTENT_MANAGE: "110010",
    Action.CONTENT_REQUEST: "111110",
    Action.OBJECTION_LOG: "001110",
    Action.FLAG_RAISE: "001110",
    Action.FLAG_RESOLVE: "110010",
    Action.STORY_RECORD: "001110",
}
ORDER = ["marketer", "marketing_manager", "rep", "sales_manager", "admin", "outsider"]


def test_every_action_has_an_expectation():
    assert set(EXPECTED) == set(Action)


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(Action))
def test_role_matrix(people, action):
    for who, allowed in zip(ORDER, EXPECTED[action], strict=True):
        user = people[who]
        assert can(user, action) is (allowed == "1"), f"{who} / {action}"
        if allowed == "1":
            require(user, action)
        else:
            with pytest.raises(PermissionDenied, match="may not"):
                require(user, action)


@pytest.mark.django_db
def test_inactive_user_may_do_nothing(sales_manager):
    sales_manager.is_active = False
    assert not can(sales_manager, Action.LEAD_ASSIGN)
    assert not can(None, Action.VIEW)


@pytest.mark.django_db
def test_superuser_without_role_acts_as_admin(db):
    from tests.factories import UserFactory

    root = UserFactory(username="root", role="", is_superuser=True)
    assert can(root, Action.LEAD_MERGE)
    assert not can(root, Action.SCORING_APPROVE)
