"""Each staff role signs in to the admin through its login form and sees only its sections."""

import pytest
from selenium.webdriver.common.by import By

from accounts.roles import Role
from operations.dashboard import tile_keys_for

OURS = {
    "accounts",
    "bonuses",
    "campaigns",
    "delivery",
    "demo_pool",
    "licensing",
    "trading_sessions",
}
# What accounts.roles.ROLE_MODEL_PERMISSIONS lets each role view, as admin app sections.
SECTIONS = {
    Role.SUPER_ADMIN: OURS | {"gateways", "django_celery_beat"},
    Role.CAMPAIGN_MANAGER: {"accounts", "bonuses", "campaigns", "trading_sessions"},
    Role.SUPPORT_AGENT: {
        "accounts",
        "bonuses",
        "campaigns",
        "delivery",
        "demo_pool",
        "trading_sessions",
    },
    Role.READ_ONLY: {"accounts", "bonuses", "campaigns", "demo_pool", "trading_sessions"},
}
NEVER_BELOW_SUPER_ADMIN = {"licensing", "gateways", "django_celery_beat", "auth"}


def shown_sections(browser) -> set[str]:
    found = set()
    for module in browser.find_elements(By.CSS_SELECTOR, "#content-main .module[class*='app-']"):
        for name in module.get_attribute("class").split():
            if name.startswith("app-"):
                found.add(name.removeprefix("app-"))
    return found


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.name.lower())
def test_each_staff_role_signs_in_and_sees_only_its_sections(
    role, make_user, admin_login, screenshot
):
    user = make_user(role=role)

    browser = admin_login(user)

    sections = shown_sections(browser)
    screenshot(f"admin-index-{role.name.lower().replace('_', '-')}")
    assert SECTIONS[role] <= sections
    if role == Role.SUPER_ADMIN:
        return
    assert sections & NEVER_BELOW_SUPER_ADMIN == set()
    assert sections & OURS == SECTIONS[role]
    # Its dashboard holds exactly the tiles of what it may view (none about licensing).
    tiles = {
        element.get_attribute("data-tile")
        for element in browser.find_elements(By.CSS_SELECTOR, "#staff-dashboard [data-tile]")
    }
    assert tiles == set(tile_keys_for(user))
    assert "licenses_expiring" not in tiles and "api_calls" not in tiles


def test_a_client_cannot_sign_in_to_the_admin(make_user, open_page, browser, wait_for, screenshot):
    from tests.factories import PASSWORD

    user = make_user()
    open_page("/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys(user.email)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form#login-form [type=submit]").click()

    assert wait_for(".errornote").is_displayed()
    assert browser.find_elements(By.ID, "staff-dashboard") == []
    screenshot("admin-login-refused-client")
