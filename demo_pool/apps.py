from django.apps import AppConfig


class DemoPoolConfig(AppConfig):
    name = "demo_pool"
    verbose_name = "Demo account pool"
