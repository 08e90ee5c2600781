"""Certificates made directly, with chosen dates and time zones."""

from datetime import datetime, timedelta

from apps.portal.models import MemberCertificate
from tests.portal.courses import factories as cf


def make_certificate(
    *,
    expires_at: datetime,
    time_zone: str = "UTC",
    remind_days_before: int = 7,
    member=None,
    certification=None,
    **fields,
) -> MemberCertificate:
    member = member or cf.MemberFactory(time_zone=time_zone)
    certification = certification or cf.CertificationFactory(
        remind_days_before=remind_days_before
    )
    return MemberCertificate.objects.create(
        member=member,
        certification=certification,
        holder_name="Ada Lovelace",
        issued_at=expires_at - timedelta(days=certification.validity_days),
        expires_at=expires_at,
        **fields,
    )
