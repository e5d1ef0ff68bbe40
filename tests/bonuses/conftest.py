"""Fixtures shared by the bonus tests (engine, API, admin, reports).

- `mt5`: the simulated MT5 server, also what `get_mt5_gateway()` returns during the test.
- `account(**fields) -> int`: an account on that server (1,000.00 balance, 1:500 by default).
- `deposit(login, amount) -> deal_id`: a client's deposit, a balance deal on that server;
  `deposit_deal(login) -> deal_id`: the account's latest deposit deal (its opening balance).
- `campaign_factory(**fields) -> Campaign`: an ACTIVE campaign written with the ORM.
- `faulty_mt5`: the simulated server with faults on demand (`fail_next(...)`), installed as
  the gateway the engine uses.
- `deposited_accounts(count, amount=, leverage=) -> logins` (a function, not a fixture):
  accounts opened a month ago, watched by the monitor, each with a new deposit on the server.
- `webapi`: the Web API client as the engine's gateway, talking to a stand-in on a loopback
  port (yields the stand-in); `market`: the clients and the market on the rows it serves;
  `watched(balance=, leverage=) -> login`: an account opened a month ago, discovered through
  the Web API. Tests using them are `django_db(transaction=True)`.

They only build state; they never go through the engine's services.
"""

import itertools
from decimal import Decimal

import pytest

from gateways.errors import UnknownOutcomeError
from gateways.loading import reset_gateways
from gateways.mt5.simulated import SimulatedMT5Gateway

SIMULATED = "gateways.mt5.simulated.SimulatedMT5Gateway"
FAULTY = "tests.bonuses.conftest.FaultyMT5Gateway"

_campaign_numbers = itertools.count(1)


class FaultyMT5Gateway(SimulatedMT5Gateway):
    """The simulated server, except that the next calls of a method can fail on purpose.

    `fail_next("post_credit", UnknownOutcomeError, after_write=True)` makes the next
    `post_credit` do the write on the server and then raise (the answer was lost);
    `after_write=False` raises before anything happens. `times` repeats the fault.
    `calls[name]` counts every call that reached the method. With `forbid_transactions`
    set, a call made inside a database transaction fails the test (use it with
    `django_db(transaction=True)`, where the test itself opens no transaction).
    """

    def __init__(self):
        self.faults: dict[str, list[tuple[type[Exception], bool]]] = {}
        self.calls: dict[str, int] = {}
        self.forbid_transactions = False
        self.calls_inside_transactions: list[str] = []

    def fail_next(
        self,
        method: str,
        error: type[Exception] = UnknownOutcomeError,
        *,
        after_write: bool = False,
        times: int = 1,
    ) -> None:
        self.faults.setdefault(method, []).extend([(error, after_write)] * times)

    def _call(self, name, *args, **kwargs):
        from django.db import connection

        if self.forbid_transactions and connection.in_atomic_block:
            self.calls_inside_transactions.append(name)
        self.calls[name] = self.calls.get(name, 0) + 1
        queue = self.faults.get(name)
        fault = queue.pop(0) if queue else None
        if fault is not None and not fault[1]:
            raise fault[0](f"injected fault before {name}", gateway="mt5")
        result = getattr(super(), name)(*args, **kwargs)
        if fault is not None:
            raise fault[0](f"injected fault after {name}", gateway="mt5")
        return result

    def post_credit(self, login, amount, *, comment):
        return self._call("post_credit", login, amount, comment=comment)

    def post_balance(self, login, amount, *, comment):
        return self._call("post_balance", login, amount, comment=comment)

    def set_leverage(self, login, leverage):
        return self._call("set_leverage", login, leverage)

    def close_positions(self, login, *, comment):
        return self._call("close_positions", login, comment=comment)

    def find_deal_by_comment(self, login, comment):
        return self._call("find_deal_by_comment", login, comment)

    def get_accounts(self, logins):
        return self._call("get_accounts", logins)

    def get_positions(self, logins):
        return self._call("get_positions", logins)


def deposited_accounts(count: int, *, amount="200.00", leverage=300) -> list[int]:
    """`count` accounts opened a month ago (their opening balance is history), watched by the
    monitor, each with a new deposit of `amount` on the server, for the next sweep to see."""
    from datetime import timedelta

    from django.db.models import F
    from django.utils import timezone

    from accounts.models import MonitoredAccount
    from accounts.services import monitor_discover
    from gateways.models import SimulatedMT5Account, SimulatedMT5Deal

    market = SimulatedMT5Gateway()
    logins = [
        market.add_account(balance=Decimal("1000.00"), leverage=leverage) for _ in range(count)
    ]
    month_ago = timezone.now() - timedelta(days=30)
    SimulatedMT5Account.objects.filter(pk__in=logins).update(registered_at=month_ago)
    SimulatedMT5Deal.objects.filter(account_id__in=logins).update(time=month_ago)
    monitor_discover()
    # MT5 deal times are whole seconds: watched from a second back, a deposit made in the
    # second of the discovery still counts.
    MonitoredAccount.objects.update(watch_from=F("watch_from") - timedelta(seconds=1))
    for login in logins:
        market.post_balance(login, Decimal(amount), comment="")
    return logins


@pytest.fixture(autouse=True)
def _simulated_mt5(settings):
    """Every bonus test talks to the simulated server, whatever the environment says."""
    settings.MT5_GATEWAY = SIMULATED
    reset_gateways()
    yield
    reset_gateways()


@pytest.fixture
def mt5(db):
    """The simulated MT5 server; `get_mt5_gateway()` returns this same instance."""
    from gateways.mt5 import get_mt5_gateway

    return get_mt5_gateway()


@pytest.fixture
def faulty_mt5(db, settings):
    """A `FaultyMT5Gateway`, installed as the gateway: call `.fail_next(...)` to inject faults."""
    from gateways.mt5 import get_mt5_gateway

    settings.MT5_GATEWAY = FAULTY
    reset_gateways()
    return get_mt5_gateway()


@pytest.fixture
def account(db):
    """`account(login=None, balance="1000.00", leverage=500, **fields) -> login`.

    Adds an account to the simulated server (`SimulatedMT5Gateway.add_account`: `group`,
    `country`, `credit`, `lead_source`, `name`, ... pass through). The balance arrives as a
    deposit deal, as a real deposit would; triggering a bonus for it is up to the test.
    """

    def make(*, login=None, balance="1000.00", leverage=500, **fields) -> int:
        return SimulatedMT5Gateway().add_account(
            login=login, balance=Decimal(str(balance)), leverage=leverage, **fields
        )

    return make


@pytest.fixture
def campaign_factory(db):
    """`campaign_factory(**fields) -> Campaign`: an ACTIVE campaign saved with the ORM.

    Defaults: Type A, 50%, auto_deposit, no dates, the model's defaults for the rest
    (one_per_account=True, min_deposit 0, no max_bonus/max_deposit/max_concurrent, no expiry).
    Type C gets convert_per_lot 10.00 and registration campaigns fixed_amount 50.00 unless
    given. Money may be passed as str, int or Decimal (never float).
    """
    from campaigns.models import Campaign

    def make(**fields):
        fields.setdefault("name", f"Campaign {next(_campaign_numbers)}")
        fields.setdefault("status", Campaign.Status.ACTIVE)
        fields.setdefault("bonus_type", Campaign.BonusType.A)
        fields.setdefault("percentage", Decimal("50"))
        fields.setdefault("trigger_type", Campaign.TriggerType.AUTO_DEPOSIT)
        if fields["bonus_type"] == Campaign.BonusType.C:
            fields.setdefault("convert_per_lot", Decimal("10.00"))
        if fields["trigger_type"] == Campaign.TriggerType.REGISTRATION:
            fields.setdefault("fixed_amount", Decimal("50.00"))
        for name in ("percentage", "max_bonus", "min_deposit", "max_deposit", "convert_per_lot"):
            if isinstance(fields.get(name), float):
                raise TypeError(f"{name}: money is never a float")
            if fields.get(name) is not None:
                fields[name] = Decimal(str(fields[name]))
        if fields.get("fixed_amount") is not None:
            fields["fixed_amount"] = Decimal(str(fields["fixed_amount"]))
        return Campaign.objects.create(**fields)

    return make


@pytest.fixture
def deposit(db):
    """`deposit(login, amount) -> deal_id`: a deposit posted on the simulated server, as a
    client's payment would be (the engine only credits deposits the server really holds)."""

    def post(login: int, amount) -> int:
        return SimulatedMT5Gateway().post_balance(login, Decimal(str(amount)), comment="Deposit")

    return post


@pytest.fixture
def deposit_deal(db):
    """`deposit_deal(login) -> deal_id`: the account's latest deposit deal on the server."""
    from gateways.models import SimulatedMT5Deal

    def latest(login: int) -> int:
        deals = SimulatedMT5Deal.objects.filter(account_id=login, action="balance", profit__gt=0)
        return deals.latest("ticket").ticket

    return latest


# --- The Web API client against the stand-in ---------------------------------------------------

WEBAPI = "gateways.mt5.webapi.gateway.WebApiMT5Gateway"


@pytest.fixture
def webapi(transactional_db, settings):
    """The engine's gateway is the Web API client, talking to a stand-in on a loopback port.

    Yields the stand-in (its test hooks: `fail_next`, `expire_sessions`, `drop_connections`);
    `get_mt5_gateway()` is the `WebApiMT5Gateway` the product uses.
    """
    from gateways.mt5 import get_mt5_gateway
    from tests.gateways.mt5_webapi_standin import (
        MANAGER_LOGIN,
        MANAGER_PASSWORD,
        running_standin,
    )

    with running_standin(groups=("demo\\standard",)) as (url, standin):
        settings.MT5_GATEWAY = WEBAPI
        settings.MT5_WEBAPI_URL = url
        settings.MT5_MANAGER_LOGIN = str(MANAGER_LOGIN)
        settings.MT5_MANAGER_PASSWORD = MANAGER_PASSWORD
        settings.MT5_REQUEST_TIMEOUT_SECONDS = 5
        reset_gateways()
        try:
            yield standin
        finally:
            get_mt5_gateway().client.close()
            reset_gateways()


@pytest.fixture
def market(transactional_db):
    """The clients and the market, acting on the simulated server's rows the stand-in serves."""
    return SimulatedMT5Gateway()


@pytest.fixture
def watched(webapi, market):
    """`watched(balance="0.00", leverage=500) -> login`: an account opened a month ago, found
    by the monitor's discovery through the Web API and watched from now on."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import MonitoredAccount
    from accounts.services import monitor_discover
    from gateways.models import SimulatedMT5Account

    def make(*, balance="0.00", leverage=500) -> int:
        login = market.add_account(balance=Decimal(balance), leverage=leverage)
        month_ago = timezone.now() - timedelta(days=30)
        SimulatedMT5Account.objects.filter(pk=login).update(registered_at=month_ago)
        monitor_discover()
        assert MonitoredAccount.objects.filter(login=login).exists()
        return login

    return make
