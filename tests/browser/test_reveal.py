"""A person opens a one-time link: the Reveal page, the secret once, then "already opened"."""

from django.utils import timezone
from django.utils.html import escape
from selenium.webdriver.common.by import By

from delivery.models import Delivery, DeliveryAttempt
from delivery.services import delivery_create

SECRET = "Tr0ub4dor&3-horse"


def body_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def test_a_person_opens_the_link_reveals_once_and_a_reload_says_it_is_used(
    open_page, browser, wait_for, screenshot, live_server
):
    created = delivery_create(
        purpose="browser.credentials:1",
        payload={"login": 5550123, "password": SECRET, "server": "Brokerdesk-Demo"},
        method="api",  # the link is handed to the caller, who gives it to the person
    )
    assert created.link.startswith(f"{live_server.url}/d/")
    path = created.link.removeprefix(live_server.url)

    open_page(path)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Your credentials are ready"
    reveal = browser.find_element(By.CSS_SELECTOR, "form[method=post] button[type=submit]")
    assert reveal.text == "Reveal"
    assert escape(SECRET) not in browser.page_source  # opening the link shows nothing secret
    screenshot("reveal-1-page")

    reveal.click()
    wait_for("dl dd code")  # only the revealed page lists fields
    shown = body_text(browser)
    assert SECRET in shown and "5550123" in shown and "Brokerdesk-Demo" in shown
    screenshot("reveal-2-revealed")

    open_page(path)  # the person opens the link again
    heading = wait_for("h1").text
    page = body_text(browser)
    assert heading == "This link no longer works"
    assert "already been opened" in page
    assert escape(SECRET) not in browser.page_source
    screenshot("reveal-3-used")

    delivery = Delivery.objects.get(pk=created.delivery.pk)
    assert delivery.status == Delivery.Status.REVEALED
    assert delivery.revealed_at <= timezone.now()
    assert list(
        DeliveryAttempt.objects.filter(delivery=delivery)
        .order_by("id")
        .values_list("action", "outcome")
    ) == [("view", "viewed"), ("reveal", "revealed"), ("view", "refused_used")]
