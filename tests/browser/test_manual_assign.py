"""A Support Agent assigns a bonus by hand to an account that fails rules which can be
overridden: the admin asks for confirmation, and the override is recorded."""

from decimal import Decimal

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from accounts.roles import Role
from bonuses.models import Bonus
from gateways.models import SimulatedMT5Deal

from .product import campaign_live, mt5_account


def test_a_support_agent_confirms_the_overridable_failures_and_assigns(
    make_user, admin_login, open_page, wait_for, wait_until, screenshot
):
    login = mt5_account(group="real\\standard", country="Cyprus", balance="100.00")
    deal = SimulatedMT5Deal.objects.get(account_id=login, action="balance").ticket
    campaign = campaign_live(
        name="Germany VIP", target_groups=["real\\vip"], target_countries=["Germany"]
    )
    agent = make_user(role=Role.SUPPORT_AGENT)
    browser = admin_login(agent)

    open_page("/admin/bonuses/bonus/assign/")
    browser.find_element(By.ID, "id_login").send_keys(str(login))
    Select(browser.find_element(By.ID, "id_campaign")).select_by_visible_text(str(campaign))
    browser.find_element(By.ID, "id_deal_id").send_keys(str(deal))  # the real deposit
    browser.find_element(By.ID, "id_deposit_amount").send_keys("100.00")
    screenshot("assign-1-form")
    browser.find_element(By.CSS_SELECTOR, "input[value='Check and assign']").click()

    override = wait_for("input[value='Override and assign']")
    page = browser.find_element(By.ID, "content").text
    assert "group_mismatch" in page and "country_mismatch" in page
    assert "fails 2 rules of Germany VIP" in page
    assert not Bonus.objects.exists()
    screenshot("assign-2-confirmation")

    browser.find_element(By.ID, "id_reason").send_keys("Desk approved: moving to VIP next week")
    override.click()

    wait_until(lambda driver: "/change/" in driver.current_url, "no redirect to the bonus")
    wait_for("#bonus_form, #content-main")
    bonus = Bonus.objects.get()
    assert browser.current_url.endswith(f"/admin/bonuses/bonus/{bonus.pk}/change/")
    assert (bonus.login, bonus.campaign_id, bonus.trigger) == (login, campaign.pk, "manual")
    assert bonus.status == Bonus.Status.ACTIVE
    assert bonus.amount == Decimal("50.00")
    assert bonus.granted_by == agent
    assert bonus.override_reason == "Desk approved: moving to VIP next week"
    assert {f["code"] for f in bonus.overridden_failures} == {"group_mismatch", "country_mismatch"}
    screenshot("assign-3-assigned")
