"""The Celery app: settings from Django (CELERY_*), tasks discovered in every installed app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("brokerdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
