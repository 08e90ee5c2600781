"""Admin inline that links an account to its SSO providers.

Staff first create the provider under Social applications (allauth's admin),
with the hub's site selected, then pick it in the account's "SSO providers"
section. A linked provider signs its people in to that account and may vouch
only for addresses at the account's email domains.

OpenID Connect app:
    Provider "OpenID Connect"; Provider ID a slug such as "acme-oidc", which
    appears in the callback URL; Client id and Secret key from the identity
    provider; Settings such as
    {"server_url": "https://login.acme.com", "oauth_pkce_enabled": true}.
    The identity provider must allow the callback URL shown in the section.

SAML app:
    Provider "SAML"; Provider ID a slug such as "acme-saml"; Client id a slug
    such as "acme", which appears in the SAML URLs; Settings such as
    {"idp": {"entity_id": "...", "sso_url": "...", "x509cert": "..."},
     "attribute_mapping": {"uid": "...", "email": "..."},
     "verified_email": true,
     "advanced": {"want_assertion_signed": true}}.
    "verified_email" makes the hub trust the addresses the identity provider
    asserts, because SAML has no standard verified flag. The identity
    provider needs the ACS URL and the SP metadata URL shown in the section.
    The metadata URL is also the hub's SP entity ID unless
    {"sp": {"entity_id": ...}} sets another.

Every linked app needs its own Provider ID. allauth files each SSO account
under it and finds a returning person by (Provider ID, user ID), so two apps
without one would share a namespace in which either identity provider could
claim the other's user IDs.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from apps.membership.models import AccountIdentityProvider

SSO_PROVIDERS = ["openid_connect", "saml"]


class AccountIdentityProviderForm(forms.ModelForm):
    class Meta:
        model = AccountIdentityProvider
        fields = ["social_app"]

    def clean_social_app(self):
        social_app = self.cleaned_data["social_app"]
        if not social_app.provider_id:
            raise forms.ValidationError(
                f"The social application {social_app.name!r} has no provider ID. "
                "Set a unique one, such as acme-saml, under Social applications "
                "first.",
                code="missing_provider_id",
            )
        return social_app


class AccountIdentityProviderInline(admin.TabularInline):
    """The OpenID Connect and SAML apps that sign in one account's people."""

    model = AccountIdentityProvider
    form = AccountIdentityProviderForm
    fields = ["social_app", "provider", "identity_provider_urls"]
    readonly_fields = ["provider", "identity_provider_urls"]
    extra = 0
    verbose_name = "SSO provider"
    verbose_name_plural = "SSO providers"

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("social_app")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "social_app":
            from allauth.socialaccount.models import SocialApp

            kwargs["queryset"] = SocialApp.objects.filter(
                provider__in=SSO_PROVIDERS
            ).order_by("name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="provider")
    def provider(self, link: AccountIdentityProvider) -> str:
        if link.pk is None:
            return "-"
        return link.social_app.provider

    @admin.display(description="URLs for the identity provider")
    def identity_provider_urls(self, link: AccountIdentityProvider) -> str:
        if link.pk is None:
            return "-"
        urls = get_identity_provider_urls(link.social_app)
        if not urls:
            return "-"
        return format_html_join(
            mark_safe("<br>"), "{}: {}", ((label, url) for label, url in urls)
        )


def get_identity_provider_urls(social_app) -> list[tuple[str, str]]:
    """Return the hub URLs an identity provider must be configured with."""
    site_url = settings.SITE_URL.rstrip("/")
    try:
        if social_app.provider == "openid_connect":
            path = reverse(
                "openid_connect_callback",
                kwargs={"provider_id": social_app.provider_id},
            )
            return [("Callback URL", site_url + path)]
        if social_app.provider == "saml":
            acs = reverse("saml_acs", args=[social_app.client_id])
            metadata = reverse("saml_metadata", args=[social_app.client_id])
            return [
                ("ACS URL", site_url + acs),
                ("SP metadata", site_url + metadata),
            ]
    except NoReverseMatch:
        # An empty provider ID or client id makes no URL.
        return []
    return []
