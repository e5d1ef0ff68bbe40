from decimal import Decimal

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.models import MonitoredAccount, User, normalize_email
from accounts.services import user_email_taken, user_roles
from core.money import MoneyField


class RegisterInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    username = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")

    def validate_email(self, value: str) -> str:
        value = normalize_email(value)
        if user_email_taken(email=value):
            raise serializers.ValidationError(
                "An account with this email already exists.", code="email_taken"
            )
        return value

    def validate(self, attrs):
        # The similarity validator needs the other fields, so validate against a draft user.
        draft = User(email=attrs["email"], username=attrs.get("username", ""))
        try:
            password_validation.validate_password(attrs["password"], user=draft)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class RegisterOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    access = serializers.CharField()
    refresh = serializers.CharField()


class LogoutInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "username", "roles", "is_staff"]
        read_only_fields = ["id", "email", "roles", "is_staff"]

    def get_roles(self, user) -> list[str]:
        return sorted(user_roles(user))


class MeUpdateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, allow_blank=True)
    email = serializers.EmailField(
        max_length=254,
        help_text="Only the current one (any case): another is 400 `email_change_unsupported`.",
    )


class PasswordChangeInputSerializer(serializers.Serializer):
    old_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)

    def validate_new_password(self, value: str) -> str:
        user = self.context["user"]
        try:
            password_validation.validate_password(value, user=user)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value


# --- Monitoring -------------------------------------------------------------------------------


class MonitoringErrorSerializer(serializers.Serializer):
    """`{detail, code}`, as every refusal answers (for the schema)."""

    detail = serializers.CharField()
    code = serializers.CharField()


class MonitoringStatusSerializer(serializers.Serializer):
    accounts_total = serializers.IntegerField()
    active = serializers.IntegerField()
    paused = serializers.IntegerField()
    last_sweep_at = serializers.DateTimeField(allow_null=True)
    last_sweep_ms = serializers.IntegerField(allow_null=True)
    sweeps_total = serializers.IntegerField()
    events_pending = serializers.IntegerField(help_text="Account events pending or in progress.")


class MonitoredAccountSerializer(serializers.ModelSerializer):
    """A monitored account with the snapshot the last sweep confirmed (money: 2-decimal text)."""

    class Meta:
        model = MonitoredAccount
        fields = [
            "login",
            "balance",
            "equity",
            "credit",
            "leverage",
            "status",
            "consecutive_errors",
            "last_error",
            "last_polled_at",
            "last_changed_at",
            "paused_at",
        ]
        read_only_fields = fields


class TestDealInputSerializer(serializers.Serializer):
    amount = MoneyField(
        max_digits=16,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text="More than zero, up to two decimals; test-withdraw takes it off the balance.",
    )


class TestDealOutputSerializer(serializers.Serializer):
    deal_id = serializers.IntegerField(help_text="The balance deal's ticket on the MT5 server.")


class SweepResultSerializer(serializers.Serializer):
    accounts = serializers.IntegerField(help_text="Active accounts swept.")
    changed = serializers.IntegerField(help_text="Accounts whose numbers moved.")
    deposits = serializers.IntegerField()
    withdrawals = serializers.IntegerField()
    drawdowns = serializers.IntegerField()
    trades = serializers.IntegerField(help_text="Closed trade deals (Type C conversion).")
    # The metaclass moves declared fields into `_declared_fields`: `Serializer.errors` stays.
    errors = serializers.IntegerField(help_text="Accounts the server did not answer for.")  # type: ignore[assignment]
    paused = serializers.IntegerField(help_text="Accounts paused by this sweep's errors.")
    batches = serializers.IntegerField()
    outages = serializers.IntegerField(help_text="Batches skipped: the gateway was unavailable.")
    dispatched = serializers.IntegerField(help_text="Events handed to the bonus engine.")
    ms = serializers.IntegerField(help_text="Wall time of the sweep.")
