from rest_framework import serializers

from delivery.models import Delivery, DeliveryAttempt


class DeliveryErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class RevealInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=256, trim_whitespace=True)


class RevealOutputSerializer(serializers.Serializer):
    payload = serializers.JSONField(help_text="What was delivered: an object or a string.")
    revealed_at = serializers.DateTimeField()


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["at", "action", "outcome", "ip", "user_agent", "is_preview_bot"]


class DeliverySerializer(serializers.ModelSerializer):
    """A delivery as staff see it: state and log, never the secret, its link or hashes."""

    class Meta:
        model = Delivery
        fields = [
            "id",
            "purpose",
            "method",
            "contact",
            "status",
            "owner",
            "created_at",
            "expires_at",
            "sent_at",
            "revealed_at",
            "send_attempts",
            "last_error",
            "superseded_by",
        ]


class DeliveryDetailSerializer(DeliverySerializer):
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempts"]
