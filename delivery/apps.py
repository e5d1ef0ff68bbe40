from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"
    verbose_name = "Credential delivery"

    def ready(self):
        from django.core import checks

        from delivery import metrics, redaction
        from delivery.channels import check_channels
        from delivery.crypto import get_keyring

        # Fail at start, not at the first secret: a malformed ENCRYPTION_KEYS is
        # ImproperlyConfigured here; with none (DEBUG), the local key file is made now.
        get_keyring()
        metrics.register()
        redaction.install()  # access logs write /d/<token> request lines: redact them
        checks.register(check_channels)
