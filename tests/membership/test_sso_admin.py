from allauth.socialaccount.models import SocialApp
from django.contrib import admin

from apps.membership.admin_sso import (
    AccountIdentityProviderForm,
    AccountIdentityProviderInline,
    get_identity_provider_urls,
)
from apps.membership.models import Account, AccountIdentityProvider
from tests import factories


def test_identity_provider_urls_oidc_callback(settings):
    settings.SITE_URL = "https://hub.example.com/"
    social_app = SocialApp(provider="openid_connect", provider_id="acme-oidc")

    assert get_identity_provider_urls(social_app) == [
        (
            "Callback URL",
            "https://hub.example.com/accounts/oidc/acme-oidc/login/callback/",
        )
    ]


def test_identity_provider_urls_saml_acs_and_metadata(settings):
    settings.SITE_URL = "https://hub.example.com"
    social_app = SocialApp(provider="saml", client_id="acme")

    assert get_identity_provider_urls(social_app) == [
        ("ACS URL", "https://hub.example.com/accounts/saml/acme/acs/"),
        ("SP metadata", "https://hub.example.com/accounts/saml/acme/metadata/"),
    ]


def test_identity_provider_urls_missing_slug_gives_none(settings):
    social_app = SocialApp(provider="openid_connect", provider_id="")

    assert get_identity_provider_urls(social_app) == []


def test_inline_offers_only_sso_apps(rf, db, staff_user):
    oidc = SocialApp.objects.create(provider="openid_connect", name="Acme OIDC")
    saml = SocialApp.objects.create(provider="saml", name="Acme SAML")
    SocialApp.objects.create(provider="github", name="GitHub")
    inline = AccountIdentityProviderInline(Account, admin.site)
    request = rf.get("/admin/")
    request.user = staff_user

    field = inline.formfield_for_foreignkey(
        AccountIdentityProvider._meta.get_field("social_app"), request
    )

    assert list(field.queryset) == [oidc, saml]


def test_inline_lists_urls_of_saved_link(settings, db):
    settings.SITE_URL = "https://hub.example.com"
    social_app = SocialApp.objects.create(
        provider="saml", name="Acme SAML", client_id="acme"
    )
    link = AccountIdentityProvider.objects.create(
        account=factories.AccountFactory(), social_app=social_app
    )
    inline = AccountIdentityProviderInline(Account, admin.site)

    assert inline.provider(link) == "saml"
    assert inline.identity_provider_urls(link) == (
        "ACS URL: https://hub.example.com/accounts/saml/acme/acs/<br>"
        "SP metadata: https://hub.example.com/accounts/saml/acme/metadata/"
    )


def test_identity_provider_form_requires_provider_id(db):
    social_app = SocialApp.objects.create(provider="saml", name="Acme SAML")

    form = AccountIdentityProviderForm(data={"social_app": social_app.pk})

    assert form.errors["social_app"] == [
        "The social application 'Acme SAML' has no provider ID. Set a unique one, "
        "such as acme-saml, under Social applications first."
    ]


def test_identity_provider_form_accepts_app_with_provider_id(db):
    social_app = SocialApp.objects.create(
        provider="saml", name="Acme SAML", provider_id="acme-saml"
    )

    form = AccountIdentityProviderForm(data={"social_app": social_app.pk})

    assert form.errors == {}
