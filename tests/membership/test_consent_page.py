from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.membership.models import ConsentGrant, ConsentPurpose, Member
from apps.membership.services.consent import grant_consent, revoke_consent
from apps.membership.views_privacy import hash_purpose_text
from tests import factories
from tests.api.helpers import count_queries

URL = reverse("membership:privacy")
MARKETING = "marketing_email"

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(db) -> ConsentPurpose:
    """Return the marketing purpose that the migration seeds."""
    purpose, _ = ConsentPurpose.objects.get_or_create(
        key=MARKETING,
        defaults={
            "name": "Marketing email",
            "description": "News about products, events and programmes by email.",
        },
    )
    return purpose


def grant_data(purpose: ConsentPurpose, **values) -> dict:
    return {
        "purpose": purpose.key,
        "action": "grant",
        "shown_text_sha256": hash_purpose_text(purpose),
        "expires_on": "",
        **values,
    }


def revoke_data(purpose: ConsentPurpose) -> dict:
    return {"purpose": purpose.key, "action": "revoke"}


def make_grant(member: Member, purpose_key: str = MARKETING, **values):
    values.setdefault("source", ConsentGrant.Source.API)
    values.setdefault("evidence", "Synced from the CRM.")
    return grant_consent(member=member, purpose_key=purpose_key, **values)


def test_privacy_page_anonymous_redirected_to_sign_in(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={URL}"


def test_privacy_page_anonymous_post_changes_nothing(client, member, marketing):
    response = client.post(URL, grant_data(marketing))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_lists_active_purposes(member_client, marketing):
    ConsentPurpose.objects.create(
        key="retired", name="Retired purpose", description="No longer offered."
    )
    ConsentPurpose.objects.filter(key="retired").update(is_active=False)

    response = member_client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Marketing email" in html
    assert "News about products, events and programmes by email." in html
    assert "Not given" in html
    assert "Retired purpose" not in html


def test_privacy_page_dates_in_member_zone(client, marketing):
    member = factories.MemberFactory(time_zone="Europe/Paris")
    # 23:30 UTC on 29 March 2026 is 01:30 on 30 March in Paris.
    make_grant(
        member,
        granted_at=datetime(2026, 3, 29, 23, 30, tzinfo=UTC),
        expires_on=date(2099, 6, 30),
    )
    client.force_login(member.user)

    html = client.get(URL).content.decode()

    assert "Given on <time" in html
    assert ">30 March 2026</time>" in html
    assert "Valid until the end of <time" in html
    assert ">30 June 2099</time>" in html
    assert "Dates are in your time zone, Europe/Paris." in html


def test_privacy_page_shows_expired_grant(member_client, member, marketing):
    created = make_grant(member, expires_on=timezone.localdate())
    ConsentGrant.objects.filter(pk=created.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    html = member_client.get(URL).content.decode()

    assert '<span class="badge badge--yellow">Expired</span>' in html
    assert "Expired at the end of" in html


def test_privacy_page_grant_records_evidence(member_client, member, marketing):
    response = member_client.post(URL, grant_data(marketing))

    created = ConsentGrant.objects.get(member=member)
    assert response.status_code == 302
    assert response["Location"] == URL
    assert created.purpose == marketing
    assert created.source == "privacy_page"
    assert created.evidence == (
        "Consent given on the privacy page to the text shown: "
        '"Marketing email: News about products, events and programmes by email."'
    )
    assert created.recorded_by == member.user
    assert created.expires_on is None


def test_privacy_page_grant_with_expiry(client, marketing):
    member = factories.MemberFactory(time_zone="America/New_York")
    client.force_login(member.user)

    client.post(URL, grant_data(marketing, expires_on="2099-11-01"))

    created = ConsentGrant.objects.get(member=member)
    assert created.expires_on == date(2099, 11, 1)
    # New York is on EST (UTC-5) by 2 November 2099.
    assert created.expires_at == datetime(2099, 11, 2, 5, 0, tzinfo=UTC)


def test_privacy_page_grant_shows_message(member_client, marketing):
    response = member_client.post(URL, grant_data(marketing), follow=True)

    html = response.content.decode()
    assert "You gave consent for Marketing email." in html
    assert '<span class="badge badge--green">Given</span>' in html
    assert "Withdraw consent" in html


def test_privacy_page_revoke(member_client, member, marketing):
    created = make_grant(member)

    response = member_client.post(URL, revoke_data(marketing), follow=True)

    created.refresh_from_db()
    assert created.revoked_at is not None
    assert created.revoked_source == "privacy_page"
    assert "You withdrew your consent for Marketing email." in response.content.decode()


def test_privacy_page_revoke_without_grant_changes_nothing(member_client, marketing):
    response = member_client.post(URL, revoke_data(marketing), follow=True)

    assert ConsentGrant.objects.count() == 0
    assert "You had not given consent for Marketing email" in response.content.decode()


def test_privacy_page_past_expiry_rejected(member_client, member, marketing):
    yesterday = timezone.localdate() - timedelta(days=1)

    response = member_client.post(
        URL, grant_data(marketing, expires_on=yesterday.isoformat())
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert f"The expiry date {yesterday.isoformat()} is in the past" in html
    assert f'value="{yesterday.isoformat()}"' in html
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_invalid_date_rejected(member_client, marketing):
    response = member_client.post(URL, grant_data(marketing, expires_on="31/12/2099"))

    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_changed_text_rejected(member_client, marketing):
    shown = grant_data(marketing)
    ConsentPurpose.objects.filter(pk=marketing.pk).update(
        description="News, and also partner offers, by email."
    )

    response = member_client.post(URL, shown)

    html = response.content.decode()
    assert response.status_code == 200
    assert "The text of the purpose Marketing email changed" in html
    assert "News, and also partner offers, by email." in html
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_unknown_purpose_rejected(member_client, marketing):
    response = member_client.post(URL, {"purpose": "newsletter", "action": "grant"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "The purpose &#x27;newsletter&#x27; is not on this page." in html
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_inactive_purpose_grant_rejected(member_client, marketing):
    ConsentPurpose.objects.filter(pk=marketing.pk).update(is_active=False)

    member_client.post(URL, grant_data(marketing))

    assert ConsentGrant.objects.count() == 0


def test_privacy_page_post_without_csrf_rejected(member, marketing):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)

    response = client.post(URL, grant_data(marketing))

    assert response.status_code == 403
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_hides_other_members_consents(member_client, member, marketing):
    colleague = factories.MemberFactory(account=member.account)
    make_grant(colleague, evidence="Colleague ticked the box.")

    html = member_client.get(URL).content.decode()

    assert "Not given" in html
    assert "Withdraw consent" not in html
    assert "You have not given any consent yet." in html


def test_privacy_page_post_changes_only_own(member_client, member, marketing):
    colleague = factories.MemberFactory(account=member.account)
    theirs = make_grant(colleague)

    member_client.post(URL, revoke_data(marketing))
    member_client.post(URL, grant_data(marketing))

    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert ConsentGrant.objects.filter(member=colleague).count() == 1
    assert ConsentGrant.objects.filter(member=member).count() == 1


def test_privacy_page_history_lists_grants(client, marketing):
    member = factories.MemberFactory(time_zone="Europe/Paris")
    make_grant(member, granted_at=datetime(2026, 1, 10, 8, 0, tzinfo=UTC))
    revoke_consent(
        member=member,
        purpose_key=MARKETING,
        source="email_link",
        at=datetime(2026, 2, 1, 12, 0, tzinfo=UTC),
    )
    client.force_login(member.user)

    html = client.get(URL).content.decode()

    # Paris is on CET (UTC+1) in January and February.
    assert ">10 January 2026, 09:00</time>" in html
    assert ">1 February 2026, 13:00</time>" in html
    assert "through Email link" in html


def test_privacy_page_staff_without_member_sees_message(staff_client):
    response = staff_client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "staff account without a member profile" in html


def test_privacy_page_staff_without_member_post_rejected(staff_client, marketing):
    response = staff_client.post(URL, grant_data(marketing))

    assert response.status_code == 403
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_deactivated_member_sees_notice(member_client, member):
    Member.objects.filter(pk=member.pk).update(deactivated_at=timezone.now())

    html = member_client.get(URL).content.decode()

    assert "none of these consents is in effect" in html


def test_privacy_page_htmx_grant_returns_fragments(member_client, member, marketing):
    response = member_client.post(URL, grant_data(marketing), HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<li id="consent-{MARKETING}" class="consent">')
    assert "You gave consent for Marketing email." in html
    assert 'id="consent-history"' in html
    assert 'hx-swap-oob="true"' in html
    assert ConsentGrant.objects.filter(member=member).count() == 1


def test_privacy_page_htmx_error_stays_in_purpose(member_client, marketing):
    past = (timezone.localdate() - timedelta(days=1)).isoformat()

    response = member_client.post(
        URL, grant_data(marketing, expires_on=past), HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert f'<li id="consent-{MARKETING}" class="consent">' in html
    assert "is in the past" in html
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_htmx_unknown_purpose_reloads(member_client, marketing):
    response = member_client.post(
        URL, {"purpose": "newsletter", "action": "grant"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"
    assert ConsentGrant.objects.count() == 0


def test_privacy_page_query_count_fixed(member_client, member, marketing):
    make_grant(member)
    queries_for_one = count_queries(member_client, URL)
    for key in ("advocacy_contact", "story_publication", "product_research"):
        make_grant(member, key)
        make_grant(member, key)

    assert count_queries(member_client, URL) == queries_for_one


def test_nav_links_to_privacy_page(member_client):
    html = member_client.get(URL).content.decode()

    assert f'<a href="{URL}" aria-current="page">Privacy</a>' in html
