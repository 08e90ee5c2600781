"""Test settings: real PostgreSQL and Redis, fast password hashing."""

from rm6.devservices import use_embedded_services_if_unset

# A Redis of its own, so that a test run never consumes or purges the queues
# of a development server started with `make run`.
use_embedded_services_if_unset(redis_file="redis-test.rdb")

from rm6.settings.base import *  # noqa: E402, F403
from rm6.settings.base import CACHES, env  # noqa: E402

DEBUG = False
SECRET_KEY = "test-only-insecure-key"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver", "hub.example.com"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CACHES["default"]["KEY_PREFIX"] = "rm6-test"
LOGGING["root"]["level"] = env.str("LOG_LEVEL", default="WARNING")  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = []  # noqa: F405
