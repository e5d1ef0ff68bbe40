"""The stacking setting of a campaign: API, validation, admin form and list, duplicates."""

import pytest

from accounts.models import AuditEvent
from campaigns.models import Campaign
from campaigns.services import campaign_duplicate

from .conftest import payload
from .test_admin import ADD, CHANGELIST, change_url, form_data

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns/"


def test_a_new_campaign_is_exclusive_with_priority_0_unless_told(as_manager):
    response = as_manager.post(URL, payload(), format="json")

    assert response.status_code == 201, response.json()
    assert (response.json()["stacking"], response.json()["priority"]) == ("exclusive", 0)


def test_stacking_and_priority_are_set_and_changed_through_the_api(as_manager):
    created = as_manager.post(URL, payload(stacking="stackable", priority=7), format="json")
    assert created.status_code == 201, created.json()
    assert (created.json()["stacking"], created.json()["priority"]) == ("stackable", 7)

    url = f"{URL}{created.json()['id']}/"
    changed = as_manager.patch(url, {"stacking": "exclusive", "priority": 1000}, format="json")

    assert changed.status_code == 200, changed.json()
    campaign = Campaign.objects.get(pk=created.json()["id"])
    assert (campaign.stacking, campaign.priority) == ("exclusive", 1000)
    event = AuditEvent.objects.get(action="campaign.updated")
    assert (event.before["stacking"], event.after["stacking"]) == ("stackable", "exclusive")


@pytest.mark.parametrize(
    "overrides",
    [
        {"stacking": "sometimes"},
        {"stacking": None},
        {"priority": -1},
        {"priority": 1001},
        {"priority": "1e2"},
        {"priority": "\uff15"},  # a full-width digit five
        {"priority": 2.5},
        {"priority": None},
    ],
)
def test_a_bad_stacking_setting_is_a_400_naming_its_field(as_manager, overrides):
    response = as_manager.post(URL, payload(**overrides), format="json")

    assert response.status_code == 400, response.content
    assert set(overrides) <= set(response.json())
    assert not Campaign.objects.exists()


def test_the_admin_form_shows_the_setting_and_saves_it(manager_client):
    page = manager_client.get(ADD).content.decode()
    assert 'name="stacking"' in page and 'name="priority"' in page
    assert "On one deposit" in page

    response = manager_client.post(ADD, form_data(stacking="stackable", priority="3"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()
    assert (campaign.stacking, campaign.priority) == ("stackable", 3)


def test_the_admin_form_refuses_a_priority_out_of_range_next_to_its_field(
    manager_client, make_campaign
):
    campaign = make_campaign()
    response = manager_client.post(change_url(campaign), form_data(priority="5000"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["priority"] == ["Must be from 0 to 1000."]


def test_the_admin_list_shows_and_filters_by_stacking(manager_client, make_campaign):
    make_campaign(name="Solo campaign")
    make_campaign(name="Shared campaign", stacking="stackable", priority=4)

    page = manager_client.get(f"{CHANGELIST}?stacking__exact=stackable").content.decode()

    assert "Shared campaign" in page
    assert "Solo campaign" not in page


def test_a_duplicate_keeps_the_setting(make_campaign, manager):
    original = make_campaign(stacking="stackable", priority=9)

    copy = campaign_duplicate(campaign=original, actor=manager)

    assert (copy.stacking, copy.priority) == ("stackable", 9)


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def test_an_admin_post_without_the_setting_keeps_what_the_campaign_has(
    manager_client, make_campaign
):
    campaign = make_campaign(
        name="Kept", stacking="stackable", priority=6, min_deposit=0, max_deposit=None
    )
    data = form_data(name="Renamed", max_bonus="500")
    del data["stacking"], data["priority"]

    response = manager_client.post(change_url(campaign), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert (campaign.name, campaign.stacking, campaign.priority) == ("Renamed", "stackable", 6)
