"""The role matrix: what each identity gets from each route of /api/v1/ (shared/API.md "Roles").

One row per (method, route); its eight columns are the status each identity must get:

    SA   Super Admin              RO   Read-Only           KEY   an API key with no scope, of a
    CM   Campaign Manager         CLI  a client                  user with no staff role
    SUP  Support Agent            OTH  another client      ANON  no credentials

Three more identities are keys of client users with one scope each (`key_triggers`,
`key_demo`, `key_signals`): each gets what KEY gets, except on the rows of its scope, where
`scope=("demo", 201)` says what it gets. So a client's key posting a deposit trigger, resending
someone's demo credentials or fanning out a signal is refused, and only the scope allows it.

Paths are under /api/v1/; `{name}` is an object of the test installation (`World` in
conftest.py): where ownership matters it is the client's, so another client (and staff, who
see clients' rows in the admin, not here) get 404. A row's body is valid enough to succeed
where success is expected, so a refusal is the role's and not the input's. test_role_matrix.py
calls every cell, and fails when a route of the URLconf has no row.

Rows reading `X-License-Key` send the installation's license key with every identity: those
routes authenticate the license, never the user (401 without a key is tested in
tests/licensing).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.api.conftest import IDENTITIES, KEY_SCOPES, STAFF, World
from tests.factories import PASSWORD

Body = Callable[[World], dict[str, Any]] | None


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: dict[str, int]
    body: Body = None
    query: str = ""
    license_key: bool = False
    note: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        return f"{self.method} /api/v1/{self.path}"


COLUMNS = (*STAFF, "client", "other_client", "key", "anonymous")


def row(method, path, sa, cm, sup, ro, cli, oth, key, anon, scope=None, **extra) -> Row:
    statuses = dict(zip(COLUMNS, (sa, cm, sup, ro, cli, oth, key, anon), strict=True))
    statuses |= {identity: key for identity in KEY_SCOPES}
    if scope is not None:
        name, status = scope
        statuses[f"key_{name}"] = status
    return Row(method, path, {identity: statuses[identity] for identity in IDENTITIES}, **extra)


def _campaign(**changes) -> dict[str, Any]:
    return {
        "name": "Matrix campaign",
        "bonus_type": "A",
        "percentage": "50.00",
        "trigger_type": "auto_deposit",
        "min_deposit": "100.00",
        "max_bonus": "500.00",
        **changes,
    }


def _session(w: World) -> dict[str, Any]:
    return {
        "session_name": "Matrix session",
        "account_id": w.broker_account,
        "trade_amount": "5.00",
        "gale_limit": 2,
        "stop_profit": "100.00",
        "stop_loss": "50.00",
    }


def _reported_trade(w: World) -> dict[str, Any]:
    return {
        "symbol": "EURUSD",
        "side": "BUY",
        "quantity": "1.0",
        "entry_price": "1.1000",
        "exit_price": "1.1050",
        "pnl": "50.00",
        "opened_at": "2026-01-05T10:00:00Z",
        "closed_at": "2026-01-05T11:00:00Z",
    }


# fmt: off
MATRIX: tuple[Row, ...] = (
    #                                                SA   CM   SUP  RO   CLI  OTH  KEY  ANON
    # --- accounts: tokens and the caller's own profile
    row("POST",   "auth/token/",                     200, 200, 200, 200, 200, 200, 200, 200,
        body=lambda w: {"email": w.users["client"].email, "password": PASSWORD}),
    row("POST",   "auth/token/refresh/",             200, 200, 200, 200, 200, 200, 200, 200,
        body=lambda w: {"refresh": w.refresh}),
    row("POST",   "auth/logout/",                    205, 205, 205, 205, 205, 205, 205, 205,
        body=lambda w: {"refresh": w.refresh}),
    row("POST",   "auth/register/",                  201, 201, 201, 201, 201, 201, 201, 201,
        body=lambda w: {"email": "newcomer@world.example", "password": PASSWORD}),
    row("GET",    "auth/me/",                        200, 200, 200, 200, 200, 200, 200, 401),
    row("PATCH",  "auth/me/",                        200, 200, 200, 200, 200, 200, 200, 401,
        body=lambda w: {"username": "renamed"}),
    row("DELETE", "auth/me/",                        204, 204, 204, 204, 204, 204, 204, 401),
    row("POST",   "auth/password/",                  200, 200, 200, 200, 200, 200, 403, 401,
        body=lambda w: {"old_password": PASSWORD, "new_password": "an-Other-quite-long-pass-37"},
        note="an API key may not change its user's password"),
    # --- monitoring: staff read, Super Admin acts
    row("GET",    "monitoring/status/",              200, 200, 200, 200, 403, 403, 403, 401),
    row("POST",   "monitoring/sweep/",               200, 403, 403, 403, 403, 403, 403, 401),
    row("GET",    "monitoring/accounts/",            200, 200, 200, 200, 403, 403, 403, 401),
    row("GET",    "monitoring/accounts/{login}/",    200, 200, 200, 200, 403, 403, 403, 401),
    row("POST",   "monitoring/accounts/{login_free}/register/",
                                                     200, 403, 403, 403, 403, 403, 403, 401),
    row("POST",   "monitoring/accounts/{login}/reset-errors/",
                                                     200, 403, 403, 403, 403, 403, 403, 401),
    row("POST",   "monitoring/accounts/{login}/test-deposit/",
                                                     201, 403, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"amount": "10.00"}),
    row("POST",   "monitoring/accounts/{login}/test-withdraw/",
                                                     201, 403, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"amount": "10.00"}),
    # --- campaigns: staff read; Super Admin and Campaign Manager write
    row("GET",    "campaigns/",                      200, 200, 200, 200, 403, 403, 403, 401),
    row("POST",   "campaigns/",                      201, 201, 403, 403, 403, 403, 403, 401,
        body=lambda w: _campaign()),
    row("GET",    "campaigns/{campaign}/",           200, 200, 200, 200, 403, 403, 403, 401),
    row("PUT",    "campaigns/{campaign}/",           200, 200, 403, 403, 403, 403, 403, 401,
        body=lambda w: _campaign(name="World Type A", description="Edited whole.")),
    row("PATCH",  "campaigns/{campaign}/",           200, 200, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"description": "Edited."}),
    row("POST",   "campaigns/{campaign}/duplicate/", 201, 201, 403, 403, 403, 403, 403, 401),
    row("PATCH",  "campaigns/{campaign}/status/",    200, 200, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"status": "paused"}),
    row("POST",   "campaigns/scan-mt5/",             200, 200, 403, 403, 403, 403, 403, 401),
    # --- bonuses: staff read; assign with Support Agents; interventions are Super Admin's
    row("GET",    "bonuses/",                        200, 200, 200, 200, 403, 403, 403, 401),
    row("GET",    "bonuses/{bonus_a}/",              200, 200, 200, 200, 403, 403, 403, 401),
    row("POST",   "bonuses/check-eligibility/",      200, 403, 200, 403, 403, 403, 403, 401,
        body=lambda w: {"login": w.login_free, "campaign_id": w.campaign,
                        "deposit_amount": "100.00"}),
    row("POST",   "bonuses/assign/",                 201, 403, 201, 403, 403, 403, 403, 401,
        body=lambda w: {"login": w.login_free, "campaign_id": w.campaign,
                        "deposit_amount": "1000.00", "deal_id": w.deposit_free,
                        "override_eligibility": True, "reason": "matrix"}),
    row("POST",   "bonuses/{bonus_a}/cancel/",       200, 403, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"reason": "matrix"}),
    row("POST",   "bonuses/{bonus_c}/force-convert/", 200, 403, 403, 403, 403, 403, 403, 401),
    row("POST",   "bonuses/{bonus_a}/override-leverage/",
                                                     200, 403, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"leverage": 100}),
    # --- approvals of manual credit above a limit: staff read; a Super Admin (not the
    #     requester: the world's Support Agent asked) decides
    row("GET",    "bonus-approvals/",                200, 200, 200, 200, 403, 403, 403, 401),
    row("GET",    "bonus-approvals/{approval}/",     200, 200, 200, 200, 403, 403, 403, 401),
    row("POST",   "bonus-approvals/{approval}/approve/",
                                                     200, 403, 403, 403, 403, 403, 403, 401),
    row("POST",   "bonus-approvals/{approval}/reject/",
                                                     200, 403, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"reason": "matrix"}),
    # --- triggers: Super Admin and keys with scope triggers
    row("POST",   "triggers/deposit/",               200, 403, 403, 403, 403, 403, 403, 401,
        scope=("triggers", 200),
        body=lambda w: {"login": w.login_free, "amount": "1000.00", "deal_id": w.deposit_free}),
    row("POST",   "triggers/registration/",          200, 403, 403, 403, 403, 403, 403, 401,
        scope=("triggers", 200),
        body=lambda w: {"login": w.login_free}),
    row("POST",   "triggers/promo-code/",            201, 403, 403, 403, 403, 403, 403, 401,
        scope=("triggers", 201),
        body=lambda w: {"login": w.login_free, "code": w.promo_code,
                        "deposit_amount": "1000.00"}),
    # --- reports, exports, audit: Super Admin and Read-Only
    row("GET",    "reports/summary/",                200, 403, 403, 200, 403, 403, 403, 401),
    row("GET",    "reports/conversions/",            200, 403, 403, 200, 403, 403, 403, 401),
    row("GET",    "reports/cancellations/",          200, 403, 403, 200, 403, 403, 403, 401),
    row("GET",    "reports/leverage/",               200, 403, 403, 200, 403, 403, 403, 401),
    row("GET",    "reports/export/",                 200, 403, 403, 200, 403, 403, 403, 401,
        query="report=summary&format=csv"),
    row("GET",    "audit/",                          200, 403, 403, 200, 403, 403, 403, 401),
    # --- MT5 lookup: staff
    row("GET",    "mt5/metadata/",                   200, 200, 200, 200, 403, 403, 403, 401),
    row("GET",    "mt5/accounts/{login_a}/",         200, 200, 200, 200, 403, 403, 403, 401),
    # --- delivery: staff read the log; the reveal needs only the token
    row("GET",    "delivery/",                       200, 200, 200, 200, 403, 403, 403, 401),
    row("GET",    "delivery/{delivery}/",            200, 200, 200, 200, 403, 403, 403, 401),
    row("POST",   "delivery/reveal/",                200, 200, 200, 200, 200, 200, 200, 200,
        body=lambda w: {"token": w.delivery_token}),
    # --- demo pool: Super Admin and keys with scope demo; Support Agents resend and check health;
    #     Read-Only reads the status
    row("POST",   "demo/press-pass/activate/",       201, 403, 403, 403, 403, 403, 403, 401,
        scope=("demo", 201),
        body=lambda w: {"user_id": "matrix-1", "real_name": "Mat Rix",
                        "delivery_method": "api"}),
    row("GET",    "demo/requests/{request}/",        200, 403, 403, 403, 403, 403, 403, 401,
        scope=("demo", 200)),
    row("GET",    "demo/accounts/{press_user}/health/",
                                                     200, 403, 200, 403, 403, 403, 403, 401,
        scope=("demo", 200)),
    row("POST",   "demo/accounts/resend-credentials/",
                                                     201, 403, 201, 403, 403, 403, 403, 401,
        scope=("demo", 201),
        body=lambda w: {"user_id": w.press_user, "delivery_method": "api"}),
    row("GET",    "demo/pool/status/",               200, 403, 403, 200, 403, 403, 403, 401,
        scope=("demo", 200)),
    row("POST",   "demo/pool/replenish/",            202, 403, 403, 403, 403, 403, 403, 401,
        scope=("demo", 202),
        query="count=1"),
    # --- licensing: public validation; administration is the Super Admin's
    row("POST",   "licenses/validate/",              200, 200, 200, 200, 200, 200, 200, 200,
        body=lambda w: {"license_key": w.license_key}),
    row("GET",    "licenses/public-key/",            200, 200, 200, 200, 200, 200, 200, 200),
    row("GET",    "rate-limit/status/",              200, 200, 200, 200, 200, 200, 200, 200),
    row("POST",   "licenses/trades/",                201, 201, 201, 201, 201, 201, 201, 201,
        body=_reported_trade, license_key=True),
    row("GET",    "licenses/trades/stats/",          200, 200, 200, 200, 200, 200, 200, 200,
        license_key=True),
    row("GET",    "licenses/{license_account}/file/", 200, 403, 403, 403, 403, 403, 403, 401),
    row("GET",    "admin/stats/",                    200, 403, 403, 403, 403, 403, 403, 401),
    row("GET",    "admin/users/",                    200, 403, 403, 403, 403, 403, 403, 401),
    row("POST",   "admin/users/",                    201, 403, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"account_id": "ACC-MATRIX", "email": "matrix@world.example",
                        "license_type": "MONTHLY"}),
    row("GET",    "admin/users/{license_account}/",  200, 403, 403, 403, 403, 403, 403, 401),
    row("PUT",    "admin/users/{license_account}/extend-license/",
                                                     200, 403, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"additional_days": 10}),
    row("PUT",    "admin/users/{license_account}/suspend/",
                                                     200, 403, 403, 403, 403, 403, 403, 401,
        body=lambda w: {"reason": "matrix"}),
    row("PUT",    "admin/users/{suspended_account}/activate/",
                                                     200, 403, 403, 403, 403, 403, 403, 401),
    # --- own subscriptions
    row("GET",    "subscriptions/",                  200, 200, 200, 200, 200, 200, 200, 401),
    row("POST",   "subscriptions/",                  201, 201, 201, 201, 201, 201, 201, 401,
        body=lambda w: {"plan": "basic"}),
    row("GET",    "subscriptions/{subscription}/",   404, 404, 404, 404, 200, 404, 404, 401),
    row("PATCH",  "subscriptions/{subscription}/",   404, 404, 404, 404, 200, 404, 404, 401,
        body=lambda w: {"plan": "vip"}),
    row("DELETE", "subscriptions/{subscription}/",   404, 404, 404, 404, 204, 404, 404, 401),
    # --- own broker accounts, sessions, trades, channels
    row("GET",    "broker-accounts/",                200, 200, 200, 200, 200, 200, 200, 401),
    row("POST",   "broker-accounts/",                201, 201, 201, 201, 201, 201, 201, 401,
        body=lambda w: {"account_name": "Matrix", "email": "matrix@broker.test",
                        "password": "Broker-pass-1", "account_type": "demo"}),
    row("GET",    "broker-accounts/{broker_account}/",
                                                     404, 404, 404, 404, 200, 404, 404, 401),
    row("PUT",    "broker-accounts/{spare_account}/",
                                                     404, 404, 404, 404, 200, 404, 404, 401,
        body=lambda w: {"account_name": "Renamed", "email": "world-spare@broker.test",
                        "account_type": "demo"}),
    row("PATCH",  "broker-accounts/{spare_account}/",
                                                     404, 404, 404, 404, 200, 404, 404, 401,
        body=lambda w: {"account_name": "Renamed"}),
    row("DELETE", "broker-accounts/{spare_account}/",
                                                     404, 404, 404, 404, 204, 404, 404, 401),
    row("POST",   "broker-accounts/{broker_account}/test/",
                                                     404, 404, 404, 404, 200, 404, 404, 401),
    row("GET",    "broker-accounts/{broker_account}/balance/",
                                                     404, 404, 404, 404, 200, 404, 404, 401),
    row("GET",    "sessions/",                       200, 200, 200, 200, 200, 200, 200, 401),
    row("POST",   "sessions/",                       404, 404, 404, 404, 201, 404, 404, 401,
        body=_session, note="account_id is the client's broker account"),
    row("GET",    "sessions/{session}/",             404, 404, 404, 404, 200, 404, 404, 401),
    row("PUT",    "sessions/{stopped_session}/",     404, 404, 404, 404, 200, 404, 404, 401,
        body=_session),
    row("PATCH",  "sessions/{stopped_session}/",     404, 404, 404, 404, 200, 404, 404, 401,
        body=lambda w: {"session_name": "Renamed"}),
    row("DELETE", "sessions/{stopped_session}/",     404, 404, 404, 404, 204, 404, 404, 401),
    row("POST",   "sessions/{stopped_session}/start/",
                                                     404, 404, 404, 404, 200, 404, 404, 401),
    row("POST",   "sessions/{session}/stop/",        404, 404, 404, 404, 200, 404, 404, 401),
    row("GET",    "sessions/{session}/status/",      404, 404, 404, 404, 200, 404, 404, 401),
    row("GET",    "trades/",                         200, 200, 200, 200, 200, 200, 200, 401),
    row("GET",    "trades/{trade}/",                 404, 404, 404, 404, 200, 404, 404, 401),
    row("POST",   "trades/manual/",                  404, 404, 404, 404, 201, 404, 404, 401,
        body=lambda w: {"session_id": w.session, "asset": "EURUSD", "direction": "call",
                        "amount": "5.00", "duration": 60},
        note="session_id is the client's running session"),
    row("GET",    "trades/statistics/",              200, 200, 200, 200, 200, 200, 200, 401),
    row("GET",    "trades/signals/",                 200, 200, 200, 200, 200, 200, 200, 401),
    row("POST",   "trades/signals/subscribe/",       201, 201, 201, 201, 200, 201, 201, 401,
        body=lambda w: {"channel": w.channel}, note="the client is subscribed already: 200"),
    row("DELETE", "trades/signals/unsubscribe/",     404, 404, 404, 404, 200, 404, 404, 401,
        body=lambda w: {"channel": w.channel}, note="only the client is subscribed"),
    # --- the signal intake: staff and keys with scope signals
    row("GET",    "signals/",                        200, 200, 200, 200, 403, 403, 403, 401,
        scope=("signals", 200)),
    row("POST",   "signals/",                        201, 201, 201, 201, 403, 403, 403, 401,
        scope=("signals", 201),
        body=lambda w: {"channel": w.channel, "asset": "EURUSD", "direction": "call",
                        "duration": 60}),
)
# fmt: on
