"""Issue 14, money: a manual assign is bounded by a real deposit deal on MT5 and by the
caller's role limit (four eyes above it); the deposit trigger refuses unknown logins and
invented deals. Each test plays the attack, or the honest path, the way a user would."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import AuditEvent
from accounts.roles import Role
from bonuses.models import Bonus, BonusApproval, CreditIntent
from gateways.mt5 import get_mt5_gateway
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db

ASSIGN = "/api/v1/bonuses/assign/"
APPROVALS = "/api/v1/bonus-approvals/"
ADMIN_ASSIGN = "/admin/bonuses/bonus/assign/"
ADMIN_APPROVALS = "/admin/bonuses/bonusapproval/"
ATTACK_AMOUNT = "199999999999.99"


def credit(login) -> Decimal:
    return get_mt5_gateway().get_accounts([login])[login].credit


def client_of(user) -> APIClient:
    """A fresh API client of its own (threads must not share one), with the user's JWT."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def admin_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def limits(settings):
    """`limits(role, per_bonus, per_day)`: set one role's manual limit for this test."""

    def set_limit(role: Role, per_bonus: str, per_day: str) -> None:
        settings.BONUS_MANUAL_LIMITS = {
            **settings.BONUS_MANUAL_LIMITS,
            role.value: {"per_bonus": Decimal(per_bonus), "per_day": Decimal(per_day)},
        }

    return set_limit


@pytest.fixture
def twenty_percent(campaign_factory):
    """The campaign of the attack: 20%, no max_bonus, any number of bonuses per account."""
    return campaign_factory(bonus_type="B", percentage="20", max_bonus=None, one_per_account=False)


@pytest.fixture
def agent(make_user):
    return make_user(role=Role.SUPPORT_AGENT)


# --- The attack: credit minted from a typed-in deposit -----------------------------------------


def test_the_support_agents_199_billion_deposit_without_a_deal_is_refused(
    mt5, account, twenty_percent, agent
):
    login = account(balance="1000.00")

    response = client_of(agent).post(
        ASSIGN,
        {"login": login, "campaign_id": twenty_percent.pk, "deposit_amount": ATTACK_AMOUNT},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "deal_required"
    assert not Bonus.objects.exists()
    assert not BonusApproval.objects.exists()
    assert credit(login) == 0


@pytest.mark.parametrize(
    ("deal", "amount", "code"),
    [
        ("invented", ATTACK_AMOUNT, "deal_not_found"),
        ("real", ATTACK_AMOUNT, "deposit_mismatch"),
        ("other_login", None, "deal_not_found"),
        ("withdrawal", None, "deal_not_deposit"),
        ("credit", None, "deal_not_deposit"),
    ],
)
def test_a_deal_that_is_not_this_accounts_real_deposit_is_refused(
    mt5, account, twenty_percent, agent, deposit_deal, deal, amount, code
):
    login = account(balance="1000.00")
    other = account(balance="5000.00")
    deals = {
        "invented": 987654321,
        "real": deposit_deal(login),
        "other_login": deposit_deal(other),
        "withdrawal": mt5.post_balance(login, Decimal("-10.00"), comment="Withdrawal"),
        "credit": mt5.post_credit(login, Decimal("10.00"), comment="Credit"),
    }
    body = {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deals[deal]}
    if amount is not None:
        body["deposit_amount"] = amount

    response = client_of(agent).post(ASSIGN, body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert not Bonus.objects.exists()
    assert credit(login) == Decimal("10.00")  # only the dealer's own credit deal


def test_the_engines_own_conversion_payout_is_not_a_deposit(mt5, account, campaign_factory, agent):
    login = account(balance="400.00")
    campaign_factory(bonus_type="C", percentage="50", convert_per_lot="10.00")
    from bonuses.services import trade_deal_convert, trigger_deposit

    trigger_deposit(login=login, amount=Decimal("400.00"))
    trade_deal_convert(login=login, deal_ticket=9001, lots=Decimal("5.00"))
    payout = CreditIntent.objects.get(kind="balance_in").deal_id

    response = client_of(agent).post(
        ASSIGN,
        {"login": login, "campaign_id": campaign_factory(bonus_type="B").pk, "deal_id": payout},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "deal_not_deposit"


def test_a_real_deposit_deal_is_granted_on_the_deals_amount(mt5, account, twenty_percent, agent):
    login = account(balance="0")
    mt5.post_balance(login, Decimal("750.00"), comment="card deposit")
    deal = mt5.post_balance(login, Decimal("1000.00"), comment="card deposit")

    response = client_of(agent).post(
        ASSIGN,
        {
            "login": login,
            "campaign_id": twenty_percent.pk,
            "deal_id": deal,
            "deposit_amount": "1000.00",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["deposit_amount"], body["deposit_deal_id"]) == (
        "200.00",
        "1000.00",
        deal,
    )
    assert body["status"] == "active"
    assert credit(login) == Decimal("200.00")


def test_a_deal_alone_gives_its_amount(mt5, account, twenty_percent, agent, deposit_deal):
    login = account(balance="300.00")

    response = client_of(agent).post(
        ASSIGN,
        {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deposit_deal(login)},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "60.00"


def test_the_same_deal_twice_is_refused(mt5, account, twenty_percent, agent, deposit_deal):
    login = account(balance="1000.00")
    body = {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deposit_deal(login)}
    api = client_of(agent)

    first = api.post(ASSIGN, body, format="json")
    second = api.post(ASSIGN, body, format="json")

    assert first.status_code == 201, first.content
    assert second.status_code == 409, second.content
    assert second.json()["code"] == "deal_already_used"
    assert Bonus.objects.count() == 1
    assert credit(login) == Decimal("200.00")


def test_a_deal_the_engine_already_granted_on_cannot_be_assigned_again(
    mt5, account, twenty_percent, agent, deposit_deal
):
    from bonuses.services import trigger_deposit

    login = account(balance="1000.00")
    deal = deposit_deal(login)
    trigger_deposit(login=login, amount=Decimal("1000.00"), deal_id=deal, deal_from_server=True)

    response = client_of(agent).post(
        ASSIGN, {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "deal_already_used"
    assert credit(login) == Decimal("200.00")


def test_the_database_refuses_a_second_bonus_of_one_campaign_on_one_deal(twenty_percent):
    fields = {
        "campaign": twenty_percent,
        "login": 1,
        "bonus_type": "B",
        "trigger": "manual",
        "amount": Decimal("1.00"),
        "deposit_deal_id": 42,
    }
    Bonus.objects.create(**fields, status=Bonus.Status.FAILED)  # gave nothing: may be redone
    Bonus.objects.create(**fields, status=Bonus.Status.ACTIVE)

    with pytest.raises(IntegrityError), transaction.atomic():
        Bonus.objects.create(**fields, status=Bonus.Status.PENDING)


# --- Above the limit: four eyes --------------------------------------------------------------


def test_above_the_agents_limit_the_assign_waits_and_another_super_admin_grants_it(
    mt5, account, twenty_percent, agent, make_user, deposit
):
    login = account(balance="0")
    deal = deposit(login, "25000.00")  # 20%: 5,000.00, above the agent's 1,000.00

    asked = client_of(agent).post(
        ASSIGN,
        {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal, "reason": "VIP"},
        format="json",
    )

    assert asked.status_code == 202, asked.content
    pending = asked.json()
    assert pending["status"] == "pending"
    assert pending["amount"] == "5000.00"
    assert "per-bonus limit" in pending["limit_reason"]
    assert not Bonus.objects.exists()
    assert credit(login) == 0

    approver = make_user(role=Role.SUPER_ADMIN)
    approved = client_of(approver).post(
        f"{APPROVALS}{pending['approval_id']}/approve/", {"reason": "checked"}, format="json"
    )

    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert body["status"] == "approved"
    assert body["bonus"]["amount"] == "5000.00"
    assert body["bonus"]["status"] == "active"
    bonus = Bonus.objects.get()
    assert (bonus.granted_by, bonus.deposit_deal_id) == (agent, deal)
    assert credit(login) == Decimal("5000.00")
    events = AuditEvent.objects.filter(object_type="bonuses.bonusapproval").order_by("seq")
    assert [(e.action, e.actor_id) for e in events] == [
        ("bonus_approval.requested", agent.pk),
        ("bonus_approval.approved", approver.pk),
    ]
    granted = AuditEvent.objects.get(object_id=str(bonus.pk), action="bonus.granted")
    assert granted.actor_id == approver.pk


def test_staff_read_the_pending_request_and_only_super_admins_decide(
    mt5, account, twenty_percent, agent, make_user, deposit
):
    login = account(balance="0")
    deal = deposit(login, "25000.00")
    approval_id = (
        client_of(agent)
        .post(
            ASSIGN,
            {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal},
            format="json",
        )
        .json()["approval_id"]
    )

    listed = client_of(make_user(role=Role.READ_ONLY)).get(APPROVALS, {"status": "pending"})
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [approval_id]
    for role in (Role.SUPPORT_AGENT, Role.CAMPAIGN_MANAGER, Role.READ_ONLY):
        refused = client_of(make_user(role=role)).post(f"{APPROVALS}{approval_id}/approve/")
        assert refused.status_code == 403
    assert client_of(agent).post(f"{APPROVALS}{approval_id}/approve/").status_code == 403
    assert not Bonus.objects.exists()


def test_a_super_admin_above_their_own_limit_cannot_approve_their_own_request(
    mt5, account, twenty_percent, make_user, deposit
):
    admin = make_user(role=Role.SUPER_ADMIN)
    login = account(balance="0")
    deal = deposit(login, "100000.00")  # 20%: 20,000.00, above a Super Admin's 10,000.00
    api = client_of(admin)

    asked = api.post(
        ASSIGN, {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal}, format="json"
    )
    assert asked.status_code == 202, asked.content
    own = api.post(f"{APPROVALS}{asked.json()['approval_id']}/approve/")

    assert own.status_code == 403
    assert own.json()["code"] == "same_person"
    assert BonusApproval.objects.get().status == "pending"
    assert credit(login) == 0


def test_a_rejected_request_grants_nothing_and_cannot_be_decided_again(
    mt5, account, twenty_percent, agent, make_user, deposit
):
    login = account(balance="0")
    deal = deposit(login, "25000.00")
    approval_id = (
        client_of(agent)
        .post(
            ASSIGN,
            {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal},
            format="json",
        )
        .json()["approval_id"]
    )
    deciders = client_of(make_user(role=Role.SUPER_ADMIN))

    rejected = deciders.post(f"{APPROVALS}{approval_id}/reject/", {"reason": "no"}, format="json")
    again = deciders.post(f"{APPROVALS}{approval_id}/approve/")

    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert again.status_code == 409
    assert again.json()["code"] == "already_decided"
    assert not Bonus.objects.exists()
    assert credit(login) == 0
    assert AuditEvent.objects.filter(action="bonus_approval.rejected").count() == 1


def test_approving_re_runs_the_rules_and_records_why_it_could_not_grant(
    mt5, account, twenty_percent, agent, make_user, deposit
):
    login = account(balance="0")
    deal = deposit(login, "25000.00")
    approval_id = (
        client_of(agent)
        .post(
            ASSIGN,
            {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal},
            format="json",
        )
        .json()["approval_id"]
    )
    twenty_percent.status = "paused"
    twenty_percent.save(update_fields=["status"])

    response = client_of(make_user(role=Role.SUPER_ADMIN)).post(
        f"{APPROVALS}{approval_id}/approve/"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "ineligible"
    approval = BonusApproval.objects.get()
    assert (approval.status, approval.failure_code) == ("failed", "ineligible")
    assert not Bonus.objects.exists()
    assert credit(login) == 0


def test_a_pending_deal_cannot_be_asked_for_twice(mt5, account, twenty_percent, agent, deposit):
    login = account(balance="0")
    deal = deposit(login, "25000.00")
    body = {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal}

    assert client_of(agent).post(ASSIGN, body, format="json").status_code == 202
    second = client_of(agent).post(ASSIGN, body, format="json")

    assert second.status_code == 409
    assert second.json()["code"] == "deal_already_used"
    assert BonusApproval.objects.count() == 1


def test_a_registration_campaign_without_a_deposit_is_bounded_too(
    mt5, account, campaign_factory, agent
):
    login = account(balance="0")
    big = campaign_factory(bonus_type="B", trigger_type="registration", fixed_amount="5000.00")

    response = client_of(agent).post(ASSIGN, {"login": login, "campaign_id": big.pk}, format="json")

    assert response.status_code == 202, response.content
    assert credit(login) == 0


def test_the_daily_limit_counts_what_the_agent_granted_and_asked_for_today(
    mt5, account, twenty_percent, agent, deposit, limits, time_machine
):
    limits(Role.SUPPORT_AGENT, per_bonus="1000.00", per_day="1500.00")
    time_machine.move_to("2026-03-02 23:00:00+00:00", tick=False)
    api = APIClient()
    api.force_authenticate(agent)  # a JWT would expire across the hours this test skips

    def assign(amount):
        login = account(balance="0")
        deal = deposit(login, amount)
        body = {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal}
        return api.post(ASSIGN, body, format="json")

    assert assign("4000.00").status_code == 201  # 800.00
    over = assign("4000.00")  # another 800.00: 1,600.00 today
    assert over.status_code == 202
    assert "daily limit" in over.json()["limit_reason"]
    # 100.00 more: 900.00 granted alone would fit, but the pending 800.00 counts too.
    assert assign("500.00").status_code == 202

    time_machine.move_to("2026-03-03 00:00:01+00:00", tick=False)  # a new UTC day
    assert assign("4000.00").status_code == 201


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_assigns_at_once_cannot_both_squeeze_under_the_daily_limit(
    mt5, account, twenty_percent, agent, deposit, limits
):
    limits(Role.SUPPORT_AGENT, per_bonus="1000.00", per_day="1500.00")
    logins = [account(balance="0") for _ in range(6)]
    bodies = [
        {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deposit(login, "4000.00")}
        for login in logins
    ]  # 800.00 each: any two are above 1,500.00

    results, errors = run_at_once(
        lambda n: client_of(agent).post(ASSIGN, bodies[n], format="json").status_code, threads=6
    )

    assert errors == []
    assert sorted(results) == [201, 202, 202, 202, 202, 202]
    granted = Bonus.objects.filter(granted_by=agent).exclude(status="failed")
    assert [b.amount for b in granted] == [Decimal("800.00")]
    assert sum(credit(login) for login in logins) == Decimal("800.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_super_admins_approving_at_once_grant_once(
    mt5, account, twenty_percent, agent, make_user, deposit
):
    login = account(balance="0")
    deal = deposit(login, "25000.00")
    approval_id = (
        client_of(agent)
        .post(
            ASSIGN,
            {"login": login, "campaign_id": twenty_percent.pk, "deal_id": deal},
            format="json",
        )
        .json()["approval_id"]
    )
    approvers = [make_user(role=Role.SUPER_ADMIN) for _ in range(4)]

    results, errors = run_at_once(
        lambda n: client_of(approvers[n]).post(f"{APPROVALS}{approval_id}/approve/").status_code,
        threads=4,
    )

    assert errors == []
    assert sorted(results) == [200, 409, 409, 409]
    assert Bonus.objects.count() == 1
    assert credit(login) == Decimal("5000.00")


# --- The admin's assign page and the approvals list ----------------------------------------


def test_the_admin_assign_page_refuses_a_typed_in_deposit(mt5, account, twenty_percent, agent):
    login = account(balance="1000.00")

    response = admin_of(agent).post(
        ADMIN_ASSIGN,
        {"login": login, "campaign": twenty_percent.pk, "deposit_amount": ATTACK_AMOUNT},
    )

    assert response.status_code == 200
    assert any("deal_required" in str(m) for m in response.context["messages"])
    assert not Bonus.objects.exists()
    assert credit(login) == 0


def test_the_admin_assign_page_above_the_limit_waits_for_approval(
    mt5, account, twenty_percent, agent, deposit
):
    login = account(balance="0")
    deal = deposit(login, "25000.00")

    response = admin_of(agent).post(
        ADMIN_ASSIGN, {"login": login, "campaign": twenty_percent.pk, "deal_id": deal}
    )

    approval = BonusApproval.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{ADMIN_APPROVALS}{approval.pk}/change/"
    page = admin_of(agent).get(response["Location"])
    assert page.status_code == 200
    followed = admin_of(agent).post(
        ADMIN_ASSIGN, {"login": login, "campaign": twenty_percent.pk, "deal_id": deal}, follow=True
    )
    assert any("deal_already_used" in str(m) for m in followed.context["messages"])
    assert (approval.requested_by, approval.amount) == (agent, Decimal("5000.00"))
    assert not Bonus.objects.exists()
    assert credit(login) == 0


def test_the_admin_approve_action_is_a_super_admins_and_never_the_requesters(
    mt5, account, twenty_percent, make_user, deposit
):
    requester = make_user(role=Role.SUPER_ADMIN)
    login = account(balance="0")
    deal = deposit(login, "100000.00")
    admin_of(requester).post(
        ADMIN_ASSIGN, {"login": login, "campaign": twenty_percent.pk, "deal_id": deal}
    )
    approval = BonusApproval.objects.get()
    action = {"action": "approve_selected", "_selected_action": [approval.pk]}

    agent_try = admin_of(make_user(role=Role.SUPPORT_AGENT)).post(ADMIN_APPROVALS, action)
    own_try = admin_of(requester).post(ADMIN_APPROVALS, action, follow=True)
    assert BonusApproval.objects.get().status == "pending"
    assert agent_try.status_code != 500
    assert any("another Super Admin" in str(m) for m in own_try.context["messages"])

    approved = admin_of(make_user(role=Role.SUPER_ADMIN)).post(ADMIN_APPROVALS, action)

    assert approved.status_code == 302
    approval.refresh_from_db()
    assert approval.status == "approved"
    assert credit(login) == Decimal("20000.00")


# --- The deposit trigger ----------------------------------------------------------------------


def test_a_deposit_trigger_for_an_unknown_login_is_a_404(mt5, campaign_factory, make_user):
    campaign_factory()
    response = client_of(make_user(role=Role.SUPER_ADMIN)).post(
        "/api/v1/triggers/deposit/", {"login": 31337, "amount": "100.00"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"


def test_a_registration_trigger_for_an_unknown_login_is_a_404(mt5, make_user):
    response = client_of(make_user(role=Role.SUPER_ADMIN)).post(
        "/api/v1/triggers/registration/", {"login": 31337}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"amount": ATTACK_AMOUNT, "deal_id": 987654321},  # an invented deal
        {"amount": ATTACK_AMOUNT},  # no deal, and no such deposit on the account
        {"amount": "999.99", "deal_id": "real"},  # the real deal, another amount
    ],
)
def test_a_deposit_trigger_credits_only_a_real_deposit(
    mt5, account, twenty_percent, make_user, deposit_deal, body
):
    login = account(balance="1000.00")
    if body.get("deal_id") == "real":
        body = {**body, "deal_id": deposit_deal(login)}

    response = client_of(make_user(role=Role.SUPER_ADMIN)).post(
        "/api/v1/triggers/deposit/", {"login": login, **body}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["code"] in {"deal_not_found", "deposit_mismatch"}
    assert not Bonus.objects.exists()
    assert credit(login) == 0


def test_a_promo_code_with_a_typed_in_deposit_credits_nothing(
    mt5, account, campaign_factory, make_user
):
    login = account(balance="1000.00")
    campaign_factory(bonus_type="B", trigger_type="promo_code", promo_code="MINT", percentage="20")

    response = client_of(make_user(role=Role.SUPER_ADMIN)).post(
        "/api/v1/triggers/promo-code/",
        {"login": login, "code": "MINT", "deposit_amount": ATTACK_AMOUNT},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "deal_not_found"
    assert credit(login) == 0
