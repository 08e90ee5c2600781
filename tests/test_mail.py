import logging
import sys

from celery.utils.log import LoggingProxy
from django.core import checks
from django.core.mail import EmailMessage, send_mail

from rm6.mail import check_email_backend, check_email_security
from tests.processes import read_setting

BACKEND = "rm6.mail.LoggingEmailBackend"


def test_logging_email_backend_logs_at_info(settings, caplog):
    settings.EMAIL_BACKEND = BACKEND
    caplog.set_level(logging.INFO)

    sent = send_mail("Welcome", "Hello there.", "hub@example.com", ["a@example.test"])

    records = [r for r in caplog.records if r.name == "rm6.mail"]
    assert sent == 1
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    message = records[0].getMessage()
    assert message.startswith("email logged, not sent:\n")
    assert "Subject: Welcome\n" in message
    assert "To: a@example.test\n" in message
    assert message.endswith("\n\nHello there.")


def test_logging_email_backend_keeps_non_ascii_readable(settings, caplog):
    settings.EMAIL_BACKEND = BACKEND
    caplog.set_level(logging.INFO)

    send_mail("Grüße", "Schöne Grüße.", "hub@example.com", ["a@example.test"])

    assert caplog.records[-1].getMessage().endswith("\n\nSchöne Grüße.")


def test_logging_email_backend_logs_each_message(settings, caplog):
    settings.EMAIL_BACKEND = BACKEND
    caplog.set_level(logging.INFO)
    messages = [
        EmailMessage("First", "One.", to=["a@example.test"]),
        EmailMessage("Second", "Two.", to=["b@example.test"]),
    ]

    sent = messages[0].get_connection().send_messages(messages)

    subjects = [
        line
        for record in caplog.records
        for line in record.getMessage().splitlines()
        if line.startswith("Subject: ")
    ]
    assert sent == 2
    assert subjects == ["Subject: First", "Subject: Second"]


def test_logging_email_backend_no_warning_in_worker(settings, caplog, monkeypatch):
    # A Celery worker replaces standard output with this proxy, which logs
    # what is written at worker_redirect_stdouts_level, WARNING by default.
    redirected = LoggingProxy(logging.getLogger("celery.redirected"), logging.WARNING)
    monkeypatch.setattr(sys, "stdout", redirected)
    settings.EMAIL_BACKEND = BACKEND
    caplog.set_level(logging.INFO)

    send_mail("Welcome", "Hello there.", "hub@example.com", ["a@example.test"])

    levels = [record.levelname for record in caplog.records]
    assert levels == ["INFO"]


def default_email_backend(settings_module: str, **environment: str) -> str:
    """Return EMAIL_BACKEND as a new process loads `settings_module`.

    DJANGO_EMAIL_BACKEND is left out of its environment, so the settings'
    default applies.
    """
    result = read_setting(
        "EMAIL_BACKEND",
        settings_module,
        unset=("DJANGO_EMAIL_BACKEND",),
        **environment,
    )
    result.check_returncode()
    return result.stdout.strip()


def test_development_settings_log_email():
    # The development settings as `make run` loads them.
    assert default_email_backend("rm6.settings.local") == BACKEND


def test_deploy_check_warns_without_delivery(settings):
    settings.EMAIL_BACKEND = "rm6.mail.LoggingEmailBackend"

    messages = check_email_backend()

    assert [message.id for message in messages] == ["rm6.W001"]
    assert "delivers no email" in messages[0].msg


def test_deploy_check_accepts_smtp(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

    assert check_email_backend() == []


def test_deploy_check_registered():
    messages = checks.run_checks(include_deployment_checks=True)

    assert "rm6.W001" in [message.id for message in messages]


def test_check_rejects_tls_with_ssl(settings):
    settings.EMAIL_USE_TLS = True
    settings.EMAIL_USE_SSL = True

    messages = checks.run_checks()

    assert "rm6.E001" in [message.id for message in messages]


def test_check_accepts_tls_alone(settings):
    settings.EMAIL_USE_TLS = True
    settings.EMAIL_USE_SSL = False

    assert check_email_security() == []


def test_production_settings_send_by_smtp():
    # Production must not write emails, with their reset links, to the log.
    backend = default_email_backend(
        "rm6.settings.production",
        DJANGO_SECRET_KEY="test-only-not-secret",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )

    assert backend == "django.core.mail.backends.smtp.EmailBackend"
