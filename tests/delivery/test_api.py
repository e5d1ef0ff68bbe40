"""The delivery rows of API.md: `POST delivery/reveal/` for programs, `GET delivery/{id}/`
for staff (area delivery.read: every staff role), never the secret."""

import pytest
import time_machine

from accounts.roles import Role
from delivery.services import delivery_view

from .conftest import PAYLOAD, SECRET, token_of

pytestmark = pytest.mark.django_db

REVEAL = "/api/v1/delivery/reveal/"


def detail(pk) -> str:
    return f"/api/v1/delivery/{pk}/"


def test_reveal_answers_the_payload_once(api, create):
    token = token_of(create())

    with time_machine.travel("2026-03-02 12:00Z", tick=False):
        first = api.post(REVEAL, {"token": token}, format="json")
    second = api.post(REVEAL, {"token": token}, format="json")

    assert first.status_code == 200
    assert first.json() == {"payload": PAYLOAD, "revealed_at": "2026-03-02T12:00:00Z"}
    assert "no-store" in first["Cache-Control"]
    assert second.status_code == 410
    assert second.json() == {
        "detail": "This link has already been opened; it works only once.",
        "code": "link_used",
    }


def test_reveal_of_an_unknown_token_is_404(api, db):
    response = api.post(REVEAL, {"token": "Z" * 43}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "link_not_found"


def test_reveal_of_an_expired_link_is_410(api, create):
    with time_machine.travel("2026-03-02 12:00Z", tick=False):
        token = token_of(create())
    with time_machine.travel("2026-03-02 12:30Z", tick=False):
        response = api.post(REVEAL, {"token": token}, format="json")
    assert (response.status_code, response.json()["code"]) == (410, "link_expired")


def test_reveal_needs_no_credentials_and_ignores_bad_ones(api, create):
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    response = api.post(REVEAL, {"token": token_of(create())}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": "x" * 257}])
def test_reveal_without_a_token_is_400(api, db, body):
    response = api.post(REVEAL, body, format="json")
    assert response.status_code == 400
    assert "token" in response.json()


def test_reveal_is_rate_limited_per_address_with_retry_after(api, create, settings):
    settings.DELIVERY_REVEAL_RATE_LIMIT = "2/min"

    with time_machine.travel("2026-03-02 12:00:45Z", tick=False):
        token = token_of(create())
        misses = [api.post(REVEAL, {"token": "w" * 43}, format="json") for _ in range(2)]
        limited = api.post(REVEAL, {"token": token}, format="json")

    assert [r.status_code for r in misses] == [404, 404]
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert limited["Retry-After"] == "15"
    with time_machine.travel("2026-03-02 12:01:00Z", tick=False):
        assert api.post(REVEAL, {"token": token}, format="json").status_code == 200


def test_the_page_and_the_api_share_one_reveal_budget(api, client, create, settings):
    settings.DELIVERY_REVEAL_RATE_LIMIT = "2/min"
    with time_machine.travel("2026-03-02 12:00:10Z", tick=False):
        client.post("/d/" + "v" * 43)
        api.post(REVEAL, {"token": "v" * 43}, format="json")
        assert api.post(REVEAL, {"token": "v" * 43}, format="json").status_code == 429


@pytest.mark.parametrize("role", list(Role))
def test_staff_see_a_delivery_and_its_attempts(as_user, make_user, create, role):
    result = create(method="email", contact="client@example.com", purpose="demo.account:3")
    token = token_of(result)
    delivery_view(token=token, ip="198.51.100.7", user_agent="TelegramBot (like TwitterBot)")
    api = as_user(make_user(role=role))

    with time_machine.travel("2026-03-02 12:05Z", tick=False):
        api.post(REVEAL, {"token": "nope"}, format="json")  # another delivery's business
    response = api.get(detail(result.delivery.pk))

    assert response.status_code == 200
    body = response.json()
    assert {"id", "method", "status", "created_at", "expires_at", "revealed_at", "attempts"} <= set(
        body
    )
    assert body["id"] == result.delivery.pk
    assert (body["method"], body["status"], body["revealed_at"]) == ("email", "pending", None)
    assert body["attempts"] == [
        {
            "at": body["attempts"][0]["at"],
            "action": "view",
            "outcome": "viewed",
            "ip": "198.51.100.7",
            "user_agent": "TelegramBot (like TwitterBot)",
            "is_preview_bot": True,
        }
    ]
    text = response.content.decode()
    assert SECRET not in text
    assert token not in text
    assert "enc:v1" not in text
    assert result.delivery.token_hash not in text


def test_clients_may_not_read_deliveries(as_user, make_user, create):
    delivery = create().delivery
    api = as_user(make_user())
    assert api.get(detail(delivery.pk)).status_code == 403
    assert api.get("/api/v1/delivery/").status_code == 403


def test_reading_a_delivery_needs_credentials(api, create):
    assert api.get(detail(create().delivery.pk)).status_code == 401


def test_an_unknown_delivery_id_is_404(as_user, make_user, db):
    response = as_user(make_user(role=Role.SUPPORT_AGENT)).get(detail(999999))
    assert (response.status_code, response.json()["code"]) == (404, "delivery_not_found")


def test_the_list_filters_by_purpose_and_status_in_a_fixed_number_of_queries(
    as_user, make_user, create, django_assert_max_num_queries
):
    api = as_user(make_user(role=Role.SUPPORT_AGENT))
    for n in range(5):
        create(purpose="demo.account:1" if n % 2 else "demo.account:2")
    used = create(purpose="demo.account:1")
    api.post(REVEAL, {"token": token_of(used)}, format="json")

    with django_assert_max_num_queries(8):
        response = api.get("/api/v1/delivery/", {"purpose": "demo.account:1"})
    revealed = api.get("/api/v1/delivery/", {"status": "revealed"}).json()

    assert response.json()["count"] == 3
    assert [row["id"] for row in revealed["results"]] == [used.delivery.pk]
    assert "attempts" not in revealed["results"][0]


def test_the_detail_reads_attempts_in_one_query_however_many(
    as_user, make_user, create, django_assert_max_num_queries
):
    api = as_user(make_user(role=Role.SUPPORT_AGENT))
    result = create()
    for _ in range(10):
        delivery_view(token=token_of(result), ip=None, user_agent="")
    with django_assert_max_num_queries(6):
        response = api.get(detail(result.delivery.pk))
    assert len(response.json()["attempts"]) == 10
