from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from apps.membership.models import ConsentGrant, ConsentPurpose, Member
from apps.membership.selectors.consent import has_consent
from apps.membership.services.consent import grant_consent
from tests import factories
from tests.api.helpers import count_queries

MARKETING = "marketing_email"
SEEDED_KEYS = [
    "marketing_email",
    "advocacy_contact",
    "story_publication",
    "product_research",
]
PURPOSES_URL = "/api/v1/consent-purposes/"

pytestmark = pytest.mark.django_db


def consents_url(member: Member | int) -> str:
    member_id = member if isinstance(member, int) else member.pk
    return f"/api/v1/members/{member_id}/consents/"


def consent_url(member: Member, purpose_key: str = MARKETING) -> str:
    return f"{consents_url(member)}{purpose_key}/"


def iso(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_grant(member: Member, purpose_key: str = MARKETING, **values):
    values.setdefault("source", ConsentGrant.Source.SIGN_UP)
    values.setdefault("evidence", "Ticked the box on the sign-up form.")
    return grant_consent(member=member, purpose_key=purpose_key, **values)


def grant_body(**values) -> dict:
    return {"purpose": MARKETING, "evidence": "Replied YES to the email.", **values}


def grant_json(grant: ConsentGrant) -> dict:
    return {
        "id": grant.pk,
        "purpose": grant.purpose.key,
        "source": grant.source,
        "evidence": grant.evidence,
        "granted_at": iso(grant.granted_at),
        "expires_on": grant.expires_on.isoformat() if grant.expires_on else None,
        "expires_at": iso(grant.expires_at),
        "revoked_at": iso(grant.revoked_at),
        "revoked_source": grant.revoked_source,
        "recorded_by": grant.recorded_by_id,
    }


# Reading a member's consents


def test_consents_get_anonymous_rejected(api_client, member):
    response = api_client.get(consents_url(member))

    assert response.status_code == 401


def test_consents_get_staff_reads_any_member(staff_api):
    member = factories.MemberFactory(time_zone="Europe/Paris")
    granted = make_grant(member, expires_on=date(2099, 3, 29))
    marketing = ConsentPurpose.objects.get(key=MARKETING)

    response = staff_api.get(consents_url(member))

    body = response.json()
    assert response.status_code == 200
    assert body["member"] == member.pk
    assert body["time_zone"] == "Europe/Paris"
    assert [row["purpose"] for row in body["purposes"]] == SEEDED_KEYS
    assert body["purposes"][0] == {
        "purpose": MARKETING,
        "name": marketing.name,
        "description": marketing.description,
        "state": "granted",
        "is_valid": True,
        "grant": grant_json(granted),
    }
    assert body["purposes"][1]["state"] == "not_granted"
    assert body["purposes"][1]["grant"] is None
    assert body["history"] == [grant_json(granted)]


def test_consents_get_expiry_instant_in_member_zone(staff_api):
    member = factories.MemberFactory(time_zone="Europe/Paris")
    make_grant(member, expires_on=date(2099, 3, 29))

    response = staff_api.get(consents_url(member))

    grant = response.json()["purposes"][0]["grant"]
    assert grant["expires_on"] == "2099-03-29"
    # Paris is on CEST (UTC+2) from the last Sunday of March 2099 (29 March).
    assert grant["expires_at"] == "2099-03-29T22:00:00Z"


def test_consents_get_staff_token(staff_token_api, member):
    response = staff_token_api.get(consents_url(member))

    assert response.status_code == 200
    assert response.json()["member"] == member.pk


def test_consents_get_member_reads_own(member_api, member):
    make_grant(member)

    response = member_api.get(consents_url(member))

    assert response.status_code == 200
    assert response.json()["purposes"][0]["state"] == "granted"


def test_consents_get_colleague_not_found(member_api, member):
    colleague = factories.MemberFactory(account=member.account)
    make_grant(colleague)

    response = member_api.get(consents_url(colleague))

    assert response.status_code == 404
    assert response.json() == {"detail": f"Member {colleague.pk} not found."}


def test_consents_get_admin_colleague_not_found(api_client, account_admin):
    colleague = factories.MemberFactory(account=account_admin.account)
    api_client.force_login(account_admin.user)

    response = api_client.get(consents_url(colleague))

    assert response.status_code == 404


def test_consents_get_missing_member_looks_like_hidden(member_api, member):
    stranger = factories.MemberFactory()
    missing_id = stranger.pk + 1000

    hidden = member_api.get(consents_url(stranger))
    missing = member_api.get(consents_url(missing_id))

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == {"detail": f"Member {stranger.pk} not found."}
    assert missing.json() == {"detail": f"Member {missing_id} not found."}


def test_consents_get_staff_missing_member_not_found(staff_api):
    response = staff_api.get(consents_url(999_999))

    assert response.status_code == 404


def test_consents_get_user_without_member_not_found(api_client, member):
    user = factories.UserFactory()
    api_client.force_login(user)

    response = api_client.get(consents_url(member))

    assert response.status_code == 404


def test_consents_get_query_count_fixed(staff_api, member):
    make_grant(member)
    queries_for_one = count_queries(staff_api, consents_url(member))
    for key in SEEDED_KEYS[1:]:
        make_grant(member, key)
        make_grant(member, key)

    assert count_queries(staff_api, consents_url(member)) == queries_for_one


# Granting


def test_consents_post_staff_grants(staff_api, staff_user):
    member = factories.MemberFactory(time_zone="America/New_York")

    response = staff_api.post(
        consents_url(member), grant_body(expires_on="2099-11-01"), format="json"
    )

    created = ConsentGrant.objects.get(member=member)
    assert response.status_code == 201
    assert response.json() == grant_json(created)
    assert created.source == "api"
    assert created.evidence == "Replied YES to the email."
    assert created.recorded_by == staff_user
    assert created.expires_on == date(2099, 11, 1)
    # New York is on EST (UTC-5) after the first Sunday of November 2099.
    assert created.expires_at == datetime(2099, 11, 2, 5, 0, tzinfo=UTC)


def test_consents_post_form_body_is_415(staff_token_api, member):
    response = staff_token_api.generic(
        "POST",
        consents_url(member),
        "purpose=marketing",
        "application/x-www-form-urlencoded",
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert response.json()["detail"].endswith(
        "Send the body as one of these content types: application/json."
    )
    assert not ConsentGrant.objects.exists()


def test_consents_post_staff_may_name_source(staff_api, member):
    response = staff_api.post(
        consents_url(member), grant_body(source="import"), format="json"
    )

    assert response.status_code == 201
    assert response.json()["source"] == "import"


def test_consents_post_member_grants_own(member_api, member):
    response = member_api.post(consents_url(member), grant_body(), format="json")

    assert response.status_code == 201
    assert has_consent(member=member, purpose_key=MARKETING)


def test_consents_post_member_source_rejected(member_api, member):
    response = member_api.post(
        consents_url(member), grant_body(source="privacy_page"), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "source": [
            "Only staff may record the source 'privacy_page'. Leave source out, "
            "or send api."
        ]
    }
    assert ConsentGrant.objects.count() == 0


def test_consents_post_colleague_not_found(member_api, member):
    colleague = factories.MemberFactory(account=member.account)

    response = member_api.post(consents_url(colleague), grant_body(), format="json")

    assert response.status_code == 404
    assert ConsentGrant.objects.count() == 0


def test_consents_post_anonymous_rejected(api_client, member):
    response = api_client.post(consents_url(member), grant_body(), format="json")

    assert response.status_code == 401
    assert ConsentGrant.objects.count() == 0


def test_consents_post_regrant_revokes_previous(staff_api, member):
    previous = make_grant(member)

    response = staff_api.post(consents_url(member), grant_body(), format="json")

    previous.refresh_from_db()
    assert response.status_code == 201
    assert previous.revoked_at is not None
    assert previous.revoked_source == "api"
    assert ConsentGrant.objects.filter(revoked_at__isnull=True).count() == 1


def test_consents_post_unknown_purpose_rejected(staff_api, member):
    response = staff_api.post(
        consents_url(member), grant_body(purpose="newsletter"), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "purpose": [
            "Consent purpose 'newsletter' does not exist. Use one of: "
            "marketing_email, advocacy_contact, story_publication, product_research."
        ],
        "code": "unknown_purpose",
    }
    assert ConsentGrant.objects.count() == 0


def test_consents_post_blank_evidence_rejected(staff_api, member):
    response = staff_api.post(
        consents_url(member), grant_body(evidence="  "), format="json"
    )

    assert response.status_code == 400
    assert response.json()["evidence"] == [
        "Evidence is missing. Describe what the member saw and did, for example "
        "the text of the form they submitted."
    ]
    assert ConsentGrant.objects.count() == 0


def test_consents_post_invalid_date_rejected(staff_api, member):
    response = staff_api.post(
        consents_url(member), grant_body(expires_on="31/12/2099"), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "expires_on": [
            "'31/12/2099' is not a valid date. Send the last day of validity as "
            "YYYY-MM-DD, for example 2026-12-31, or null for no end date."
        ]
    }
    assert ConsentGrant.objects.count() == 0


def test_consents_post_past_expiry_rejected(staff_api, member):
    past = timezone.localdate() - timedelta(days=2)

    response = staff_api.post(
        consents_url(member), grant_body(expires_on=past.isoformat()), format="json"
    )

    message = response.json()["expires_on"][0]
    assert response.status_code == 400
    assert message.startswith(f"The expiry date {past.isoformat()} is in the past")
    assert ConsentGrant.objects.count() == 0


def test_consents_post_null_expiry_allowed(staff_api, member):
    response = staff_api.post(
        consents_url(member), grant_body(expires_on=None), format="json"
    )

    assert response.status_code == 201
    assert response.json()["expires_at"] is None


def test_consents_post_invalid_source_rejected(staff_api, member):
    response = staff_api.post(
        consents_url(member), grant_body(source="web"), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "source": [
            '"web" is not a valid source. Use one of: privacy_page, sign_up, '
            "email_link, api, import, admin."
        ]
    }
    assert ConsentGrant.objects.count() == 0


def test_consents_post_unknown_field_rejected(staff_api, member):
    response = staff_api.post(
        consents_url(member), grant_body(expires_at="2099-01-01"), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [
            "Unknown field(s): expires_at. The accepted fields are purpose, "
            "evidence, source and expires_on."
        ]
    }
    assert ConsentGrant.objects.count() == 0


def test_consents_post_missing_fields_rejected(staff_api, member):
    response = staff_api.post(consents_url(member), {}, format="json")

    assert response.status_code == 400
    assert sorted(response.json()) == ["evidence", "purpose"]
    assert ConsentGrant.objects.count() == 0


# Revoking


def test_consents_delete_staff_revokes(staff_api, member):
    granted = make_grant(member)

    response = staff_api.delete(consent_url(member))

    granted.refresh_from_db()
    assert response.status_code == 204
    assert granted.revoked_source == "api"
    assert not has_consent(member=member, purpose_key=MARKETING)


def test_consents_delete_takes_effect_at_once(staff_api, member):
    make_grant(member)
    assert staff_api.get(consents_url(member)).json()["purposes"][0]["is_valid"]

    staff_api.delete(consent_url(member))

    status = staff_api.get(consents_url(member)).json()["purposes"][0]
    assert status["state"] == "not_granted"
    assert status["is_valid"] is False


def test_consents_delete_staff_names_source(staff_api, member):
    granted = make_grant(member)

    response = staff_api.delete(f"{consent_url(member)}?source=email_link")

    granted.refresh_from_db()
    assert response.status_code == 204
    assert granted.revoked_source == "email_link"


def test_consents_delete_member_revokes_own(member_api, member):
    make_grant(member)

    response = member_api.delete(consent_url(member))

    assert response.status_code == 204
    assert not has_consent(member=member, purpose_key=MARKETING)


def test_consents_delete_member_source_rejected(member_api, member):
    granted = make_grant(member)

    response = member_api.delete(f"{consent_url(member)}?source=admin")

    granted.refresh_from_db()
    assert response.status_code == 400
    assert granted.revoked_at is None


def test_consents_delete_invalid_source_rejected(staff_api, member):
    granted = make_grant(member)

    response = staff_api.delete(f"{consent_url(member)}?source=web")

    granted.refresh_from_db()
    assert response.status_code == 400
    assert response.json()["source"][0].startswith('"web" is not a valid source.')
    assert granted.revoked_at is None


def test_consents_delete_without_grant_is_idempotent(staff_api, member):
    first = staff_api.delete(consent_url(member))
    second = staff_api.delete(consent_url(member))

    assert first.status_code == 204
    assert second.status_code == 204
    assert ConsentGrant.objects.count() == 0


def test_consents_delete_twice_keeps_first_revocation(staff_api, member):
    granted = make_grant(member)
    staff_api.delete(consent_url(member))
    granted.refresh_from_db()
    revoked_at = granted.revoked_at

    response = staff_api.delete(f"{consent_url(member)}?source=import")

    granted.refresh_from_db()
    assert response.status_code == 204
    assert granted.revoked_at == revoked_at
    assert granted.revoked_source == "api"


def test_consents_delete_colleague_not_found(member_api, member):
    colleague = factories.MemberFactory(account=member.account)
    granted = make_grant(colleague)

    response = member_api.delete(consent_url(colleague))

    granted.refresh_from_db()
    assert response.status_code == 404
    assert granted.revoked_at is None


def test_consents_delete_anonymous_rejected(api_client, member):
    granted = make_grant(member)

    response = api_client.delete(consent_url(member))

    granted.refresh_from_db()
    assert response.status_code == 401
    assert granted.revoked_at is None


def test_consents_delete_unknown_purpose_not_found(staff_api, member):
    response = staff_api.delete(consent_url(member, "newsletter"))

    assert response.status_code == 404
    assert response.json() == {
        "detail": "Consent purpose 'newsletter' does not exist. Use one of: "
        "marketing_email, advocacy_contact, story_publication, product_research."
    }


# Purposes


def test_consent_purposes_anonymous_rejected(api_client, db):
    response = api_client.get(PURPOSES_URL)

    assert response.status_code == 401


def test_consent_purposes_lists_all(member_api):
    ConsentPurpose.objects.create(
        key="retired", name="Retired", description="Gone.", position=9
    )
    ConsentPurpose.objects.filter(key="retired").update(is_active=False)

    response = member_api.get(PURPOSES_URL)

    body = response.json()
    assert response.status_code == 200
    assert [row["key"] for row in body] == [*SEEDED_KEYS, "retired"]
    assert body[-1] == {
        "key": "retired",
        "name": "Retired",
        "description": "Gone.",
        "is_active": False,
    }
