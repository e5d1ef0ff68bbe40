from django.apps import AppConfig


class TradingSessionsConfig(AppConfig):
    name = "trading_sessions"
    verbose_name = "Trading sessions"

    def ready(self):
        from accounts.signals import user_deactivated
        from licensing.signals import plan_ended
        from trading_sessions import metrics

        metrics.register()
        user_deactivated.connect(_user_deactivated, dispatch_uid="trading_sessions.deactivated")
        plan_ended.connect(_plan_ended, dispatch_uid="trading_sessions.plan_ended")


# Receivers only call the service; they run inside the sender's transaction (DESIGN.md).


def _user_deactivated(sender, user, **kwargs) -> None:
    from trading_sessions.models import TradingSession
    from trading_sessions.services import user_trading_stop

    user_trading_stop(
        user_id=user.pk, reason=TradingSession.StopReason.ACCOUNT_CLOSED, fail_pending=True
    )


def _plan_ended(sender, user_id, **kwargs) -> None:
    from trading_sessions.models import TradingSession
    from trading_sessions.services import user_trading_stop

    user_trading_stop(
        user_id=user_id, reason=TradingSession.StopReason.PLAN_ENDED, fail_pending=False
    )
