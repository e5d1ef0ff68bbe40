from django.apps import AppConfig


class BonusesConfig(AppConfig):
    name = "bonuses"
    verbose_name = "Bonuses"

    def ready(self) -> None:
        from accounts.signals import (
            account_event_recorded,
            own_operation_comments,
            receive_events_in_batches,
        )

        account_event_recorded.connect(_on_account_event, dispatch_uid="bonuses.account_event")
        receive_events_in_batches("deposit", _on_deposits)
        own_operation_comments.connect(_own_comments, dispatch_uid="bonuses.own_comments")

        from bonuses.types import bonus_kinds

        # Load the bonus types now: a `Campaign.BonusType` without its module fails the start
        # (and `manage.py check`), not the first grant of that type.
        bonus_kinds()


# The monitor (accounts, a lower floor) records events; these receivers only call the bonus
# engine's services, one per kind. A service that raises leaves the event for a retry.


def _on_account_event(sender, event, **kwargs) -> None:
    from bonuses import services

    kind = event.kind  # deposits come in batches, to `_on_deposits`
    if kind == "withdrawal":
        services.withdrawal_apply(
            login=event.login,
            amount=event.amount,
            balance_before=event.balance_before,
            deal_id=event.ticket,
        )
    elif kind == "drawdown":
        services.drawdown_apply(login=event.login)
    elif kind == "trade":
        services.trade_deal_convert(
            login=event.login,
            deal_ticket=event.ticket,
            lots=event.lots,
            closed_at=event.occurred_at,
        )
    elif kind == "registration":
        services.trigger_registration(login=event.login, account_from_server=True)


def _on_deposits(events) -> None:
    """Deposits the monitor read from MT5, granted together (see `trigger_deposits`)."""
    from bonuses import services

    services.trigger_deposits(
        [
            services.Deposit(login=e.login, amount=e.amount, deal_id=e.ticket, source="monitor")
            for e in events
        ]
    )


def _own_comments(sender, comments, **kwargs) -> set[str]:
    from bonuses.selectors import operation_comments

    return operation_comments(comments=comments)
