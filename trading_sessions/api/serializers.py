"""Shapes of the trading API: input serializers check what comes in, output ones answer.

Money goes out as strings with two decimals. A broker password only ever comes in: no
output serializer has a field for it.
"""

from decimal import Decimal

from rest_framework import serializers

from core.errors import ApplicationError
from core.money import CENT, MAX_BIGINT, MoneyField, StrictDecimalField, StrictIntegerField

from ..models import BrokerAccount, Signal, Trade, TradingSession
from ..selectors import CUSTOM, PERIODS
from ..services.signals import MAX_DURATION, MIN_DURATION

# Bounds of the columns these values land in: anything outside is bad input (400), not a 500.
DIRECTIONS = [("call", "Call"), ("put", "Put")]


def id_field(**kwargs) -> serializers.IntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_BIGINT, **kwargs)


def amount_field(**kwargs) -> serializers.DecimalField:
    """Money in: more than zero, at most two decimals, fits a 12-digit column."""
    return MoneyField(max_digits=12, decimal_places=2, min_value=CENT, **kwargs)


def money_field(**kwargs) -> serializers.DecimalField:
    """Money out: a string with two decimals ("500.00")."""
    return serializers.DecimalField(max_digits=None, decimal_places=2, **kwargs)


def duration_field(**kwargs) -> serializers.IntegerField:
    return StrictIntegerField(
        min_value=MIN_DURATION, max_value=MAX_DURATION, help_text="Seconds.", **kwargs
    )


class TradingErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class QuotaErrorSerializer(TradingErrorSerializer):
    quota = serializers.CharField()
    limit = serializers.IntegerField()
    used = serializers.IntegerField()


class GaleExposureErrorSerializer(TradingErrorSerializer):
    ladder_loss = money_field(help_text="What the full gale ladder loses in a row.")
    stop_loss = money_field()
    balance = money_field()


# --- Broker accounts ------------------------------------------------------------------------


class BrokerAccountInputSerializer(serializers.Serializer):
    account_name = serializers.CharField(max_length=100)
    email = serializers.EmailField(max_length=254, help_text="The login on the broker.")
    password = serializers.CharField(
        write_only=True,
        max_length=256,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Stored encrypted; never returned.",
    )
    account_type = serializers.ChoiceField(choices=BrokerAccount.AccountType.choices)


class BrokerAccountUpdateSerializer(BrokerAccountInputSerializer):
    """PUT and PATCH: the password only when it changes."""

    password = serializers.CharField(
        write_only=True,
        required=False,
        max_length=256,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Stored encrypted; never returned. Leave out to keep the current one.",
    )


class BrokerAccountSerializer(serializers.ModelSerializer):
    balance = serializers.DecimalField(
        source="last_balance",
        max_digits=14,
        decimal_places=2,
        allow_null=True,
        read_only=True,
        help_text="The last balance the broker gave (null before the first answer).",
    )

    class Meta:
        model = BrokerAccount
        fields = [
            "id",
            "account_name",
            "email",
            "account_type",
            "balance",
            "connection_status",
            "last_checked_at",
            "created_at",
        ]
        read_only_fields = fields


class ConnectionTestSerializer(serializers.Serializer):
    connected = serializers.BooleanField()
    balance = money_field(allow_null=True)
    connection_status = serializers.ChoiceField(choices=BrokerAccount.Connection.choices)


class BalanceSerializer(serializers.Serializer):
    balance = money_field(allow_null=True)
    fresh = serializers.BooleanField(
        help_text="True: the broker answered now; false: the last balance known."
    )
    checked_at = serializers.DateTimeField(allow_null=True)


# --- Sessions -------------------------------------------------------------------------------


class SessionInputSerializer(serializers.Serializer):
    session_name = serializers.CharField(max_length=100)
    account_id = id_field(help_text="One of your broker accounts.")
    trade_amount = amount_field()
    gale_limit = StrictIntegerField(
        min_value=0, max_value=10, help_text="Steps up the gale ladder (0: none)."
    )
    gale_multiplier = StrictDecimalField(
        max_digits=4,
        decimal_places=2,
        min_value=Decimal("1.00"),
        max_value=Decimal("10.00"),
        required=False,
        help_text="2 unless set.",
    )
    max_trade_amount = amount_field(
        required=False, allow_null=True, help_text="Optional cap on one stake."
    )
    stop_profit = amount_field()
    stop_loss = amount_field()


class SessionSerializer(serializers.ModelSerializer):
    account_id = serializers.IntegerField(read_only=True)
    account_name = serializers.CharField(source="account.account_name", read_only=True)
    stop_reason = serializers.ChoiceField(
        choices=TradingSession.StopReason.choices,
        allow_blank=True,
        read_only=True,
        help_text="Why the last run stopped; blank before the first stop.",
    )

    class Meta:
        model = TradingSession
        fields = [
            "id",
            "session_name",
            "account_id",
            "account_name",
            "trade_amount",
            "gale_limit",
            "gale_multiplier",
            "max_trade_amount",
            "stop_profit",
            "stop_loss",
            "is_active",
            "current_gale_count",
            "net_profit",
            "total_trades",
            "winning_trades",
            "losing_trades",
            "draw_trades",
            "started_at",
            "stopped_at",
            "stop_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class LastTradeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    asset = serializers.CharField()
    direction = serializers.ChoiceField(choices=DIRECTIONS)
    amount = money_field()
    result = serializers.ChoiceField(choices=Trade.Result.choices)
    profit = money_field()
    timestamp = serializers.DateTimeField()


class SessionStatusSerializer(serializers.Serializer):
    session_id = serializers.IntegerField()
    is_active = serializers.BooleanField()
    current_balance = money_field(
        allow_null=True, help_text="The account's last known balance at the broker."
    )
    net_profit = money_field(help_text="Of the current (or last) run.")
    total_trades = serializers.IntegerField()
    winning_trades = serializers.IntegerField()
    losing_trades = serializers.IntegerField()
    draw_trades = serializers.IntegerField()
    win_rate = serializers.FloatField(help_text="Percent of settled trades won.")
    session_duration = serializers.CharField(help_text='How long the run has lasted: "2h 35m".')
    current_gale_count = serializers.IntegerField()
    next_stake = money_field(allow_null=True, help_text="Null while the session is stopped.")
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    stop_reason = serializers.CharField(
        allow_blank=True, help_text=" | ".join(TradingSession.StopReason.values)
    )
    last_trade = LastTradeSerializer(allow_null=True)


# --- Trades ---------------------------------------------------------------------------------


class SessionTradeSerializer(serializers.ModelSerializer):
    session_id = serializers.IntegerField(read_only=True, allow_null=True)
    account_id = serializers.IntegerField(read_only=True)
    signal_id = serializers.IntegerField(read_only=True, allow_null=True)
    # The metaclass moves declared fields into `_declared_fields`: `Field.source` stays.
    source = serializers.CharField(read_only=True, help_text="signal | manual")  # type: ignore[assignment]
    direction = serializers.ChoiceField(choices=DIRECTIONS, read_only=True)

    class Meta:
        model = Trade
        fields = [
            "id",
            "session_id",
            "account_id",
            "signal_id",
            "source",
            "asset",
            "direction",
            "amount",
            "duration",
            "gale_step",
            "result",
            "profit",
            "failure_reason",
            "created_at",
            "opened_at",
            "expires_at",
            "closed_at",
        ]
        read_only_fields = fields


class ManualTradeInputSerializer(serializers.Serializer):
    session_id = id_field(help_text="One of your running sessions.")
    asset = serializers.CharField(max_length=40, help_text="EURUSD, EUR/USD, EURUSD-OTC, ...")
    direction = serializers.ChoiceField(choices=DIRECTIONS)
    amount = amount_field()
    duration = duration_field()


class StatisticsQuerySerializer(serializers.Serializer):
    """A named `period` (default all), or a `since`/`until` range: not both."""

    session_id = id_field(required=False, help_text="One of your sessions (default: all).")
    period = serializers.ChoiceField(choices=PERIODS, required=False, help_text="Default: all.")
    since = serializers.DateTimeField(
        required=False, help_text="Settled at or after this time (ISO 8601, any offset)."
    )
    until = serializers.DateTimeField(required=False, help_text="Settled before this time.")

    def validate(self, attrs):
        ranged = "since" in attrs or "until" in attrs
        if ranged and "period" in attrs:
            raise ApplicationError(
                "Give a period or a since/until range, not both.", code="period_and_range"
            )
        if ranged and "since" in attrs and "until" in attrs and attrs["since"] >= attrs["until"]:
            raise ApplicationError("since must be before until.", code="invalid_range")
        attrs["period"] = CUSTOM if ranged else attrs.get("period", "all")
        return attrs


class BestDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    profit = money_field()
    trades = serializers.IntegerField()


class WorstDaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The day with the lowest net result.")
    loss = money_field(
        allow_null=True,
        help_text="That day's net when it lost money (negative); null when no day did.",
    )
    profit = money_field(help_text="That day's net result, whatever its sign.")
    trades = serializers.IntegerField()


class StatisticsSerializer(serializers.Serializer):
    session_id = serializers.IntegerField(allow_null=True)
    period = serializers.ChoiceField(choices=[*PERIODS, CUSTOM])
    since = serializers.DateTimeField(
        allow_null=True, help_text="Where the counted range starts (null: the beginning)."
    )
    until = serializers.DateTimeField(allow_null=True, help_text="Where it ends (null: now).")
    total_trades = serializers.IntegerField()
    winning_trades = serializers.IntegerField()
    losing_trades = serializers.IntegerField()
    draw_trades = serializers.IntegerField()
    win_rate = serializers.FloatField(help_text="Percent of settled trades won.")
    net_profit = money_field()
    best_day = BestDaySerializer(allow_null=True)
    worst_day = WorstDaySerializer(allow_null=True)


# --- Signals --------------------------------------------------------------------------------


class ChannelInputSerializer(serializers.Serializer):
    channel = serializers.CharField(max_length=64, help_text="A signal channel's code.")


class ChannelSubscriptionSerializer(serializers.Serializer):
    channel = serializers.CharField(source="channel.code")
    name = serializers.CharField(source="channel.name")
    subscribed_at = serializers.DateTimeField(source="created_at")


class ChannelSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class SubscriptionsSerializer(serializers.Serializer):
    subscriptions = ChannelSubscriptionSerializer(many=True, help_text="Your channels.")
    channels = ChannelSerializer(many=True, help_text="Every channel you may subscribe to.")


class SignalInputSerializer(serializers.Serializer):
    channel = serializers.CharField(max_length=64, help_text="A signal channel's code.")
    asset = serializers.CharField(max_length=40)
    direction = serializers.ChoiceField(choices=DIRECTIONS)
    duration = duration_field()
    sent_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When the source sent it (default: now)."
    )
    ref = serializers.CharField(
        max_length=96,
        required=False,
        allow_blank=True,
        help_text="Your id for the signal: the same (channel, ref) is received once.",
    )


SIGNAL_STATUS_HELP = " | ".join(Signal.Status.values)


class SignalReceivedSerializer(serializers.Serializer):
    signal_id = serializers.IntegerField()
    sessions_targeted = serializers.IntegerField()
    trades_created = serializers.IntegerField()
    sessions_skipped = serializers.IntegerField()
    status = serializers.CharField(help_text=SIGNAL_STATUS_HELP)
    skip_reason = serializers.CharField(allow_blank=True)
    fanout_ms = serializers.IntegerField(allow_null=True)


class SignalSerializer(serializers.ModelSerializer):
    channel = serializers.CharField(source="channel.code", read_only=True)
    direction = serializers.ChoiceField(choices=DIRECTIONS, read_only=True)
    # The metaclass moves declared fields into `_declared_fields`: `Field.source` stays.
    source = serializers.CharField(read_only=True, help_text="api | telegram")  # type: ignore[assignment]
    status = serializers.CharField(read_only=True, help_text=SIGNAL_STATUS_HELP)

    class Meta:
        model = Signal
        fields = [
            "id",
            "channel",
            "asset",
            "direction",
            "duration",
            "sent_at",
            "received_at",
            "source",
            "status",
            "skip_reason",
            "sessions_targeted",
            "trades_created",
            "sessions_skipped",
            "fanout_ms",
        ]
        read_only_fields = fields
