"""The staff screens: Bonus monitor and its actions, manual assign with its confirmation page,
account lookup, reports with exports, the credit ledger."""

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts.roles import Role
from accounts.services import audit_record
from bonuses import admin_views, services
from bonuses.models import Bonus
from bonuses.services import bonus_assign
from gateways.errors import TransientGatewayError
from tests.bonuses.test_api_bonuses import make_bonus

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/bonuses/bonus/"
ASSIGN = "/admin/bonuses/bonus/assign/"
LOOKUP = "/admin/bonuses/bonus/account-lookup/"
REPORTS = "/admin/bonuses/bonus/reports/"
EXPORT = "/admin/bonuses/bonus/reports/export/"
LEDGER = "/admin/bonuses/creditintent/"


@pytest.fixture
def staff(make_user):
    """`staff(role) -> Client` logged in as a new user holding that role."""

    def login(role: Role) -> Client:
        client = Client()
        client.force_login(make_user(role=role))
        return client

    return login


@pytest.fixture
def granted(mt5, account, campaign_factory, deposit_deal, make_user):
    """`granted(bonus_type) -> Bonus`: an active bonus granted by the engine on 1,000."""
    admin = make_user(role=Role.SUPER_ADMIN)

    def make(bonus_type="A", **campaign_fields):
        login = account(balance="1000.00", leverage=500)
        campaign = campaign_factory(bonus_type=bonus_type, **campaign_fields)
        return bonus_assign(
            login=login,
            campaign=campaign,
            deposit_amount=Decimal("1000.00"),
            deal_id=deposit_deal(login),
            actor=admin,
        )

    return make


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- Bonus monitor --------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_staff_role_sees_the_monitor(role, staff, campaign_factory):
    make_bonus(campaign_factory(name="Spring"), login=70001)
    response = staff(role).get(CHANGELIST)
    assert response.status_code == 200
    assert b"70001" in response.content
    assert b"Spring" in response.content


def test_a_client_is_sent_to_the_admin_login(make_user):
    client = Client()
    client.force_login(make_user())
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_monitor_filters_by_status_type_campaign_trigger_and_searches_a_login(
    staff, campaign_factory
):
    spring = campaign_factory(name="Spring", bonus_type="C")
    make_bonus(spring, login=70001)
    make_bonus(campaign_factory(), login=70002, status=Bonus.Status.CANCELLED)
    client = staff(Role.READ_ONLY)
    for query, shown, hidden in [
        ("status__exact=cancelled", b"70002", b"70001"),
        ("bonus_type=C", b"70001", b"70002"),
        (f"campaign__id__exact={spring.pk}", b"70001", b"70002"),
        ("trigger__exact=auto_deposit&q=70002", b"70002", b"70001"),
    ]:
        response = client.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200, query
        assert shown in response.content, query
        assert hidden not in response.content, query


def test_searching_the_monitor_for_text_is_not_an_error(staff):
    assert staff(Role.SUPPORT_AGENT).get(f"{CHANGELIST}?q=abc").status_code == 200


@pytest.mark.parametrize("role", list(Role))
def test_the_cancel_and_force_convert_actions_are_offered_only_to_super_admin(
    role, staff, campaign_factory
):
    make_bonus(campaign_factory())
    response = staff(role).get(CHANGELIST)
    offered = b"cancel_selected" in response.content and b"force_convert_selected" in (
        response.content
    )
    assert offered is (role == Role.SUPER_ADMIN)


@pytest.mark.parametrize("role", [Role.CAMPAIGN_MANAGER, Role.SUPPORT_AGENT, Role.READ_ONLY])
@pytest.mark.parametrize("action", ["cancel_selected", "force_convert_selected"])
def test_other_roles_cannot_run_the_actions_by_posting_them(action, role, staff, granted):
    bonus = granted("C", percentage="20")
    staff(role).post(
        CHANGELIST,
        {"action": action, "_selected_action": [bonus.pk], "confirm": "yes", "index": 0},
    )
    bonus.refresh_from_db()
    assert bonus.status == Bonus.Status.ACTIVE


def test_cancel_asks_for_confirmation_then_cancels_through_the_engine(staff, granted, mt5):
    bonus = granted("A")
    client = staff(Role.SUPER_ADMIN)
    ask = client.post(CHANGELIST, {"action": "cancel_selected", "_selected_action": [bonus.pk]})
    assert ask.status_code == 200
    assert b"Cancel these bonuses" in ask.content
    bonus.refresh_from_db()
    assert bonus.status == Bonus.Status.ACTIVE

    done = client.post(
        CHANGELIST,
        {
            "action": "cancel_selected",
            "_selected_action": [bonus.pk],
            "confirm": "yes",
            "reason": "fraud check",
        },
    )
    assert done.status_code == 302
    bonus.refresh_from_db()
    assert (bonus.status, bonus.cancel_reason) == (Bonus.Status.CANCELLED, "fraud check")
    assert mt5.get_accounts([bonus.login])[bonus.login].leverage == 500
    assert any(f"Bonus #{bonus.pk} cancelled" in text for text in texts(done))


def test_each_bonus_gets_its_own_message_and_a_refusal_is_not_a_500(staff, granted):
    type_a = granted("A")
    type_c = granted("C", percentage="20")
    response = staff(Role.SUPER_ADMIN).post(
        CHANGELIST,
        {"action": "force_convert_selected", "_selected_action": [type_a.pk, type_c.pk]},
    )
    assert response.status_code == 302
    messages = texts(response)
    assert any(f"Bonus #{type_a.pk}: not converted" in text for text in messages)
    assert any(f"Bonus #{type_c.pk} converted" in text for text in messages)
    type_a.refresh_from_db()
    type_c.refresh_from_db()
    assert (type_a.status, type_c.status) == (Bonus.Status.ACTIVE, Bonus.Status.CONVERTED)


def test_the_bonus_detail_is_read_only_with_its_ledger_and_audit_events(staff, granted):
    bonus = granted("A")
    response = staff(Role.READ_ONLY).get(f"{CHANGELIST}{bonus.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Credit ledger: this bonus" in body
    assert "Credit in" in body  # the grant's intent
    assert "bonus.granted" in body  # the audit trail
    assert 'name="_save"' not in body


def test_there_is_no_add_page_for_bonuses(staff):
    assert staff(Role.SUPER_ADMIN).get(f"{CHANGELIST}add/").status_code == 403


# --- Manual assign --------------------------------------------------------------------------


@pytest.fixture
def mismatched(mt5, account, campaign_factory, deposit_deal):
    """An account failing two overridable rules, and its 100.00 deposit deal."""
    login = account(group="real\\standard", country="Cyprus", balance="100.00")
    campaign = campaign_factory(
        name="Germany VIP", target_groups=["real\\vip"], target_countries=["Germany"]
    )
    return login, campaign, deposit_deal(login)


def test_a_support_agent_confirms_overridable_failures_and_assigns(staff, mismatched):
    login, campaign, deal = mismatched
    client = staff(Role.SUPPORT_AGENT)
    assert client.get(ASSIGN).status_code == 200
    form = {
        "login": login,
        "campaign": campaign.pk,
        "deal_id": deal,
        "deposit_amount": "100.00",
        "reason": "",
    }

    confirm = client.post(ASSIGN, form)
    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert "Override and assign" in body
    assert "group_mismatch" in body
    assert "country_mismatch" in body
    assert not Bonus.objects.exists()

    no_reason = client.post(ASSIGN, {**form, "override": "1"})
    assert "Override and assign" in no_reason.content.decode()
    assert "Say why" in no_reason.content.decode()
    assert not Bonus.objects.exists()

    done = client.post(ASSIGN, {**form, "override": "1", "reason": "desk approved"})
    assert done.status_code == 302
    bonus = Bonus.objects.get()
    assert done["Location"] == f"{CHANGELIST}{bonus.pk}/change/"
    assert (bonus.login, bonus.campaign, bonus.trigger) == (login, campaign, "manual")
    assert bonus.status == Bonus.Status.ACTIVE
    assert bonus.override_reason == "desk approved"


def test_an_eligible_assign_needs_no_confirmation(
    staff, mt5, account, campaign_factory, deposit_deal
):
    login = account()
    campaign = campaign_factory(percentage="50")
    response = staff(Role.SUPER_ADMIN).post(
        ASSIGN,
        {
            "login": login,
            "campaign": campaign.pk,
            "deal_id": deposit_deal(login),
            "deposit_amount": "1000.00",
        },
    )
    assert response.status_code == 302
    assert Bonus.objects.get().amount == Decimal("500.00")


def test_a_non_overridable_failure_blocks_with_no_override_button(
    staff, mt5, account, campaign_factory, deposit_deal
):
    login = account(country="Cyprus")
    paused = campaign_factory(status="paused", target_countries=["Germany"])
    client = staff(Role.SUPPORT_AGENT)
    form = {"login": login, "campaign": paused.pk, "deal_id": deposit_deal(login)}
    response = client.post(ASSIGN, form)
    assert response.status_code == 200
    body = response.content.decode()
    assert "campaign_status" in body
    assert "Override and assign" not in body
    assert any("cannot be assigned" in text for text in texts(response))
    # Posting the override by hand changes nothing.
    forced = client.post(ASSIGN, {**form, "override": "1", "reason": "please"})
    assert forced.status_code == 200
    assert "campaign_status" in forced.content.decode()
    assert not Bonus.objects.exists()


def test_bad_assign_input_shows_the_form_errors(staff, campaign_factory):
    response = staff(Role.SUPPORT_AGENT).post(
        ASSIGN, {"login": "abc", "campaign": campaign_factory().pk, "deposit_amount": "-1"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"login", "deposit_amount"}


@pytest.mark.parametrize("role", [Role.CAMPAIGN_MANAGER, Role.READ_ONLY])
def test_roles_that_may_not_assign_get_403(role, staff):
    assert staff(role).get(ASSIGN).status_code == 403


@pytest.mark.parametrize(
    ("role", "shown"),
    [(Role.SUPPORT_AGENT, True), (Role.CAMPAIGN_MANAGER, False), (Role.READ_ONLY, False)],
)
def test_the_monitor_links_to_assign_only_for_those_who_may(role, shown, staff):
    assert (b"Assign a bonus" in staff(role).get(CHANGELIST).content) is shown


# --- Account lookup -------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_the_account_lookup_page_shows_live_state_bonuses_and_audit(role, staff, granted):
    bonus = granted("A")
    audit_record(
        action="account.noted", object_type="mt5.account", object_id=1, mt5_login=bonus.login
    )
    response = staff(role).get(f"{LOOKUP}?login={bonus.login}")
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Account {bonus.login}" in body
    assert "1500.00" in body  # equity: 1,000 balance + 500 credit
    assert "1:333" in body
    assert f"#{bonus.pk}" in body
    assert "account.noted" in body


def test_the_account_lookup_page_without_a_login_shows_the_form(staff):
    response = staff(Role.SUPPORT_AGENT).get(LOOKUP)
    assert response.status_code == 200
    assert b'name="login"' in response.content


def test_an_unknown_login_on_the_lookup_page_says_so(staff, mt5):
    response = staff(Role.SUPPORT_AGENT).get(f"{LOOKUP}?login=987654")
    assert response.status_code == 200
    assert any("987654" in text for text in texts(response))


def test_a_bad_login_on_the_lookup_page_is_a_form_error(staff, mt5):
    response = staff(Role.SUPPORT_AGENT).get(f"{LOOKUP}?login=abc")
    assert response.status_code == 200
    assert "login" in response.context["form"].errors


# --- Reports and the ledger -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.SUPER_ADMIN, 200),
        (Role.READ_ONLY, 200),
        (Role.CAMPAIGN_MANAGER, 403),
        (Role.SUPPORT_AGENT, 403),
    ],
)
def test_the_reports_page_is_for_super_admin_and_read_only(role, status, staff, granted):
    granted("C", percentage="20")
    response = staff(role).get(REPORTS)
    assert response.status_code == status
    if status == 200:
        assert b"Summary by campaign" in response.content
        assert b"200.00" in response.content
    assert staff(role).get(f"{EXPORT}?report=summary&format=csv").status_code == status


def test_the_admin_exports_csv_and_xlsx_with_the_reports_rows(staff, campaign_factory):
    campaign = campaign_factory(name="Spring", bonus_type="C")
    make_bonus(campaign, login=70001, amount="200.00", converted_amount="50.00")
    client = staff(Role.READ_ONLY)

    as_csv = client.get(f"{EXPORT}?report=conversions&format=csv")
    assert as_csv.status_code == 200
    assert as_csv["Content-Disposition"].startswith("attachment;")
    [row] = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert (row["login"], row["converted_amount"], row["progress_pct"]) == (
        "70001",
        "50.00",
        "25.00",
    )

    as_xlsx = client.get(f"{EXPORT}?report=summary&format=xlsx&campaign={campaign.pk}")
    assert as_xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).active
    header, *rows = list(sheet.iter_rows(values_only=True))
    [summary] = [dict(zip(header, values, strict=True)) for values in rows]
    assert (summary["name"], summary["granted"]) == ("Spring", 1)


def test_a_bad_admin_export_goes_back_to_the_reports_with_a_message(staff):
    response = staff(Role.SUPER_ADMIN).get(f"{EXPORT}?report=nope&format=csv")
    assert response.status_code == 302
    assert response["Location"] == REPORTS


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.SUPER_ADMIN, 200),
        (Role.CAMPAIGN_MANAGER, 403),
        (Role.SUPPORT_AGENT, 403),
        (Role.READ_ONLY, 403),
    ],
)
def test_the_credit_ledger_list_is_for_super_admin_only(role, status, staff, granted):
    granted("B")
    response = staff(role).get(LEDGER)
    assert response.status_code == status
    if status == 200:
        assert b"Credit in" in response.content
        assert staff(role).get(f"{LEDGER}?q=abc").status_code == 200


# --- The MT5 server down: a message, never a 500 --------------------------------------------


def _server_down(*args, **kwargs):
    raise TransientGatewayError("connection refused", gateway="mt5")


def test_the_assign_page_says_so_when_the_server_is_down(staff, mismatched, monkeypatch):
    login, campaign, deal = mismatched
    monkeypatch.setattr(services, "check_eligibility_all", _server_down)
    response = staff(Role.SUPPORT_AGENT).post(
        ASSIGN, {"login": login, "campaign": campaign.pk, "deal_id": deal}
    )
    assert response.status_code == 200
    assert any("did not answer" in text for text in texts(response))
    assert not Bonus.objects.exists()


def test_the_lookup_page_says_so_when_the_server_is_down(staff, monkeypatch):
    monkeypatch.setattr(admin_views, "account_lookup", _server_down)
    response = staff(Role.READ_ONLY).get(f"{LOOKUP}?login=10001")
    assert response.status_code == 200
    assert any("did not answer" in text for text in texts(response))


def test_a_cancel_the_server_does_not_complete_is_reported_per_bonus(
    staff, campaign_factory, monkeypatch
):
    bonus = make_bonus(campaign_factory())
    monkeypatch.setattr(services, "bonus_cancel", _server_down)
    response = staff(Role.SUPER_ADMIN).post(
        CHANGELIST,
        {"action": "cancel_selected", "_selected_action": [bonus.pk], "confirm": "yes"},
    )
    assert response.status_code == 302
    assert any(f"Bonus #{bonus.pk}: the MT5 server" in text for text in texts(response))
