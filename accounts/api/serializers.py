from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.models import User, normalize_email
from accounts.services import user_email_taken, user_roles


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
