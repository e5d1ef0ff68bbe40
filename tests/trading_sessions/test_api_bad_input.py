"""Whatever a caller sends, the trading API answers a 4xx with a reason, never a 500."""

import pytest

from accounts.roles import Role

pytestmark = pytest.mark.django_db

NOTHING = [None, {"unexpected": True}]
JUNK = [
    [],
    [1, 2],
    "text",
    12,
    {
        "account_name": ["a"],
        "email": {"x": 1},
        "password": None,
        "account_type": 7,
        "session_name": 5,
        "account_id": "1; drop table",
        "session_id": -3,
        "trade_amount": "1e999",
        "gale_limit": "9" * 40,
        "gale_multiplier": [],
        "stop_profit": True,
        "stop_loss": {"a": 1},
        "asset": None,
        "direction": 1,
        "amount": "-0.00",
        "duration": 1e300,
        "channel": ["vip-signals"],
        "sent_at": 12,
        "ref": {"a": 1},
    },
]


@pytest.fixture
def rows(make_user, make_session, channel):
    user = make_user(role=Role.SUPER_ADMIN)
    session = make_session(user)
    return user, session


def endpoints(session) -> list[tuple[str, str]]:
    a, s = session.account_id, session.pk
    return [
        ("post", "/api/v1/broker-accounts/"),
        ("put", f"/api/v1/broker-accounts/{a}/"),
        ("patch", f"/api/v1/broker-accounts/{a}/"),
        ("post", "/api/v1/sessions/"),
        ("put", f"/api/v1/sessions/{s}/"),
        ("patch", f"/api/v1/sessions/{s}/"),
        ("post", "/api/v1/trades/manual/"),
        ("post", "/api/v1/trades/signals/subscribe/"),
        ("delete", "/api/v1/trades/signals/unsubscribe/"),
        ("post", "/api/v1/signals/"),
    ]


@pytest.mark.parametrize("junk", JUNK, ids=lambda j: type(j).__name__ + str(len(str(j))))
def test_junk_bodies_are_4xx_answers(rows, as_user, junk):
    user, session = rows
    client = as_user(user)

    answers = {
        f"{method} {url}": getattr(client, method)(url, junk, format="json")
        for method, url in endpoints(session)
    }

    codes = {name: answer.status_code for name, answer in answers.items()}
    assert all(400 <= code < 500 for code in codes.values()), codes
    assert all(a.json() for a in answers.values())  # each says why
    session.refresh_from_db()
    assert session.session_name == "EURUSD session"


@pytest.mark.parametrize("nothing", NOTHING, ids=["no body", "no known field"])
def test_a_body_without_fields_is_a_400_except_for_a_patch_which_changes_nothing(
    rows, as_user, nothing
):
    user, session = rows
    client = as_user(user)

    codes = {
        f"{method} {url}": getattr(client, method)(url, nothing, format="json").status_code
        for method, url in endpoints(session)
    }

    patches = {name for name in codes if name.startswith("patch")}
    assert {name: codes[name] for name in patches} == dict.fromkeys(patches, 200)
    assert all(400 <= code < 500 for name, code in codes.items() if name not in patches), codes
    session.refresh_from_db()
    assert session.session_name == "EURUSD session"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/trades/?session=1e5",
        "/api/v1/trades/?since=2024-13-45T00:00:00Z",
        "/api/v1/trades/?result=",
        "/api/v1/trades/?page=999",
        "/api/v1/trades/statistics/?period=",
        "/api/v1/trades/statistics/?session_id=-1",
        "/api/v1/sessions/abc/",
        "/api/v1/broker-accounts/1.5/",
    ],
)
def test_odd_queries_and_paths_are_not_500s(rows, as_user, url):
    user, _ = rows

    response = as_user(user).get(url)

    assert response.status_code < 500
