"""The monitor's staff screens: monitored accounts (reset, register by hand) and account events
(retry now), per role."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from accounts.models import AccountEvent, AuditEvent, MonitoredAccount
from accounts.roles import Role
from accounts.services.events import account_events_retry_now

pytestmark = pytest.mark.django_db

ACCOUNTS = "/admin/accounts/monitoredaccount/"
REGISTER = f"{ACCOUNTS}add/"
EVENTS = "/admin/accounts/accountevent/"
NOT_SUPER = [Role.CAMPAIGN_MANAGER, Role.SUPPORT_AGENT, Role.READ_ONLY]


@pytest.fixture
def staff(make_user):
    """`staff(role) -> Client` logged in as a new user holding that role (`.user` is it)."""

    def login(role: Role) -> Client:
        client = Client()
        client.user = make_user(role=role)
        client.force_login(client.user)
        return client

    return login


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def pause(login, errors=5, last_error="account_not_found: the server does not know this login"):
    MonitoredAccount.objects.filter(login=login).update(
        status=MonitoredAccount.Status.PAUSED, consecutive_errors=errors, last_error=last_error
    )


def event(login=10001, ticket=None, status=AccountEvent.Status.PENDING, **fields):
    later = timezone.now() + timedelta(hours=1)
    return AccountEvent.objects.create(
        server=settings.MT5_SERVER,
        login=login,
        kind=fields.pop("kind", AccountEvent.Kind.DEPOSIT),
        ticket=ticket,
        amount=Decimal("100.00"),
        occurred_at=timezone.now(),
        status=status,
        next_attempt_at=fields.pop("next_attempt_at", later),
        **fields,
    )


# --- Monitored accounts -----------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_staff_role_sees_the_monitored_accounts_with_their_snapshots(role, staff, watched):
    long_error = "processing failed: " + "x" * 100
    pause(10004, last_error=long_error)

    response = staff(role).get(ACCOUNTS)

    assert response.status_code == 200
    page = response.content.decode()
    assert "10001" in page and "10010" in page
    assert "processing failed: xxx" in page
    assert long_error not in page  # cut short in the list
    assert "Paused" in page


def test_a_super_admin_gets_the_reset_action_and_the_register_button(staff, watched):
    page = staff(Role.SUPER_ADMIN).get(ACCOUNTS).content.decode()

    assert "reset_errors_selected" in page
    assert REGISTER in page


def test_a_client_is_sent_to_the_admin_login(make_user, watched):
    client = Client()
    client.force_login(make_user())

    response = client.get(ACCOUNTS)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_list_filters_by_status_and_searches_a_login(staff, watched):
    pause(10006)
    client = staff(Role.READ_ONLY)

    paused = client.get(ACCOUNTS, {"status__exact": "paused"})
    found = client.get(ACCOUNTS, {"q": "10003"})
    nonsense = client.get(ACCOUNTS, {"q": "abc"})

    assert list(paused.context["cl"].result_list.values_list("login", flat=True)) == [10006]
    assert list(found.context["cl"].result_list.values_list("login", flat=True)) == [10003]
    assert nonsense.status_code == 200


def test_a_monitored_account_cannot_be_edited_or_deleted_by_hand_even_by_a_super_admin(
    staff, watched
):
    client = staff(Role.SUPER_ADMIN)
    row = MonitoredAccount.objects.get(login=10001)

    detail = client.get(f"{ACCOUNTS}{row.pk}/change/")
    posted = client.post(f"{ACCOUNTS}{row.pk}/change/", {"status": "paused"})

    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert posted.status_code == 403
    assert client.get(f"{ACCOUNTS}{row.pk}/delete/").status_code == 403
    assert MonitoredAccount.objects.get(login=10001).status == MonitoredAccount.Status.ACTIVE


def test_a_super_admin_resets_selected_accounts_and_each_reset_is_audited(staff, watched):
    pause(10002)
    pause(10003, errors=7)
    client = staff(Role.SUPER_ADMIN)
    rows = MonitoredAccount.objects.filter(login__in=[10002, 10003])
    ids = list(rows.values_list("pk", flat=True))

    response = client.post(
        ACCOUNTS,
        {"action": "reset_errors_selected", "_selected_action": ids},
        follow=True,
    )

    assert response.status_code == 200
    assert "2 account(s) active again, errors cleared." in texts(response)
    for row in MonitoredAccount.objects.filter(login__in=[10002, 10003]):
        assert (row.status, row.consecutive_errors, row.last_error) == ("active", 0, "")
    audited = AuditEvent.objects.filter(action="monitor.errors_reset")
    assert sorted(audited.values_list("mt5_login", flat=True)) == [10002, 10003]
    assert set(audited.values_list("actor_id", flat=True)) == {client.user.pk}


@pytest.mark.parametrize("role", NOT_SUPER)
def test_other_staff_roles_can_neither_reset_nor_register(role, staff, watched):
    pause(10002)
    client = staff(role)
    row = MonitoredAccount.objects.get(login=10002)

    page = client.get(ACCOUNTS).content.decode()
    client.post(ACCOUNTS, {"action": "reset_errors_selected", "_selected_action": [row.pk]})

    assert "reset_errors_selected" not in page
    assert REGISTER not in page
    assert MonitoredAccount.objects.get(login=10002).status == MonitoredAccount.Status.PAUSED
    assert client.get(REGISTER).status_code == 403
    assert client.post(REGISTER, {"login": "10002"}).status_code == 403


def test_the_register_form_asks_for_a_login_only(staff, mt5):
    response = staff(Role.SUPER_ADMIN).get(REGISTER)

    assert response.status_code == 200
    assert list(response.context["form"].fields) == ["login"]


def test_a_super_admin_registers_a_login_by_hand(staff, mt5, account):
    login = account(balance="400.00")
    client = staff(Role.SUPER_ADMIN)

    response = client.post(REGISTER, {"login": str(login)}, follow=True)

    assert response.redirect_chain[-1][0] == ACCOUNTS
    assert f"MT5 account {login} is monitored (active)." in texts(response)
    assert MonitoredAccount.objects.filter(login=login).exists()
    registered = AuditEvent.objects.get(action="monitor.registered")
    assert (registered.mt5_login, registered.actor_id) == (login, client.user.pk)


def test_a_login_the_server_does_not_know_is_a_form_error(staff, mt5):
    response = staff(Role.SUPER_ADMIN).post(REGISTER, {"login": "99999"})

    assert response.status_code == 200
    assert response.context["form"].errors["login"] == ["MT5 account 99999 not found."]
    assert not MonitoredAccount.objects.exists()


@pytest.mark.parametrize("value", ["", "abc", "0", "-3", str(2**63)])
def test_a_login_that_is_not_one_is_a_form_error(value, staff, mt5):
    response = staff(Role.SUPER_ADMIN).post(REGISTER, {"login": value})

    assert response.status_code == 200
    assert "login" in response.context["form"].errors
    assert not MonitoredAccount.objects.exists()


# --- Account events ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_staff_role_sees_the_account_events_read_only(role, staff, mt5):
    done = event(ticket=555_001, status=AccountEvent.Status.DONE)
    event(ticket=555_002, last_error="IneligibleError: no campaign")

    client = staff(role)
    response = client.get(EVENTS)

    assert response.status_code == 200
    page = response.content.decode()
    assert "555001" in page and "555002" in page
    assert "IneligibleError: no campaign" in page
    assert client.get(f"{EVENTS}add/").status_code == 403
    assert client.get(f"{EVENTS}{done.pk}/delete/").status_code == 403
    detail = client.get(f"{EVENTS}{done.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content


def test_the_events_filter_by_kind_and_status_and_search_a_login_or_ticket(staff, mt5):
    event(login=10001, ticket=1)
    event(login=10002, ticket=2, kind=AccountEvent.Kind.WITHDRAWAL)
    event(login=10003, ticket=3, status=AccountEvent.Status.DONE)
    client = staff(Role.SUPPORT_AGENT)

    def logins(query):
        response = client.get(EVENTS, query)
        return sorted(response.context["cl"].result_list.values_list("login", flat=True))

    assert logins({"kind__exact": "withdrawal"}) == [10002]
    assert logins({"status__exact": "pending"}) == [10001, 10002]
    assert logins({"q": "10003"}) == [10003]
    assert logins({"q": "2"}) == [10002]


def test_a_super_admin_gets_the_retry_action(staff, mt5):
    event(ticket=1)

    assert "retry_now_selected" in staff(Role.SUPER_ADMIN).get(EVENTS).content.decode()


def test_retry_now_makes_the_selected_pending_events_due_and_leaves_the_others(staff, mt5):
    waiting = event(ticket=1)
    done = event(ticket=2, status=AccountEvent.Status.DONE)
    untouched = event(ticket=3)
    done_due = done.next_attempt_at
    client = staff(Role.SUPER_ADMIN)

    response = client.post(
        EVENTS,
        {"action": "retry_now_selected", "_selected_action": [waiting.pk, done.pk]},
        follow=True,
    )

    [message] = texts(response)
    assert message.startswith("1 pending event(s) due now")
    assert message.endswith("1 not pending, left as they are.")
    waiting.refresh_from_db()
    done.refresh_from_db()
    untouched.refresh_from_db()
    assert waiting.next_attempt_at <= timezone.now()
    assert done.next_attempt_at == done_due
    assert untouched.next_attempt_at > timezone.now()


@pytest.mark.parametrize("role", NOT_SUPER)
def test_other_staff_roles_cannot_retry_events(role, staff, mt5):
    waiting = event(ticket=1)
    client = staff(role)

    page = client.get(EVENTS).content.decode()
    client.post(EVENTS, {"action": "retry_now_selected", "_selected_action": [waiting.pk]})

    assert "retry_now_selected" not in page
    waiting.refresh_from_db()
    assert waiting.next_attempt_at > timezone.now()


def test_retry_now_changes_only_pending_events(mt5):
    pending = event(ticket=1)
    processing = event(ticket=2, status=AccountEvent.Status.PROCESSING)

    assert account_events_retry_now(ids=[pending.pk, processing.pk, 424242]) == 1
    processing.refresh_from_db()
    assert processing.next_attempt_at > timezone.now()
