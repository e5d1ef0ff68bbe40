from django.apps import AppConfig


class TradingSessionsConfig(AppConfig):
    name = "trading_sessions"
    verbose_name = "Trading sessions"

    def ready(self):
        from trading_sessions import metrics

        metrics.register()
