"""The three plans, with their first quotas (staff edit them in the admin afterwards)."""

from django.db import migrations

PLANS = [
    # code, name, price, broker accounts, active sessions, trades/day, open positions, channels
    ("basic", "Basic", "19.00", 1, 2, 50, 5, 3),
    ("premium", "Premium", "49.00", 3, 5, 200, 20, 10),
    ("vip", "VIP", "149.00", 10, 20, 1000, 100, 50),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("licensing", "Plan")
    for code, name, price, accounts, sessions, trades, positions, channels in PLANS:
        Plan.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "price_monthly": price,
                "max_broker_accounts": accounts,
                "max_active_sessions": sessions,
                "max_trades_per_day": trades,
                "max_open_positions": positions,
                "max_signal_channels": channels,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("licensing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
