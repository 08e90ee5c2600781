"""Development settings: DEBUG on, embedded servers when no URLs are set."""

from rm6.devservices import use_embedded_services_if_unset

use_embedded_services_if_unset()

from rm6.settings.base import *  # noqa: E402, F403
from rm6.settings.base import env  # noqa: E402

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
