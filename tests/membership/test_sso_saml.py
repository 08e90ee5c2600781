"""Sign-in through SAML with responses signed by python3-saml.

The tests play the identity provider. They start a sign-in at allauth's SAML
login view and read the request ID from the AuthnRequest it redirects to.
Then they build a Response with an Assertion, sign the assertion and then the
response with a self-signed certificate, and post it to allauth's ACS view.
"""

import base64
import datetime
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.core import mail
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from apps.membership.models import Member
from apps.membership.services.access import deactivate_member
from tests import factories

User = get_user_model()

# Django's test client needs a host name with a dot for these views, and the
# SAML response names it in its Destination and Recipient.
HOST = "hub.example.com"
IDP_ENTITY_ID = "http://127.0.0.1:9/saml/idp"
IDP_SSO_URL = "http://127.0.0.1:9/saml/sso"
EMAIL_ATTRIBUTE = "urn:oid:0.9.2342.19200300.100.1.3"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"


@pytest.fixture(scope="module")
def idp_credentials() -> tuple[str, str]:
    """Return a private key and a self-signed certificate, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test SAML IdP")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, certificate_pem


@pytest.fixture
def add_saml_app(add_social_app, idp_credentials):
    """Return a function that creates a SAML app trusting the test IdP."""
    _, certificate_pem = idp_credentials

    def add(*, slug: str, account=None, verified_email: bool = True):
        settings = {
            "idp": {
                "entity_id": IDP_ENTITY_ID,
                "sso_url": IDP_SSO_URL,
                "x509cert": certificate_pem,
            },
            "attribute_mapping": {"email": EMAIL_ATTRIBUTE},
            "advanced": {"want_assertion_signed": True, "want_message_signed": True},
        }
        if verified_email:
            settings["verified_email"] = True
        return add_social_app(
            account=account,
            provider="saml",
            provider_id=f"{slug}-saml",
            name=f"{slug} SAML",
            client_id=slug,
            settings=settings,
        )

    return add


def start_sign_in(client, *, slug: str) -> str:
    """Start an SP-initiated sign-in and return the AuthnRequest's ID."""
    response = client.post(f"/accounts/saml/{slug}/login/", HTTP_HOST=HOST)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == IDP_SSO_URL
    encoded_request = parse_qs(location.query)["SAMLRequest"][0]
    authn_request = etree.fromstring(
        OneLogin_Saml2_Utils.decode_base64_and_inflate(encoded_request)
    )
    return authn_request.get("ID")


def build_signed_response(
    idp_credentials,
    *,
    slug: str,
    email: str,
    name_id: str,
    in_response_to: str | None,
) -> str:
    """Return a signed SAML Response, as XML, for one sign-in."""
    key_pem, certificate_pem = idp_credentials
    base_url = f"http://{HOST}/accounts/saml/{slug}"
    acs_url = f"{base_url}/acs/"
    now = datetime.datetime.now(datetime.UTC)

    def instant(delta_minutes: int = 0) -> str:
        moment = now + datetime.timedelta(minutes=delta_minutes)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    reply_to = f' InResponseTo="{in_response_to}"' if in_response_to else ""
    assertion = f"""<saml:Assertion
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    ID="_a{uuid.uuid4().hex}" Version="2.0" IssueInstant="{instant()}">
  <saml:Issuer>{IDP_ENTITY_ID}</saml:Issuer>
  <saml:Subject>
    <saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
      >{name_id}</saml:NameID>
    <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
      <saml:SubjectConfirmationData NotOnOrAfter="{instant(5)}"
        Recipient="{acs_url}"{reply_to}/>
    </saml:SubjectConfirmation>
  </saml:Subject>
  <saml:Conditions NotBefore="{instant(-1)}" NotOnOrAfter="{instant(5)}">
    <saml:AudienceRestriction>
      <saml:Audience>{base_url}/metadata/</saml:Audience>
    </saml:AudienceRestriction>
  </saml:Conditions>
  <saml:AuthnStatement AuthnInstant="{instant()}" SessionIndex="_s{uuid.uuid4().hex}">
    <saml:AuthnContext>
      <saml:AuthnContextClassRef
        >urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>
    </saml:AuthnContext>
  </saml:AuthnStatement>
  <saml:AttributeStatement>
    <saml:Attribute Name="{EMAIL_ATTRIBUTE}"
      NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
      <saml:AttributeValue xsi:type="xs:string">{email}</saml:AttributeValue>
    </saml:Attribute>
  </saml:AttributeStatement>
</saml:Assertion>"""
    signed_assertion = OneLogin_Saml2_Utils.add_sign(
        assertion, key_pem, certificate_pem
    ).decode()

    response = f"""<samlp:Response
    xmlns:samlp="{SAMLP_NS}"
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
    ID="_r{uuid.uuid4().hex}" Version="2.0" IssueInstant="{instant()}"
    Destination="{acs_url}"{reply_to}>
  <saml:Issuer>{IDP_ENTITY_ID}</saml:Issuer>
  <samlp:Status>
    <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>
  </samlp:Status>
  {signed_assertion}
</samlp:Response>"""
    return OneLogin_Saml2_Utils.add_sign(response, key_pem, certificate_pem).decode()


def post_response(client, *, slug: str, response_xml: str):
    """Post a SAML response to allauth's ACS view and follow it to the end."""
    encoded = base64.b64encode(response_xml.encode()).decode()
    return client.post(
        f"/accounts/saml/{slug}/acs/",
        {"SAMLResponse": encoded},
        HTTP_HOST=HOST,
        follow=True,
    )


def sign_in_through_saml(client, idp_credentials, *, slug: str, email: str, name_id):
    request_id = start_sign_in(client, slug=slug)
    response_xml = build_signed_response(
        idp_credentials,
        slug=slug,
        email=email,
        name_id=name_id,
        in_response_to=request_id,
    )
    return post_response(client, slug=slug, response_xml=response_xml)


def test_saml_signed_response_creates_member(client, idp_credentials, add_saml_app):
    account = factories.AccountFactory(email_domains=["acme.test"])
    add_saml_app(slug="acme", account=account)

    response = sign_in_through_saml(
        client, idp_credentials, slug="acme", email="carol@acme.test", name_id="c-1"
    )

    user = User.objects.get(email="carol@acme.test")
    assert response.redirect_chain[-1][0] == "/"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert user.member.account == account
    assert SocialAccount.objects.get(user=user).provider == "acme-saml"
    assert SocialAccount.objects.get(user=user).uid == "c-1"
    assert user.member.first_signed_in_at is not None


def test_saml_tampered_response_is_rejected(client, idp_credentials, add_saml_app):
    account = factories.AccountFactory(email_domains=["acme.test"])
    add_saml_app(slug="acme", account=account)
    request_id = start_sign_in(client, slug="acme")
    signed = build_signed_response(
        idp_credentials,
        slug="acme",
        email="carol@acme.test",
        name_id="c-1",
        in_response_to=request_id,
    )
    tampered = signed.replace("carol@acme.test", "ceo@acme.test")
    assert tampered != signed

    response = post_response(client, slug="acme", response_xml=tampered)

    assert response.status_code == 401
    assert "socialaccount/authentication_error.html" in [
        template.name for template in response.templates
    ]
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(email__endswith="@acme.test").exists()


def test_saml_unsolicited_response_is_rejected(client, idp_credentials, add_saml_app):
    account = factories.AccountFactory(email_domains=["acme.test"])
    add_saml_app(slug="acme", account=account)
    unsolicited = build_signed_response(
        idp_credentials,
        slug="acme",
        email="carol@acme.test",
        name_id="c-1",
        in_response_to=None,
    )

    response = post_response(client, slug="acme", response_xml=unsolicited)

    assert "socialaccount/authentication_error.html" in [
        template.name for template in response.templates
    ]
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(email="carol@acme.test").exists()


def test_saml_email_case_variant_links_member(client, idp_credentials, add_saml_app):
    account = factories.AccountFactory(email_domains=["acme.test"])
    member = factories.MemberFactory(
        account=account, user__username="alice", user__email="alice@acme.test"
    )
    add_saml_app(slug="acme", account=account)

    sign_in_through_saml(
        client, idp_credentials, slug="acme", email="ALICE@Acme.Test", name_id="a-1"
    )

    assert client.session["_auth_user_id"] == str(member.user_id)
    assert User.objects.filter(email__iexact="alice@acme.test").count() == 1
    assert SocialAccount.objects.get(provider="acme-saml").user_id == member.user_id


def test_saml_stored_email_case_links_member(client, idp_credentials, add_saml_app):
    account = factories.AccountFactory(email_domains=["acme.test"])
    member = factories.MemberFactory(
        account=account, user__username="alice", user__email="Alice@Acme.test"
    )
    add_saml_app(slug="acme", account=account)

    sign_in_through_saml(
        client, idp_credentials, slug="acme", email="alice@acme.test", name_id="a-1"
    )

    assert client.session["_auth_user_id"] == str(member.user_id)
    assert User.objects.filter(email__iexact="alice@acme.test").count() == 1


def test_saml_unverified_email_does_not_take_over_member(
    client, idp_credentials, add_saml_app
):
    account = factories.AccountFactory(email_domains=["acme.test"])
    member = factories.MemberFactory(
        account=account, user__username="alice", user__email="alice@acme.test"
    )
    add_saml_app(slug="acme", account=account, verified_email=False)

    response = sign_in_through_saml(
        client, idp_credentials, slug="acme", email="alice@acme.test", name_id="m-1"
    )

    assert response.redirect_chain[-1][0] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
    assert [str(message) for message in response.context["messages"]] == [
        "A member with the email address alice@acme.test already exists, and "
        "acme SAML did not confirm that this address is yours, so you were not "
        "signed in. Sign in with your email address and password, or ask your IT "
        "team to mark the address as verified in acme SAML."
    ]
    assert User.objects.filter(email__iexact="alice@acme.test").count() == 1
    assert not SocialAccount.objects.exists()
    member.user.refresh_from_db()
    assert member.user.has_usable_password()


def test_saml_deactivated_member_rejected(client, idp_credentials, add_saml_app):
    account = factories.AccountFactory(email_domains=["acme.test"])
    member = factories.MemberFactory(
        account=account, user__username="erin", user__email="erin@acme.test"
    )
    deactivate_member(member=member, reason="Left the company.")
    add_saml_app(slug="acme", account=account)

    response = sign_in_through_saml(
        client, idp_credentials, slug="acme", email="erin@acme.test", name_id="e-1"
    )

    assert response.redirect_chain[-1][0] == "/accounts/inactive/"
    assert "_auth_user_id" not in client.session
    assert not SocialAccount.objects.exists()


def test_saml_deactivated_active_user_rejected(client, idp_credentials, add_saml_app):
    account = factories.AccountFactory(email_domains=["acme.test"])
    member = factories.MemberFactory(
        account=account, user__username="erin", user__email="erin@acme.test"
    )
    add_saml_app(slug="acme", account=account)
    sign_in_through_saml(
        client, idp_credentials, slug="acme", email="erin@acme.test", name_id="e-1"
    )
    client.logout()
    # An is_active flag set back by hand leaves the member deactivated.
    Member.objects.filter(pk=member.pk).update(deactivated_at="2026-01-01T00:00Z")

    response = sign_in_through_saml(
        client, idp_credentials, slug="acme", email="erin@acme.test", name_id="e-1"
    )

    assert response.redirect_chain[-1][0] == "/accounts/inactive/"
    assert "_auth_user_id" not in client.session


def test_saml_unverified_email_joins_after_confirmation(
    client, idp_credentials, add_saml_app, settings
):
    # allauth's rate limits live in the shared Redis cache; a rerun within
    # minutes would find this address's confirmation email limit used up.
    settings.ACCOUNT_RATE_LIMITS = False
    account = factories.AccountFactory(email_domains=["acme.test"])
    add_saml_app(slug="shared", verified_email=False)

    sign_in_through_saml(
        client, idp_credentials, slug="shared", email="sam@acme.test", name_id="s-1"
    )

    user = User.objects.get(email="sam@acme.test")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert not Member.objects.filter(user=user).exists()
    confirm_path = re.search(
        r"http://hub\.example\.com(/accounts/confirm-email/\S+/)", mail.outbox[0].body
    ).group(1)
    client.post(confirm_path, HTTP_HOST=HOST)
    assert Member.objects.get(user=user).account == account


def test_saml_verified_email_joins_domain_account(
    client, idp_credentials, add_saml_app
):
    account = factories.AccountFactory(email_domains=["acme.test"])
    add_saml_app(slug="shared")

    sign_in_through_saml(
        client, idp_credentials, slug="shared", email="sam@acme.test", name_id="s-1"
    )

    assert Member.objects.get(user__email="sam@acme.test").account == account


def test_saml_unmatched_domain_queued_for_review(client, idp_credentials, add_saml_app):
    factories.AccountFactory(email_domains=["acme.test"])
    add_saml_app(slug="shared")

    sign_in_through_saml(
        client, idp_credentials, slug="shared", email="sam@elsewhere.test", name_id="s"
    )

    assert Member.objects.get(user__email="sam@elsewhere.test").account is None


def test_saml_sso_required_needs_own_provider(client, idp_credentials, add_saml_app):
    acme = factories.AccountFactory(email_domains=["acme.test"], is_sso_required=True)
    member = factories.MemberFactory(
        account=acme, user__username="alice", user__email="alice@acme.test"
    )
    add_saml_app(slug="acme", account=acme)
    add_saml_app(slug="shared")

    refused = sign_in_through_saml(
        client, idp_credentials, slug="shared", email="alice@acme.test", name_id="x"
    )
    accepted = sign_in_through_saml(
        client, idp_credentials, slug="acme", email="alice@acme.test", name_id="a-1"
    )

    assert refused.redirect_chain[-1][0] == "/accounts/login/"
    assert [str(message) for message in refused.context["messages"]] == [
        "Your company requires sign-in through its own SSO provider, and shared "
        "SAML is not one of them. Sign in with your company's SSO instead."
    ]
    assert accepted.redirect_chain[-1][0] == "/"
    assert client.session["_auth_user_id"] == str(member.user_id)
    assert SocialAccount.objects.get().provider == "acme-saml"


def test_saml_sso_required_domain_sign_up_rejected(
    client, idp_credentials, add_saml_app
):
    factories.AccountFactory(email_domains=["acme.test"], is_sso_required=True)
    add_saml_app(slug="shared")

    response = sign_in_through_saml(
        client, idp_credentials, slug="shared", email="new@acme.test", name_id="n-1"
    )

    assert response.redirect_chain[-1][0] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(email="new@acme.test").exists()
