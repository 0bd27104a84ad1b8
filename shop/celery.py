"""The Celery application. Without ``REDIS_URL`` tasks run eagerly, after commit, in-process."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("kami")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
