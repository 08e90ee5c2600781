"""The site's name, which allauth puts in the emails it sends."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sites.models import Site
from django.core import mail
from django.core.management import call_command

from apps.membership.defaults import name_default_site

CONFIRMATION_SUBJECT = "[RM6 Loyalty Hub] Please Confirm Your Email Address"


def rename_site(*, domain: str, name: str) -> None:
    Site.objects.filter(pk=settings.SITE_ID).update(domain=domain, name=name)
    Site.objects.clear_cache()


def test_site_name_after_migrate(db):
    rename_site(domain="example.com", name="example.com")

    call_command("migrate", verbosity=0)

    assert Site.objects.get_current().name == "RM6 Loyalty Hub"


def test_site_name_replaces_example_com(db):
    rename_site(domain="example.com", name="example.com")

    name_default_site()

    site = Site.objects.get_current()
    assert site.name == "RM6 Loyalty Hub"
    assert site.domain == urlsplit(settings.SITE_URL).netloc


def test_site_name_keeps_staff_choice(db):
    rename_site(domain="hub.acme.test", name="Acme Hub")

    name_default_site()

    assert Site.objects.get_current().name == "Acme Hub"


def test_site_name_in_confirmation_email(client, db):
    name_default_site()

    client.post(
        "/accounts/signup/",
        {
            "email": "hank@globex.test",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )

    assert (
        mail.outbox[0].subject == "[RM6 Loyalty Hub] Please Confirm Your Email Address"
    )
    assert "example.com" not in mail.outbox[0].body
