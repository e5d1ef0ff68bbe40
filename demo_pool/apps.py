from django.apps import AppConfig


class DemoPoolConfig(AppConfig):
    name = "demo_pool"
    verbose_name = "Demo account pool"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from core.metrics import register_scrape_collector
        from demo_pool.metrics import DemoPoolCollector
        from demo_pool.models import PoolConfig
        from demo_pool.services.common import pool_config_forget

        register_scrape_collector(DemoPoolCollector())
        # Not business logic: a saved configuration must not wait for the cache to expire.
        post_save.connect(pool_config_forget, sender=PoolConfig, dispatch_uid="demo_pool.config")
