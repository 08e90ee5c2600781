"""An email backend for development that logs each message in place of sending it.

Django's console backend writes to standard output. A Celery worker
redirects standard output to its log at the level of the
`worker_redirect_stdouts_level` setting, WARNING by default in Celery 5, so
every email that a task sent came out as a warning. This backend logs each email at
INFO instead, in the format and level of the rest of the development output,
in the worker and in the web server alike.

NOTE: each record contains the recipients' addresses and the message body.
Configure a real backend (DJANGO_EMAIL_BACKEND) wherever people get mail.
"""

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core import checks
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)


class LoggingEmailBackend(BaseEmailBackend):
    """Log each email in full at INFO on the `rm6.mail` logger, and send nothing."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            logger.info("email logged, not sent:\n%s", format_message(message))
        return len(email_messages)


def format_message(message: EmailMessage) -> str:
    """Return the message as the headers and body a mail server would get."""
    mime = message.message()
    charset = mime.get_charset()
    encoding = charset.get_output_charset() if charset else "utf-8"
    return mime.as_bytes().decode(encoding)


# Backends that deliver no mail to anyone.
UNDELIVERED_BACKENDS = frozenset(
    {
        "rm6.mail.LoggingEmailBackend",
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
    }
)


def check_email_backend(**kwargs) -> list[checks.CheckMessage]:
    """Warn, in `manage.py check --deploy`, when no email reaches anyone.

    Sign-up confirmations, play emails and digests would then be lost, and
    with mandatory verification no sign-up could be completed.
    """
    if settings.EMAIL_BACKEND not in UNDELIVERED_BACKENDS:
        return []
    return [
        checks.Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}, which delivers no email.",
            hint="Set DJANGO_EMAIL_BACKEND=django.core.mail.backends.smtp."
            "EmailBackend and EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, "
            "EMAIL_HOST_PASSWORD and EMAIL_USE_TLS for your mail server.",
            id="rm6.W001",
        )
    ]


def check_email_security(**kwargs) -> list[checks.CheckMessage]:
    """Report EMAIL_USE_TLS and EMAIL_USE_SSL set together.

    Django's SMTP backend raises on every send when both are true, so each
    email would fail with a server error instead of at start-up.
    """
    if not (settings.EMAIL_USE_TLS and settings.EMAIL_USE_SSL):
        return []
    return [
        checks.Error(
            "EMAIL_USE_TLS and EMAIL_USE_SSL are both true, but a connection "
            "uses one or the other.",
            hint="Set EMAIL_USE_TLS=true for STARTTLS (usually port 587), or "
            "EMAIL_USE_SSL=true for implicit TLS (usually port 465), not both.",
            id="rm6.E001",
        )
    ]
