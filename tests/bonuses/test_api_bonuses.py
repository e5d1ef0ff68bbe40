"""The bonus monitor's API: list and detail shapes, filters, bounded queries, the role table.

`make_bonus` and `caller` are shared by the other API, report and admin test modules.
"""

from decimal import Decimal

import pytest

from accounts.roles import Role
from accounts.services import api_key_create, audit_record
from bonuses.models import Bonus

pytestmark = pytest.mark.django_db

STAFF = [role.value for role in Role]
CALLERS = [*STAFF, "client", "anonymous"]


def make_bonus(campaign, *, login=10001, **fields) -> Bonus:
    """A bonus row written with the ORM (no engine, no server): 500.00 active by default."""
    amount = Decimal(str(fields.pop("amount", "500.00")))
    fields.setdefault("status", Bonus.Status.ACTIVE)
    fields.setdefault("trigger", Bonus.Trigger.AUTO_DEPOSIT)
    fields.setdefault("credit_remaining", amount)
    fields.setdefault("deposit_amount", amount * 2)
    if campaign.bonus_type == "A":
        fields.setdefault("original_leverage", 500)
        fields.setdefault("adjusted_leverage", 333)
    if campaign.bonus_type == "C":
        fields.setdefault("lots_required", amount / campaign.convert_per_lot)
    return Bonus.objects.create(
        campaign=campaign, login=login, bonus_type=campaign.bonus_type, amount=amount, **fields
    )


def caller(kind, *, api, make_user, as_user):
    """The API client as `kind`: a staff role's value, "client", "anonymous" or "api_key"
    (an integration key with scope `triggers` of a user without staff roles)."""
    if kind == "anonymous":
        return api
    if kind == "api_key":
        _, raw = api_key_create(user=make_user(), name="CRM", scopes=["triggers"])
        api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        return api
    return as_user(make_user(role=None if kind == "client" else Role(kind)))


def expected_status(kind, allowed, ok=200):
    if kind == "anonymous":
        return 401
    return ok if kind in allowed else 403


@pytest.fixture
def client_as(api, make_user, as_user):
    return lambda kind: caller(kind, api=api, make_user=make_user, as_user=as_user)


def test_the_list_shows_every_contract_field_with_money_as_two_decimal_strings(
    client_as, campaign_factory
):
    bonus = make_bonus(campaign_factory(name="Welcome"), amount="500.00")
    response = client_as(Role.SUPPORT_AGENT.value).get("/api/v1/bonuses/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert set(body) == {"count", "next", "previous", "results"}
    row = body["results"][0]
    contract = (
        "id, campaign, login, bonus_type, status, trigger, amount, credit_remaining, "
        "deposit_amount, deposit_deal_id, original_leverage, adjusted_leverage, lots_required, "
        "lots_traded, converted_amount, progress_pct, expires_at, cancel_reason, created_at"
    )
    for field in contract.split(", "):
        assert field in row, field
    assert row["id"] == bonus.pk
    assert row["campaign_name"] == "Welcome"
    assert row["amount"] == "500.00"
    assert row["credit_remaining"] == "500.00"
    assert row["deposit_amount"] == "1000.00"
    assert row["progress_pct"] == "0.00"
    assert row["original_leverage"] == 500
    assert row["adjusted_leverage"] == 333


def test_the_list_filters_by_status_campaign_login_type_and_trigger(client_as, campaign_factory):
    a = campaign_factory(bonus_type="A")
    c = campaign_factory(bonus_type="C")
    first = make_bonus(a, login=1)
    second = make_bonus(a, login=2, status=Bonus.Status.CANCELLED, trigger=Bonus.Trigger.MANUAL)
    third = make_bonus(c, login=2, trigger=Bonus.Trigger.PROMO_CODE)
    api = client_as(Role.READ_ONLY.value)

    def ids(query):
        response = api.get(f"/api/v1/bonuses/?{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("status=active") == {first.pk, third.pk}
    assert ids(f"campaign={a.pk}") == {first.pk, second.pk}
    assert ids("login=2") == {second.pk, third.pk}
    assert ids("bonus_type=C") == {third.pk}
    assert ids("trigger=manual") == {second.pk}
    assert ids("login=2&status=active") == {third.pk}
    assert ids("campaign=999999") == set()


@pytest.mark.parametrize(
    "query",
    [
        "status=nonsense",
        "login=abc",
        "login=1.5",
        "login=99999999999999999999999",
        "campaign=x",
        "bonus_type=Z",
        "since=yesterday",
        "since=0001-01-01T00:00:00%2B16:59",  # no such time in UTC
    ],
)
def test_a_bad_filter_is_a_400_not_a_500(client_as, query):
    response = client_as(Role.SUPER_ADMIN.value).get(f"/api/v1/bonuses/?{query}")
    assert response.status_code == 400


def test_a_time_with_an_offset_postgresql_refuses_is_read_in_utc(client_as):
    # Python takes offsets up to 23:59, PostgreSQL only up to 15:59.
    response = client_as(Role.SUPER_ADMIN.value).get(
        "/api/v1/bonuses/?since=2026-01-01T00:00:00-17:30"
    )
    assert response.status_code == 200


def test_the_list_makes_the_same_few_queries_for_many_bonuses(
    client_as, campaign_factory, django_assert_max_num_queries
):
    campaigns = [campaign_factory() for _ in range(3)]
    for n in range(30):
        make_bonus(campaigns[n % 3], login=n + 1)
    api = client_as(Role.CAMPAIGN_MANAGER.value)
    # user + roles + count + page (its campaigns joined), however many bonuses.
    with django_assert_max_num_queries(5):
        response = api.get("/api/v1/bonuses/?page_size=100")
    assert len(response.json()["results"]) == 30


def test_page_size_pages_the_list(client_as, campaign_factory):
    campaign = campaign_factory()
    for n in range(5):
        make_bonus(campaign, login=n + 1)
    body = client_as(Role.SUPER_ADMIN.value).get("/api/v1/bonuses/?page_size=2").json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_the_detail_carries_the_bonus_and_its_audit_events_oldest_first(
    client_as, campaign_factory, make_user
):
    staff = make_user(role=Role.SUPER_ADMIN)
    bonus = make_bonus(campaign_factory(bonus_type="C"), amount="200.00", converted_amount="50")
    audit_record(action="bonus.granted", obj=bonus, mt5_login=bonus.login, after={"amount": "200"})
    audit_record(
        action="bonus.cancelled",
        obj=bonus,
        actor=staff,
        mt5_login=bonus.login,
        before={"status": "active"},
        after={"status": "cancelled"},
        reason="client asked",
    )
    other = make_bonus(bonus.campaign, login=5)
    audit_record(action="bonus.granted", obj=other, mt5_login=5)

    response = client_as(Role.READ_ONLY.value).get(f"/api/v1/bonuses/{bonus.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == bonus.pk
    assert body["progress_pct"] == "25.00"
    assert body["lots_required"] == "20.00"
    assert [e["action"] for e in body["events"]] == ["bonus.granted", "bonus.cancelled"]
    cancelled = body["events"][1]
    assert set(cancelled) == {"at", "actor", "action", "before", "after", "reason"}
    assert cancelled["actor"] == staff.email
    assert cancelled["before"] == {"status": "active"}
    assert cancelled["after"] == {"status": "cancelled"}
    assert cancelled["reason"] == "client asked"
    assert body["events"][0]["actor"] == "system"


def test_an_unknown_bonus_is_a_404_with_a_code(client_as):
    response = client_as(Role.SUPER_ADMIN.value).get("/api/v1/bonuses/999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "bonus_not_found"


@pytest.mark.parametrize("kind", CALLERS)
def test_every_staff_role_reads_bonuses_and_nobody_else(kind, client_as, campaign_factory):
    bonus = make_bonus(campaign_factory())
    api = client_as(kind)
    expected = expected_status(kind, STAFF)
    assert api.get("/api/v1/bonuses/").status_code == expected
    assert api.get(f"/api/v1/bonuses/{bonus.pk}/").status_code == expected


def test_an_api_key_of_a_client_cannot_read_bonuses(client_as):
    assert client_as("api_key").get("/api/v1/bonuses/").status_code == 403
