"""campaigns.services: the rules, the lifecycle, copies, the MT5 scan and expiry."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.models import AuditEvent
from campaigns.models import Campaign, MT5Scan
from campaigns.selectors import (
    campaign_by_promo_code,
    campaign_is_live,
    campaigns_live,
    mt5_choices,
)
from campaigns.services import (
    TRANSITIONS,
    campaign_create,
    campaign_duplicate,
    campaign_set_status,
    campaign_update,
    campaigns_end_expired,
    mt5_scan,
)
from campaigns.tasks import end_expired
from campaigns.validation import CampaignInvalid
from core.errors import ConflictError
from gateways.errors import TransientGatewayError
from gateways.models import SimulatorKnobs
from gateways.mt5.simulated import SimulatedMT5Gateway, seed_demo_accounts

from .conftest import valid_fields

pytestmark = pytest.mark.django_db

Status = Campaign.Status


def events(campaign, action=None):
    found = AuditEvent.objects.filter(object_type="campaigns.campaign", object_id=str(campaign.pk))
    return list(found.filter(action=action) if action else found.order_by("seq"))


def problems_of(excinfo):
    return {problem.field: problem.code for problem in excinfo.value.problems}


# --- Create and update ----------------------------------------------------------------------


def test_a_new_campaign_is_a_draft_created_by_the_actor_and_audited(manager):
    campaign = campaign_create(actor=manager, ip="10.0.0.7", **valid_fields())

    campaign.refresh_from_db()
    assert campaign.status == Status.DRAFT
    assert campaign.created_by == manager
    (event,) = events(campaign)
    assert (event.action, event.actor, event.ip) == ("campaign.created", manager, "10.0.0.7")
    assert event.before is None
    assert event.after["percentage"] == "50"
    assert event.after["status"] == "draft"


def test_lists_are_stripped_and_deduplicated_and_a_blank_promo_code_is_none(manager):
    campaign = campaign_create(
        actor=manager,
        **valid_fields(
            agent_codes=[" IB1 ", "IB1", "IB2"],
            target_groups=["real\\std", "real\\std "],
            target_countries=None,
            promo_code="  ",
        ),
    )
    campaign.refresh_from_db()
    assert campaign.agent_codes == ["IB1", "IB2"]
    assert campaign.target_groups == ["real\\std"]
    assert campaign.target_countries == []
    assert campaign.promo_code is None


def test_every_broken_rule_is_reported_at_once(manager):
    fields = valid_fields(
        percentage=Decimal("1500"),
        min_deposit=Decimal("500"),
        max_deposit=Decimal("100"),
        bonus_type="C",
        trigger_type="registration",
        agent_codes=["ok", ""],
        starts_at=timezone.now(),
        ends_at=timezone.now() - timedelta(days=1),
        max_concurrent=0,
    )
    with pytest.raises(CampaignInvalid) as caught:
        campaign_create(actor=manager, **fields)
    assert problems_of(caught) == {
        "percentage": "percentage_range",
        "max_deposit": "deposit_range",
        "convert_per_lot": "convert_per_lot_required",
        "fixed_amount": "fixed_amount_required",
        "agent_codes": "invalid_item",
        "ends_at": "ends_before_start",
        "max_concurrent": "zero",
    }
    assert caught.value.code == "invalid"
    assert not Campaign.objects.exists()


def test_the_model_checks_come_with_the_rules_required_fields_and_choices(manager):
    with pytest.raises(CampaignInvalid) as caught:
        campaign_create(actor=manager, name="", bonus_type="Z", percentage=None)
    assert set(problems_of(caught)) == {"name", "bonus_type", "percentage"}


def test_a_naive_datetime_is_refused_rather_than_guessed(manager):
    with pytest.raises(CampaignInvalid) as caught:
        campaign_create(
            actor=manager, **valid_fields(starts_at=timezone.now().replace(tzinfo=None))
        )
    assert problems_of(caught) == {"starts_at": "naive_datetime"}


def test_an_unknown_field_is_a_programming_error(manager):
    with pytest.raises(TypeError):
        campaign_create(actor=manager, **valid_fields(status="active"))


def test_an_update_records_only_what_changed(manager, make_campaign):
    campaign = make_campaign()
    updated = campaign_update(
        campaign=campaign, actor=manager, percentage=Decimal("75.5"), name=campaign.name
    )
    assert updated.percentage == Decimal("75.5")
    (event,) = events(campaign, "campaign.updated")
    assert event.before == {"percentage": "50.00"}
    assert event.after == {"percentage": "75.5"}


def test_an_update_that_changes_nothing_writes_nothing(manager, make_campaign):
    campaign = make_campaign()
    campaign_update(campaign=campaign, actor=manager, name=campaign.name)
    assert events(campaign) == []


def test_an_update_is_checked_against_the_whole_campaign(manager, make_campaign):
    campaign = make_campaign(bonus_type="C", convert_per_lot=Decimal("10"))
    with pytest.raises(CampaignInvalid) as caught:
        campaign_update(campaign=campaign, actor=manager, convert_per_lot=None)
    assert problems_of(caught) == {"convert_per_lot": "convert_per_lot_required"}


def test_an_update_never_overwrites_a_status_changed_meanwhile(manager, make_campaign):
    campaign = make_campaign(status=Status.ACTIVE)
    stale = Campaign.objects.get(pk=campaign.pk)
    campaign_set_status(campaign=campaign, status=Status.PAUSED, actor=manager)

    campaign_update(campaign=stale, actor=manager, description="new words")

    campaign.refresh_from_db()
    assert (campaign.status, campaign.description) == (Status.PAUSED, "new words")


def test_an_archived_campaign_cannot_be_edited(manager, make_campaign):
    campaign = make_campaign(status=Status.ARCHIVED)
    with pytest.raises(ConflictError) as caught:
        campaign_update(campaign=campaign, actor=manager, name="again")
    assert caught.value.code == "campaign_archived"


# --- Promo codes ----------------------------------------------------------------------------


def promo(code, **overrides):
    return valid_fields(trigger_type="promo_code", promo_code=code, **overrides)


def test_a_promo_code_is_unique_among_live_campaigns_whatever_its_case(manager):
    campaign_create(actor=manager, **promo("SUMMER25"))
    with pytest.raises(CampaignInvalid) as caught:
        campaign_create(actor=manager, **promo("summer25"))
    assert problems_of(caught) == {"promo_code": "promo_code_taken"}
    assert caught.value.code == "promo_code_taken"


def test_a_promo_code_is_free_again_once_its_campaign_is_archived(manager):
    first = campaign_create(actor=manager, **promo("SUMMER25"))
    campaign_set_status(campaign=first, status=Status.ARCHIVED, actor=manager)

    second = campaign_create(actor=manager, **promo("Summer25"))

    assert campaign_by_promo_code("SUMMER25") == second


def test_a_campaign_keeps_its_own_promo_code_on_update(manager):
    campaign = campaign_create(actor=manager, **promo("KEEP"))
    campaign_update(campaign=campaign, actor=manager, promo_code="keep", name="renamed")
    campaign.refresh_from_db()
    assert campaign.promo_code == "keep"


def test_another_campaigns_promo_code_cannot_be_taken_on_update(manager):
    campaign_create(actor=manager, **promo("TAKEN"))
    other = campaign_create(actor=manager, **promo("MINE"))
    with pytest.raises(CampaignInvalid) as caught:
        campaign_update(campaign=other, actor=manager, promo_code="Taken")
    assert problems_of(caught) == {"promo_code": "promo_code_taken"}


def test_a_race_past_the_check_is_still_a_clean_promo_code_taken(manager, monkeypatch):
    campaign_create(actor=manager, **promo("RACE"))
    # The other writer committed after our check: only the unique index can say so now.
    monkeypatch.setattr("campaigns.validation.promo_code_taken", lambda *a, **k: False)

    with pytest.raises(CampaignInvalid) as caught:
        campaign_create(actor=manager, **promo("race"))

    assert caught.value.code == "promo_code_taken"
    assert Campaign.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"trigger_type": "promo_code"}, "promo_code_required"),
        ({"trigger_type": "auto_deposit", "promo_code": "X1"}, "promo_code_unexpected"),
        ({"trigger_type": "promo_code", "promo_code": "two words"}, "promo_code_format"),
    ],
)
def test_promo_code_rules(manager, fields, code):
    with pytest.raises(CampaignInvalid) as caught:
        campaign_create(actor=manager, **valid_fields(**fields))
    assert problems_of(caught) == {"promo_code": code}


# --- Lifecycle ------------------------------------------------------------------------------

ALLOWED = [(old, new) for old, news in TRANSITIONS.items() for new in news]


def test_the_transitions_are_exactly_the_contracts():
    assert set(ALLOWED) == {
        ("draft", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "ended"),
        ("paused", "ended"),
        ("ended", "archived"),
        ("draft", "archived"),
    }


@pytest.mark.parametrize(("old", "new"), ALLOWED)
def test_each_allowed_transition_moves_and_is_audited(manager, make_campaign, old, new):
    campaign = make_campaign(status=old)
    campaign_set_status(campaign=campaign, status=new, actor=manager, reason="because")

    campaign.refresh_from_db()
    assert campaign.status == new
    (event,) = events(campaign, "campaign.status_changed")
    assert (event.before, event.after) == ({"status": old}, {"status": new})
    assert (event.actor, event.reason) == (manager, "because")


@pytest.mark.parametrize(
    ("old", "new"),
    [(old, new) for old in Status.values for new in Status.values if (old, new) not in ALLOWED],
)
def test_every_other_transition_is_refused(manager, make_campaign, old, new):
    campaign = make_campaign(status=old)
    with pytest.raises(ConflictError) as caught:
        campaign_set_status(campaign=campaign, status=new, actor=manager)
    assert caught.value.code == "invalid_transition"
    campaign.refresh_from_db()
    assert campaign.status == old
    assert events(campaign) == []


def test_of_two_transitions_from_the_same_state_only_the_first_wins(manager, make_campaign):
    campaign = make_campaign(status=Status.ACTIVE)
    seen_by_a = Campaign.objects.get(pk=campaign.pk)
    seen_by_b = Campaign.objects.get(pk=campaign.pk)

    campaign_set_status(campaign=seen_by_a, status=Status.PAUSED, actor=manager)
    with pytest.raises(ConflictError) as caught:
        campaign_set_status(campaign=seen_by_b, status=Status.ENDED, actor=manager)

    assert caught.value.code == "invalid_transition"
    campaign.refresh_from_db()
    assert campaign.status == Status.PAUSED
    assert len(events(campaign, "campaign.status_changed")) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_from_threads_let_exactly_one_win(manager, make_campaign):
    campaign = make_campaign(status=Status.ACTIVE)
    barrier = threading.Barrier(4)
    outcomes = []

    def move(target):
        try:
            seen = Campaign.objects.get(pk=campaign.pk)
            barrier.wait(timeout=10)
            campaign_set_status(campaign=seen, status=target, actor=manager)
            outcomes.append("won")
        except ConflictError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=move, args=(target,))
        for target in (Status.PAUSED, Status.ENDED, Status.PAUSED, Status.ENDED)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["refused", "refused", "refused", "won"]
    assert len(events(campaign, "campaign.status_changed")) == 1


def test_a_campaign_past_its_end_cannot_be_activated(manager, make_campaign, past):
    for status in (Status.DRAFT, Status.PAUSED):
        campaign = make_campaign(status=status, ends_at=past)
        with pytest.raises(ConflictError) as caught:
            campaign_set_status(campaign=campaign, status=Status.ACTIVE, actor=manager)
        assert caught.value.code == "campaign_ended"


def test_a_campaign_that_has_not_started_may_be_activated_but_is_not_live(
    manager, make_campaign, future
):
    campaign = make_campaign(starts_at=future)
    campaign_set_status(campaign=campaign, status=Status.ACTIVE, actor=manager)
    assert not campaign_is_live(campaign)
    assert campaign_is_live(campaign, future + timedelta(seconds=1))
    assert list(campaigns_live(at=future)) == [campaign]


# --- Duplicate ------------------------------------------------------------------------------


def test_a_duplicate_is_a_draft_copy_named_copy_made_by_the_actor(make_user, manager):
    from accounts.roles import Role

    author = make_user(role=Role.SUPER_ADMIN)
    source = campaign_create(
        actor=author, **valid_fields(name="Spring", target_groups=["real\\a"], agent_codes=["IB"])
    )
    campaign_set_status(campaign=source, status=Status.ACTIVE, actor=author)

    copy = campaign_duplicate(campaign=source, actor=manager)

    copy.refresh_from_db()
    assert (copy.name, copy.status, copy.created_by) == ("Spring (copy)", "draft", manager)
    assert (copy.target_groups, copy.agent_codes) == (["real\\a"], ["IB"])
    assert (copy.percentage, copy.max_bonus) == (source.percentage, source.max_bonus)
    (event,) = events(copy)
    assert (event.action, event.after["source_id"]) == ("campaign.duplicated", source.pk)


def test_a_duplicate_drops_a_promo_code_it_would_share_and_must_get_one_to_activate(manager):
    source = campaign_create(actor=manager, **promo("SHARED"))
    copy = campaign_duplicate(campaign=source, actor=manager)
    assert copy.promo_code is None

    with pytest.raises(ConflictError) as caught:
        campaign_set_status(campaign=copy, status=Status.ACTIVE, actor=manager)
    assert caught.value.code == "campaign_incomplete"
    assert caught.value.extra == {"promo_code": ["Promo-code campaigns need a promo code."]}

    campaign_update(campaign=copy, actor=manager, promo_code="SHARED2")
    copy.refresh_from_db()
    campaign_set_status(campaign=copy, status=Status.ACTIVE, actor=manager)


def test_a_duplicate_of_an_archived_campaign_keeps_its_free_promo_code(manager):
    source = campaign_create(actor=manager, **promo("AGAIN"))
    campaign_set_status(campaign=source, status=Status.ARCHIVED, actor=manager)
    copy = campaign_duplicate(campaign=source, actor=manager)
    assert copy.promo_code == "AGAIN"


def test_a_duplicate_of_a_long_name_still_fits(manager, make_campaign):
    copy = campaign_duplicate(campaign=make_campaign(name="x" * 200), actor=manager)
    assert len(copy.name) == 200
    assert copy.name.endswith(" (copy)")


# --- Scan MT5 -------------------------------------------------------------------------------


def test_a_scan_stores_the_servers_groups_and_countries(manager):
    seed_demo_accounts()
    server = SimulatedMT5Gateway()

    scan = mt5_scan(actor=manager)

    assert scan.groups == server.list_groups()
    assert scan.countries == server.list_countries()
    assert scan.groups and scan.countries
    assert mt5_choices() == (scan.groups, scan.countries)
    event = AuditEvent.objects.get(action="mt5_scan.refreshed")
    assert (event.actor, event.before) == (manager, None)


def test_a_second_scan_replaces_the_first_and_records_both(manager):
    mt5_scan(actor=manager)
    assert mt5_choices() == ([], [])
    SimulatedMT5Gateway().add_account(group="real\\vip", country="Chile")

    mt5_scan(actor=manager)

    assert MT5Scan.objects.count() == 1
    assert mt5_choices() == (["real\\vip"], ["Chile"])
    latest = AuditEvent.objects.filter(action="mt5_scan.refreshed").order_by("seq").last()
    assert latest.before == {"groups": [], "countries": []}


def test_a_failed_scan_keeps_the_previous_choices(manager):
    seed_demo_accounts()
    previous = mt5_scan(actor=manager)
    SimulatorKnobs.objects.create(server="mt5", error_rate=1)

    with pytest.raises(TransientGatewayError):
        mt5_scan(actor=manager)

    assert mt5_choices() == (previous.groups, previous.countries)


# --- Expiry ---------------------------------------------------------------------------------


def test_the_sweep_ends_active_and_paused_campaigns_past_their_end(make_campaign):
    now = timezone.now()
    soon = make_campaign(status=Status.ACTIVE, ends_at=now + timedelta(hours=1))
    paused = make_campaign(status=Status.PAUSED, ends_at=now + timedelta(hours=2))
    later = make_campaign(status=Status.ACTIVE, ends_at=now + timedelta(days=2))
    endless = make_campaign(status=Status.ACTIVE)
    draft = make_campaign(status=Status.DRAFT, ends_at=now + timedelta(hours=1))

    with time_machine.travel(now + timedelta(hours=1, seconds=1), tick=False):
        assert not campaign_is_live(soon)
        assert campaigns_end_expired() == 1
    with time_machine.travel(now + timedelta(hours=3), tick=False):
        assert campaigns_end_expired() == 1
        assert campaigns_end_expired() == 0

    statuses = dict(Campaign.objects.values_list("pk", "status"))
    assert statuses == {
        soon.pk: "ended",
        paused.pk: "ended",
        later.pk: "active",
        endless.pk: "active",
        draft.pk: "draft",
    }
    (event,) = events(paused, "campaign.status_changed")
    assert (event.actor_label, event.reason) == ("system", "ends_at passed")
    assert (event.before, event.after) == ({"status": "paused"}, {"status": "ended"})


def test_the_beat_task_calls_the_sweep_and_returns_the_count(make_campaign):
    ends_at = timezone.now() + timedelta(minutes=5)
    make_campaign(status=Status.ACTIVE, ends_at=ends_at)
    with time_machine.travel(ends_at + timedelta(minutes=1), tick=False):
        assert end_expired.run() == 1
    assert end_expired.name == "campaigns.end_expired"
