"""Fixtures of the dashboard tests.

- Time stands still at `NOW`, a Wednesday at noon UTC (the week began on Monday 9 March).
- `staff(role) -> Client`: the admin, signed in as a new user holding that role.
- `known_data() -> dict`: a small installation written with the ORM at known times, and what
  each tile must say about it (`EXPECTED`); `more_data()` adds rows of every kind, to show that
  the number of queries does not grow with them.
"""

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
MONDAY = datetime(2026, 3, 9, tzinfo=UTC)
KEY = "k1:" + base64.b64encode(bytes(range(32))).decode()

# What the tiles must show for `known_data`, as their `figures`.
EXPECTED = {
    "campaigns_active": {"active": 2, "live": 1},
    "bonuses_active": {"active": 2, "credit_outstanding": Decimal("150.50")},
    "conversions_week": {"conversions": 2, "amount": Decimal("15.25"), "since": MONDAY},
    "monitor_paused": {"paused": 2, "total": 5},
    "licenses_expiring": {"total": 5, "expiring": 2},
    "sessions_active": {"total": 3, "active": 2},
}
# How many rows the list behind each tile shows (its `url`).
LIST_ROWS = {
    "campaigns_active": 2,
    "bonuses_active": 2,
    "conversions_week": 2,
    "bonuses_per_day": 3,
    "monitor_paused": 2,
    "monitor_last_sweep": 3,
    "pool_availability": 4,
    "delivery_success": 3,
    "licenses_expiring": 2,
    "api_calls": 6,
    "sessions_active": 2,
    "trades_per_day": 4,
}


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ENCRYPTION_KEYS = KEY
    settings.PUBLIC_BASE_URL = "https://desk.example"


@pytest.fixture
def staff(make_user):
    def login(role) -> Client:
        client = Client()
        client.force_login(make_user(role=role))
        return client

    return login


def _at(queryset, moment, field="created_at"):
    queryset.update(**{field: moment})


class Builder:
    """Rows of every kind the dashboard reads, `n` of each per call (for `more_data`)."""

    def __init__(self):
        from tests.factories import UserFactory

        self.owner = UserFactory()
        self._numbers = iter(range(1, 1_000_000))

    def number(self) -> int:
        return next(self._numbers)

    def campaign(self, status="active", **fields):
        from campaigns.models import Campaign

        return Campaign.objects.create(
            name=f"Campaign {self.number()}",
            bonus_type="B",
            percentage=Decimal("50"),
            status=status,
            **fields,
        )

    def bonus(self, campaign, *, status, amount, credit=None, at=NOW):
        from bonuses.models import Bonus

        bonus = Bonus.objects.create(
            campaign=campaign,
            login=10_000 + self.number(),
            bonus_type="B",
            status=status,
            trigger="manual",
            amount=Decimal(amount),
            credit_remaining=Decimal(credit if credit is not None else "0"),
        )
        _at(Bonus.objects.filter(pk=bonus.pk), at)
        return bonus

    def intent(self, *, kind, status, amount, at):
        from bonuses.models import CreditIntent

        intent = CreditIntent.objects.create(
            op_id=CreditIntent.new_op_id(),
            login=10_000 + self.number(),
            kind=kind,
            status=status,
            amount=Decimal(amount),
        )
        _at(CreditIntent.objects.filter(pk=intent.pk), at)

    def monitored(self, status):
        from django.conf import settings

        from accounts.models import MonitoredAccount

        MonitoredAccount.objects.create(
            server=settings.MT5_SERVER, login=20_000 + self.number(), status=status, watch_from=NOW
        )

    def demo_account(self, status):
        from demo_pool.models import DemoAccount

        return DemoAccount.objects.create(
            login=70_000 + self.number(),
            balance=Decimal("10000.00"),
            leverage=100,
            currency="USD",
            status=status,
        )

    def press_pass(self, account, *, at, queued=False):
        from demo_pool.models import PressPass

        PressPass.objects.create(
            user_id=f"trial-{self.number()}",
            real_name="Trial",
            account=account,
            status="expired",
            delivery_method="api",
            was_queued=queued,
            activated_at=at,
            expires_at=at + timedelta(days=7),
        )

    def delivery(self, *, failed=False, at=NOW):
        from delivery.models import Delivery
        from delivery.services import delivery_create

        result = delivery_create(
            purpose=f"test.dashboard:{self.number()}", payload={"secret": "x"}, method="api"
        )
        rows = Delivery.objects.filter(pk=result.delivery.pk)
        if failed:
            rows.update(status=Delivery.Status.FAILED, sent_at=None)
        _at(rows, at)

    def license(self, *, days=None, expired=False):
        from licensing.models import License
        from licensing.services import license_create

        license_type = License.Type.ADMIN if days is None and not expired else "MONTHLY"
        license, _ = license_create(
            account_id=f"ACC{self.number():05d}",
            license_type=license_type,
            duration_days=days if days is not None else (1 if expired else None),
        )
        if expired:
            _at(License.objects.filter(pk=license.pk), NOW - timedelta(days=1), "expires_at")

    def api_calls(self, n, *, at):
        from licensing.models import ApiUsageLog

        ApiUsageLog.objects.bulk_create(
            ApiUsageLog(
                created_at=at,
                endpoint="/api/v1/licenses/validate/",
                method="POST",
                status_code=200,
                response_ms=3.0,
            )
            for _ in range(n)
        )

    def session(self, *, active):
        from trading_sessions.models import BrokerAccount, TradingSession

        account = BrokerAccount.objects.create(
            user=self.owner,
            account_name="Demo",
            email=f"trader{self.number()}@broker.test",
            password="Broker-pass-1",
            account_type="demo",
        )
        return TradingSession.objects.create(
            user=self.owner,
            account=account,
            session_name="EURUSD",
            trade_amount=Decimal("5.00"),
            stop_profit=Decimal("100.00"),
            stop_loss=Decimal("50.00"),
            is_active=active,
        )

    def trade(self, session, *, result, at):
        from trading_sessions.models import Trade

        Trade.objects.create(
            user=self.owner,
            session=session,
            account=session.account,
            source="manual",
            asset="EURUSD",
            direction="call",
            amount=Decimal("5.00"),
            duration=60,
            result=result,
            created_at=at,
        )


def build_known(builder: Builder) -> None:
    """The installation EXPECTED and LIST_ROWS describe."""
    from django.core.cache import cache

    from accounts.services.monitor import STATUS_CACHE_KEY

    day = timedelta(days=1)
    # Campaigns: 2 active (one past its end), 1 paused, 1 draft.
    live = builder.campaign()
    builder.campaign(ends_at=NOW - day)
    builder.campaign(status="paused")
    builder.campaign(status="draft")
    # Bonuses: granted today, 2 and 10 days ago; 40 days ago is out of the chart; failed and
    # pending bonuses were never granted.
    builder.bonus(live, status="active", amount="100.00", credit="100.00")
    builder.bonus(live, status="active", amount="50.50", credit="50.50", at=NOW - 2 * day)
    builder.bonus(live, status="cancelled", amount="30.00", at=NOW - 10 * day)
    builder.bonus(live, status="converted", amount="20.00", at=NOW - 40 * day)
    builder.bonus(live, status="failed", amount="999.00")
    builder.bonus(live, status="pending", amount="5.00")
    # Conversions: two this week; one on Sunday night, a failed one, a credit-out are not.
    builder.intent(kind="balance_in", status="done", amount="10.00", at=NOW - day)
    builder.intent(kind="balance_in", status="done", amount="5.25", at=MONDAY)
    builder.intent(
        kind="balance_in", status="done", amount="7.00", at=MONDAY - timedelta(seconds=1)
    )
    builder.intent(kind="balance_in", status="failed", amount="3.00", at=NOW)
    builder.intent(kind="credit_out", status="done", amount="10.00", at=NOW)
    # The monitor: 3 active, 2 paused; its last sweep 30 s ago, in 42 ms.
    for status in ("active", "active", "active", "paused", "paused"):
        builder.monitored(status)
    cache.set(STATUS_CACHE_KEY, {"at": (NOW - timedelta(seconds=30)).isoformat(), "ms": 42})
    # The pool: 2 available accounts; 4 press passes in 7 days (3 at once), 1 older.
    builder.demo_account("available")
    builder.demo_account("available")
    assigned = builder.demo_account("assigned")
    builder.press_pass(assigned, at=NOW)
    builder.press_pass(assigned, at=NOW - timedelta(hours=1))
    builder.press_pass(assigned, at=NOW - timedelta(hours=2), queued=True)
    builder.press_pass(assigned, at=NOW - 3 * day)
    builder.press_pass(assigned, at=NOW - 8 * day)
    # Deliveries in 7 days: 2 delivered, 1 failed; 1 older.
    builder.delivery()
    builder.delivery(at=NOW - 6 * day)
    builder.delivery(failed=True)
    builder.delivery(at=NOW - 10 * day)
    # Licenses: in 3 and 7 days (expiring), in 8 days, never, expired yesterday.
    builder.license(days=3)
    builder.license(days=7)
    builder.license(days=8)
    builder.license()
    builder.license(expired=True)
    # API calls: 3 today, 2 yesterday, 1 on the chart's first day; 4 before it.
    builder.api_calls(3, at=NOW)
    builder.api_calls(2, at=NOW - day)
    builder.api_calls(1, at=datetime(2026, 2, 10, 0, 0, tzinfo=UTC))
    builder.api_calls(4, at=datetime(2026, 2, 9, 23, 59, tzinfo=UTC))
    # Sessions: 2 running, 1 stopped. Trades: 3 today (2 not settled), 1 five days ago,
    # 1 forty days ago.
    running = builder.session(active=True)
    builder.session(active=True)
    builder.session(active=False)
    builder.trade(running, result="open", at=NOW)
    builder.trade(running, result="pending", at=NOW - timedelta(minutes=1))
    builder.trade(running, result="win", at=NOW - timedelta(hours=3))
    builder.trade(running, result="loss", at=NOW - 5 * day)
    builder.trade(running, result="win", at=NOW - 40 * day)


@pytest.fixture
def known_data(db):
    builder = Builder()
    build_known(builder)
    return builder


@pytest.fixture
def more_data(known_data):
    """Five more rows of every kind, on several days."""

    def add():
        builder = known_data
        for n in range(5):
            at = NOW - timedelta(days=n)
            campaign = builder.campaign()
            builder.bonus(campaign, status="active", amount="10.00", credit="10.00", at=at)
            builder.intent(kind="balance_in", status="done", amount="1.00", at=MONDAY)
            builder.monitored("paused")
            builder.press_pass(builder.demo_account("assigned"), at=at)
            builder.delivery(at=at)
            builder.license(days=2)
            builder.api_calls(1, at=at)
            session = builder.session(active=True)
            builder.trade(session, result="win", at=at)

    return add
