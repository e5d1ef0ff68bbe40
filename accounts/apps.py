from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_save


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and audit"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, sender=self)
        from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

        from accounts.token_storage import outstanding_token_hash

        pre_save.connect(outstanding_token_hash, sender=OutstandingToken, weak=False)
        from accounts.metrics import MonitorCollector
        from core.metrics import register_scrape_collector

        register_scrape_collector(MonitorCollector())


def _sync_roles(sender, using="default", **kwargs) -> None:
    # Permissions exist only after migrate; keep the role groups in step with the table.
    from accounts.services.roles import roles_sync

    roles_sync(using=using)
