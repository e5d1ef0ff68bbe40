"""Load what the production processes load, in a virtualenv that has only requirements.txt.

Run by `.ci/production-imports` with REDIS_URL set, so the Redis cache, the Celery Redis
transport (kombu imports `packaging` there) and beat's database scheduler are the real ones.
A module that imports a development-only package (pytest, ruff, time-machine...) or a
runtime package missing from requirements.txt fails here, not on a broker's server.
"""

import importlib
import os
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> int:
    if not os.environ.get("REDIS_URL"):
        sys.stderr.write("REDIS_URL must be set: the check loads the Redis transport\n")
        return 2

    # web: the WSGI application (apps ready, middleware built) and every URL's view.
    from django.urls import get_resolver

    import config.wsgi

    get_resolver().url_patterns  # noqa: B018  (imports every urls module and view)
    application = config.wsgi.application
    application.load_middleware()

    # gunicorn's side: its config file and our logger class.
    import gunicorn.app.wsgiapp  # noqa: F401

    import config.gunicorn

    # worker: the Celery app, every task module, the Redis transport and a real connection.
    from config.celery import app

    app.loader.import_default_modules()
    app.autodiscover_tasks(force=True)
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=3)
        transport = type(connection.transport).__module__
    if transport != "kombu.transport.redis":
        sys.stderr.write(f"worker transport is {transport}, not Redis\n")
        return 1

    # beat: the database scheduler class it is started with.
    importlib.import_module("django_celery_beat.schedulers").DatabaseScheduler  # noqa: B018

    # Every shipped module, management commands and migrations included: the project's own
    # installed apps (read from settings, not listed again here), core and config.
    from django.apps import apps

    shipped = ["config", "core"] + [
        app.name for app in apps.get_app_configs() if Path(app.path).parent == ROOT
    ]
    failed = []
    count = 0
    for package in shipped:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if info.name.startswith("config.settings_"):
                continue
            try:
                importlib.import_module(info.name)
                count += 1
            except Exception as exc:  # collected and reported below
                failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
    if failed:
        sys.stderr.write("modules that do not import with requirements.txt alone:\n")
        for line in failed:
            sys.stderr.write(f"  {line}\n")
        return 1
    sys.stdout.write(f"production imports: {count} modules, web, worker (Redis) and beat load\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
