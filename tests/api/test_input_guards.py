"""Issue 14, bad input: what an attacker sent, and the clear 4xx it gets now instead of a 500
or a silent acceptance.

- NUL and other control characters in a path, a query string or a header: refused first
  (`core.guards`), on every URL;
- JSON nested 1,000 deep (a RecursionError, a 500, on every JSON endpoint), bodies over the
  size limit, NUL in JSON text, NaN: refused by the parser (`core.parsers`);
- money, percentages, day counts and integers written as `"1_000"`, `"1e2"`, `1e2`,
  full-width or Arabic-Indic digits...: refused by the strict fields (`core.money`) on every
  endpoint that takes one, while plain numbers still go through.

On the installation of `world` (tests/api/conftest.py); each test runs in a savepoint.
"""

import json

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def call(world, identity, method, path, body=None, *, raw=None, **headers):
    """One request as `identity`; `raw` is the JSON text itself (for `1e2`, NaN...)."""
    if authorization := world.headers[identity].get("Authorization"):
        headers.setdefault("HTTP_AUTHORIZATION", authorization)
    text = raw if raw is not None else ("" if body is None else json.dumps(body))
    return APIClient().generic(method, path, text, content_type="application/json", **headers)


def answer(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()


# --- Paths, query strings, headers (core.guards) ---------------------------------------------

BAD_PATHS = [
    "/api/v1/x%00y/",  # the one that lost the usage log
    "/api/v1/campaigns/%00/",
    "/api/v1/admin/users/ACC%00WORLD/",
    "/api/v1/demo/accounts/press%00user/health/",
    "/d/abc%00def",
    "/admin/%00/",
    "/healthz%00",
    "/api/v1/campaigns/%0A/",  # a newline
    "/api/v1/campaigns/%7F/",  # DEL
    "/api/v1/campaigns/%C2%85/",  # U+0085, a C1 control
    "/api/v1/campaigns/%FF/",  # not UTF-8
    "/api/v1/caf%C3%28/",  # a broken UTF-8 sequence
]


@pytest.mark.parametrize("path", BAD_PATHS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_control_character_or_bad_utf8_in_any_path_is_a_400_bad_path(world, path, method):
    # RAW_URI: the request target as gunicorn passes it on (Django re-encodes bad UTF-8).
    response = call(world, "super_admin", method, path, {}, RAW_URI=path)
    assert response.status_code == 400
    assert answer(response)["code"] == "bad_path"


@pytest.mark.parametrize(
    "path", [p for p in BAD_PATHS if p not in ("/api/v1/campaigns/%FF/", "/api/v1/caf%C3%28/")]
)
def test_a_control_character_in_the_path_is_refused_without_the_raw_target_too(world, path):
    response = call(world, "super_admin", "GET", path)
    assert response.status_code == 400
    assert answer(response)["code"] == "bad_path"


def test_a_path_with_real_utf8_text_is_still_an_ordinary_404(world):
    path = "/api/v1/caf%C3%A9/"
    response = call(world, "super_admin", "GET", path, RAW_URI=path + "?x=%FF")
    assert response.status_code == 404
    assert answer(response)["code"] == "not_found"


def test_a_nul_in_a_query_string_is_a_400_bad_query_not_a_database_error(world):
    response = call(world, "super_admin", "GET", "/api/v1/campaigns/?search=World%00")
    assert response.status_code == 400
    assert answer(response)["code"] == "bad_query"


def test_a_percent_sign_spelled_out_in_a_query_is_only_text(world):
    response = call(world, "super_admin", "GET", "/api/v1/campaigns/?search=%2500")
    assert response.status_code == 200
    assert answer(response)["count"] == 0


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_X_LICENSE_KEY", "QT-\x00-key"),
        ("HTTP_USER_AGENT", "client/1.0\x00"),
        ("HTTP_AUTHORIZATION", "Api-Key abc\x00def"),
        ("HTTP_X_LICENSE_KEY", "QT-\r\nSet-Cookie: x=1"),
    ],
)
def test_a_control_character_in_a_header_is_a_400_bad_header(world, header, value):
    response = call(world, "anonymous", "GET", "/api/v1/licenses/trades/stats/", **{header: value})
    assert response.status_code == 400
    assert answer(response)["code"] == "bad_header"


def test_a_nul_in_the_user_agent_of_a_reveal_page_is_refused_before_it_is_recorded(world):
    response = APIClient().post(
        f"/d/{world.delivery_token}", HTTP_USER_AGENT="Mozilla/5.0\x00(evil)"
    )
    assert response.status_code == 400
    assert answer(response)["code"] == "bad_header"


@pytest.mark.parametrize("header", ["HTTP_X_LICENSE_KEY", "HTTP_AUTHORIZATION", "HTTP_COOKIE"])
def test_a_huge_header_is_a_431_not_a_500(world, header):
    response = call(
        world, "anonymous", "GET", "/api/v1/licenses/trades/stats/", **{header: "A" * 100_000}
    )
    assert response.status_code == 431
    assert answer(response)["code"] == "header_too_large"


def test_a_license_key_header_of_ordinary_size_with_a_tab_still_reaches_the_view(world):
    response = call(
        world,
        "anonymous",
        "GET",
        "/api/v1/licenses/trades/stats/",
        HTTP_X_LICENSE_KEY=world.license_key,
        HTTP_USER_AGENT="client/1.0\t(linux)",
    )
    assert response.status_code == 200


# --- JSON bodies (core.parsers) --------------------------------------------------------------

JSON_ENDPOINTS = [
    ("anonymous", "POST", "/api/v1/licenses/validate/"),
    ("anonymous", "POST", "/api/v1/delivery/reveal/"),
    ("anonymous", "POST", "/api/v1/auth/token/"),
    ("super_admin", "POST", "/api/v1/campaigns/"),
    ("super_admin", "POST", "/api/v1/bonuses/assign/"),
    ("client", "POST", "/api/v1/sessions/"),
]


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(("identity", "method", "path"), JSON_ENDPOINTS)
def test_json_nested_a_thousand_deep_is_a_400_too_deep_not_a_recursion_error(
    world, identity, method, path
):
    response = call(world, identity, method, path, raw=nested(1000))
    assert response.status_code == 400
    assert answer(response)["code"] == "too_deep"


def test_even_a_hundred_thousand_levels_answer_at_once(world):
    response = call(world, "anonymous", "POST", "/api/v1/licenses/validate/", raw=nested(100_000))
    assert response.status_code == 400
    assert answer(response)["code"] == "too_deep"


def test_the_depth_limit_is_api_max_json_depth(world, settings):
    settings.API_MAX_JSON_DEPTH = 32
    path = "/api/v1/licenses/validate/"
    # {"license_key": [[...]]}: the object is one level, the arrays the rest.
    deep = '{"license_key": ' + nested(32) + "}"
    fits = '{"license_key": ' + nested(31) + "}"
    assert answer(call(world, "anonymous", "POST", path, raw=deep))["code"] == "too_deep"
    fitting = call(world, "anonymous", "POST", path, raw=fits)
    assert fitting.status_code == 400
    assert "license_key" in answer(fitting)  # parsed, then refused by the serializer


def test_brackets_inside_strings_do_not_count_towards_the_depth(world):
    response = call(
        world,
        "anonymous",
        "POST",
        "/api/v1/licenses/validate/",
        {"license_key": world.license_key, "nonce": "[{" * 50 + '\\"' + "]}" * 10},
    )
    assert response.status_code == 200
    assert answer(response)["valid"] is True


def test_a_json_body_over_the_size_limit_is_a_413_too_large(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = {"license_key": world.license_key, "nonce": "n" * 2000}
    response = call(world, "anonymous", "POST", "/api/v1/licenses/validate/", body)
    assert response.status_code == 413
    assert answer(response)["code"] == "too_large"
    small = {"license_key": world.license_key, "nonce": "n" * 100}
    assert call(world, "anonymous", "POST", "/api/v1/licenses/validate/", small).status_code == 200


def test_a_form_body_over_the_size_limit_is_a_413_too(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = APIClient().post(
        "/api/v1/licenses/validate/",
        "license_key=" + "k" * 2000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "raw",
    [
        '{"name": "a\\u0000b", "bonus_type": "B", "percentage": "50"}',
        '{"name": "ok", "bonus_type": "B", "percentage": "50", "agent_codes": ["x\\u0000"]}',
        '{"name": "ok", "bonus_type": "B", "percentage": "50", "a\\u0000": 1}',
        '{"name": "a\\ud800b", "bonus_type": "B", "percentage": "50"}',  # a lone surrogate
    ],
)
def test_a_nul_or_lone_surrogate_in_json_text_is_a_400_bad_text(world, raw):
    response = call(world, "super_admin", "POST", "/api/v1/campaigns/", raw=raw)
    assert response.status_code == 400
    assert answer(response)["code"] == "bad_text"


def test_a_nul_in_a_form_field_is_a_400_bad_text(world):
    response = APIClient().post(
        "/api/v1/licenses/validate/",
        "license_key=QT%00x",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert answer(response)["code"] == "bad_text"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(world, constant):
    raw = '{"name": "n", "bonus_type": "B", "percentage": ' + constant + "}"
    response = call(world, "super_admin", "POST", "/api/v1/campaigns/", raw=raw)
    assert response.status_code == 400
    assert answer(response)["code"] == "parse_error"


def test_text_that_is_not_in_the_declared_charset_is_a_400(world):
    response = APIClient().generic(
        "POST",
        "/api/v1/licenses/validate/",
        b'{"license_key": "\xff\xfe"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert answer(response)["code"] == "parse_error"


# --- Strict numbers (core.money) ------------------------------------------------------------

# The JSON text of each value: `1e2` is the JSON number, `"1e2"` the string.
BAD_NUMBERS = [
    '"1_000"',
    '"1e2"',
    "1e2",
    '"\uff11\uff12"',  # full-width 12
    '"\u0663"',  # Arabic-Indic 3
    '" 12"',
    '"12."',
    '"1.234"',
    '"NaN"',
    '"Infinity"',
    "true",
    '"0x10"',
    '"+5"',
    "[]",
    "{}",
]
BAD_INTEGERS = [*BAD_NUMBERS, "12.5", '"12.0"']
# Prices and quantities take six decimals: seven are too many.
BAD_PRICES = [raw if raw != '"1.234"' else '"1.1234567"' for raw in BAD_NUMBERS]


def _bodies(world) -> dict:
    """(identity, method, path, a valid body) of each endpoint that takes numbers."""
    return {
        "campaign": (
            "super_admin",
            "POST",
            "/api/v1/campaigns/",
            {
                "name": "Guarded",
                "bonus_type": "B",
                "percentage": "50",
                "min_deposit": "100",
                "max_bonus": "500",
                "bonus_expiry_days": 30,
                "max_concurrent": 2,
            },
        ),
        "campaign_edit": (
            "super_admin",
            "PATCH",
            f"/api/v1/campaigns/{world.campaign}/",
            {"percentage": "40"},
        ),
        "eligibility": (
            "super_admin",
            "POST",
            "/api/v1/bonuses/check-eligibility/",
            {"login": world.login_free, "campaign_id": world.campaign, "deposit_amount": "100"},
        ),
        "assign": (
            "super_admin",
            "POST",
            "/api/v1/bonuses/assign/",
            {"login": world.login_free, "campaign_id": world.campaign, "deposit_amount": "100"},
        ),
        "deposit_trigger": (
            "super_admin",
            "POST",
            "/api/v1/triggers/deposit/",
            {"login": world.login_free, "amount": "100", "deal_id": 987654},
        ),
        "leverage": (
            "super_admin",
            "POST",
            f"/api/v1/bonuses/{world.bonus_a}/override-leverage/",
            {"leverage": 200},
        ),
        "test_deposit": (
            "super_admin",
            "POST",
            f"/api/v1/monitoring/accounts/{world.login}/test-deposit/",
            {"amount": "10"},
        ),
        "session": (
            "client",
            "POST",
            "/api/v1/sessions/",
            {
                "session_name": "Guarded",
                "account_id": world.spare_account,
                "trade_amount": "5",
                "gale_limit": 2,
                "gale_multiplier": "2",
                "stop_profit": "100",
                "stop_loss": "50",
            },
        ),
        "manual_trade": (
            "client",
            "POST",
            "/api/v1/trades/manual/",
            {
                "session_id": world.session,
                "asset": "EURUSD",
                "direction": "call",
                "amount": "5",
                "duration": 60,
            },
        ),
        "license": (
            "super_admin",
            "POST",
            "/api/v1/admin/users/",
            {"account_id": "ACC-GUARD", "license_type": "MONTHLY", "license_duration_days": 30},
        ),
        "extend": (
            "super_admin",
            "PUT",
            f"/api/v1/admin/users/{world.license_account}/extend-license/",
            {"additional_days": 30},
        ),
        "reported_trade": (
            "anonymous",
            "POST",
            "/api/v1/licenses/trades/",
            {
                "symbol": "EURUSD",
                "side": "BUY",
                "quantity": "1.5",
                "entry_price": "1.0850",
                "exit_price": "1.0870",
                "pnl": "20.00",
                "signal_confidence": "80",
                "opened_at": "2026-01-01T10:00:00Z",
                "closed_at": "2026-01-01T11:00:00Z",
            },
        ),
    }


# (endpoint, field, what it takes)
NUMBER_FIELDS = [
    ("campaign", "percentage", "money"),
    ("campaign", "min_deposit", "money"),
    ("campaign", "max_bonus", "money"),
    ("campaign", "bonus_expiry_days", "int"),
    ("campaign", "max_concurrent", "int"),
    ("campaign_edit", "percentage", "money"),
    ("eligibility", "deposit_amount", "money"),
    ("eligibility", "login", "int"),
    ("eligibility", "campaign_id", "int"),
    ("assign", "deposit_amount", "money"),
    ("deposit_trigger", "amount", "money"),
    ("deposit_trigger", "deal_id", "int"),
    ("leverage", "leverage", "int"),
    ("test_deposit", "amount", "money"),
    ("session", "trade_amount", "money"),
    ("session", "stop_loss", "money"),
    ("session", "stop_profit", "money"),
    ("session", "gale_multiplier", "money"),
    ("session", "gale_limit", "int"),
    ("manual_trade", "amount", "money"),
    ("manual_trade", "duration", "int"),
    ("license", "license_duration_days", "int"),
    ("extend", "additional_days", "int"),
    ("reported_trade", "pnl", "money"),
    ("reported_trade", "quantity", "price"),
]
# Money the contract allows: decimal strings with up to two decimals, or plain JSON numbers.
GOOD_MONEY = ['"100"', '"100.00"', '"100.5"', "100", "100.5"]
GOOD_INTEGERS = ['"7"', "7"]


def _send(world, endpoint: str, field: str, raw_value: str):
    identity, method, path, body = _bodies(world)[endpoint]
    text = json.dumps({**body, field: "__VALUE__"}).replace('"__VALUE__"', raw_value)
    headers = {}
    if endpoint == "reported_trade":
        headers["HTTP_X_LICENSE_KEY"] = world.license_key
    return call(world, identity, method, path, raw=text, **headers)


@pytest.mark.parametrize(
    ("endpoint", "field", "raw_value"),
    [
        pytest.param(endpoint, field, raw, id=f"{endpoint}.{field}={raw}")
        for endpoint, field, kind in NUMBER_FIELDS
        for raw in {"money": BAD_NUMBERS, "int": BAD_INTEGERS, "price": BAD_PRICES}[kind]
    ],
)
def test_a_number_that_is_not_plain_ascii_is_a_400_naming_the_field(
    world, endpoint, field, raw_value
):
    response = _send(world, endpoint, field, raw_value)
    assert response.status_code == 400, response.content[:300]
    assert field in answer(response), answer(response)


@pytest.mark.parametrize(
    ("endpoint", "field", "raw_value"),
    [
        pytest.param(endpoint, field, raw, id=f"{endpoint}.{field}={raw}")
        for endpoint, field, kind in NUMBER_FIELDS
        if field not in ("login", "campaign_id", "deal_id", "leverage", "gale_multiplier")
        for raw in (GOOD_INTEGERS if kind == "int" else GOOD_MONEY)
    ],
)
def test_plain_numbers_are_still_accepted(world, endpoint, field, raw_value):
    response = _send(world, endpoint, field, raw_value)
    assert response.status_code < 500, response.content[:300]
    if response.status_code == 400:
        assert field not in answer(response), answer(response)


def test_a_campaign_at_1000_percent_cannot_be_slipped_in_as_1_000(world):
    response = _send(world, "campaign", "percentage", '"1_000"')
    assert response.status_code == 400
    assert "percentage" in answer(response)
    from campaigns.models import Campaign

    assert not Campaign.objects.filter(name="Guarded").exists()


def test_a_good_campaign_keeps_its_numbers_exactly(world):
    response = _send(world, "campaign", "percentage", "12.5")
    assert response.status_code == 201, response.content[:300]
    created = answer(response)
    assert (created["percentage"], created["min_deposit"], created["bonus_expiry_days"]) == (
        "12.50",
        "100.00",
        30,
    )


def test_a_money_amount_with_three_decimals_says_how_many_are_allowed(world):
    response = _send(world, "test_deposit", "amount", '"10.005"')
    assert response.status_code == 400
    assert answer(response)["amount"] == ["At most 2 decimal places."]


@pytest.mark.parametrize(
    ("identity", "path", "name"),
    [
        ("super_admin", "/api/v1/bonuses/?login={}", "login"),
        ("super_admin", "/api/v1/audit/?campaign={}", "campaign"),
        ("client", "/api/v1/trades/?session={}", "session"),
    ],
)
@pytest.mark.parametrize("value", ["%EF%BC%91%EF%BC%92", "1_2", "1e2", "%D9%A3"])
def test_an_id_filter_in_the_query_takes_only_ascii_digits(world, identity, path, name, value):
    response = call(world, identity, "GET", path.format(value))
    assert response.status_code == 400, response.content[:300]
    assert name in answer(response)
