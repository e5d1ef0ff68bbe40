"""The campaigns admin: list, form, actions and Scan MT5 through the services, per role."""

import pytest
from django.contrib.messages import get_messages

from accounts.models import AuditEvent
from accounts.roles import Role
from campaigns.models import Campaign, MT5Scan
from gateways.models import SimulatorKnobs
from gateways.mt5.simulated import SimulatedMT5Gateway, seed_demo_accounts

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/campaigns/campaign/"
ADD = f"{CHANGELIST}add/"
SCAN = f"{CHANGELIST}scan-mt5/"


def change_url(campaign):
    return f"{CHANGELIST}{campaign.pk}/change/"


def form_data(**overrides):
    """The add/change form as a browser posts it (lists as comma-separated text)."""
    data = {
        "name": "Admin campaign",
        "description": "",
        "bonus_type": "A",
        "percentage": "50",
        "max_bonus": "",
        "fixed_amount": "",
        "convert_per_lot": "",
        "bonus_expiry_days": "",
        "trigger_type": "auto_deposit",
        "promo_code": "",
        "agent_codes": "",
        "target_groups": "",
        "target_countries": "",
        "min_deposit": "0",
        "max_deposit": "",
        "one_per_account": "on",
        "max_concurrent": "",
        "stacking": "exclusive",
        "priority": "0",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
    }
    data.update(overrides)
    return data


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def staff_client(client, make_user):
    def login(role):
        client.force_login(make_user(role=role))
        return client

    return login


def act(client, action, *campaigns):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [c.pk for c in campaigns]},
        follow=True,
    )


# --- Campaign Manager -----------------------------------------------------------------------


def test_the_list_filters_by_status_type_and_trigger_and_searches(manager_client, make_campaign):
    make_campaign(name="Alpha", status="active", description="vip only")
    make_campaign(name="Beta", bonus_type="C", convert_per_lot=5)
    make_campaign(name="Gamma", trigger_type="promo_code", promo_code="GAMMA1")

    page = manager_client.get(CHANGELIST).content.decode()
    assert "Scan MT5" in page
    for name in ("Alpha", "Beta", "Gamma"):
        assert name in page

    def names(query):
        response = manager_client.get(CHANGELIST, query)
        assert response.status_code == 200
        return {c.name for c in response.context["cl"].result_list}

    assert names({"status__exact": "active"}) == {"Alpha"}
    assert names({"bonus_type__exact": "C"}) == {"Beta"}
    assert names({"trigger_type__exact": "promo_code"}) == {"Gamma"}
    assert names({"q": "VIP"}) == {"Alpha"}
    assert names({"q": "gamma1"}) == {"Gamma"}


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        ("activate", "draft", "active"),
        ("pause", "active", "paused"),
        ("activate", "paused", "active"),
        ("end", "active", "ended"),
        ("archive", "ended", "archived"),
    ],
)
def test_a_lifecycle_action_goes_through_the_service_and_is_audited(
    manager_client, manager, make_campaign, action, before, after
):
    campaign = make_campaign(status=before)

    response = act(manager_client, action, campaign)

    assert response.status_code == 200
    campaign.refresh_from_db()
    assert campaign.status == after
    event = AuditEvent.objects.get(action="campaign.status_changed", object_id=str(campaign.pk))
    assert (event.actor, event.after) == (manager, {"status": after})
    assert any("1 campaign(s)" in text for text in texts(response))


def test_an_invalid_transition_in_an_action_is_an_error_message_not_a_500(
    manager_client, make_campaign
):
    fine = make_campaign(name="Fine", status="ended")
    stuck = make_campaign(name="Stuck", status="active")

    response = act(manager_client, "archive", fine, stuck)

    assert response.status_code == 200
    fine.refresh_from_db()
    stuck.refresh_from_db()
    assert (fine.status, stuck.status) == ("archived", "active")
    messages = texts(response)
    assert any(
        "Not archived: Stuck: A campaign cannot go from active to archived" in m for m in messages
    )


def test_the_duplicate_action_makes_draft_copies(manager_client, manager, make_campaign):
    source = make_campaign(name="Summer", status="active")
    act(manager_client, "duplicate", source)
    copy = Campaign.objects.get(name="Summer (copy)")
    assert (copy.status, copy.created_by) == ("draft", manager)


def test_adding_in_the_admin_creates_a_draft_through_the_service(manager_client, manager):
    response = manager_client.post(
        ADD, form_data(agent_codes="IB1, IB2,IB1", target_groups="real\\a\nreal\\b")
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.created_by) == ("draft", manager)
    assert campaign.agent_codes == ["IB1", "IB2"]
    assert campaign.target_groups == ["real\\a", "real\\b"]
    assert AuditEvent.objects.filter(action="campaign.created", actor=manager).exists()


def test_editing_in_the_admin_is_audited_with_before_and_after(manager_client, make_campaign):
    campaign = make_campaign(name="Before", min_deposit=0, max_deposit=None, max_bonus=None)
    response = manager_client.post(change_url(campaign), form_data(name="After"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.name == "After"
    event = AuditEvent.objects.get(action="campaign.updated")
    assert (event.before["name"], event.after["name"]) == ("Before", "After")


def test_the_form_shows_each_rule_next_to_its_field(manager_client, make_campaign):
    make_campaign(trigger_type="promo_code", promo_code="TAKEN")
    response = manager_client.post(
        ADD,
        form_data(percentage="0", bonus_type="C", trigger_type="promo_code", promo_code="taken"),
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["percentage"] == ["Must be more than 0 and at most 1000."]
    assert form.errors["convert_per_lot"] == ["Type C campaigns need it."]
    assert form.errors["promo_code"] == ["Another campaign already uses this code."]
    assert not form.non_field_errors()
    assert Campaign.objects.count() == 1


def test_without_a_scan_groups_and_countries_are_typed_text(manager_client):
    page = manager_client.get(ADD).content.decode()
    assert '<textarea name="target_groups"' in page
    assert "No Scan MT5 yet" in page


def test_after_a_scan_the_form_offers_the_scanned_groups_and_countries(
    manager_client, make_campaign
):
    seed_demo_accounts()
    manager_client.post(SCAN)
    groups = SimulatedMT5Gateway().list_groups()
    campaign = make_campaign(target_groups=["legacy\\gone"])

    page = manager_client.get(change_url(campaign)).content.decode()

    assert '<select name="target_groups"' in page
    assert '<select name="target_countries"' in page
    for group in groups:
        assert f'value="{group}"' in page.replace("\\\\", "\\")
    assert "legacy\\gone (not in the last scan)" in page

    data = form_data(name=campaign.name, target_groups=[groups[0]])
    del data["target_countries"]  # a select with nothing chosen sends nothing
    response = manager_client.post(change_url(campaign), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.target_groups == [groups[0]]


def test_the_scan_button_stores_the_scan_and_says_so(manager_client):
    seed_demo_accounts()
    response = manager_client.post(SCAN, follow=True)
    scan = MT5Scan.objects.get()
    assert scan.groups == SimulatedMT5Gateway().list_groups()
    assert any(m.startswith("Scanned MT5:") for m in texts(response))
    assert manager_client.get(SCAN).status_code == 405


def test_a_scan_that_fails_is_an_error_message(manager_client):
    SimulatorKnobs.objects.create(server="mt5", error_rate=1)
    response = manager_client.post(SCAN, follow=True)
    assert response.status_code == 200
    assert any("did not answer" in m for m in texts(response))
    assert not MT5Scan.objects.exists()


def test_an_archived_campaign_is_shown_read_only(manager_client, make_campaign):
    campaign = make_campaign(status="archived")
    page = manager_client.get(change_url(campaign))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert manager_client.post(change_url(campaign), form_data()).status_code == 403


def test_campaigns_are_never_deleted_in_the_admin(manager_client, make_campaign):
    campaign = make_campaign()
    assert manager_client.get(f"{CHANGELIST}{campaign.pk}/delete/").status_code == 403


# --- Roles that only look -------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.READ_ONLY, Role.SUPPORT_AGENT])
def test_roles_without_campaign_write_see_but_cannot_change(staff_client, make_campaign, role):
    client = staff_client(role)
    campaign = make_campaign(name="Look", status="draft")

    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert "Look" in listing.content.decode()
    assert "Scan MT5</button>" not in listing.content.decode()
    detail = client.get(change_url(campaign))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content

    assert client.post(change_url(campaign), form_data(name="Changed")).status_code == 403
    assert client.get(ADD).status_code == 403
    assert client.post(SCAN).status_code == 403
    act(client, "activate", campaign)
    act(client, "duplicate", campaign)

    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("Look", "draft")
    assert Campaign.objects.count() == 1
    assert not MT5Scan.objects.exists()


def test_a_super_admin_has_the_same_admin_powers(client, make_user, make_campaign):
    client.force_login(make_user(role=Role.SUPER_ADMIN, is_superuser=True))
    campaign = make_campaign()
    act(client, "activate", campaign)
    campaign.refresh_from_db()
    assert campaign.status == "active"
