"""One-time deliveries through the services: create, view, reveal once, expire, supersede."""

import hashlib
import math
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent
from delivery.errors import (
    InvalidDeliveryError,
    LinkExpiredError,
    LinkFailedError,
    LinkNotFoundError,
    LinkSupersededError,
    LinkUsedError,
)
from delivery.models import Delivery, DeliveryAttempt
from delivery.services import (
    deliveries_expire_due,
    delivery_resend,
    delivery_reveal,
    delivery_send_failed,
    delivery_view,
)
from delivery.useragents import is_preview_bot

from .conftest import BASE_URL, PAYLOAD, SECRET, token_of

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
TELEGRAM_PREVIEW = "TelegramBot (like TwitterBot)"


def reveal(token, ip="203.0.113.9", user_agent=BROWSER):
    return delivery_reveal(token=token, ip=ip, user_agent=user_agent)


def outcomes(delivery) -> list[str]:
    return list(delivery.attempts.order_by("at", "id").values_list("outcome", flat=True))


def test_a_delivery_keeps_only_the_hash_of_its_token_and_lives_30_minutes(create):
    with time_machine.travel(NOW, tick=False):
        result = create()

    token = token_of(result)
    delivery = Delivery.objects.get(pk=result.delivery.pk)
    assert result.link == f"{BASE_URL}/d/{token}"
    assert delivery.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert delivery.created_at == NOW
    assert delivery.expires_at == NOW + timedelta(minutes=30)
    assert delivery.revealed_at is None
    row = Delivery.objects.filter(pk=delivery.pk).values().get()
    assert not any(token in str(value) for value in row.values())


def test_a_link_carries_256_random_bits(create):
    tokens = {token_of(create()) for _ in range(20)}

    assert len(tokens) == 20
    # 43 URL-safe base64 characters = 256 bits (>= 128 asked for).
    assert all(len(t) == 43 and math.log2(64) * len(t) >= 256 for t in tokens)


def test_the_lifetime_is_configurable(create, settings):
    settings.DELIVERY_LINK_TTL_MINUTES = 5
    with time_machine.travel(NOW, tick=False):
        delivery = create().delivery
    assert delivery.expires_at == NOW + timedelta(minutes=5)


def test_api_and_qr_are_handed_over_at_once_telegram_and_email_wait_for_their_send(create):
    api = create(method="api").delivery
    qr = create(method="qr").delivery
    telegram = create(method="telegram", contact="5550001").delivery
    email = create(method="email", contact="client@example.com").delivery

    assert (api.status, qr.status) == ("sent", "sent")
    assert api.sent_at is not None
    assert (telegram.status, email.status) == ("pending", "pending")
    assert Delivery.objects.get(pk=api.pk).pending_link is None
    assert Delivery.objects.get(pk=telegram.pk).pending_link.startswith(f"{BASE_URL}/d/")


def test_a_link_reveals_its_payload_once_and_then_answers_gone(create):
    result = create(owner=None)
    token = token_of(result)

    with time_machine.travel(NOW, tick=False):
        revealed = reveal(token)
    with pytest.raises(LinkUsedError) as again:
        reveal(token)

    assert revealed.payload == PAYLOAD
    assert revealed.revealed_at == NOW
    assert again.value.status_code == 410
    assert again.value.code == "link_used"
    delivery = Delivery.objects.get(pk=result.delivery.pk)
    assert (delivery.status, delivery.revealed_at) == ("revealed", NOW)
    assert outcomes(delivery) == ["revealed", "refused_used"]


def test_a_text_payload_comes_back_as_text(create):
    revealed = reveal(token_of(create(payload="user: 42\npass: x-y-z")))
    assert revealed.payload == "user: 42\npass: x-y-z"


def test_a_reveal_wipes_the_ciphertext_and_keeps_the_row_and_its_log(create):
    result = create()
    reveal(token_of(result))

    row = Delivery.objects.filter(pk=result.delivery.pk).values("payload", "pending_link").get()
    assert row == {"payload": None, "pending_link": None}
    assert DeliveryAttempt.objects.filter(delivery=result.delivery).count() == 1


def test_every_attempt_is_logged_with_outcome_ip_and_user_agent(create):
    result = create()
    token = token_of(result)
    delivery_view(token=token, ip="198.51.100.7", user_agent=BROWSER)
    reveal(token, ip="198.51.100.7")
    with pytest.raises(LinkUsedError):
        reveal(token, ip="2001:db8::1", user_agent="curl/8.5")

    rows = list(
        DeliveryAttempt.objects.filter(delivery=result.delivery)
        .order_by("id")
        .values_list("action", "outcome", "ip", "user_agent")
    )
    assert rows == [
        ("view", "viewed", "198.51.100.7", BROWSER),
        ("reveal", "revealed", "198.51.100.7", BROWSER),
        ("reveal", "refused_used", "2001:db8::1", "curl/8.5"),
    ]


def test_an_unknown_token_is_not_found_and_still_logged(db):
    with pytest.raises(LinkNotFoundError) as caught:
        reveal("x" * 43)

    assert (caught.value.status_code, caught.value.code) == (404, "link_not_found")
    [attempt] = DeliveryAttempt.objects.all()
    assert (attempt.delivery_id, attempt.outcome) == (None, "not_found")


def test_an_unknown_token_costs_the_same_work_as_a_wrong_one(create):
    used = token_of(create())
    reveal(used)

    with CaptureQueriesContext(connection) as unknown, pytest.raises(LinkNotFoundError):
        reveal("y" * 43)
    with CaptureQueriesContext(connection) as refused, pytest.raises(LinkUsedError):
        reveal(used)

    def shape(queries):
        return [q["sql"].split()[0] for q in queries.captured_queries]

    assert shape(unknown) == shape(refused)


def test_a_view_reveals_nothing_and_leaves_the_link_revealable(create):
    result = create()
    token = token_of(result)

    state = delivery_view(token=token, ip="203.0.113.9", user_agent=BROWSER)

    assert state.delivery_id == result.delivery.pk
    assert not hasattr(state, "payload")
    assert Delivery.objects.get(pk=result.delivery.pk).status == "sent"
    assert reveal(token).payload == PAYLOAD


def test_a_telegram_link_preview_is_labelled_and_burns_nothing(create):
    result = create()
    token = token_of(result)

    delivery_view(token=token, ip="149.154.161.1", user_agent=TELEGRAM_PREVIEW)

    [preview] = DeliveryAttempt.objects.filter(delivery=result.delivery)
    assert (preview.outcome, preview.is_preview_bot) == ("viewed", True)
    assert reveal(token).payload == PAYLOAD
    assert not DeliveryAttempt.objects.get(outcome="revealed").is_preview_bot


def test_a_view_of_a_used_or_unknown_link_is_refused_like_a_reveal(create):
    token = token_of(create())
    reveal(token)

    with pytest.raises(LinkUsedError):
        delivery_view(token=token, ip=None, user_agent="")
    with pytest.raises(LinkNotFoundError):
        delivery_view(token="nope", ip=None, user_agent="")
    assert list(
        DeliveryAttempt.objects.filter(action="view").values_list("outcome", flat=True)
    ) == ["refused_used", "not_found"]


def test_a_reveal_after_30_minutes_is_gone_and_marks_the_link_expired(create):
    with time_machine.travel(NOW, tick=False):
        result = create()
    token = token_of(result)

    with time_machine.travel(NOW + timedelta(minutes=29, seconds=59), tick=False):
        delivery_view(token=token, ip=None, user_agent="")  # still live
    with (
        time_machine.travel(NOW + timedelta(minutes=30), tick=False),
        pytest.raises(LinkExpiredError) as caught,
    ):
        reveal(token)

    assert (caught.value.status_code, caught.value.code) == (410, "link_expired")
    delivery = Delivery.objects.get(pk=result.delivery.pk)
    assert delivery.status == "expired"
    assert Delivery.objects.filter(pk=delivery.pk, payload=None).exists()
    assert outcomes(delivery) == ["viewed", "refused_expired"]


def test_the_expiry_sweep_expires_overdue_links_and_wipes_them(create):
    with time_machine.travel(NOW, tick=False):
        overdue = [create(method="api"), create(method="telegram", contact="5550001")]
    with time_machine.travel(NOW + timedelta(minutes=20), tick=False):
        fresh = create()
    used = create()
    reveal(token_of(used))

    with time_machine.travel(NOW + timedelta(minutes=31), tick=False):
        assert deliveries_expire_due(batch_size=1) == 2
        assert deliveries_expire_due() == 0

    for result in overdue:
        row = Delivery.objects.filter(pk=result.delivery.pk).values().get()
        assert (row["status"], row["payload"], row["pending_link"]) == ("expired", None, None)
    assert Delivery.objects.get(pk=fresh.delivery.pk).status == "sent"
    assert Delivery.objects.get(pk=used.delivery.pk).status == "revealed"


def test_a_resend_supersedes_the_earlier_links_for_the_same_purpose(create):
    first = create(purpose="demo.account:9")
    second = create(purpose="demo.account:9", method="telegram", contact="5550001")
    unrelated = create(purpose="demo.account:10")

    third = delivery_resend(purpose="demo.account:9", payload={"password": "new"}, method="api")

    for old in (first, second):
        row = Delivery.objects.get(pk=old.delivery.pk)
        assert (row.status, row.superseded_by_id) == ("superseded", third.delivery.pk)
        assert Delivery.objects.filter(pk=row.pk, payload=None, pending_link=None).exists()
        with pytest.raises(LinkSupersededError) as caught:
            reveal(token_of(old))
        assert (caught.value.status_code, caught.value.code) == (410, "link_superseded")
    assert reveal(token_of(unrelated)).payload == PAYLOAD
    assert reveal(token_of(third)).payload == {"password": "new"}


def test_a_resend_with_bad_input_supersedes_nothing(create):
    first = create(purpose="demo.account:9")

    with pytest.raises(InvalidDeliveryError):
        delivery_resend(purpose="demo.account:9", payload="x", method="pigeon")

    assert Delivery.objects.get(pk=first.delivery.pk).status == "sent"


def test_a_delivery_whose_send_failed_cannot_be_revealed(create):
    result = create(method="telegram", contact="5550001")
    delivery_send_failed(delivery_id=result.delivery.pk, error="Bad Request: chat not found")

    with pytest.raises(LinkFailedError):
        reveal(token_of(result))
    row = Delivery.objects.filter(pk=result.delivery.pk).values().get()
    assert (row["status"], row["last_error"]) == ("failed", "Bad Request: chat not found")
    assert (row["payload"], row["pending_link"]) == (None, None)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"method": "pigeon"}, "invalid_method"),
        ({"method": "email", "contact": "not an address"}, "invalid_contact"),
        ({"method": "telegram", "contact": ""}, "invalid_contact"),
        ({"method": "telegram", "contact": "john doe"}, "invalid_contact"),
        ({"payload": ""}, "invalid_delivery"),
        ({"payload": {}}, "invalid_delivery"),
        ({"payload": {"at": datetime.now(UTC)}}, "invalid_delivery"),
        ({"payload": ["a", "list"]}, "invalid_delivery"),
        ({"purpose": "  "}, "invalid_delivery"),
    ],
)
def test_bad_input_is_refused_with_a_code(create, fields, code):
    with pytest.raises(InvalidDeliveryError) as caught:
        create(**fields)
    assert (caught.value.status_code, caught.value.code) == (400, code)
    assert not Delivery.objects.exists()


def test_creating_revealing_and_superseding_are_audited_without_secrets(create, make_user):
    owner = make_user()
    result = create(owner=owner, purpose="demo.account:1")
    delivery_resend(purpose="demo.account:1", payload="again", method="api")
    token = token_of(result)
    with pytest.raises(LinkSupersededError):
        reveal(token)
    fresh = create(purpose="demo.account:2")
    reveal(token_of(fresh), ip="203.0.113.5")

    actions = list(
        AuditEvent.objects.filter(object_type="delivery.delivery")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "delivery.created",
        "delivery.created",
        "delivery.superseded",
        "delivery.created",
        "delivery.revealed",
    ]
    trail = str(list(AuditEvent.objects.values()))
    assert SECRET not in trail
    assert token not in trail
    assert token_of(fresh) not in trail


@pytest.mark.parametrize(
    ("user_agent", "bot"),
    [
        (TELEGRAM_PREVIEW, True),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", True),
        ("Twitterbot/1.0", True),
        ("WhatsApp/2.23.20.0", True),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", True),
        (
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            True,
        ),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        ("Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5", True),
        (BROWSER, False),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1",
            False,
        ),
        ("", False),
    ],
)
def test_link_preview_fetchers_and_crawlers_are_recognised(user_agent, bot):
    assert is_preview_bot(user_agent) is bot
