from rest_framework import serializers

from core.money import StrictIntegerField
from delivery.errors import InvalidDeliveryError
from delivery.models import Delivery
from delivery.services import delivery_contact_check
from demo_pool.models import ActivationRequest, HealthLog


class DemoErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class _DeliveryTargetSerializer(serializers.Serializer):
    delivery_method = serializers.ChoiceField(choices=Delivery.Method.choices)
    contact_info = serializers.CharField(
        max_length=254, required=False, allow_blank=True, default=""
    )

    def validate(self, attrs):
        # Delivery's own rule, asked before any account is claimed for a contact it refuses.
        try:
            attrs["contact_info"] = delivery_contact_check(
                method=attrs["delivery_method"], contact=attrs["contact_info"]
            )
        except InvalidDeliveryError as exc:
            raise serializers.ValidationError({"contact_info": exc.detail}) from None
        return attrs


class ActivateInputSerializer(_DeliveryTargetSerializer):
    user_id = serializers.CharField(max_length=64)
    real_name = serializers.CharField(max_length=128)


class ResendInputSerializer(_DeliveryTargetSerializer):
    user_id = serializers.CharField(max_length=64)


class PoolAccountSerializer(serializers.Serializer):
    login = serializers.IntegerField()
    server = serializers.CharField()
    balance = serializers.DecimalField(max_digits=14, decimal_places=2)
    leverage = serializers.IntegerField()
    currency = serializers.CharField()
    expires_at = serializers.DateTimeField()


class HandedDeliverySerializer(serializers.Serializer):
    """A delivery as handed to the caller: `link` and `qr_svg` only for api and qr."""

    id = serializers.IntegerField()
    method = serializers.ChoiceField(choices=Delivery.Method.choices)
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    link = serializers.CharField(required=False)
    qr_svg = serializers.CharField(required=False)


class ActivatedSerializer(serializers.Serializer):
    account = PoolAccountSerializer()
    delivery = HandedDeliverySerializer()


class QueuedSerializer(serializers.Serializer):
    request_id = serializers.UUIDField()
    status_url = serializers.CharField()


class ActivationRequestSerializer(serializers.Serializer):
    request_id = serializers.UUIDField(source="public_id")
    status = serializers.ChoiceField(choices=ActivationRequest.Status.choices)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    account = PoolAccountSerializer(required=False)
    delivery = HandedDeliverySerializer(required=False)


class HealthLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthLog
        fields = [
            "checked_at",
            "healthy",
            "exists",
            "enabled",
            "connected",
            "balance",
            "equity",
            "error",
        ]


class AccountHealthSerializer(serializers.Serializer):
    login = serializers.IntegerField()
    status = serializers.CharField()
    press_pass_status = serializers.CharField()
    connected = serializers.BooleanField()
    enabled = serializers.BooleanField()
    balance = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    equity = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    expires_at = serializers.DateTimeField()
    days_left = serializers.IntegerField()
    needs_attention = serializers.BooleanField()
    last_check_at = serializers.DateTimeField(allow_null=True)
    live_check_error = serializers.CharField(allow_blank=True)
    recent_checks = HealthLogSerializer(many=True)


class PoolStatusSerializer(serializers.Serializer):
    available = serializers.IntegerField()
    assigned = serializers.IntegerField()
    provisioning = serializers.IntegerField()
    failed = serializers.IntegerField()
    expired = serializers.IntegerField()
    retired = serializers.IntegerField()
    total = serializers.IntegerField()
    min_available = serializers.IntegerField()
    target_buffer = serializers.IntegerField()
    max_pool_size = serializers.IntegerField()
    availability_rate = serializers.FloatField()
    queue_depth = serializers.IntegerField()
    provisioning_p50_ms = serializers.IntegerField(allow_null=True)
    provisioning_p95_ms = serializers.IntegerField(allow_null=True)
    delivery_success_rate = serializers.FloatField()


class ReplenishQuerySerializer(serializers.Serializer):
    count = StrictIntegerField(min_value=1, max_value=1000, default=10)


class ReplenishedSerializer(serializers.Serializer):
    queued = serializers.IntegerField()


class ResentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    method = serializers.ChoiceField(choices=Delivery.Method.choices)
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    link = serializers.CharField(required=False)
    qr_svg = serializers.CharField(required=False)
