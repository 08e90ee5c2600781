import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rm6.settings.local")

app = Celery("rm6")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
