"""`get_*_gateway()` helpers share this: the class named in settings, one instance per process
(the HTTP clients keep a session token), built anew when the setting changes (tests)."""

import functools

from django.conf import settings
from django.utils.module_loading import import_string


def load_gateway(setting_name: str):
    """Return the gateway instance for the dotted path in `settings.<setting_name>`."""
    return _instance(getattr(settings, setting_name))


@functools.cache
def _instance(dotted_path: str):
    return import_string(dotted_path)()


def reset_gateways() -> None:
    """Forget cached instances (tests that change settings or knobs call this)."""
    _instance.cache_clear()
