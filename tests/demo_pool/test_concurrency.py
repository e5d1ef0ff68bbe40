"""Activations and resends at once (PostgreSQL: real row locks and leases, real threads,
each thread with its own connection)."""

import threading
import time
from unittest import mock

import pytest
from django.contrib.auth.hashers import check_password
from django.db import connection

from delivery.errors import LinkExpiredError, LinkFailedError, LinkSupersededError
from delivery.models import Delivery
from demo_pool.models import ActivationRequest, DemoAccount, PressPass
from demo_pool.services import pool_refill, press_pass_activate, press_pass_resend
from gateways.models import SimulatedDemoAccount

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CALLERS = 100
POOL = 60
# PostgreSQL here has max_connections = 100, and the test's own session and other test
# databases hold some of them: 100 threads are released at once, at most this many of them
# are inside the database (holding a connection) at the same time.
CONNECTIONS = 60
DEAD_LINK = (LinkSupersededError, LinkExpiredError, LinkFailedError)


def test_100_callers_at_once_up_to_60_claiming_together_never_get_one_account_twice(
    pool_config, fill
):
    """100 callers released together against a pool of 60, of which up to 60 claim in the
    database at the same moment (the connection limit, not 100): 60 distinct accounts handed
    out, the other 40 queued (202) and served by the refill, one delivery per user."""
    pool_config(min_available=0, target_buffer=0, provision_batch_size=50, max_pool_size=100)
    fill(POOL)
    start = threading.Barrier(CALLERS)
    results, errors = [], []
    lock = threading.Lock()
    connections = threading.BoundedSemaphore(CONNECTIONS)

    def one(n):
        try:
            start.wait(timeout=30)
            with connections:
                try:
                    result = press_pass_activate(
                        user_id=f"user-{n}", real_name=f"User {n}", delivery_method="api"
                    )
                finally:
                    connection.close()
            with lock:
                results.append((n, result))
        except Exception as exc:
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assigned = [r.press_pass for _, r in results if r.press_pass is not None]
    queued = [r.request for _, r in results if r.request is not None]
    assert len(assigned) == POOL and len(queued) == CALLERS - POOL
    assert len({p.account_id for p in assigned}) == POOL
    assert DemoAccount.objects.filter(status="available").count() == 0

    for _ in range(10):
        if not ActivationRequest.objects.filter(status="queued").exists():
            break
        pool_refill()

    assert ActivationRequest.objects.filter(status="assigned").count() == CALLERS - POOL
    passes = PressPass.objects.filter(status="active")
    assert passes.count() == CALLERS
    assert passes.values("account").distinct().count() == CALLERS
    assert passes.values("user_id").distinct().count() == CALLERS
    for press_pass in passes:
        assert Delivery.objects.filter(purpose=press_pass.purpose).count() == 1


def _race(first, second) -> tuple[list, list]:
    """Run `first` until it has set its password on the demo server, then `second`, then let
    `first` commit; each in its own thread and connection. The passwords the server got, in
    order, and the errors raised."""
    from demo_pool.services import assignment
    from gateways.demo import get_demo_gateway

    gateway = get_demo_gateway()
    change = gateway.change_password
    pause = assignment._rotation_wait
    changed, entered, release, errors = [], threading.Event(), threading.Event(), []
    waiting = threading.Event()

    def wait_for_the_first():
        waiting.set()  # the second found the pass's rotation lease taken
        pause()

    def on_the_server(login, password):
        # The demo server is another machine: its write commits on its own, whatever our
        # transaction does (the simulator would otherwise join the caller's transaction).
        try:
            change(login, password)
        finally:
            connection.close()

    def change_and_hold_the_first(login, password):
        server = threading.Thread(target=on_the_server, args=(login, password))
        server.start()
        server.join(timeout=30)
        changed.append(password)
        if len(changed) == 1:
            entered.set()  # the server has the first password; its caller has not committed
            release.wait(timeout=30)

    def run(work):
        try:
            work()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    with (
        mock.patch.object(gateway, "change_password", change_and_hold_the_first),
        mock.patch.object(assignment, "_rotation_wait", wait_for_the_first),
    ):
        one = threading.Thread(target=run, args=(first,))
        one.start()
        assert entered.wait(timeout=30)
        two = threading.Thread(target=run, args=(second,))
        two.start()
        # Until the second is done, or waits for the first's rotation to end.
        deadline = time.monotonic() + 30
        while two.is_alive() and not waiting.is_set():
            assert time.monotonic() < deadline, "the second neither ran nor waited"
            two.join(timeout=0.01)
        assert len(changed) == 1, "the second changed the password during the first's rotation"
        release.set()
        one.join(timeout=30)
        two.join(timeout=30)
    return changed, errors


def _assert_all_agree(press_pass, results, reveal):
    """The server's password = the stored one = the one in the only live link."""
    account = DemoAccount.objects.get(pk=press_pass.account_id)
    server = SimulatedDemoAccount.objects.get(pk=account.login - SimulatedDemoAccount.LOGIN_OFFSET)
    assert check_password(account.password, server.password_hash)
    live = Delivery.objects.filter(purpose=press_pass.purpose, status__in=["pending", "sent"])
    assert live.count() == 1
    last = next(r for r in results if r.delivery.pk == live.get().pk)
    assert reveal(last.link)["password"] == account.password


def test_two_resends_at_once_leave_the_server_the_database_and_the_last_link_agreeing(
    pool_config, fill, reveal
):
    pool_config(min_available=0, target_buffer=0)
    fill(1)
    press_pass = press_pass_activate(
        user_id="u1", real_name="Jane Doe", delivery_method="api"
    ).press_pass
    results = []

    def resend():
        results.append(press_pass_resend(user_id="u1", delivery_method="api"))

    changed, errors = _race(resend, resend)

    assert errors == [] and len(changed) == 2 and len(results) == 2
    _assert_all_agree(press_pass, results, reveal)


def test_a_resend_during_the_activation_s_hand_over_waits_for_it(pool_config, fill, reveal):
    pool_config(min_available=0, target_buffer=0)
    fill(1)
    results, passes = [], []

    def activate():
        result = press_pass_activate(user_id="u1", real_name="Jane Doe", delivery_method="api")
        passes.append(result.press_pass)
        results.append(result.delivery)

    def resend():
        results.append(press_pass_resend(user_id="u1", delivery_method="api"))

    changed, errors = _race(activate, resend)

    assert errors == [] and len(changed) == 2 and len(results) == 2
    _assert_all_agree(passes[0], results, reveal)


def _resend_between_claim_and_hand_over(resend, *, fail_hand_over=False) -> list:
    """Activate u1 with `resend` arriving right after the claim committed (the pass is active
    and visible) and before the hand-over began: it runs in its own thread and connection
    until it is done or waits for a rotation. `fail_hand_over`: the hand-over's password
    change (the first one after the resend's) fails. The errors the resend raised."""
    from demo_pool.services import assignment

    hand_over, pause = assignment._hand_over, assignment._rotation_wait
    errors, waiting = [], threading.Event()

    def wait_for_the_other():
        waiting.set()
        pause()

    def run():
        try:
            resend()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def resend_first(press_pass, account, **kwargs):
        other = threading.Thread(target=run)
        other.start()
        deadline = time.monotonic() + 30
        while other.is_alive() and not waiting.is_set():
            assert time.monotonic() < deadline, "the resend neither ran nor waited"
            other.join(timeout=0.01)
        if fail_hand_over:
            from gateways.demo import get_demo_gateway

            get_demo_gateway().fail_next("change_password")
        try:
            return hand_over(press_pass, account, **kwargs)
        finally:
            other.join(timeout=30)

    with (
        mock.patch.object(assignment, "_hand_over", resend_first),
        mock.patch.object(assignment, "_rotation_wait", wait_for_the_other),
    ):
        press_pass_activate(user_id="u1", real_name="Jane Doe", delivery_method="api")
    return errors


def test_a_resend_right_after_the_claim_leaves_one_live_link_with_the_server_s_password(
    pool_config, fill, reveal
):
    """Found in review: the claim commits the pass before its hand-over takes the rotation
    lease, so a resend could rotate first; the hand-over's own link did not supersede the
    resend's, which stayed live with a password the server no longer had."""
    pool_config(min_available=0, target_buffer=0)
    fill(1)
    links = []

    def resend():
        links.append(press_pass_resend(user_id="u1", delivery_method="api").link)

    errors = _resend_between_claim_and_hand_over(resend)

    press_pass = PressPass.objects.get(user_id="u1", status=PressPass.Status.ACTIVE)
    account = DemoAccount.objects.get(pk=press_pass.account_id)
    server = SimulatedDemoAccount.objects.get(pk=account.login - SimulatedDemoAccount.LOGIN_OFFSET)
    assert check_password(account.password, server.password_hash)
    live = Delivery.objects.filter(purpose=press_pass.purpose, status__in=["pending", "sent"])
    assert live.count() == 1, "two live links for one pass"
    for link in links:  # a link the resend handed out: dead by now, or the server's password
        try:
            password = reveal(link)["password"]
        except DEAD_LINK:
            continue
        assert password == account.password, "a live link with a password the server lost"
    assert errors == [] or [type(e).__name__ for e in errors] == ["CredentialsRotatingError"]


def test_a_resend_right_after_the_claim_then_a_failed_hand_over_hands_out_no_pooled_account(
    pool_config, fill, reveal
):
    """Found in review: a resend that came between the claim and the hand-over delivered the
    account's credentials; the hand-over then failed, and its undo put the account back in
    the pool for the next person while that link still held the server's password."""
    pool_config(min_available=0, target_buffer=0)
    fill(1)
    links = []

    def resend():
        links.append(press_pass_resend(user_id="u1", delivery_method="api").link)

    _resend_between_claim_and_hand_over(resend, fail_hand_over=True)

    account = DemoAccount.objects.get()
    server = SimulatedDemoAccount.objects.get(pk=account.login - SimulatedDemoAccount.LOGIN_OFFSET)
    if account.status == DemoAccount.Status.AVAILABLE:  # back in the pool, for the next person
        for link in links:
            try:
                password = reveal(link)["password"]
            except DEAD_LINK:
                continue  # nothing handed out
            assert not check_password(password, server.password_hash), (
                "a link to an account back in the pool holds the server's password"
            )
