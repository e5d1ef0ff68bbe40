"""Sessions: create, edit, start (quota and worst-case checks), stop; and the end of a
user's trading when their account is deactivated or their plan ends."""

from django.db import transaction
from django.utils import timezone

from core.errors import NotFoundError
from core.locks import AdvisoryLock, advisory_xact_lock
from core.money import ZERO
from licensing.models import Quota
from licensing.services import quota_check_and_reserve, quota_release

from ..engine import GaleSettings, ladder_exposure
from ..errors import BrokerUnavailableError, GaleExposureError, SessionActiveError
from ..models import BrokerAccount, Trade, TradingSession
from .broker_accounts import broker_account_balance
from .common import logger

SETTING_FIELDS = (
    "session_name",
    "account",
    "trade_amount",
    "gale_limit",
    "gale_multiplier",
    "max_trade_amount",
    "stop_profit",
    "stop_loss",
)


def quota_ref(session_id: int) -> str:
    return f"session:{session_id}"


def _own_account(*, user, account_id: int) -> BrokerAccount:
    account = BrokerAccount.objects.filter(user=user, pk=account_id).first()
    if account is None:
        raise NotFoundError("No such broker account.", code="account_not_found")
    return account


def session_create(*, user, account_id: int, **settings) -> TradingSession:
    """A new, stopped session on one of the user's own broker accounts."""
    account = _own_account(user=user, account_id=account_id)
    unknown = settings.keys() - set(SETTING_FIELDS)
    if unknown:
        raise TypeError(f"unknown session settings: {sorted(unknown)}")
    return TradingSession.objects.create(user=user, account=account, **settings)


def session_update(*, session: TradingSession, account_id: int | None = None, **settings):
    """Change settings; a running session keeps its snapshot until its next start."""
    if account_id is not None and account_id != session.account_id:
        if session.is_active:
            raise SessionActiveError("Stop the session before moving it to another account.")
        settings["account"] = _own_account(user=session.user, account_id=account_id)
    for name, value in settings.items():
        setattr(session, name, value)
    session.save(update_fields=[*settings, "updated_at"])
    return session


def session_delete(*, session: TradingSession) -> None:
    """Delete a stopped session; its trades stay in the history."""
    with transaction.atomic():
        locked = TradingSession.objects.select_for_update().get(pk=session.pk)
        if locked.is_active:
            raise SessionActiveError("Stop the session before deleting it.")
        locked.delete()


def session_start(*, session: TradingSession) -> TradingSession:
    """Start a run: worst case within stop loss and balance, a free active-session slot.

    Starting a running session changes nothing. The run's statistics restart; the settings
    in force now are snapshot for the whole run.
    """
    if TradingSession.objects.filter(pk=session.pk, is_active=True).exists():
        return TradingSession.objects.get(pk=session.pk)
    settings = GaleSettings.of(session)
    exposure = ladder_exposure(settings)
    balance = broker_account_balance(account=session.account).balance
    if balance is None:
        raise BrokerUnavailableError()
    if exposure > settings.stop_loss or exposure > balance:
        limit = "stop loss" if exposure > settings.stop_loss else "account balance"
        raise GaleExposureError(
            f"The full gale ladder ({settings.gale_limit} steps from "
            f"{settings.trade_amount}, x{settings.gale_multiplier}) can lose {exposure}, "
            f"more than the {limit}.",
            extra={
                "ladder_loss": str(exposure),
                "stop_loss": str(settings.stop_loss),
                "balance": str(balance),
            },
        )
    now = timezone.now()
    with transaction.atomic():
        locked = TradingSession.objects.select_for_update().get(pk=session.pk)
        if locked.is_active:
            return locked
        quota_check_and_reserve(
            user=locked.user, what=Quota.ACTIVE_SESSIONS, ref=quota_ref(locked.pk)
        )
        in_flight = Trade.objects.filter(
            session=locked, source=Trade.Source.SIGNAL, result__in=Trade.UNSETTLED
        ).exists()
        locked.is_active = True
        locked.settings_snapshot = settings.to_json()
        locked.trade_in_flight = in_flight
        locked.current_gale_count = 0
        locked.net_profit = ZERO
        locked.total_trades = locked.winning_trades = locked.losing_trades = 0
        locked.draw_trades = 0
        locked.started_at, locked.stopped_at, locked.stop_reason = now, None, ""
        locked.save()
    logger.info("session %s started (user %s)", locked.pk, locked.user_id)
    return locked


def session_stop(
    *, session: TradingSession, reason: str = TradingSession.StopReason.MANUAL
) -> TradingSession:
    """Stop a run (a stopped session stays as it is); trades in flight still settle."""
    with transaction.atomic():
        locked = TradingSession.objects.select_for_update().get(pk=session.pk)
        if not locked.is_active:
            return locked
        _mark_stopped(locked, reason=reason)
    return locked


def _mark_stopped(session: TradingSession, *, reason: str) -> None:
    """Inside the caller's transaction, with the session row locked."""
    session.is_active = False
    session.stopped_at = timezone.now()
    session.stop_reason = reason
    session.save(update_fields=["is_active", "stopped_at", "stop_reason", "updated_at"])
    quota_release(user=session.user, what=Quota.ACTIVE_SESSIONS, ref=quota_ref(session.pk))
    logger.info("session %s stopped: %s", session.pk, reason)


def sessions_stop(*, user=None, reason: str = TradingSession.StopReason.OPERATOR) -> int:
    """Stop every running session (of one user, or of everyone); returns how many."""
    running = TradingSession.objects.filter(is_active=True)
    if user is not None:
        running = running.filter(user=user)
    stopped = 0
    for session in running.order_by("pk").iterator():
        if session_stop(session=session, reason=reason).stop_reason == reason:
            stopped += 1
    return stopped


def user_trading_stop(*, user_id: int, reason: str, fail_pending: bool) -> int:
    """Stop every running session of the user, in the caller's transaction; returns how many.

    With `fail_pending` (the account is closed), trades no worker has sent to the broker yet
    fail too, so none opens for a user who is gone; open ones still settle.

    The user's quota lock comes first, as every fan-out batch and manual trade takes it
    before it claims sessions or writes trades: one of those in progress commits before this
    goes on (and its trades are seen here), one that starts later waits for this commit and
    finds the sessions stopped.
    """
    with transaction.atomic():
        advisory_xact_lock(AdvisoryLock.LICENSING_QUOTA, user_id)
        if fail_pending:
            # Trade rows before session rows: the order a failing or settling trade takes.
            failed = Trade.objects.filter(user_id=user_id, result=Trade.Result.PENDING).update(
                result=Trade.Result.FAILED,
                failure_reason=f"{reason}: not sent to the broker",  # trades.CLOSED_UNSENT
                closed_at=timezone.now(),
            )
            if failed:
                logger.info("user %s: %d pending trades failed (%s)", user_id, failed, reason)
        running = list(
            TradingSession.objects.select_for_update()
            .filter(user_id=user_id, is_active=True)
            .order_by("pk")
        )
        for session in running:
            _mark_stopped(session, reason=reason)
        if fail_pending:
            unsettled = Trade.objects.filter(
                user_id=user_id, source=Trade.Source.SIGNAL, result__in=Trade.UNSETTLED
            ).values("session_id")
            TradingSession.objects.filter(user_id=user_id, trade_in_flight=True).exclude(
                pk__in=unsettled
            ).update(trade_in_flight=False)
    return len(running)
