"""`/d/<token>`: a page with a Reveal button (no JavaScript), private answers, rate limits."""

import re

import pytest
import time_machine
from django.test import Client
from django.utils.html import escape

from delivery.models import Delivery, DeliveryAttempt

from .conftest import SECRET, token_of

pytestmark = pytest.mark.django_db

TELEGRAM_PREVIEW = "TelegramBot (like TwitterBot)"


def page(token: str) -> str:
    return f"/d/{token}"


def assert_private(response, referrer_policy="no-referrer"):
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
    assert response["Referrer-Policy"] == referrer_policy
    assert response["X-Robots-Tag"].startswith("noindex")


def test_opening_the_link_shows_a_reveal_button_and_nothing_secret(client, create):
    result = create()

    response = client.get(page(token_of(result)))

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<form method="post" action="">', html)
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<button type="submit">Reveal</button>' in html
    assert "<script" not in html
    assert escape(SECRET) not in html
    assert token_of(result) not in html  # the form posts to the address it came from
    assert_private(response, referrer_policy="same-origin")
    assert Delivery.objects.get(pk=result.delivery.pk).status == "sent"


def test_a_telegram_preview_of_the_link_leaves_it_revealable(client, create):
    result = create()

    preview = client.get(page(token_of(result)), HTTP_USER_AGENT=TELEGRAM_PREVIEW)
    revealed = client.post(page(token_of(result)))

    assert preview.status_code == 200
    assert revealed.status_code == 200
    assert escape(SECRET) in revealed.content.decode()
    assert list(
        DeliveryAttempt.objects.order_by("id").values_list("outcome", "is_preview_bot")
    ) == [("viewed", True), ("revealed", False)]


def test_pressing_reveal_shows_the_payload_once_on_a_private_page(client, create):
    result = create(payload={"login": 5550123, "password": SECRET, "server": "Demo"})
    token = token_of(result)

    first = client.post(page(token))
    second = client.post(page(token))

    html = first.content.decode()
    assert first.status_code == 200
    assert "<dt>password</dt>" in html
    assert f"<code>{escape(SECRET)}</code>" in html
    assert "<dt>login</dt>" in html and "<code>5550123</code>" in html
    assert "<script" not in html
    assert_private(first)
    assert second.status_code == 410
    assert escape(SECRET) not in second.content.decode()
    assert "already been opened" in second.content.decode()
    assert_private(second)


def test_a_text_payload_is_shown_preformatted(client, create):
    response = client.post(page(token_of(create(payload="line one\nline two"))))
    assert "<pre>line one\nline two</pre>" in response.content.decode()


def test_an_unknown_link_is_a_404_page(client, db):
    response = client.get(page("A" * 43))
    assert response.status_code == 404
    assert "Link not found" in response.content.decode()
    assert_private(response)
    assert client.post(page("A" * 43)).status_code == 404


def test_an_expired_link_is_a_410_page(client, create):
    with time_machine.travel("2026-03-02 12:00Z", tick=False):
        token = token_of(create())
    with time_machine.travel("2026-03-02 12:31Z", tick=False):
        view = client.get(page(token))
        reveal = client.post(page(token))

    assert view.status_code == reveal.status_code == 410
    assert "expired" in reveal.content.decode()


def test_a_trailing_slash_still_reaches_the_page(client, create):
    token = token_of(create())
    assert client.get(page(token) + "/").status_code == 200
    assert client.post(page(token) + "/").status_code == 200


def test_too_many_reveals_from_one_address_are_answered_429_with_retry_after(
    client, create, settings
):
    settings.DELIVERY_REVEAL_RATE_LIMIT = "3/min"

    with time_machine.travel("2026-03-02 12:00:10Z", tick=False):
        token = token_of(create())
        answers = [client.post(page("B" * 43)).status_code for _ in range(3)]
        limited = client.post(page(token))
        elsewhere = client.post(page(token), REMOTE_ADDR="198.51.100.20")

    assert answers == [404, 404, 404]
    assert limited.status_code == 429
    assert limited["Retry-After"] == "50"
    assert_private(limited)
    assert elsewhere.status_code == 200  # another address has its own budget
    with time_machine.travel("2026-03-02 12:01:00Z", tick=False):
        assert client.post(page(token)).status_code == 410  # new window


def test_page_views_have_their_own_looser_limit(client, create, settings):
    settings.DELIVERY_VIEW_RATE_LIMIT = "2/min"
    with time_machine.travel("2026-03-02 12:00:10Z", tick=False):
        token = token_of(create())
        views = [client.get(page(token)).status_code for _ in range(3)]
        reveal = client.post(page(token))
    assert views == [200, 200, 429]
    assert reveal.status_code == 200


def test_the_reveal_form_passes_djangos_csrf_check_over_https(create, settings):
    settings.SECURE_SSL_REDIRECT = False
    browser = Client(enforce_csrf_checks=True)
    token = token_of(create())

    form = browser.get(page(token), secure=True)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode())[1]
    revealed = browser.post(
        page(token),
        {"csrfmiddlewaretoken": csrf},
        secure=True,
        HTTP_ORIGIN="https://testserver",
    )

    assert revealed.status_code == 200
    assert escape(SECRET) in revealed.content.decode()


def test_a_reveal_without_the_csrf_token_is_refused_and_burns_nothing(create, caplog):
    browser = Client(enforce_csrf_checks=True)
    token = token_of(create())

    refused = browser.post(page(token))

    assert refused.status_code == 403
    assert "Enable cookies" in refused.content.decode()
    assert_private(refused)
    assert token not in caplog.text
    assert Delivery.objects.get(token_hash__isnull=False).status == "sent"


def test_only_get_and_post_are_answered(client, create):
    assert client.put(page(token_of(create()))).status_code == 405


@pytest.mark.parametrize("method", ["get", "post"])
def test_with_the_database_refusing_the_page_says_try_again_and_burns_nothing(
    client, create, monkeypatch, method
):
    from django.db import OperationalError

    token = token_of(create())

    def refused(**kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr("delivery.views.delivery_view", refused)
    monkeypatch.setattr("delivery.views.delivery_reveal", refused)
    response = getattr(client, method)(page(token))
    monkeypatch.undo()

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "try again in a minute" in response.content.decode()
    assert token not in response.content.decode()
    assert_private(response)
    # The database back, the link still reveals its secret once.
    revealed = client.post(page(token))
    assert revealed.status_code == 200
    assert escape(SECRET) in revealed.content.decode()
