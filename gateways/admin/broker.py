from django import forms
from django.contrib import admin
from django.contrib.auth.hashers import make_password

from gateways.models import SimulatedBrokerAccount, SimulatedBrokerTrade


class SimulatedBrokerAccountForm(forms.ModelForm):
    """Seeds or edits an account; the password is write-only and stored hashed."""

    new_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current password.",
    )

    class Meta:
        model = SimulatedBrokerAccount
        fields = ("email", "account_type", "balance", "win_rate", "draw_rate", "payout")

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("new_password"):
            self.add_error("new_password", "A new account needs a password.")
        return cleaned

    def save(self, commit: bool = True) -> SimulatedBrokerAccount:
        account = super().save(commit=False)
        account.email = account.email.strip().lower()  # the server looks logins up lowercased
        if self.cleaned_data.get("new_password"):
            account.password_hash = make_password(self.cleaned_data["new_password"])
        if commit:
            account.save()
        return account


@admin.register(SimulatedBrokerAccount)
class SimulatedBrokerAccountAdmin(admin.ModelAdmin):
    """Accounts on the simulated broker: seed a funded real account, tune its luck."""

    form = SimulatedBrokerAccountForm
    list_display = (
        "email",
        "account_type",
        "balance",
        "win_rate",
        "draw_rate",
        "payout",
        "created_at",
    )
    list_filter = ("account_type",)
    search_fields = ("email",)
    ordering = ("email", "account_type")


@admin.register(SimulatedBrokerTrade)
class SimulatedBrokerTradeAdmin(admin.ModelAdmin):
    """Trades on the simulated broker, read-only: they are opened through the gateway."""

    list_display = (
        "id",
        "account",
        "asset",
        "direction",
        "amount",
        "outcome",
        "opened_at",
        "expires_at",
        "settled_at",
    )
    list_filter = ("outcome", "direction", "account__account_type")
    search_fields = ("account__email", "client_order_id", "asset")
    list_select_related = ("account",)
    ordering = ("-id",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
