"""Fixtures of the delivery tests.

- Every test runs under fixed keys (`KEY1`, id "k1"), whatever the environment holds, and links
  point at `https://desk.example`.
- `create(**fields) -> DeliveryResult`: `delivery_create` with defaults (api, a dict payload).
- `token_of(result_or_link)`: the token in a link.
- `telegram`: the gateway the channel uses, recording every call's arguments (on top of the
  simulated server's outbox); `.fail_next(error, times)` makes the next sends raise.
- `eager_tasks`: Celery runs tasks in the calling thread (retries included, without waiting).
"""

import base64

import pytest

from gateways.loading import reset_gateways
from gateways.telegram.simulated import SimulatedTelegramGateway

KEY1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
KEY2 = "k2:" + base64.b64encode(bytes(range(100, 132))).decode()
BASE_URL = "https://desk.example"
PAYLOAD = {"login": 5550123, "password": "Tr0ub4dor&3-horse", "server": "Brokerdesk-Demo"}
SECRET = PAYLOAD["password"]


@pytest.fixture(autouse=True)
def _delivery_settings(settings):
    settings.ENCRYPTION_KEYS = KEY1
    settings.PUBLIC_BASE_URL = BASE_URL
    settings.DELIVERY_LINK_TTL_MINUTES = 30
    settings.DELIVERY_REVEAL_RATE_LIMIT = "1000/min"
    settings.DELIVERY_VIEW_RATE_LIMIT = "1000/min"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def create(db):
    from delivery.services import delivery_create

    def make(**fields):
        fields.setdefault("purpose", "test.credentials:1")
        fields.setdefault("payload", dict(PAYLOAD))
        fields.setdefault("method", "api")
        return delivery_create(**fields)

    return make


def token_of(result_or_link) -> str:
    link = getattr(result_or_link, "link", result_or_link)
    return link.rstrip("/").rsplit("/", 1)[1]


class RecordingTelegramGateway(SimulatedTelegramGateway):
    """The simulated server, plus every call's keyword arguments and faults on demand."""

    calls: list[dict] = []
    faults: list[Exception] = []

    def send_message(self, **kwargs) -> int:
        type(self).calls.append(kwargs)
        if type(self).faults:
            raise type(self).faults.pop(0)
        return super().send_message(**kwargs)


@pytest.fixture
def telegram(settings):
    settings.TELEGRAM_GATEWAY = "tests.delivery.conftest.RecordingTelegramGateway"
    reset_gateways()
    RecordingTelegramGateway.calls = []
    RecordingTelegramGateway.faults = []

    class Control:
        calls = RecordingTelegramGateway.calls

        @staticmethod
        def fail_next(error: Exception, times: int = 1) -> None:
            RecordingTelegramGateway.faults.extend([error] * times)

        @staticmethod
        def sent() -> list[tuple[str, str]]:
            from gateways.models import SimulatedTelegramMessage

            return list(
                SimulatedTelegramMessage.objects.order_by("pk").values_list("chat_id", "text")
            )

    yield Control
    reset_gateways()


@pytest.fixture
def eager_tasks():
    from celery import current_app

    conf = current_app.conf
    before = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, False
    yield
    conf.task_always_eager, conf.task_eager_propagates = before
