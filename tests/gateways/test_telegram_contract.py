"""One contract for the Telegram gateway, run against the simulated server and the HTTP
client (talking to a stand-in on a real socket)."""

import socket
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from gateways.errors import GatewayError, PermanentGatewayError, TransientGatewayError
from gateways.loading import reset_gateways
from gateways.models import SimulatedTelegramMessage, SimulatedTelegramUpdate, SimulatorKnobs
from gateways.telegram import TelegramGateway, get_telegram_gateway

from .standin import StandIn
from .telegram_server import TelegramServer

pytestmark = pytest.mark.django_db

TOKEN = "123456789:AAF-secret-bot-token-do-not-leak"
CHANNEL = "-1002526280469"


@dataclass
class Telegram:
    """The gateway under test plus its server's outbox and a way to post to its inbox."""

    gateway: TelegramGateway
    sent: Callable[[], list[tuple[str, str]]]
    post_update: Callable[[str, str, str], int]  # (chat_id, chat_username, text) -> update id


@contextmanager
def standin_server(settings) -> Iterator[tuple[TelegramServer, StandIn]]:
    server = TelegramServer(token=TOKEN)
    with StandIn(server.handle) as standin:
        settings.TELEGRAM_GATEWAY = "gateways.telegram.http.HttpTelegramGateway"
        settings.TELEGRAM_API_URL = standin.url
        settings.TELEGRAM_BOT_TOKEN = TOKEN
        settings.TELEGRAM_REQUEST_TIMEOUT_SECONDS = 5
        settings.GATEWAY_MAX_RETRIES = 2
        settings.GATEWAY_BACKOFF_SECONDS = 0  # retries without waiting
        reset_gateways()
        yield server, standin
    reset_gateways()


def _post_simulated(chat_id: str, chat_username: str, text: str) -> int:
    return SimulatedTelegramUpdate.objects.create(
        chat_id=chat_id, chat_username=chat_username, text=text
    ).pk


@pytest.fixture(params=["simulated", "http"])
def telegram(request, settings) -> Iterator[Telegram]:
    if request.param == "simulated":
        settings.TELEGRAM_GATEWAY = "gateways.telegram.simulated.SimulatedTelegramGateway"
        reset_gateways()
        yield Telegram(
            gateway=get_telegram_gateway(),
            sent=lambda: list(
                SimulatedTelegramMessage.objects.order_by("pk").values_list("chat_id", "text")
            ),
            post_update=_post_simulated,
        )
        reset_gateways()
    else:
        with standin_server(settings) as (server, _):
            yield Telegram(
                gateway=get_telegram_gateway(),
                sent=lambda: list(server.sent),
                post_update=lambda chat_id, username, text: server.post_update(
                    chat_id=chat_id, chat_username=username, text=text
                ),
            )


@pytest.fixture
def http_telegram(settings) -> Iterator[tuple[TelegramGateway, TelegramServer, StandIn]]:
    with standin_server(settings) as (server, standin):
        yield get_telegram_gateway(), server, standin


def assert_token_not_shown(error: GatewayError) -> None:
    shown = "".join(traceback.format_exception(error))
    assert TOKEN not in shown
    assert TOKEN.split(":")[1] not in shown


def test_the_api_answers_a_ping(telegram):
    telegram.gateway.ping()


def test_a_sent_message_reaches_the_outbox_with_its_own_id(telegram):
    first = telegram.gateway.send_message(chat_id="5550001", text="Your link: https://x/1")
    second = telegram.gateway.send_message(chat_id="@brokerdesk_news", text="Hello")

    assert first != second
    assert telegram.sent() == [("5550001", "Your link: https://x/1"), ("@brokerdesk_news", "Hello")]


def test_a_message_to_a_chat_telegram_cannot_find_is_a_permanent_error(telegram):
    with pytest.raises(PermanentGatewayError):
        telegram.gateway.send_message(chat_id="no such chat", text="Hello")

    assert telegram.sent() == []


def test_channel_posts_come_back_as_updates_oldest_first(telegram):
    first = telegram.post_update(CHANNEL, "signals_vip", "EURUSD CALL 1m")
    second = telegram.post_update(CHANNEL, "signals_vip", "GBPUSD PUT 5m")

    updates = telegram.gateway.get_updates()

    assert [u.update_id for u in updates] == [first, second]
    assert updates[0].chat_id == CHANNEL
    assert updates[0].chat_username == "signals_vip"
    assert updates[0].text == "EURUSD CALL 1m"
    assert updates[0].date.tzinfo is not None


def test_reading_with_an_offset_confirms_the_updates_below_it(telegram):
    telegram.post_update(CHANNEL, "signals_vip", "one")
    second = telegram.post_update(CHANNEL, "signals_vip", "two")
    third = telegram.post_update(CHANNEL, "signals_vip", "three")

    assert [u.update_id for u in telegram.gateway.get_updates(offset=second)] == [second, third]
    assert [u.update_id for u in telegram.gateway.get_updates()] == [second, third]
    assert [u.update_id for u in telegram.gateway.get_updates(offset=third + 1)] == []


def test_get_updates_returns_at_most_the_limit(telegram):
    first = telegram.post_update(CHANNEL, "signals_vip", "one")
    telegram.post_update(CHANNEL, "signals_vip", "two")

    assert [u.update_id for u in telegram.gateway.get_updates(limit=1)] == [first]


def test_the_simulated_api_fails_transiently_when_its_error_rate_is_one(settings):
    settings.TELEGRAM_GATEWAY = "gateways.telegram.simulated.SimulatedTelegramGateway"
    reset_gateways()
    SimulatorKnobs.objects.create(server="telegram", error_rate=1)

    with pytest.raises(TransientGatewayError):
        get_telegram_gateway().ping()
    with pytest.raises(TransientGatewayError):
        get_telegram_gateway().send_message(chat_id="5550001", text="Hello")
    assert not SimulatedTelegramMessage.objects.exists()


def test_a_refused_message_names_the_method_but_never_the_bot_token(http_telegram):
    gateway, _, _ = http_telegram

    with pytest.raises(PermanentGatewayError) as caught:
        gateway.send_message(chat_id="no such chat", text="Hello")

    assert "sendMessage" in str(caught.value)
    assert_token_not_shown(caught.value)


def test_an_unreachable_api_error_never_shows_the_bot_token(settings):
    with socket.socket() as probe:  # a port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.TELEGRAM_GATEWAY = "gateways.telegram.http.HttpTelegramGateway"
    settings.TELEGRAM_API_URL = f"http://127.0.0.1:{port}"
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.GATEWAY_MAX_RETRIES = 0
    reset_gateways()

    with pytest.raises(TransientGatewayError) as caught:
        get_telegram_gateway().send_message(chat_id="5550001", text="Hello")

    assert "sendMessage" in str(caught.value)
    assert_token_not_shown(caught.value)
    reset_gateways()


def test_a_429_is_a_transient_error_and_the_send_is_not_repeated(http_telegram):
    gateway, server, standin = http_telegram
    server.retry_after = 30

    with pytest.raises(TransientGatewayError) as caught:
        gateway.send_message(chat_id="5550001", text="Hello")

    assert len(standin.requests) == 1
    assert server.sent == []
    assert_token_not_shown(caught.value)


def test_a_wrong_bot_token_is_a_permanent_error(http_telegram, settings):
    gateway, _, _ = http_telegram
    settings.TELEGRAM_BOT_TOKEN = "987:wrong"

    with pytest.raises(PermanentGatewayError):
        gateway.ping()
