"""The soak's invariant checker on crafted data: a clean run holds, and each kind of breakage
(a deposit granted twice or never, a demo account assigned twice, a link revealed twice, a
trade left unsettled, a 500, a secret in a log) is reported, with where it is."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bonuses.models import CreditIntent
from bonuses.services import trigger_deposit
from campaigns.models import Campaign
from delivery.models import Delivery, DeliveryAttempt
from demo_pool.models import DemoAccount, PressPass
from gateways.loading import reset_gateways
from gateways.mt5.simulated import SimulatedMT5Gateway
from operations.soak.client import Answer, Tally
from operations.soak.invariants import (
    ClientView,
    Scope,
    check_demo_accounts,
    check_deposits,
    check_http,
    check_ledger,
    check_reveals,
    check_trades,
)
from operations.soak.scan import scan
from trading_sessions.models import BrokerAccount, Trade, TradingSession

pytestmark = pytest.mark.django_db

COMMENT = "soak deposit"


@pytest.fixture(autouse=True)
def _simulated_mt5(settings):
    settings.MT5_GATEWAY = "gateways.mt5.simulated.SimulatedMT5Gateway"
    reset_gateways()
    yield
    reset_gateways()


@pytest.fixture
def money():
    """An account, a live Type B campaign, and one deposit the engine granted: a clean run."""
    server = SimulatedMT5Gateway()
    login = server.add_account(group="real\\soak", balance="1000.00")
    campaign = Campaign.objects.create(
        name="Soak",
        status=Campaign.Status.ACTIVE,
        bonus_type=Campaign.BonusType.B,
        percentage=Decimal("10"),
        min_deposit=Decimal("10.00"),
        one_per_account=False,
    )
    ticket = server.post_balance(login, Decimal("200.00"), comment=COMMENT)
    trigger_deposit(login=login, amount=Decimal("200.00"), deal_id=ticket)
    scope = Scope(
        since=timezone.now() - timedelta(hours=1),
        campaign_ids=[campaign.pk],
        logins=[login],
        deposit_comment=COMMENT,
        min_deposit=Decimal("10.00"),
    )
    return server, login, scope


def test_a_clean_run_holds_every_money_invariant(money):
    _server, _login, scope = money

    deposits, ledger = check_deposits(scope), check_ledger(scope)

    assert deposits.held, deposits.problems
    assert ledger.held, ledger.problems
    assert deposits.counts["qualifying deposit deals"] == 1
    assert deposits.counts["bonuses granted"] == 1
    assert deposits.counts["credit deals posted for them"] == 1


def test_a_deposit_whose_credit_was_posted_twice_is_reported(money):
    server, login, scope = money
    grant = CreditIntent.objects.get(kind=CreditIntent.Kind.CREDIT_IN)
    server.post_credit(login, grant.amount, comment=grant.op_id)  # a blind resend

    deposits, ledger = check_deposits(scope), check_ledger(scope)

    assert not deposits.held
    assert deposits.problems == [
        f"bonus {grant.bonus_id} on {login}: its credit was posted 2 times"
    ]
    assert not ledger.held
    assert f"{login}: ledger 20.00, server 40.00 (drift +20.00)" in ledger.problems


def test_a_qualifying_deposit_without_a_bonus_is_reported_as_lost(money):
    server, login, scope = money
    ticket = server.post_balance(login, Decimal("50.00"), comment=COMMENT)
    server.post_balance(login, Decimal("5.00"), comment=COMMENT)  # under the minimum: none due

    check = check_deposits(scope)

    assert check.problems == [f"deposit deal {ticket} (50.00) on {login}: no bonus (lost)"]
    assert check.counts["deposits under the minimum (no bonus due)"] == 1


def test_a_demo_account_assigned_twice_is_reported():
    now = timezone.now()
    account = DemoAccount.objects.create(
        login=70000001,
        server="Demo",
        balance=Decimal("50000.00"),
        leverage=100,
        currency="USD",
        status=DemoAccount.Status.ASSIGNED,
    )
    for user in ("pp-a", "pp-b"):
        PressPass.objects.create(
            user_id=user,
            real_name="Someone",
            account=account,
            delivery_method="api",
            expires_at=now + timedelta(days=7),
        )
    view = ClientView(handed_logins=Counter({70000001: 2, 70000002: 1}))

    check = check_demo_accounts(Scope(since=now - timedelta(hours=1)), view)

    assert check.problems == [
        "demo account 70000001 has 2 press passes",
        "login 70000001 was handed out 2 times",
    ]


def test_a_link_revealed_twice_is_reported():
    now = timezone.now()
    delivery = Delivery.objects.create(
        purpose="soak",
        method=Delivery.Method.API,
        status=Delivery.Status.REVEALED,
        token_hash="a" * 64,
        expires_at=now + timedelta(minutes=30),
    )
    for _ in range(2):
        DeliveryAttempt.objects.create(
            delivery=delivery,
            action=DeliveryAttempt.Action.REVEAL,
            outcome=DeliveryAttempt.Outcome.REVEALED,
        )
    view = ClientView(reveals={"token": Counter({200: 2})})

    check = check_reveals(Scope(since=now - timedelta(hours=1)), view)

    assert check.problems == [
        f"delivery {delivery.pk} was revealed 2 times",
        "a token gave its payload 2 times",
    ]


def test_a_trade_left_open_past_its_expiry_is_reported(make_user):
    now = timezone.now()
    user = make_user()
    account = BrokerAccount.objects.create(
        user=user,
        account_name="Demo",
        email="trader@soak.test",
        password="broker-secret-1",
        account_type=BrokerAccount.AccountType.DEMO,
    )
    session = TradingSession.objects.create(
        user=user,
        account=account,
        session_name="Soak",
        trade_amount=Decimal("1.00"),
        stop_profit=Decimal("100.00"),
        stop_loss=Decimal("50.00"),
        is_active=True,
        started_at=now - timedelta(minutes=10),
    )
    trade = Trade.objects.create(
        user=user,
        session=session,
        account=account,
        source=Trade.Source.SIGNAL,
        asset="EURUSD",
        direction="call",
        amount=Decimal("1.00"),
        duration=10,
        result=Trade.Result.OPEN,
        broker_trade_id="1",
        created_at=now - timedelta(minutes=5),
        expires_at=now - timedelta(minutes=4),
    )

    check = check_trades(
        Scope(since=now - timedelta(hours=1), session_ids=[session.pk], broker_emails=[]),
        now=now,
    )

    assert check.problems == [f"trade {trade.pk} still open (expires {trade.expires_at})"]


def test_any_5xx_or_unanswered_request_fails_the_http_check():
    tally = Tally()
    tally.record("GET /api/v1/trades/", Answer(200, data={}), 0.1)
    assert check_http(tally).held

    fault = Answer(503, data={"code": "demo_server_unavailable"}, headers={"Retry-After": "5"})
    tally.record("POST /api/v1/demo/press-pass/activate/", fault, 0.1)
    tally.record("GET /api/v1/trades/", Answer(500, text="Server Error"), 0.1)
    tally.record("POST /api/v1/signals/", Answer(None, error="ReadTimeout"), 30.0)
    check = check_http(tally)

    assert check.problems == [
        "503 on POST /api/v1/demo/press-pass/activate/: demo_server_unavailable",
        "500 on GET /api/v1/trades/: Server Error",
        "1 request(s) unanswered: POST /api/v1/signals/",
    ]
    assert check.counts["2xx / 3xx / 4xx / 5xx"] == "1 / 0 / 0 / 2"


def test_the_scan_names_where_a_secret_is_never_the_secret(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text('{"msg": "started"}\n{"msg": "login with Sk-the-password-123"}\n')
    dump = tmp_path / "dump.sql"
    dump.write_text("COPY public.accounts_user (id, password) FROM stdin;\n1\tpbkdf2$...\n\\.\n")

    check = scan(
        {"user passwords": {"Sk-the-password-123"}, "license keys": {"QT-never-written-1"}},
        dump=dump,
        logs=[log],
        how="test",
    )

    assert check.problems == [
        "user passwords (Sk-t..., 19 characters) in the log worker.log: line 2"
    ]
    assert "Sk-the-password-123" not in repr(check)
