"""Certificates: issue on a pass, revoke, remind before expiry, record expiry, PDF.

A certificate is valid from `issued_at` until `expires_at` (issued plus the
certification's `validity_days`), unless revoked. Its public verification
page shows only the holder's name, the certification and the dates.
"""

import io
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfgen import canvas

from apps.community.services.subscriptions import send_member_email_on_commit
from apps.lifecycle.delivery.notifications import notify_member
from apps.lifecycle.services import record_activity
from apps.membership.models import AuditEntry, Member
from apps.portal.models import Certification, MemberCertificate, QuizAttempt
from apps.portal.selectors.courses import (
    DUE_EXPIRIES_SQL,
    DUE_REMINDERS_SQL,
    build_verification_url,
    has_newer_certificate,
)
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


def get_holder_name(member: Member) -> str:
    """Return the name printed on a member's certificate.

    The full name from the sign-in account comes first, then the display
    name, then the member's public name.
    """
    return (member.user.get_full_name() or member.display_name or member.name)[:200]


@transaction.atomic
def issue_certificate(
    *,
    attempt: QuizAttempt,
    certification: Certification,
    now: datetime | None = None,
) -> MemberCertificate:
    """Issue the certification for a passing attempt; repeating returns the first.

    The certificate expires `validity_days` after it is issued.
    """
    if not attempt.passed:
        raise DomainError(
            f"Attempt {attempt.number} did not pass, so it earns no certificate.",
            code="not_passed",
        )
    member = attempt.enrolment.member
    now = now or timezone.now()

    certificate, created = MemberCertificate.objects.get_or_create(
        attempt=attempt,
        certification=certification,
        defaults={
            "member": member,
            "holder_name": get_holder_name(member),
            "issued_at": now,
            "expires_at": now + timedelta(days=certification.validity_days),
        },
    )
    if not created:
        return certificate

    record_activity(
        member=member,
        kind="portal.certificate_issued",
        subject=certificate,
        occurred_at=now,
        properties={
            "certification": certification.slug,
            "expires_at": certificate.expires_at.isoformat(),
        },
    )
    notify_member(
        member=member,
        kind="portal.certificate_issued",
        title=f"You earned the certificate {certification.title}",
        url=reverse("portal:certificate_list"),
        subject=certificate,
    )
    logger.info("certificate issued: certificate %s", certificate.pk)
    return certificate


@transaction.atomic
def revoke_certificate(
    *, certificate: MemberCertificate, revoked_by, reason: str = ""
) -> bool:
    """Revoke a certificate and write an audit entry; return whether it changed.

    Revoking a revoked certificate changes nothing and writes nothing.
    """
    if not revoked_by.is_staff:
        raise DomainError("Only staff revoke certificates.", code="forbidden")
    now = timezone.now()
    updated = MemberCertificate.objects.filter(
        pk=certificate.pk, revoked_at__isnull=True
    ).update(revoked_at=now, revoked_by=revoked_by)
    if not updated:
        return False
    certificate.revoked_at = now
    certificate.revoked_by = revoked_by

    member = Member.objects.get(pk=certificate.member_id)
    AuditEntry.objects.create(
        actor=revoked_by,
        action="portal.certificate_revoked",
        member=member,
        account_id=member.account_id,
        details={
            "certificate_id": certificate.pk,
            "certification_id": certificate.certification_id,
            "reason": reason,
        },
    )
    record_activity(
        member=member,
        kind="portal.certificate_revoked",
        subject=certificate,
        occurred_at=now,
        properties={"certification_id": certificate.certification_id},
    )
    logger.info("certificate revoked: certificate %s", certificate.pk)
    return True


def _notify_reminder(certificate: MemberCertificate) -> None:
    member = certificate.member
    certification = certificate.certification
    local_expiry = timezone.localtime(
        certificate.expires_at, timezone=ZoneInfo(member.time_zone)
    )
    course_path = reverse("portal:course", kwargs={"slug": certification.course.slug})
    expiry_day = _format_day(local_expiry)
    title = (
        f"Your certificate {certification.title} expires on {expiry_day}: "
        "retake the quiz to recertify"
    )
    notify_member(
        member=member,
        kind="portal.certificate_reminder",
        title=title,
        url=course_path,
        subject=certificate,
    )
    if member.email_notifications != Member.EmailNotifications.OFF:
        send_member_email_on_commit(
            member=member,
            subject=f"Recertify before {expiry_day}: {certification.title}",
            body=(
                f"Your certificate {certification.title} expires on "
                f"{expiry_day} at {local_expiry:%H:%M} ({member.time_zone}).\n"
                "Retake the course quiz to get a new certificate:\n"
                f"{settings.SITE_URL.rstrip('/')}{course_path}"
            ),
        )


@transaction.atomic
def send_certificate_reminder_batch(*, now: datetime | None = None) -> int:
    """Send the due recertification reminders of one batch; return how many.

    The rows are locked (SKIP LOCKED, so a second run at the same time takes
    other rows) and `reminder_sent_at` is set in the transaction that
    notifies, so a reminder is sent once. Emails go out after commit.
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            DUE_REMINDERS_SQL,
            {
                "now": now,
                "limit": BATCH_SIZE,
                "reminder_hour": settings.RM6_CERTIFICATE_REMINDER_HOUR,
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return 0

    MemberCertificate.objects.filter(pk__in=ids, reminder_sent_at__isnull=True).update(
        reminder_sent_at=now
    )
    certificates = MemberCertificate.objects.filter(pk__in=ids).select_related(
        "member__user", "certification__course"
    )
    for certificate in certificates:
        _notify_reminder(certificate)
        record_activity(
            member=certificate.member,
            kind="portal.certificate_reminder_sent",
            subject=certificate,
            occurred_at=now,
            properties={
                "certification": certificate.certification.slug,
                "expires_at": certificate.expires_at.isoformat(),
            },
        )
    logger.info("certificate reminders sent: %d", len(ids))
    return len(ids)


def send_certificate_reminders(
    *, now: datetime | None = None, max_batches: int = 20
) -> int:
    """Send every due reminder, one transaction per batch; return how many."""
    sent = 0
    for _ in range(max_batches):
        count = send_certificate_reminder_batch(now=now)
        sent += count
        if count < BATCH_SIZE:
            break
    return sent


@transaction.atomic
def record_certificate_expiry_batch(*, now: datetime | None = None) -> int:
    """Record `portal.certificate_expired` for lapsed certificates of one batch.

    Each lapsed certificate is handled once (`expiry_recorded_at`). One that
    a newer certificate of the same certification supersedes gets no event,
    because its holder already recertified. Return how many were handled.
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(DUE_EXPIRIES_SQL, {"now": now, "limit": BATCH_SIZE})
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return 0

    MemberCertificate.objects.filter(pk__in=ids).update(expiry_recorded_at=now)
    certificates = MemberCertificate.objects.filter(pk__in=ids).select_related(
        "member", "certification"
    )
    for certificate in certificates:
        if has_newer_certificate(certificate=certificate):
            continue
        record_activity(
            member=certificate.member,
            kind="portal.certificate_expired",
            subject=certificate,
            occurred_at=certificate.expires_at,
            properties={"certification": certificate.certification.slug},
        )
    return len(ids)


def record_certificate_expiries(
    *, now: datetime | None = None, max_batches: int = 20
) -> int:
    handled = 0
    for _ in range(max_batches):
        count = record_certificate_expiry_batch(now=now)
        handled += count
        if count < BATCH_SIZE:
            break
    return handled


def _format_day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def render_certificate_pdf(
    certificate: MemberCertificate,
    *,
    verification_url: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """Return the certificate as a one-page PDF that names its verification URL.

    The URL is printed on the page and is also a link annotation, so readers
    and tools can open it. Pass `verification_url` when rendering for a
    request, so the link points at the host the site runs on. The PDF of an
    expired certificate states that it expired. A revoked certificate gets no
    PDF: this raises DomainError with code "revoked".
    """
    now = now or timezone.now()
    if certificate.revoked_at is not None:
        raise DomainError(
            f"This certificate was revoked on {_format_day(certificate.revoked_at)}, "
            "so it has no PDF.",
            code="revoked",
        )

    url = verification_url or build_verification_url(certificate)
    certification = certificate.certification
    expiry = f"{_format_day(certificate.expires_at)} {certificate.expires_at:%H:%M} UTC"
    is_expired = now >= certificate.expires_at
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=landscape(A4))
    pdf.setTitle(f"{certification.title}: {certificate.holder_name}")
    pdf.setAuthor("RM6 Loyalty Hub")
    pdf.setSubject(f"Certificate {certificate.verification_code}")
    width, height = landscape(A4)

    pdf.setLineWidth(3)
    pdf.rect(30, 30, width - 60, height - 60)
    pdf.setFont("Helvetica", 16)
    pdf.drawCentredString(width / 2, height - 120, "Certificate of completion")
    pdf.setFont("Helvetica-Bold", 32)
    pdf.drawCentredString(width / 2, height - 190, certificate.holder_name)
    pdf.setFont("Helvetica", 16)
    pdf.drawCentredString(width / 2, height - 230, "holds the certification")
    pdf.setFont("Helvetica-Bold", 24)
    pdf.drawCentredString(width / 2, height - 275, certification.title)
    pdf.setFont("Helvetica", 13)
    issued = f"Issued {_format_day(certificate.issued_at)}"
    if is_expired:
        pdf.drawCentredString(width / 2, height - 330, f"{issued} · expired {expiry}")
        pdf.setFont("Helvetica-Bold", 16)
        pdf.setFillColorRGB(0.7, 0, 0)
        pdf.drawCentredString(
            width / 2,
            height - 360,
            f"This certificate expired on {expiry} and is no longer valid.",
        )
        pdf.setFillColorRGB(0, 0, 0)
    else:
        pdf.drawCentredString(
            width / 2, height - 330, f"{issued} · valid until {expiry}"
        )
    pdf.setFont("Helvetica", 11)
    pdf.drawCentredString(width / 2, 110, "Verify this certificate at")
    pdf.drawCentredString(width / 2, 92, url)
    text_width = pdf.stringWidth(url, "Helvetica", 11)
    pdf.linkURL(
        url,
        (width / 2 - text_width / 2, 88, width / 2 + text_width / 2, 104),
        relative=0,
    )
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
