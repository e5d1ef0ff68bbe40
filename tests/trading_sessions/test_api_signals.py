"""signals/ (staff and integration keys) and trades/signals/ (a client's channel subscriptions)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import Role
from accounts.services import api_key_create
from trading_sessions.models import ChannelSubscription, Signal, SignalChannel, Trade

pytestmark = pytest.mark.django_db

SIGNALS = "/api/v1/signals/"
SUBSCRIPTIONS = "/api/v1/trades/signals/"
SUBSCRIBE = "/api/v1/trades/signals/subscribe/"
UNSUBSCRIBE = "/api/v1/trades/signals/unsubscribe/"
SIGNAL = {"channel": "vip-signals", "asset": "EURUSD", "direction": "call", "duration": 60}


@pytest.fixture
def admin_api(make_user, as_user):
    return as_user(make_user(role=Role.SUPER_ADMIN))


@pytest.fixture
def trader(make_user, make_session, subscribed):
    """A client with a running session subscribed to the channel."""
    user = subscribed(make_user())
    make_session(user)
    return user


@pytest.fixture
def client_api(make_user, as_user):
    return as_user(make_user())


# --- POST signals/ --------------------------------------------------------------------------


def test_a_signal_fans_out_to_the_subscribed_running_sessions(admin_api, channel, trader):
    response = admin_api.post(SIGNALS, SIGNAL, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["sessions_targeted"] == 1
    assert body["trades_created"] == 1
    assert body["sessions_skipped"] == 0
    assert body["status"] == "done"
    assert body["skip_reason"] == ""
    trade = Trade.objects.get()
    assert (trade.user, trade.signal_id, trade.amount) == (trader, body["signal_id"], 5)


def test_the_same_ref_twice_is_received_once(admin_api, channel, trader):
    first = admin_api.post(SIGNALS, {**SIGNAL, "ref": "tv-1"}, format="json")
    again = admin_api.post(SIGNALS, {**SIGNAL, "ref": "tv-1"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["signal_id"] == first.json()["signal_id"]
    assert Signal.objects.count() == 1
    assert Trade.objects.count() == 1


def test_a_stale_signal_is_recorded_with_its_reason_and_trades_nothing(admin_api, channel, trader):
    sent_at = (timezone.now() - timedelta(minutes=5)).isoformat()

    response = admin_api.post(SIGNALS, {**SIGNAL, "sent_at": sent_at}, format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "stale"
    assert response.json()["skip_reason"].startswith("stale")
    assert response.json()["trades_created"] == 0
    assert not Trade.objects.exists()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"channel": "no-such-channel"}, "unknown_channel"),
        ({"asset": "$"}, "invalid_asset"),
        ({"sent_at": "2999-01-01T00:00:00Z"}, "invalid_sent_at"),
    ],
)
def test_a_signal_the_service_refuses_is_a_400_with_its_code(admin_api, channel, changes, code):
    response = admin_api.post(SIGNALS, {**SIGNAL, **changes}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Signal.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"duration": 0}, "duration"),
        ({"duration": "1M"}, "duration"),
        ({"sent_at": "last tuesday"}, "sent_at"),
        ({"ref": "r" * 97}, "ref"),
        ({"channel": None}, "channel"),
    ],
)
def test_bad_signal_input_is_a_400_naming_the_field(admin_api, channel, changes, field):
    response = admin_api.post(SIGNALS, {**SIGNAL, **changes}, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_a_clients_key_without_the_signals_scope_cannot_fan_out_a_signal(
    make_user, api, channel, trader
):
    _, raw = api_key_create(user=make_user(), name="not an integration")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")

    response = api.post(SIGNALS, SIGNAL, format="json")

    assert response.status_code == 403
    assert not Signal.objects.exists()


def test_an_integration_key_may_send_signals(make_user, api, channel, trader):
    _, raw = api_key_create(user=make_user(), name="tradingview", scopes=["signals"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")

    response = api.post(SIGNALS, SIGNAL, format="json")

    assert response.status_code == 201
    assert response.json()["trades_created"] == 1
    assert Signal.objects.get().source == "api"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.SUPER_ADMIN, True),
        (Role.CAMPAIGN_MANAGER, True),
        (Role.SUPPORT_AGENT, True),
        (Role.READ_ONLY, True),
        (None, False),
    ],
)
def test_staff_may_send_signals_and_a_client_may_not(make_user, as_user, channel, role, allowed):
    client = as_user(make_user(role=role))

    sent = client.post(SIGNALS, SIGNAL, format="json")
    listed = client.get(SIGNALS)

    assert sent.status_code == (201 if allowed else 403)
    assert listed.status_code == (200 if allowed else 403)
    assert Signal.objects.count() == (1 if allowed else 0)


def test_anonymous_callers_cannot_send_signals(api, channel):
    assert api.post(SIGNALS, SIGNAL, format="json").status_code == 401
    assert api.get(SIGNALS).status_code == 401


def test_the_signal_list_shows_the_fan_out_counts(admin_api, channel, trader):
    admin_api.post(SIGNALS, SIGNAL, format="json")
    admin_api.post(SIGNALS, {**SIGNAL, "asset": "GBPJPY"}, format="json")  # trade in flight

    listing = admin_api.get(SIGNALS).json()

    assert listing["count"] == 2
    newest, oldest = listing["results"]
    assert (newest["asset"], newest["channel"]) == ("GBPJPY", "vip-signals")
    assert (newest["trades_created"], newest["sessions_skipped"]) == (0, 1)
    assert (oldest["trades_created"], oldest["sessions_skipped"]) == (1, 0)


# --- trades/signals/ ------------------------------------------------------------------------


def test_subscribing_answers_the_callers_subscriptions(client_api, channel):
    first = client_api.post(SUBSCRIBE, {"channel": "vip-signals"}, format="json")
    again = client_api.post(SUBSCRIBE, {"channel": "vip-signals"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert [s["channel"] for s in again.json()["subscriptions"]] == ["vip-signals"]
    assert ChannelSubscription.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_subscribes_at_the_same_moment_make_one_subscription_and_one_says_created(
    make_user, channel
):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.concurrency import run_at_once

    user = make_user()
    token = str(RefreshToken.for_user(user).access_token)

    def subscribe(n):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return api.post(SUBSCRIBE, {"channel": "vip-signals"}, format="json").status_code

    codes, errors = run_at_once(subscribe, threads=4)

    assert errors == []
    # Decided by the write, not by a read before it: one 201, the others 200.
    assert sorted(codes) == [200, 200, 200, 201]
    assert ChannelSubscription.objects.count() == 1


def test_the_subscriptions_list_shows_mine_and_the_channels_i_may_take(client_api, channel):
    SignalChannel.objects.create(code="free-signals", name="Free")
    SignalChannel.objects.create(code="retired", name="Retired", is_active=False)
    client_api.post(SUBSCRIBE, {"channel": "vip-signals"}, format="json")

    body = client_api.get(SUBSCRIPTIONS).json()

    assert [s["channel"] for s in body["subscriptions"]] == ["vip-signals"]
    assert body["subscriptions"][0]["name"] == "VIP signals"
    codes = [c["code"] for c in body["channels"]]
    assert codes == sorted(codes)  # the migration's "main" channel may be there too
    assert {"free-signals", "vip-signals"} <= set(codes)


def test_an_unknown_channel_is_a_400(client_api, channel):
    response = client_api.post(SUBSCRIBE, {"channel": "nope"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_channel"


def test_a_free_user_may_take_two_channels(client_api, channel):
    for code in ("second", "third"):
        SignalChannel.objects.create(code=code, name=code)
    answers = [
        client_api.post(SUBSCRIBE, {"channel": code}, format="json")
        for code in ("vip-signals", "second", "third")
    ]

    assert [a.status_code for a in answers] == [201, 201, 409]
    assert answers[-1].json()["code"] == "quota_exceeded"
    assert ChannelSubscription.objects.count() == 2


def test_unsubscribing_by_body_or_query(client_api, channel):
    SignalChannel.objects.create(code="second", name="Second")
    client_api.post(SUBSCRIBE, {"channel": "vip-signals"}, format="json")
    client_api.post(SUBSCRIBE, {"channel": "second"}, format="json")

    by_body = client_api.delete(UNSUBSCRIBE, {"channel": "vip-signals"}, format="json")
    by_query = client_api.delete(f"{UNSUBSCRIBE}?channel=second")

    assert by_body.status_code == 200
    assert [s["channel"] for s in by_body.json()["subscriptions"]] == ["second"]
    assert by_query.status_code == 200
    assert by_query.json()["subscriptions"] == []
    assert not ChannelSubscription.objects.exists()


def test_unsubscribing_from_a_channel_not_taken_or_unknown_is_a_clear_4xx(client_api, channel):
    not_taken = client_api.delete(UNSUBSCRIBE, {"channel": "vip-signals"}, format="json")
    unknown = client_api.delete(UNSUBSCRIBE, {"channel": "nope"}, format="json")
    missing = client_api.delete(UNSUBSCRIBE)

    assert (not_taken.status_code, not_taken.json()["code"]) == (404, "not_subscribed")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_channel")
    assert missing.status_code == 400
    assert "channel" in missing.json()


def test_a_subscription_is_the_callers_own(make_user, as_user, channel):
    as_user(make_user()).post(SUBSCRIBE, {"channel": "vip-signals"}, format="json")
    other = as_user(make_user())

    assert other.get(SUBSCRIPTIONS).json()["subscriptions"] == []
    assert other.delete(UNSUBSCRIBE, {"channel": "vip-signals"}, format="json").status_code == 404
    assert ChannelSubscription.objects.count() == 1
