"""Settings shared by every environment, read from environment variables.

Each variable is documented in `.env.example`. The environment modules
(`local`, `test`, `production`) import this one and adjust it.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent


class Env(environ.Env):
    """django-environ's reader, whose cast errors name the variable."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, **kwargs):
        try:
            return super().get_value(var, cast=cast, default=default, **kwargs)
        except ValueError as error:
            raise environ.ImproperlyConfigured(
                f"{var} is invalid: {error}. Set it to a valid value or unset it "
                "for the default (see .env.example)."
            ) from error


env = Env()
Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("RM6_SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.saml",
    "guardian",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "apps.membership",
    "apps.lifecycle",
    "apps.community",
    "apps.portal",
    "apps.advocacy",
    "apps.reporting",
    "rm6.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "rm6.middleware.RejectNulInQueryMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.membership.timezones.MemberTimeZoneMiddleware",
    "apps.lifecycle.attribution.AttributionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "rm6.urls"
WSGI_APPLICATION = "rm6.wsgi.application"
ASGI_APPLICATION = "rm6.asgi.application"
SITE_ID = 1

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.lifecycle.delivery.context_processors.unread_notifications",
            ],
        },
    },
]

# Databases and Redis. The local and test modules start embedded servers when
# these are unset; production requires them.
DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def redis_client_url(url: str) -> str:
    """Return a redis-py URL for a Celery-style Redis URL.

    Celery spells a unix socket `redis+socket:///path`; redis-py and Django's
    cache spell it `unix:///path`.
    """
    prefix = "redis+socket://"
    if url.startswith(prefix):
        return "unix://" + url[len(prefix) :]
    return url


if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_client_url(REDIS_URL),
            "KEY_PREFIX": "rm6",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]

# django-allauth: people sign in with their email address.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_ADAPTER = "apps.membership.adapters.MemberAccountAdapter"
ACCOUNT_FORMS = {"signup": "apps.membership.adapters.MemberSignupForm"}
# SSO: OpenID Connect and SAML apps are set up per customer account in admin.
# SSO sign-ins follow ACCOUNT_EMAIL_VERIFICATION for addresses the provider
# did not verify, because SOCIALACCOUNT_EMAIL_VERIFICATION is left unset.
SOCIALACCOUNT_ADAPTER = "apps.membership.adapters.MemberSocialAccountAdapter"
# A provider that verified an email an existing user owns signs in as that
# user and connects to it. The adapter trusts a provider linked to a customer
# account only for that account's email domains.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
# Create a new user straight from the provider's data; allauth shows its
# sign-up form only when the provider sent no email address.
SOCIALACCOUNT_AUTO_SIGNUP = True
LOGIN_REDIRECT_URL = "portal:home"
LOGIN_URL = "account_login"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
GUARDIAN_RAISE_403 = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # htmx comes from the npm package declared in package.json, not a CDN.
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = env.path("RM6_MEDIA_ROOT", default=BASE_DIR / "var" / "media")
MEDIA_URL = "media/"

# By default each email is logged at INFO in full, and not sent.
EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="rm6.mail.LoggingEmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="hub@example.com")
# The mail server of django.core.mail.backends.smtp.EmailBackend.
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)

REST_FRAMEWORK = {
    # Token first, so an anonymous request gets 401 with a WWW-Authenticate
    # header instead of the 403 that session authentication gives.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rm6.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rm6.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rm6.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("RM6_API_THROTTLE_RATE", default="6000/hour")
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RM6 Loyalty Hub API",
    "DESCRIPTION": "Accounts, members, activity events and health scores.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ConsentGrantSourceEnum": "apps.membership.models.ConsentGrant.Source",
        "ContentGapSourceEnum": "apps.portal.models.deflection.ContentGap.Source",
        "CaseStatusEnum": "apps.portal.models.cases.Case.Status",
        "CaseMessageVisibilityEnum": "apps.portal.models.cases.CaseMessage.Visibility",
    },
}

# Celery: Redis is the broker. Tasks acknowledge after they finish, so a
# worker killed mid-task hands the task to another worker.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_RESULT_EXPIRES = timedelta(hours=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Redis hands a message that no worker acknowledged within this many seconds
# to another worker: the delay before a killed worker's task runs again. It
# must stay above CELERY_TASK_TIME_LIMIT, or a slow task runs twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}
CELERY_BEAT_SCHEDULE = {
    "rescore-stale-members": {
        "task": "lifecycle.rescore_stale_members",
        "schedule": timedelta(minutes=1),
    },
    "rescore-all-members-nightly": {
        "task": "lifecycle.rescore_all_members",
        "schedule": crontab(hour=2, minute=30),
    },
    "rescore-stale-accounts": {
        "task": "lifecycle.rescore_stale_accounts",
        "schedule": timedelta(minutes=5),
    },
    "rescore-all-accounts-nightly": {
        "task": "lifecycle.rescore_all_accounts",
        "schedule": crontab(hour=2, minute=45),
    },
    "retry-webhooks": {
        "task": "lifecycle.retry_webhooks",
        "schedule": timedelta(minutes=1),
    },
    "run-due-play-enrolments": {
        "task": "lifecycle.run_due_enrolments",
        "schedule": timedelta(minutes=1),
    },
    "evaluate-scheduled-play-triggers": {
        "task": "lifecycle.evaluate_scheduled_triggers",
        "schedule": timedelta(minutes=15),
    },
    # The only path from record_activity to play triggers: a play reacts to
    # such an event within this interval. A run that finds nothing costs a
    # few small queries.
    "sweep-event-play-triggers": {
        "task": "lifecycle.sweep_event_triggers",
        "schedule": timedelta(seconds=15),
    },
    # Events reach the webhook endpoints subscribed to their kinds within
    # this interval.
    "sweep-event-webhooks": {
        "task": "lifecycle.sweep_event_webhooks",
        "schedule": timedelta(seconds=15),
    },
    "purge-held-usage-events": {
        "task": "lifecycle.purge_held_usage_events",
        "schedule": crontab(hour=3, minute=15),
    },
    # Records held Segment usage whose member appeared, or got the external
    # ID or email it names, after the usage was held.
    "release-matched-held-usage-events": {
        "task": "lifecycle.release_matched_held_events",
        "schedule": timedelta(minutes=5),
    },
    "expire-overdue-advocacy-asks": {
        "task": "advocacy.expire_overdue_asks",
        "schedule": timedelta(hours=1),
    },
    "send-community-daily-digests": {
        "task": "community.send_daily_digests",
        "schedule": crontab(hour=7, minute=0),
    },
    # Hourly, so each member's reminder goes out soon after the local hour
    # RM6_CERTIFICATE_REMINDER_HOUR in every time zone.
    "send-certificate-reminders": {
        "task": "portal.send_certificate_reminders",
        "schedule": crontab(minute=5),
    },
    "record-certificate-expiries": {
        "task": "portal.record_certificate_expiries",
        "schedule": crontab(minute=15),
    },
    "sync-recent-onboarding-progress": {
        "task": "portal.sync_recent_onboarding_progress",
        "schedule": timedelta(minutes=1),
    },
    "sync-all-onboarding-progress-nightly": {
        "task": "portal.sync_all_onboarding_progress",
        "schedule": crontab(hour=2, minute=15),
    },
    "classify-case-attempts": {
        "task": "portal.classify_case_attempts",
        "schedule": timedelta(minutes=5),
    },
    "group-content-gaps": {
        "task": "portal.group_content_gaps",
        "schedule": crontab(minute=20),
    },
    "send-overdue-review-reminders": {
        "task": "portal.send_overdue_review_reminders",
        "schedule": crontab(hour=8, minute=0),
    },
    "flag-case-sla-breaches": {
        "task": "portal.flag_case_sla_breaches",
        "schedule": timedelta(minutes=5),
    },
    "close-solved-cases": {
        "task": "portal.close_solved_cases",
        "schedule": timedelta(hours=1),
    },
    "offer-question-escalations": {
        "task": "portal.offer_question_escalations",
        "schedule": timedelta(minutes=15),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")

# Product settings.
RM6_ACTIVE_WINDOW_DAYS = env.int("RM6_ACTIVE_WINDOW_DAYS", default=30)
# Hosts whose https video players lessons embed in an iframe; a lesson video
# on any other host is shown as a plain link.
RM6_VIDEO_EMBED_HOSTS = env.list(
    "RM6_VIDEO_EMBED_HOSTS",
    default=["www.youtube-nocookie.com", "www.youtube.com", "player.vimeo.com"],
)
# Local hour (0-23, in the member's time zone) from which a recertification
# reminder is sent on its day.
RM6_CERTIFICATE_REMINDER_HOUR = env.int("RM6_CERTIFICATE_REMINDER_HOUR", default=9)
# The event kind that marks a member's first value, which time-to-value
# measures from first sign-in. The portal records the default kind once per
# member and onboarding path, when the member finishes the path.
RM6_VALUE_MOMENT_KIND = env.str(
    "RM6_VALUE_MOMENT_KIND", default="portal.onboarding_path_completed"
)
# Support cases: attachment limits in bytes, the days after which a solved
# case closes by itself, and the hours a question waits unanswered before
# its author is offered a support case.
RM6_CASE_ATTACHMENT_MAX_BYTES = env.int(
    "RM6_CASE_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024
)
RM6_CASE_ATTACHMENTS_MAX_TOTAL_BYTES = env.int(
    "RM6_CASE_ATTACHMENTS_MAX_TOTAL_BYTES", default=50 * 1024 * 1024
)
RM6_CASE_ATTACHMENTS_MAX_FILES = env.int("RM6_CASE_ATTACHMENTS_MAX_FILES", default=20)
RM6_CASE_AUTO_CLOSE_DAYS = env.int("RM6_CASE_AUTO_CLOSE_DAYS", default=7)
RM6_ESCALATION_AFTER_HOURS = env.int("RM6_ESCALATION_AFTER_HOURS", default=24)
# The maximum number of messages one Segment source may send per clock minute;
# 0 turns the limit off. A request over it gets 429 and a Retry-After. Keep it
# far above one batch (analytics-python sends up to 100 messages per request):
# a request larger than the cap gets 413, which clients do not retry.
RM6_SEGMENT_MESSAGES_PER_MINUTE = env.int(
    "RM6_SEGMENT_MESSAGES_PER_MINUTE", default=60_000
)
# The maximum number of messages one Segment source may keep held (usage that
# matches no member yet); 0 turns the limit off. Write keys of browser and
# mobile sources are public, so without it anyone could fill the database with
# usage of made-up users, up to the per-minute cap above for 90 days. Past it,
# new unmatched messages are dropped and reported as held_limit_reached. A
# source whose users are members holds only the usage of people who are not
# members yet, which the 5-minute release drains as they appear; 100,000 is,
# for example, 1,000 such people with 100 messages each. A message is at most
# 32 KB, so the held messages of one source take at most about 3.3 GB. A
# negative value stops every process at start-up, since the web server and
# the workers do not run the system check lifecycle.E001.
RM6_SEGMENT_MAX_HELD_MESSAGES = env.int(
    "RM6_SEGMENT_MAX_HELD_MESSAGES", default=100_000
)
if RM6_SEGMENT_MAX_HELD_MESSAGES < 0:
    raise environ.ImproperlyConfigured(
        f"RM6_SEGMENT_MAX_HELD_MESSAGES is {RM6_SEGMENT_MAX_HELD_MESSAGES}, but "
        "it must be 0 or more. Set it to the number of held messages each "
        "Segment source may keep, such as 100000."
    )
# Days a held Segment message (usage of someone who matched no member) is kept
# after it arrived, whatever staff did with it; 0 keeps it for ever.
RM6_HELD_USAGE_RETENTION_DAYS = env.int("RM6_HELD_USAGE_RETENTION_DAYS", default=90)
# Hours after its last successful run at which a data source counts as stale
# in reporting: one number for all sources, or source=hours pairs such as
# "crm_sync=24,usage_ingestion=2,score_computation=24". A source left out of
# the pairs gets 24 hours. A dict of source to hours works here too.
RM6_DATA_FRESHNESS_SLA_HOURS = env.str("RM6_DATA_FRESHNESS_SLA_HOURS", default="24")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # Production logs one JSON object per line; quotes, newlines and
        # tracebacks in a message stay inside its string.
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
            },
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's default config gives "django" its own console handler
        # (active when DEBUG is on), so its records printed twice: once there
        # and once at the root. With no handlers and level NOTSET, they print
        # once through the root handler, at the root level and format. This
        # also resets "django.server", so runserver's request lines use that
        # format too.
        "django": {"handlers": [], "level": "NOTSET", "propagate": True},
    },
}
