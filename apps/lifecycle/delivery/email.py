"""Play emails and the unsubscribe link that withdraws their consent.

A play email goes only to members with a valid consent for the step's
purpose: the step's `consent_purpose`, else the config's `consent_purpose`,
else `marketing_email`. The member's `email_notifications` preference is
not read, because it governs community notifications, and consent governs
play emails. Every email carries a signed link that withdraws exactly that
consent, in its body and in the List-Unsubscribe header.

Delivery is at most once. The handler writes the step run's Touch row in
the caller's transaction and sends the message after that transaction
commits. A second call for the same step run finds the Touch and sends
nothing. A crash after the commit and before the send loses that one email.
An SMTP error is logged and not retried either, because an error such as a
timeout can come after the server accepted the message, and a duplicate
email costs more trust than a lost one.
"""

import functools
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.actions import ActionContext, ActionResult, ActionSkipped
from apps.lifecycle.delivery.content import (
    add_play_params,
    build_absolute_url,
    build_play_link,
    build_template_context,
    render_step_text,
    tag_site_links,
)
from apps.lifecycle.models import Play, Touch
from apps.membership.models import ConsentGrant, ConsentPurpose, Member
from apps.membership.selectors.consent import has_consent
from apps.membership.services.consent import revoke_consent

logger = logging.getLogger(__name__)

CHANNEL = "email"
DEFAULT_CONSENT_PURPOSE = "marketing_email"
UNSUBSCRIBE_SALT = "unsubscribe"


@dataclass(frozen=True)
class UnsubscribeRequest:
    """The member and consent purpose that one unsubscribe token names."""

    member_id: int
    purpose_key: str


def get_consent_purpose_key(step) -> str:
    """Return the key of the consent purpose an email step needs."""
    return (
        step.consent_purpose
        or step.config.get("consent_purpose")
        or DEFAULT_CONSENT_PURPOSE
    )


def make_unsubscribe_token(*, member_id: int, purpose_key: str) -> str:
    """Return a signed token that withdraws one member's consent for a purpose.

    The token carries no timestamp and never expires, so every email to the
    member for the purpose has the same link, and old links keep working.
    A leaked token lets its holder withdraw only that one consent.
    """
    signer = signing.Signer(salt=UNSUBSCRIBE_SALT)
    return signer.sign_object({"member": member_id, "purpose": purpose_key})


def read_unsubscribe_token(token: str) -> UnsubscribeRequest:
    """Return what an unsubscribe token names.

    Raise signing.BadSignature for a token that was altered or not made by
    make_unsubscribe_token.
    """
    data = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
    member_id = data.get("member") if isinstance(data, dict) else None
    purpose_key = data.get("purpose") if isinstance(data, dict) else None
    if not isinstance(member_id, int) or not isinstance(purpose_key, str):
        raise signing.BadSignature("The unsubscribe token has no member or purpose.")
    return UnsubscribeRequest(member_id=member_id, purpose_key=purpose_key)


def build_unsubscribe_url(*, member_id: int, purpose_key: str, play: Play) -> str:
    """Return the absolute unsubscribe link for a play email."""
    token = make_unsubscribe_token(member_id=member_id, purpose_key=purpose_key)
    path = reverse("delivery:unsubscribe", kwargs={"token": token})
    return add_play_params(build_absolute_url(path), play)


def access_unsubscribe(*, token: str) -> tuple[Member, ConsentPurpose]:
    """Return the member and purpose an unsubscribe token names.

    Raise signing.BadSignature for an altered token, and Member.DoesNotExist
    or ConsentPurpose.DoesNotExist when either was deleted since.
    """
    request = read_unsubscribe_token(token)
    member = Member.objects.get(pk=request.member_id)
    purpose = ConsentPurpose.objects.get(key=request.purpose_key)
    return member, purpose


def unsubscribe_member(
    *, member: Member, purpose: ConsentPurpose
) -> ConsentGrant | None:
    """Withdraw the member's consent from an email link.

    Return the revoked grant, or None when there was no current one.
    """
    return revoke_consent(
        member=member,
        purpose_key=purpose.key,
        source=ConsentGrant.Source.EMAIL_LINK,
    )


def build_play_email(
    ctx: ActionContext, *, member: Member, purpose: ConsentPurpose
) -> EmailMultiAlternatives:
    """Render a play step's email to the member, with its unsubscribe link.

    The config's `subject` and `body` are step templates. They can use
    `member_name`, `account_name`, `url` (the config's `url`), `links.<name>`
    (the config's `links` mapping) and `unsubscribe_url`. Every link to this
    site in the body carries the play's ID, including links pasted in full.
    """
    step, play = ctx.step, ctx.play
    unsubscribe_url = build_unsubscribe_url(
        member_id=member.pk, purpose_key=purpose.key, play=play
    )
    links = {
        str(name): build_play_link(str(url), play)
        for name, url in (step.config.get("links") or {}).items()
    }
    context = build_template_context(
        member=member,
        url=build_play_link(step.config.get("url", ""), play),
        links=links,
        unsubscribe_url=unsubscribe_url,
    )
    # A header value must be one line.
    subject = " ".join(render_step_text(step, "subject", context).split())
    body = tag_site_links(render_step_text(step, "body", context), play)

    footer_context = {
        "body": body,
        "purpose_name": purpose.name,
        "unsubscribe_url": unsubscribe_url,
    }
    text = render_to_string("lifecycle/delivery/email.txt", footer_context)
    html = render_to_string("lifecycle/delivery/email.html", footer_context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[member.email],
        headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def _send_after_commit(message: EmailMultiAlternatives, *, step_run_id: int) -> None:
    try:
        message.send()
    except Exception:
        # At most once: see the module docstring for why this is not retried.
        logger.exception("play email send failed: step run %s", step_run_id)
    else:
        logger.info("play email sent: step run %s", step_run_id)


@transaction.atomic
def send_play_email(ctx: ActionContext) -> ActionResult:
    """Email a play step to the enrolled member after the caller commits.

    Skip members without a valid consent for the step's purpose. A second
    call for the same step run sends nothing: it finds the Touch row that
    the first call wrote.
    """
    member = ctx.member
    if member is None:
        raise ActionSkipped("emails need a member, not an account")
    purpose_key = get_consent_purpose_key(ctx.step)
    if not has_consent(member=member, purpose_key=purpose_key):
        raise ActionSkipped(f"member has no valid consent for {purpose_key}")
    if not member.email:
        raise ActionSkipped("member has no email address")

    purpose = ConsentPurpose.objects.get(key=purpose_key)
    message = build_play_email(ctx, member=member, purpose=purpose)

    # The play runner writes the Touch of each channel step with get_or_create
    # after the handler returns, so this row is the only one.
    touch, created = Touch.objects.get_or_create(
        step_run=ctx.step_run,
        defaults={
            "member": member,
            "channel": CHANNEL,
            "play": ctx.play,
            "touched_at": timezone.now(),
        },
    )
    if not created:
        return ActionResult(
            outcome="email already sent", details={"touch_id": touch.pk}
        )

    transaction.on_commit(
        functools.partial(_send_after_commit, message, step_run_id=ctx.step_run.pk)
    )
    return ActionResult(
        outcome=f"email queued to send after commit ({purpose_key})",
        details={"touch_id": touch.pk, "consent_purpose": purpose_key},
    )
