import logging
import re
import smtplib

import pytest
from django.core import mail, signing
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.urls import reverse

from apps.lifecycle.actions import ActionSkipped
from apps.lifecycle.delivery.email import (
    build_unsubscribe_url,
    make_unsubscribe_token,
    read_unsubscribe_token,
    send_play_email,
)
from apps.lifecycle.models import Touch
from apps.membership.models import ConsentGrant, Member
from apps.membership.selectors.consent import has_consent
from rm6.errors import DomainError
from tests.delivery.conftest import MARKETING

CONFIG = {
    "subject": "Welcome to the hub, {{ member_name }}",
    "body": (
        "Hello {{ member_name }},\n\n"
        "Your team at {{ account_name }} is in. Start here: {{ url }}\n"
        "The setup guide: {{ links.guide }}\n"
        "Or paste https://hub.example.com/portal/ into your browser."
    ),
    "url": "/community/",
    "links": {"guide": "/portal/guide/?step=1"},
}
PLAY_QUERY = "play_id=welcome-2025&campaign_id=q3-onboarding"


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = "https://hub.example.com"


def send(ctx, capture):
    with capture(execute=True):
        return send_play_email(ctx)


def test_email_sent_after_commit(
    make_context, consenting_member, django_capture_on_commit_callbacks
):
    ctx = make_context("email", CONFIG)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = send_play_email(ctx)

    assert result.outcome == "email queued to send after commit (marketing_email)"
    assert len(mail.outbox) == 0
    assert len(callbacks) == 1
    callbacks[0]()
    assert len(mail.outbox) == 1


def test_email_content_and_links(
    make_context, consenting_member, django_capture_on_commit_callbacks
):
    ctx = make_context("email", CONFIG)

    send(ctx, django_capture_on_commit_callbacks)

    message = mail.outbox[0]
    assert message.to == [consenting_member.email]
    assert message.subject == "Welcome to the hub, Robin"
    assert "Your team at Acme Corp is in." in message.body
    assert f"https://hub.example.com/community/?{PLAY_QUERY}" in message.body
    assert f"https://hub.example.com/portal/guide/?step=1&{PLAY_QUERY}" in message.body
    assert f"https://hub.example.com/portal/?{PLAY_QUERY} into" in message.body


def test_email_has_unsubscribe_header_and_link(
    make_context, consenting_member, django_capture_on_commit_callbacks, play
):
    ctx = make_context("email", CONFIG)

    send(ctx, django_capture_on_commit_callbacks)

    message = mail.outbox[0]
    unsubscribe_url = build_unsubscribe_url(
        member_id=consenting_member.pk, purpose_key=MARKETING, play=play
    )
    assert message.extra_headers["List-Unsubscribe"] == f"<{unsubscribe_url}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click"
    )
    assert f"Unsubscribe: {unsubscribe_url}" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert f'<a href="{unsubscribe_url.replace("&", "&amp;")}"' in html


def test_email_html_escapes_body(
    make_context, consenting_member, django_capture_on_commit_callbacks
):
    ctx = make_context("email", {"subject": "Hi", "body": "1 < 2 & <b>bold</b>"})

    send(ctx, django_capture_on_commit_callbacks)

    html, _ = mail.outbox[0].alternatives[0]
    assert "1 &lt; 2 &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "1 < 2 & <b>bold</b>" in mail.outbox[0].body


def test_email_twice_sends_once(
    make_context, consenting_member, django_capture_on_commit_callbacks
):
    ctx = make_context("email", CONFIG)

    send(ctx, django_capture_on_commit_callbacks)
    second = send(ctx, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    assert Touch.objects.filter(step_run=ctx.step_run).count() == 1
    assert second.outcome == "email already sent"


def test_email_writes_touch(make_context, consenting_member, play):
    ctx = make_context("email", CONFIG)

    send_play_email(ctx)

    touch = Touch.objects.get()
    assert touch.member == consenting_member
    assert touch.channel == "email"
    assert touch.play == play
    assert touch.step_run == ctx.step_run


def test_email_skipped_without_consent(
    make_context, purposes, django_capture_on_commit_callbacks
):
    ctx = make_context("email", CONFIG)

    with pytest.raises(ActionSkipped) as skipped:
        send(ctx, django_capture_on_commit_callbacks)

    assert str(skipped.value) == "member has no valid consent for marketing_email"
    assert len(mail.outbox) == 0
    assert Touch.objects.count() == 0


def test_email_uses_step_consent_purpose(
    make_context, consenting_member, django_capture_on_commit_callbacks
):
    ctx = make_context("email", CONFIG, consent_purpose="product_research")

    with pytest.raises(ActionSkipped) as skipped:
        send(ctx, django_capture_on_commit_callbacks)

    assert str(skipped.value) == "member has no valid consent for product_research"
    assert len(mail.outbox) == 0


def test_email_ignores_community_preference(
    make_context, consenting_member, django_capture_on_commit_callbacks
):
    consenting_member.email_notifications = Member.EmailNotifications.OFF
    consenting_member.save(update_fields=["email_notifications"])
    ctx = make_context("email", CONFIG)

    send(ctx, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1


def test_email_subject_rendering_empty_sends_nothing(
    make_context, consenting_member, django_capture_on_commit_callbacks
):
    config = {**CONFIG, "subject": "{% if links.missing %}Hi{% endif %}"}
    ctx = make_context("email", config)

    with pytest.raises(DomainError) as error:
        send(ctx, django_capture_on_commit_callbacks)

    assert "'subject' text of the email step" in error.value.message
    assert "rendered empty, so nothing was sent" in error.value.message
    assert len(mail.outbox) == 0
    assert Touch.objects.count() == 0


def test_email_send_failure_logged(
    make_context,
    consenting_member,
    django_capture_on_commit_callbacks,
    monkeypatch,
    caplog,
):
    def fail(self, fail_silently=False):
        raise smtplib.SMTPServerDisconnected("connection closed")

    monkeypatch.setattr(EmailMultiAlternatives, "send", fail)
    ctx = make_context("email", CONFIG)

    with caplog.at_level(logging.ERROR, logger="apps.lifecycle.delivery.email"):
        send(ctx, django_capture_on_commit_callbacks)
        second = send(ctx, django_capture_on_commit_callbacks)

    assert caplog.messages == [f"play email send failed: step run {ctx.step_run.pk}"]
    assert second.outcome == "email already sent"


def test_unsubscribe_token_round_trip():
    token = make_unsubscribe_token(member_id=7, purpose_key=MARKETING)

    request = read_unsubscribe_token(token)

    assert request.member_id == 7
    assert request.purpose_key == MARKETING


def test_unsubscribe_token_stable():
    first = make_unsubscribe_token(member_id=7, purpose_key=MARKETING)
    second = make_unsubscribe_token(member_id=7, purpose_key=MARKETING)

    assert first == second


def test_unsubscribe_token_other_salt_rejected():
    token = signing.Signer(salt="other").sign_object(
        {"member": 7, "purpose": MARKETING}
    )

    with pytest.raises(signing.BadSignature):
        read_unsubscribe_token(token)


def unsubscribe_path(member, purpose_key: str = MARKETING) -> str:
    token = make_unsubscribe_token(member_id=member.pk, purpose_key=purpose_key)
    return reverse("delivery:unsubscribe", kwargs={"token": token})


def test_unsubscribe_get_asks_to_confirm(client, consenting_member):
    response = client.get(unsubscribe_path(consenting_member))

    assert response.status_code == 200
    assert (
        b"Unsubscribe from <strong>Marketing email</strong>? You will get no more "
        b"of these emails." in response.content
    )
    assert b'<button type="submit">Unsubscribe</button>' in response.content
    assert has_consent(member=consenting_member, purpose_key=MARKETING)


def test_unsubscribe_post_revokes_consent(client, consenting_member):
    response = client.post(unsubscribe_path(consenting_member))

    assert response.status_code == 200
    assert b"You are unsubscribed from Marketing email." in response.content
    privacy_link = f'<a href="{reverse("membership:privacy")}">privacy page</a>'
    assert privacy_link.encode() in response.content
    assert not has_consent(member=consenting_member, purpose_key=MARKETING)
    grant = ConsentGrant.objects.get(member=consenting_member)
    assert grant.revoked_source == ConsentGrant.Source.EMAIL_LINK


def test_unsubscribe_link_from_email_works(
    make_context, consenting_member, django_capture_on_commit_callbacks
):
    ctx = make_context("email", CONFIG)
    send(ctx, django_capture_on_commit_callbacks)
    header = mail.outbox[0].extra_headers["List-Unsubscribe"]
    url = re.fullmatch(r"<https://hub\.example\.com(/.+)>", header).group(1)

    # RFC 8058: the mail provider POSTs this body, with no cookie or CSRF token.
    response = Client(enforce_csrf_checks=True).post(
        url, {"List-Unsubscribe": "One-Click"}
    )

    assert response.status_code == 200
    assert not has_consent(member=consenting_member, purpose_key=MARKETING)


def test_unsubscribe_twice_changes_nothing(client, consenting_member):
    path = unsubscribe_path(consenting_member)
    client.post(path)

    response = client.post(path)

    assert response.status_code == 200
    assert b"You were already unsubscribed from Marketing email" in response.content
    assert ConsentGrant.objects.filter(member=consenting_member).count() == 1


def test_unsubscribe_tampered_token_rejected(client, consenting_member):
    token = make_unsubscribe_token(
        member_id=consenting_member.pk, purpose_key=MARKETING
    )
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    path = reverse("delivery:unsubscribe", kwargs={"token": tampered})

    get_response = client.get(path)
    post_response = client.post(path)

    assert get_response.status_code == 400
    assert b"This unsubscribe link is invalid" in get_response.content
    assert post_response.status_code == 400
    assert has_consent(member=consenting_member, purpose_key=MARKETING)


def test_unsubscribe_other_member_id_rejected(client, consenting_member):
    token = make_unsubscribe_token(
        member_id=consenting_member.pk, purpose_key=MARKETING
    )
    signature = token.rsplit(":", 1)[1]
    other = signing.Signer(salt="unsubscribe").sign_object(
        {"member": consenting_member.pk + 1, "purpose": MARKETING}
    )
    forged = other.rsplit(":", 1)[0] + ":" + signature
    path = reverse("delivery:unsubscribe", kwargs={"token": forged})

    response = client.post(path)

    assert response.status_code == 400


def test_unsubscribe_unknown_member_404(client, purposes):
    token = make_unsubscribe_token(member_id=999999, purpose_key=MARKETING)

    response = client.get(reverse("delivery:unsubscribe", kwargs={"token": token}))

    assert response.status_code == 404
    assert b"no longer exists" in response.content
