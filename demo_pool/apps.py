from django.apps import AppConfig


class DemoPoolConfig(AppConfig):
    name = "demo_pool"
    verbose_name = "Demo account pool"

    def ready(self) -> None:
        from accounts.metrics import register_scrape_collector
        from demo_pool.metrics import DemoPoolCollector

        register_scrape_collector(DemoPoolCollector())
