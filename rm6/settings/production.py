"""Production settings: every server URL and secret comes from the environment."""

from rm6.settings.base import *  # noqa: F403
from rm6.settings.base import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
DATABASES = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if not REDIS_URL:  # noqa: F405
    raise environ.ImproperlyConfigured(  # noqa: F405
        "REDIS_URL is not set: production needs a Redis server, for example "
        "REDIS_URL=redis://redis:6379/0"
    )
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
# SMTP by default: the development backend would write every email, password
# reset links included, to the production log.
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
LOGGING["handlers"]["console"]["formatter"] = "json"  # noqa: F405
