from unittest import mock

import pytest

from core.errors import ConflictError
from delivery.models import Delivery
from demo_pool.errors import PressPassNotFoundError
from demo_pool.models import ActivationRequest, DemoAccount, PressPass
from demo_pool.services import pool_refill, press_pass_activate, press_pass_resend
from gateways.errors import TransientGatewayError

pytestmark = pytest.mark.django_db


def activate(user_id="u1", method="api", contact=""):
    return press_pass_activate(
        user_id=user_id, real_name="Jane Doe", delivery_method=method, contact_info=contact
    )


def test_activation_hands_out_an_account_with_a_fresh_password(pool_config, fill, reveal):
    pool_config(min_available=0)
    fill(2)
    oldest = DemoAccount.objects.order_by("created_at", "pk").first()
    stored_before = str(oldest.password)

    result = activate()

    account = DemoAccount.objects.get(pk=result.press_pass.account_id)
    assert account.pk == oldest.pk and account.status == "assigned"
    payload = reveal(result.delivery.link)
    assert payload["login"] == account.login
    assert payload["password"] != stored_before
    assert payload["password"] == account.password  # stored encrypted, readable by the app
    raw = DemoAccount.objects.filter(pk=account.pk).values_list("password", flat=True).get()
    assert raw.startswith("enc:v1:") and payload["password"] not in raw


def test_the_press_pass_lasts_seven_days(pool_config, fill):
    pool_config(min_available=0)
    fill(1)

    press_pass = activate().press_pass

    assert (press_pass.expires_at - press_pass.activated_at).days == 7
    assert press_pass.account.expires_at == press_pass.expires_at


def test_a_second_activation_for_the_same_user_is_refused(pool_config, fill):
    pool_config(min_available=0)
    fill(2)
    activate()

    with pytest.raises(ConflictError) as refused:
        activate()

    assert refused.value.code == "press_pass_active"
    assert DemoAccount.objects.filter(status="available").count() == 1


def test_an_empty_pool_queues_the_activation_and_the_refill_completes_it(pool_config, reveal):
    pool_config(min_available=2, target_buffer=2, provision_batch_size=5)

    result = activate(user_id="late", method="api")

    request = result.request
    assert result.press_pass is None and request.status == "queued"
    with pytest.raises(ConflictError):
        activate(user_id="late")
    pool_refill()
    request.refresh_from_db()
    assert request.status == "assigned"
    press_pass = request.press_pass
    assert press_pass.was_queued and press_pass.user_id == "late"
    assert reveal(request.delivery_link)["login"] == press_pass.account.login
    assert Delivery.objects.filter(purpose=press_pass.purpose).count() == 1


def test_a_demo_server_fault_queues_the_activation_and_the_fulfil_task_completes_it(
    pool_config, fill, demo_gateway, reveal
):
    from demo_pool.services import activation_requests_fulfil

    pool_config(min_available=0)
    fill(1)
    demo_gateway.fail_next("change_password", TransientGatewayError)

    result = activate()

    assert result.press_pass is None and result.request.status == "queued"
    assert PressPass.objects.count() == 0
    assert DemoAccount.objects.get().status == "available"
    assert activation_requests_fulfil() == 1
    result.request.refresh_from_db()
    assert result.request.status == "assigned"
    assert reveal(result.request.delivery_link)["login"] == DemoAccount.objects.get().login


def test_an_email_delivery_is_queued_for_sending(pool_config, fill):
    pool_config(min_available=0)
    fill(1)

    result = activate(method="email", contact="jane@example.com")

    assert result.delivery.delivery.method == "email"
    assert result.press_pass.delivery_id == result.delivery.delivery.pk


def test_resend_rotates_the_password_again_and_supersedes_the_first_link(pool_config, fill, reveal):
    pool_config(min_available=0)
    fill(1)
    first = activate()
    first_password = first.press_pass.account.password

    second = press_pass_resend(user_id="u1", delivery_method="qr", contact_info="")

    first.delivery.delivery.refresh_from_db()
    assert first.delivery.delivery.status == "superseded"
    assert second.qr_svg.startswith("<svg")
    payload = reveal(second.link)
    assert payload["password"] != first_password
    assert payload["password"] == DemoAccount.objects.get().password
    from delivery.errors import LinkSupersededError

    with pytest.raises(LinkSupersededError):
        reveal(first.delivery.link)


def test_resend_without_an_active_pass_is_not_found(pool_config):
    pool_config()
    with pytest.raises(PressPassNotFoundError):
        press_pass_resend(user_id="nobody", delivery_method="api")


def test_queued_requests_are_served_oldest_first(pool_config, fill):
    pool_config(min_available=0, target_buffer=0)
    activate(user_id="a")
    activate(user_id="b")
    fill(1)
    from demo_pool.services import activation_requests_fulfil

    activation_requests_fulfil()

    statuses = dict(ActivationRequest.objects.values_list("user_id", "status"))
    assert statuses == {"a": "assigned", "b": "queued"}


def test_an_activation_that_leaves_the_pool_under_its_target_starts_a_refill_at_once(
    pool_config, fill, django_capture_on_commit_callbacks
):
    from demo_pool import tasks

    pool_config(min_available=2, target_buffer=3)
    fill(4)
    with mock.patch.object(tasks.refill, "apply_async") as refill:
        with django_capture_on_commit_callbacks(execute=True):
            activate(user_id="a")  # 3 left: at the target
        assert refill.call_count == 0
        with django_capture_on_commit_callbacks(execute=True):
            activate(user_id="b")  # 2 left: under the target, still at the minimum
        assert refill.call_count == 1


def test_assignments_in_a_row_queue_one_refill_per_nudge_interval(
    pool_config, fill, settings, django_capture_on_commit_callbacks
):
    from demo_pool import tasks

    settings.DEMO_POOL_REFILL_NUDGE_SECONDS = 3600  # one run tops up for all of them
    pool_config(min_available=0, target_buffer=10)
    fill(5)
    with mock.patch.object(tasks.refill, "apply_async") as refill:
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(4):
                activate(user_id=f"u{n}")
        assert refill.call_count == 1


def test_a_user_waiting_in_the_queue_is_refused_even_once_accounts_are_back(pool_config, fill):
    pool_config(min_available=0, target_buffer=0)
    fill(1)  # (provisioning serves waiting users first: this one starts waiting after it)
    ActivationRequest.objects.create(user_id="late", real_name="Jane Doe", delivery_method="api")

    with pytest.raises(ConflictError) as refused:
        activate(user_id="late")

    assert refused.value.code == "activation_queued"
    assert DemoAccount.objects.filter(status="available").count() == 1


def test_a_user_with_an_active_pass_is_refused_when_the_pool_is_empty_too(pool_config, fill):
    pool_config(min_available=0, target_buffer=0)
    fill(1)
    activate(user_id="u1")

    with pytest.raises(ConflictError) as refused:
        activate(user_id="u1")

    assert refused.value.code == "press_pass_active"
    assert not ActivationRequest.objects.exists()


# --- The rotation lease: no transaction is open while the demo server is called ------------


@pytest.fixture
def outside_transactions(monkeypatch):
    """Fails a password change made with a transaction open: on SQLite the demo stand-in
    shares the database file and needs the one write lock that transaction would hold."""
    from django.db import connection

    from tests.demo_pool.conftest import FaultyDemoGateway

    seen = []
    original = FaultyDemoGateway.change_password

    def change_password(self, login, password):
        seen.append(connection.in_atomic_block)
        return original(self, login, password)

    monkeypatch.setattr(FaultyDemoGateway, "change_password", change_password)
    return seen


@pytest.mark.django_db(transaction=True)  # the test itself must not open a transaction
def test_activation_and_resend_call_the_demo_server_outside_any_transaction(
    pool_config, fill, outside_transactions, admin_api
):
    pool_config(min_available=0, target_buffer=0)
    fill(3)
    activate("u1")
    press_pass_resend(user_id="u1", delivery_method="api")
    answer = admin_api.post(
        "/api/v1/demo/press-pass/activate/",
        {"user_id": "u2", "real_name": "Jane Doe", "delivery_method": "api"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="0123456789abcdef-key",
    )
    assert answer.status_code == 201, answer.content

    assert outside_transactions == [False, False, False]
    assert PressPass.objects.filter(rotating_until__isnull=False).count() == 0


def test_a_resend_while_another_rotation_outlasts_the_wait_is_409_and_changes_nothing(
    pool_config, fill, settings
):
    from django.utils import timezone

    from demo_pool.errors import CredentialsRotatingError
    from tests.demo_pool.conftest import FaultyDemoGateway

    pool_config(min_available=0)
    fill(1)
    first = activate()
    password = DemoAccount.objects.get().password
    # Another process is inside its password change (its lease is 2 minutes from now).
    PressPass.objects.update(rotating_until=timezone.now() + timezone.timedelta(minutes=2))
    settings.DEMO_REQUEST_TIMEOUT_SECONDS = 0  # no wait: this caller gives up at once
    calls = FaultyDemoGateway.calls.get("change_password", 0)

    with pytest.raises(CredentialsRotatingError) as refused:
        press_pass_resend(user_id="u1", delivery_method="api")

    assert refused.value.status_code == 409 and refused.value.code == "credentials_rotating"
    assert FaultyDemoGateway.calls.get("change_password", 0) == calls
    assert DemoAccount.objects.get().password == password
    assert Delivery.objects.get().pk == first.delivery.delivery.pk  # not superseded


def test_a_lease_left_by_a_process_that_died_is_taken_once_it_ends(pool_config, fill, reveal):
    import time_machine
    from django.utils import timezone

    pool_config(min_available=0)
    fill(1)
    activate()
    ends = timezone.now() + timezone.timedelta(minutes=2)
    PressPass.objects.update(rotating_until=ends)  # its rotation never finished

    with time_machine.travel(ends + timezone.timedelta(seconds=1)):
        second = press_pass_resend(user_id="u1", delivery_method="api")

    assert reveal(second.link)["password"] == DemoAccount.objects.get().password
    assert PressPass.objects.get().rotating_until is None


def test_a_failed_password_change_frees_the_lease_for_the_next_resend(pool_config, fill, reveal):
    from demo_pool.errors import DemoServerUnavailableError
    from tests.demo_pool.conftest import FaultyDemoGateway

    pool_config(min_available=0)
    fill(1)
    activate()
    FaultyDemoGateway().fail_next("change_password")
    with pytest.raises(DemoServerUnavailableError):
        press_pass_resend(user_id="u1", delivery_method="api")

    assert PressPass.objects.get().rotating_until is None
    again = press_pass_resend(user_id="u1", delivery_method="api")
    assert reveal(again.link)["password"] == DemoAccount.objects.get().password


def test_a_rotation_that_outlived_its_lease_delivers_nothing_and_says_so(
    pool_config, fill, monkeypatch
):
    """The call stalled past the lease and another rotation took the pass meanwhile: this one
    stores and delivers nothing, and answers 409 (the pass is active: not a 404)."""
    from django.utils import timezone

    from demo_pool.errors import CredentialsRotatingError
    from tests.demo_pool.conftest import FaultyDemoGateway

    pool_config(min_available=0)
    fill(1)
    first = activate()
    password = DemoAccount.objects.get().password
    original = FaultyDemoGateway.change_password

    def stalled(self, login, new):
        original(self, login, new)
        later = timezone.now() + timezone.timedelta(minutes=5)
        PressPass.objects.update(rotating_until=later)  # another rotation holds it now

    monkeypatch.setattr(FaultyDemoGateway, "change_password", stalled)
    with pytest.raises(CredentialsRotatingError):
        press_pass_resend(user_id="u1", delivery_method="api")

    assert DemoAccount.objects.get().password == password
    assert list(Delivery.objects.values_list("pk", flat=True)) == [first.delivery.delivery.pk]
    assert PressPass.objects.get().rotating_until is not None  # the other one's, untouched
