"""A first signal channel, so a fresh install (and `make run`) has one to subscribe to."""

from django.db import migrations


def seed(apps, schema_editor):
    SignalChannel = apps.get_model("trading_sessions", "SignalChannel")
    SignalChannel.objects.get_or_create(
        code="main",
        defaults={"name": "Main signals", "telegram_chat": "@brokerdesk_signals"},
    )


class Migration(migrations.Migration):
    dependencies = [("trading_sessions", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
