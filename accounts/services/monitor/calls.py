"""The gateway calls of a batch: asked again after a quick transient error, and taken apart
when the server refuses a batch outright, so one bad login blinds no neighbour."""

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from django.conf import settings

from accounts.models import MonitoredAccount
from gateways.errors import GatewayError, PermanentGatewayError
from gateways.mt5 import MT5Deal

from .results import logger, server_name


def _isolating(call: Callable, logins: Sequence[int]) -> tuple[dict, dict[int, str]]:
    """`call(logins)`; when the server refuses the batch outright, halve it until the logins
    it refuses are found, so one bad account does not blind the monitor to its neighbours."""
    try:
        return call(logins), {}
    except PermanentGatewayError as exc:
        if len(logins) == 1:
            return {}, {logins[0]: f"{exc.code}: {exc}"}
    middle = len(logins) // 2
    left, left_failed = _isolating(call, logins[:middle])
    right, right_failed = _isolating(call, logins[middle:])
    return {**left, **right}, {**left_failed, **right_failed}


def _retrying(call: Callable) -> Callable:
    """`call`, asked again after a transient error that came back quickly (a refusal, a 5xx:
    not a timeout, which would only make the batch slower), at most `MONITOR_CALL_RETRIES`
    times, after a jittered pause from `MONITOR_CALL_RETRY_SECONDS` that doubles each time."""

    def attempt(logins: Sequence[int]):
        for retry in range(settings.MONITOR_CALL_RETRIES + 1):
            started = time.perf_counter()
            try:
                return call(logins)
            except PermanentGatewayError:
                raise
            except GatewayError:
                slow = time.perf_counter() - started > settings.MONITOR_SWEEP_SECONDS
                if slow or retry == settings.MONITOR_CALL_RETRIES:
                    raise
            time.sleep(settings.MONITOR_CALL_RETRY_SECONDS * 2**retry * random.uniform(0.5, 1))
        raise AssertionError("unreachable")  # pragma: no cover

    return attempt


def _new_deals(
    gateway, logins: list[int], errors: dict[int, str]
) -> tuple[dict[int, list[MT5Deal]], set[int]]:
    """The deals after each login's cursor, at most two calls: accounts that have a cursor,
    and accounts that never had one (asked only from their `watch_from`). Also the logins
    whose deals the server could not give now (a transient error): they are re-read later."""
    if not logins:
        return {}, set()
    cursors = dict(
        MonitoredAccount.objects.filter(server=server_name(), login__in=logins).values_list(
            "login", "deal_cursor"
        )
    )
    fresh = [login for login in logins if not cursors.get(login)]
    since = None
    if fresh:
        since = (
            MonitoredAccount.objects.filter(server=server_name(), login__in=fresh)
            .order_by("watch_from")
            .values_list("watch_from", flat=True)
            .first()
        )
    by_login: dict[int, list[MT5Deal]] = {}
    deferred: set[int] = set()
    for group, group_since in (([x for x in logins if cursors.get(x)], None), (fresh, since)):
        if not group:
            continue

        def query(chunk: Sequence[int], group_since=group_since) -> dict[int, list[MT5Deal]]:
            found: dict[int, list[MT5Deal]] = defaultdict(list)
            deals = gateway.get_deals(
                cursors={login: cursors.get(login, 0) for login in chunk}, since=group_since
            )
            for deal in deals:
                found[deal.login].append(deal)
            return found

        try:
            found, failed = _isolating(_retrying(query), group)
        except GatewayError as exc:  # never permanent: `_isolating` takes those apart
            logger.info("monitor: deals of %s accounts deferred (%s)", len(group), exc)
            deferred.update(group)
            continue
        errors.update(failed)
        by_login.update(found)
    return by_login, deferred
