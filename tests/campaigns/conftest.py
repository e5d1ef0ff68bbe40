"""Campaign fixtures: a valid payload, campaigns in any state, staff users per role."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import Role
from campaigns.models import Campaign

_names = iter(range(1, 1_000_000))


def valid_fields(**overrides):
    """The fields of a valid Type A auto-deposit campaign, for services and the API alike."""
    fields = {
        "name": f"Welcome 50% #{next(_names)}",
        "description": "Half of the first deposit as credit.",
        "bonus_type": "A",
        "percentage": Decimal("50"),
        "max_bonus": Decimal("500"),
        "min_deposit": Decimal("100"),
        "max_deposit": Decimal("10000"),
        "trigger_type": "auto_deposit",
    }
    fields.update(overrides)
    return fields


def payload(**overrides):
    """`valid_fields` as JSON would send them: money as strings."""
    return {
        name: str(value) if isinstance(value, Decimal) else value
        for name, value in valid_fields(**overrides).items()
    }


@pytest.fixture
def make_campaign(db):
    """`make_campaign(status="active", **fields)`: a stored campaign in any state, no audit."""

    def make(status=Campaign.Status.DRAFT, **overrides):
        return Campaign.objects.create(status=status, **valid_fields(**overrides))

    return make


@pytest.fixture
def manager(make_user):
    return make_user(role=Role.CAMPAIGN_MANAGER)


@pytest.fixture
def as_manager(as_user, manager):
    return as_user(manager)


@pytest.fixture
def past():
    return timezone.now() - timedelta(days=1)


@pytest.fixture
def future():
    return timezone.now() + timedelta(days=30)
