"""100 activations at once against a pool of 60 (PostgreSQL: real row locks, real threads)."""

import threading

import pytest
from django.db import connection

from delivery.models import Delivery
from demo_pool.models import ActivationRequest, DemoAccount, PressPass
from demo_pool.services import pool_refill, press_pass_activate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CALLERS = 100
POOL = 60
# PostgreSQL's default max_connections is 100 and other sessions (the test's own, other test
# databases) hold some: 100 threads run at once, at most this many hold a connection.
CONNECTIONS = 60


def test_100_activations_against_a_pool_of_60_never_hand_out_an_account_twice(pool_config, fill):
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
        pool_refill(topping_up=True)

    assert ActivationRequest.objects.filter(status="assigned").count() == CALLERS - POOL
    passes = PressPass.objects.filter(status="active")
    assert passes.count() == CALLERS
    assert passes.values("account").distinct().count() == CALLERS
    assert passes.values("user_id").distinct().count() == CALLERS
    for press_pass in passes:
        assert Delivery.objects.filter(purpose=press_pass.purpose).count() == 1
