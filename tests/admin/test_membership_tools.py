"""Admin pages for accounts and members: imports, merges, review queue, ARR."""

from datetime import timedelta
from decimal import Decimal

import pytest
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.advocacy.services import award_points
from apps.membership.models import (
    Account,
    AccountAffiliation,
    AccountArr,
    AccountIdentityProvider,
    AuditEntry,
    Member,
)
from tests import factories
from tests.admin.rows import change_url, changelist_url

ACCOUNTS_URL = changelist_url(Account)
MEMBERS_URL = changelist_url(Member)
ARR_URL = changelist_url(AccountArr)
AFFILIATIONS_URL = changelist_url(AccountAffiliation)
ACCOUNT_IMPORT_URL = f"{ACCOUNTS_URL}import/"
MEMBER_IMPORT_URL = f"{MEMBERS_URL}import/"
MERGE_URL = f"{MEMBERS_URL}merge/"


def upload(text: str, name: str = "rows.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def grant_permissions(user, *codenames: str) -> None:
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="membership", codename__in=codenames
        )
    )


def test_account_import_page_shows_columns(admin_client):
    response = admin_client.get(ACCOUNT_IMPORT_URL)

    assert response.status_code == 200
    assert "<code>parent_external_id</code>" in response.content.decode()


def test_account_changelist_links_import(admin_client):
    response = admin_client.get(ACCOUNTS_URL)

    assert f'href="{ACCOUNT_IMPORT_URL}"' in response.content.decode()


def test_account_import_creates_accounts(admin_client):
    text = "external_id,name,segment,cs_tier\ncrm-1,Globex,smb,pooled\n"

    response = admin_client.post(
        ACCOUNT_IMPORT_URL, {"file": upload(text, "crm.csv")}, follow=True
    )

    assert response.redirect_chain == [(ACCOUNTS_URL, 302)]
    assert Account.objects.get().name == "Globex"
    assert (
        "Imported crm.csv: 1 row(s), 1 created, 0 updated." in response.content.decode()
    )


def test_account_import_bad_row_shows_errors(admin_client):
    text = (
        "external_id,name,segment,cs_tier\n"
        "crm-1,Globex,smb,pooled\n"
        "crm-2,Initech,galactic,pooled\n"
    )

    response = admin_client.post(ACCOUNT_IMPORT_URL, {"file": upload(text)})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was imported: 1 problem found." in page
    assert "<td>3</td>\n          <td>segment</td>\n          <td>galactic</td>" in page
    assert not Account.objects.exists()


def test_account_import_forbidden_without_add_permission(client, staff_user):
    grant_permissions(staff_user, "view_account", "change_account")
    client.force_login(staff_user)

    get = client.get(ACCOUNT_IMPORT_URL)
    post = client.post(
        ACCOUNT_IMPORT_URL,
        {"file": upload("external_id,name,segment,cs_tier\ncrm-1,Globex,smb,pooled\n")},
    )

    assert get.status_code == 403
    assert post.status_code == 403
    assert not Account.objects.exists()


def test_account_import_allowed_with_add_permission(client, staff_user):
    grant_permissions(staff_user, "view_account", "add_account")
    client.force_login(staff_user)

    response = client.post(
        ACCOUNT_IMPORT_URL,
        {"file": upload("external_id,name,segment,cs_tier\ncrm-1,Globex,smb,pooled\n")},
    )

    assert response.status_code == 302
    assert Account.objects.filter(external_id="crm-1").exists()


def test_member_import_creates_members(admin_client):
    factories.AccountFactory(external_id="crm-1")
    text = "email,display_name,account_external_id\nada@globex.test,Ada,crm-1\n"

    response = admin_client.post(MEMBER_IMPORT_URL, {"file": upload(text)})

    assert response.status_code == 302
    assert Member.objects.get().account.external_id == "crm-1"
    assert AuditEntry.objects.filter(action="members.imported").count() == 1


def test_member_import_without_file_shows_form_error(admin_client):
    response = admin_client.post(MEMBER_IMPORT_URL, {})

    assert response.status_code == 200
    assert response.context["form"].errors == {"file": ["This field is required."]}


def test_member_merge_action_needs_two_members(admin_client):
    member = factories.MemberFactory()

    response = admin_client.post(
        MEMBERS_URL,
        {"action": "merge_duplicates", ACTION_CHECKBOX_NAME: [member.pk]},
        follow=True,
    )

    assert (
        "Select exactly two members to merge; 1 were selected."
        in response.content.decode()
    )


def test_member_merge_action_opens_confirmation(admin_client):
    first, second = factories.MemberFactory.create_batch(2)

    response = admin_client.post(
        MEMBERS_URL,
        {"action": "merge_duplicates", ACTION_CHECKBOX_NAME: [second.pk, first.pk]},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{MERGE_URL}?ids={first.pk},{second.pk}"


def test_member_merge_page_shows_what_moves(admin_client):
    first, second = factories.MemberFactory.create_batch(2)
    factories.TopicFactory.create_batch(3, author=second)

    response = admin_client.get(MERGE_URL, {"ids": f"{first.pk},{second.pk}"})

    assert response.status_code == 200
    assert ("topics", 0, 3) in response.context["count_rows"]
    assert first.email in response.content.decode()


def test_member_merge_page_merges_into_chosen(admin_client):
    first, second = factories.MemberFactory.create_batch(2)
    topic = factories.TopicFactory(author=first)
    award_points(member=first, points=15, reason="welcome")

    response = admin_client.post(
        f"{MERGE_URL}?ids={first.pk},{second.pk}", {"survivor": second.pk}, follow=True
    )

    first.refresh_from_db()
    topic.refresh_from_db()
    assert response.redirect_chain == [(change_url(second), 302)]
    assert first.merged_into == second
    assert topic.author == second
    entry = AuditEntry.objects.get(action="member.merged")
    assert entry.member == second
    assert f"Merged member {first.pk} into member {second.pk}." in (
        response.content.decode()
    )


def test_member_merge_page_shows_rule_error(admin_client):
    first, second = factories.MemberFactory.create_batch(2)
    Member.objects.filter(pk=second.pk).update(deactivated_at=timezone.now())

    response = admin_client.post(
        f"{MERGE_URL}?ids={first.pk},{second.pk}", {"survivor": second.pk}
    )

    first.refresh_from_db()
    assert response.status_code == 200
    assert f"Member {second.pk} is deactivated." in response.content.decode()
    assert first.merged_into is None


def test_member_merge_page_bad_ids_redirects(admin_client):
    member = factories.MemberFactory()

    response = admin_client.get(MERGE_URL, {"ids": f"{member.pk}"}, follow=True)

    assert response.redirect_chain == [(MEMBERS_URL, 302)]
    assert "needs the ids of two members" in response.content.decode()


def test_member_merge_page_forbidden_without_change_permission(client, staff_user):
    first, second = factories.MemberFactory.create_batch(2)
    grant_permissions(staff_user, "view_member")
    client.force_login(staff_user)

    response = client.post(
        f"{MERGE_URL}?ids={first.pk},{second.pk}", {"survivor": second.pk}
    )

    first.refresh_from_db()
    assert response.status_code == 403
    assert first.merged_into is None


def test_member_changelist_shows_profile_match_rate(admin_client):
    account = factories.AccountFactory(segment=Account.Segment.ENTERPRISE)
    social_app = SocialApp.objects.create(
        provider="openid_connect", provider_id="big", name="Big", client_id="big"
    )
    AccountIdentityProvider.objects.create(account=account, social_app=social_app)
    linked = factories.MemberFactory(account=account)
    SocialAccount.objects.create(user=linked.user, provider="big", uid="1")
    factories.MemberFactory(account=account)
    factories.MemberFactory(account=None)

    response = admin_client.get(MEMBERS_URL)

    rates = {r.segment: r for r in response.context["profile_match_rates"]}
    assert (rates[None].matched, rates[None].total) == (1, 3)
    assert (rates["enterprise"].matched, rates["enterprise"].total) == (1, 2)
    page = response.content.decode()
    assert "<caption>Profile match rate</caption>" in page
    assert "<td>33.3 %</td>" in page
    assert "<td>50.0 %</td>" in page
    assert "<td>no data</td>" in page


def test_member_changelist_match_rate_without_members_no_data(admin_client):
    response = admin_client.get(MEMBERS_URL)

    assert response.context["profile_match_rates"][0].rate is None
    assert response.content.decode().count("<td>no data</td>") == 4


def test_create_account_from_domain_action(admin_client):
    waiting = factories.MemberFactory(account=None, user__email="ann@fabrikam.test")

    response = admin_client.post(
        MEMBERS_URL,
        {
            "action": "create_account_from_domain",
            "segment": "enterprise",
            "cs_tier": "high_touch",
            ACTION_CHECKBOX_NAME: [waiting.pk],
        },
        follow=True,
    )

    waiting.refresh_from_db()
    account = Account.objects.get()
    assert account.email_domains == ["fabrikam.test"]
    assert account.segment == Account.Segment.ENTERPRISE
    assert waiting.account == account
    assert "Created 1 account(s): fabrikam.test." in response.content.decode()


def test_create_account_from_domain_action_same_domain_once(admin_client):
    first = factories.MemberFactory(account=None, user__email="a@fabrikam.test")
    second = factories.MemberFactory(account=None, user__email="b@fabrikam.test")

    admin_client.post(
        MEMBERS_URL,
        {
            "action": "create_account_from_domain",
            "segment": "smb",
            "cs_tier": "pooled",
            ACTION_CHECKBOX_NAME: [first.pk, second.pk],
        },
    )

    second.refresh_from_db()
    assert Account.objects.count() == 1
    assert second.account == Account.objects.get()


def test_create_account_from_domain_action_shows_rule_error(admin_client):
    factories.AccountFactory(email_domains=["fabrikam.test"])
    assigned = factories.MemberFactory(account=None, user__email="a@gmail.com")

    response = admin_client.post(
        MEMBERS_URL,
        {
            "action": "create_account_from_domain",
            "segment": "smb",
            "cs_tier": "pooled",
            ACTION_CHECKBOX_NAME: [assigned.pk],
        },
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [
        "a@gmail.com: gmail.com is a public email domain shared by people of many "
        "companies, so it cannot identify one account. Assign such members to "
        "their account by hand."
    ]
    assert Account.objects.count() == 1


def test_deactivate_action_deactivates_members(admin_client, member):
    response = admin_client.post(
        MEMBERS_URL,
        {"action": "deactivate", ACTION_CHECKBOX_NAME: [member.pk]},
        follow=True,
    )

    member.refresh_from_db()
    member.user.refresh_from_db()
    assert member.deactivated_at is not None
    assert member.user.is_active is False
    assert AuditEntry.objects.get(member=member).action == "member.deactivated"
    assert "Deactivated 1 member(s)." in response.content.decode()


def account_form_data(account: Account, **changes) -> dict:
    data = {
        "name": account.name,
        "external_id": account.external_id,
        "email_domains": ",".join(account.email_domains),
        "segment": account.segment,
        "cs_tier": account.cs_tier,
        "arr": str(account.arr),
        "time_zone": account.time_zone,
        "parent": account.parent_id or "",
    }
    for prefix in ("members", "identity_providers", "arr_history"):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": 0,
                f"{prefix}-INITIAL_FORMS": 0,
                f"{prefix}-MIN_NUM_FORMS": 0,
                f"{prefix}-MAX_NUM_FORMS": 1000,
            }
        )
    data.update(changes)
    return data


def test_account_change_page_lists_sso_providers(admin_client):
    account = factories.AccountFactory()
    social_app = SocialApp.objects.create(
        provider="openid_connect", provider_id="acme-oidc", name="Acme", client_id="x"
    )
    AccountIdentityProvider.objects.create(account=account, social_app=social_app)

    response = admin_client.get(change_url(account))

    formsets = {f.formset.prefix: f for f in response.context["inline_admin_formsets"]}
    assert list(formsets) == ["members", "identity_providers", "arr_history"]
    assert "/accounts/oidc/acme-oidc/login/callback/" in response.content.decode()


def test_account_change_taken_domain_rejected(admin_client):
    factories.AccountFactory(name="Initech", email_domains=["initech.test"])
    account = factories.AccountFactory(email_domains=["globex.test"])

    response = admin_client.post(
        change_url(account),
        account_form_data(account, email_domains="globex.test,Initech.test"),
    )

    account.refresh_from_db()
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["email_domains"]
    assert errors[0].startswith("The email domain initech.test already belongs to")
    assert account.email_domains == ["globex.test"]


def test_account_change_parent_cycle_rejected(admin_client):
    top = factories.AccountFactory(name="Top")
    child = factories.AccountFactory(name="Child", parent=top)

    response = admin_client.post(
        change_url(top), account_form_data(top, parent=child.pk)
    )

    top.refresh_from_db()
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["parent"] == [
        f"Account Child (id {child.pk}) is a subsidiary of Top, so it cannot also "
        "be its parent: the hierarchy would loop."
    ]
    assert top.parent is None


def test_account_change_arr_recorded_in_history(admin_client, admin_user):
    account = factories.AccountFactory(arr=1000)

    response = admin_client.post(
        change_url(account), account_form_data(account, arr="1500")
    )

    account.refresh_from_db()
    entry = AccountArr.objects.get(account=account)
    assert response.status_code == 302
    assert account.arr == Decimal("1500")
    assert entry.effective_on == timezone.localdate()
    assert entry.source == "admin"
    audit = AuditEntry.objects.get(action="account.updated")
    assert audit.actor == admin_user
    assert audit.details["changes"] == {"arr": ["1000.00", "1500.00"]}


def test_account_add_page_creates_through_service(admin_client):
    response = admin_client.post(
        f"{ACCOUNTS_URL}add/",
        account_form_data(
            Account(
                name="Contoso",
                email_domains=["Contoso.test"],
                segment="smb",
                cs_tier="pooled",
                arr=0,
            )
        ),
    )

    account = Account.objects.get()
    assert response.status_code == 302
    assert account.email_domains == ["contoso.test"]
    assert AuditEntry.objects.get(account=account).action == "account.created"


def test_arr_add_page_records_value(admin_client):
    account = factories.AccountFactory(arr=100)
    yesterday = timezone.localdate() - timedelta(days=1)

    response = admin_client.post(
        f"{ARR_URL}add/",
        {
            "account": account.pk,
            "effective_on": yesterday.isoformat(),
            "arr": "250",
            "source": "manual",
        },
    )

    account.refresh_from_db()
    assert response.status_code == 302
    assert account.arr == Decimal("250")


def test_arr_add_page_same_day_replaces_value(admin_client):
    account = factories.AccountFactory()
    today = timezone.localdate()
    AccountArr.objects.create(account=account, effective_on=today, arr=10)

    response = admin_client.post(
        f"{ARR_URL}add/",
        {
            "account": account.pk,
            "effective_on": today.isoformat(),
            "arr": "20",
            "source": "manual",
        },
    )

    assert response.status_code == 302
    assert AccountArr.objects.get().arr == Decimal("20")


def test_arr_add_page_future_date_rejected(admin_client):
    account = factories.AccountFactory()
    later = timezone.localdate() + timedelta(days=3)

    response = admin_client.post(
        f"{ARR_URL}add/",
        {
            "account": account.pk,
            "effective_on": later.isoformat(),
            "arr": "20",
            "source": "manual",
        },
    )

    assert response.status_code == 200
    assert (
        response.context["adminform"]
        .form.non_field_errors()[0]
        .startswith(f"The ARR date {later.isoformat()} is in the future")
    )
    assert not AccountArr.objects.exists()


def test_arr_change_forbidden(admin_client):
    account = factories.AccountFactory()
    entry = AccountArr.objects.create(
        account=account, effective_on=timezone.localdate(), arr=10
    )

    response = admin_client.post(change_url(entry), {"arr": "99"})

    entry.refresh_from_db()
    assert response.status_code == 403
    assert entry.arr == Decimal("10")


def test_affiliation_add_page_audits(admin_client, member):
    customer = factories.AccountFactory()

    response = admin_client.post(
        f"{AFFILIATIONS_URL}add/",
        {"member": member.pk, "account": customer.pk, "relationship": "partner"},
    )

    assert response.status_code == 302
    assert AccountAffiliation.objects.get().account == customer
    assert AuditEntry.objects.get().action == "member.affiliation_added"


def test_affiliation_add_primary_account_rejected(admin_client, member):
    response = admin_client.post(
        f"{AFFILIATIONS_URL}add/",
        {"member": member.pk, "account": member.account_id, "relationship": "partner"},
    )

    assert response.status_code == 200
    assert "already" in response.context["adminform"].form.errors["account"][0]
    assert not AccountAffiliation.objects.exists()


@pytest.mark.parametrize("url", [ACCOUNT_IMPORT_URL, MEMBER_IMPORT_URL, MERGE_URL])
def test_membership_tool_pages_need_staff(client, member, url):
    client.force_login(member.user)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
