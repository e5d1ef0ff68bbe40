from rest_framework import serializers

from core.money import StrictIntegerField, StrictNumbersMixin
from delivery.errors import InvalidDeliveryError
from delivery.models import Delivery
from delivery.services import delivery_contact_check

from ..models import License, Plan, ReportedTrade, Subscription


class ValidateInputSerializer(serializers.Serializer):
    license_key = serializers.CharField(max_length=80, trim_whitespace=True)
    machine_id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    nonce = serializers.CharField(max_length=128, required=False, allow_blank=True)


class ValidateAnswerSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    code = serializers.ChoiceField(choices=License.Code.choices)
    license_type = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    account_id = serializers.CharField(allow_null=True)
    nonce = serializers.CharField(allow_null=True)
    ts = serializers.DateTimeField()
    signature = serializers.CharField(help_text="Ed25519 over the other fields, canonical JSON")


class PublicKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    public_key = serializers.CharField(help_text="base64 of the 32 raw bytes")
    signed_bytes = serializers.CharField()


class LicenseSerializer(serializers.ModelSerializer):
    code = serializers.SerializerMethodField()

    class Meta:
        model = License
        fields = [
            "account_id",
            "email",
            "notes",
            "is_admin",
            "license_type",
            "status",
            "code",
            "expires_at",
            "key_last4",
            "suspended_reason",
            "last_active_at",
            "created_at",
            "updated_at",
        ]

    def get_code(self, license) -> str:
        return license.code_at()


class LicenseCreateSerializer(serializers.Serializer):
    account_id = serializers.RegexField(r"^[A-Za-z0-9_.@+-]{1,64}$")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    license_type = serializers.ChoiceField(choices=License.Type.choices)
    license_duration_days = StrictIntegerField(
        required=False, min_value=1, max_value=36500, allow_null=True
    )
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    delivery_method = serializers.ChoiceField(
        choices=Delivery.Method.choices,
        required=False,
        allow_null=True,
        default=None,
        help_text="Send the key through a one-time link by this channel instead of answering it.",
    )
    contact_info = serializers.CharField(
        max_length=254,
        required=False,
        allow_blank=True,
        default="",
        help_text="Telegram chat id or @channel, or email address, for delivery_method.",
    )

    def validate(self, attrs):
        # Delivery's own rule, asked before the license is made for a contact it refuses.
        if attrs["delivery_method"]:
            try:
                attrs["contact_info"] = delivery_contact_check(
                    method=attrs["delivery_method"], contact=attrs["contact_info"]
                )
            except InvalidDeliveryError as exc:
                raise serializers.ValidationError({"contact_info": exc.detail}) from None
        return attrs


class LicenseKeyDeliverySerializer(serializers.Serializer):
    """The delivery that carries the key: `link` for api and qr (null for telegram and
    email, which carry it themselves), `qr_svg` for qr."""

    id = serializers.IntegerField(source="delivery.pk")
    method = serializers.ChoiceField(choices=Delivery.Method.choices, source="delivery.method")
    status = serializers.ChoiceField(choices=Delivery.Status.choices, source="delivery.status")
    contact = serializers.CharField(source="delivery.contact")
    expires_at = serializers.DateTimeField(source="delivery.expires_at")
    link = serializers.SerializerMethodField()
    qr_svg = serializers.SerializerMethodField()

    def get_link(self, result) -> str | None:
        return result.caller_link

    def get_qr_svg(self, result) -> str | None:
        return result.qr_svg


class LicenseCreatedSerializer(LicenseSerializer):
    license_key = serializers.CharField(
        allow_null=True,
        help_text="Shown this once (only a hash is kept); null when sent by `delivery`.",
    )
    delivery = LicenseKeyDeliverySerializer(
        allow_null=True, help_text="How the key was sent, when a delivery_method was asked."
    )

    class Meta(LicenseSerializer.Meta):
        fields = [*LicenseSerializer.Meta.fields, "license_key", "delivery"]


class ExtendSerializer(serializers.Serializer):
    additional_days = StrictIntegerField(min_value=1, max_value=36500)


class SuspendSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class UsageSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    last_24h = serializers.IntegerField()
    last_call_at = serializers.DateTimeField(allow_null=True)


class TradeStatsSerializer(serializers.Serializer):
    total_trades = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    win_rate = serializers.DecimalField(max_digits=6, decimal_places=2)
    total_pnl = serializers.DecimalField(max_digits=16, decimal_places=2)
    avg_pnl = serializers.DecimalField(max_digits=16, decimal_places=2)


class LicenseDetailSerializer(serializers.Serializer):
    license = LicenseSerializer()
    last_active = serializers.DateTimeField(allow_null=True)
    api_usage = UsageSerializer()
    trade_stats = TradeStatsSerializer()


class StatsSerializer(serializers.Serializer):
    users_total = serializers.IntegerField()
    active = serializers.IntegerField()
    expired = serializers.IntegerField()
    suspended = serializers.IntegerField()
    by_license_type = serializers.DictField(child=serializers.IntegerField())
    api_calls_24h = serializers.IntegerField()
    trades_total = serializers.IntegerField()
    pnl_total = serializers.DecimalField(max_digits=16, decimal_places=2)


class LicenseFileSerializer(serializers.Serializer):
    license = serializers.DictField()
    algorithm = serializers.CharField()
    public_key = serializers.CharField()
    signature = serializers.CharField()


class TradeSideField(serializers.ChoiceField):
    """BUY or SELL, stored and answered so; accepted in any case, and as `long` or `short`.

    Only ASCII words are folded: a look-alike letter (a long s, whose upper case is S, or a
    Cyrillic e) stays a 400.
    """

    ALIASES = {
        "buy": ReportedTrade.Side.BUY,
        "long": ReportedTrade.Side.BUY,
        "sell": ReportedTrade.Side.SELL,
        "short": ReportedTrade.Side.SELL,
    }
    default_error_messages = {
        "invalid_choice": "Not a side: use BUY or SELL (any case), long or short."
    }

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text", "BUY or SELL in any case, or long (BUY) or short (SELL); stored BUY|SELL."
        )
        super().__init__(choices=ReportedTrade.Side.choices, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and data.isascii() and data.lower() in self.ALIASES:
            return self.ALIASES[data.lower()].value
        return super().to_internal_value(data)


class TradeSerializer(StrictNumbersMixin, serializers.ModelSerializer):
    side = TradeSideField()

    class Meta:
        model = ReportedTrade
        fields = [
            "id",
            "symbol",
            "side",
            "quantity",
            "entry_price",
            "exit_price",
            "pnl",
            "signal_confidence",
            "opened_at",
            "closed_at",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"signal_confidence": {"min_value": 0, "max_value": 100}}

    def validate(self, attrs):
        for name in ("entry_price", "exit_price", "quantity"):
            if attrs[name] <= 0:
                raise serializers.ValidationError({name: "Must be greater than 0."})
        if attrs["closed_at"] <= attrs["opened_at"]:
            raise serializers.ValidationError({"closed_at": "Must be after opened_at."})
        return attrs


class RateLimitStatusSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    remaining = serializers.IntegerField()
    reset_at = serializers.DateTimeField()
    backend = serializers.ChoiceField(choices=["redis", "memory"])


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "code",
            "name",
            "price_monthly",
            "max_broker_accounts",
            "max_active_sessions",
            "max_trades_per_day",
            "max_open_positions",
            "max_signal_channels",
        ]


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = PlanSerializer()

    class Meta:
        model = Subscription
        fields = ["id", "plan", "starts_at", "ends_at", "is_active", "cancelled_at", "created_at"]


class SubscriptionInputSerializer(serializers.Serializer):
    plan = serializers.ChoiceField(choices=Plan.Code.choices)
