"""Real state for the browser tests, made through the product's own services (what staff,
clients and the workers would do), on the simulated outside servers."""

import importlib
from decimal import Decimal

from campaigns.models import Campaign
from campaigns.services import campaign_create, campaign_set_status
from gateways.mt5.simulated import SimulatedMT5Gateway


def campaign_live(*, actor=None, **fields) -> Campaign:
    """A campaign created as a draft and activated, as a Campaign Manager does it."""
    fields.setdefault("bonus_type", Campaign.BonusType.B)
    fields.setdefault("percentage", Decimal("50"))
    fields.setdefault("trigger_type", Campaign.TriggerType.AUTO_DEPOSIT)
    campaign = campaign_create(actor=actor, **fields)
    return campaign_set_status(campaign=campaign, status=Campaign.Status.ACTIVE, actor=actor)


def mt5_account(*, balance="1000.00", leverage=500, **fields) -> int:
    """A client account on the simulated MT5 server (its balance arrives as a deposit deal)."""
    return SimulatedMT5Gateway().add_account(
        login=None, balance=Decimal(balance), leverage=leverage, **fields
    )


def plans_seed() -> None:
    """The plans the licensing migration seeds: a transactional test flushes them."""
    from django.apps import apps

    importlib.import_module("licensing.migrations.0002_seed_plans").seed(apps, None)
