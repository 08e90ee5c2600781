from apps.membership.services import assign_member_account, create_member
from tests import factories


def test_create_member_joins_account_by_email_domain(db):
    account = factories.AccountFactory(email_domains=["initech.test"])
    user = factories.UserFactory(email="peter@Initech.test")

    member = create_member(user=user)

    assert member.account == account


def test_create_member_unknown_domain_waits_for_review(db):
    factories.AccountFactory(email_domains=["initech.test"])
    user = factories.UserFactory(email="sam@elsewhere.test")

    member = create_member(user=user)

    assert member.account is None


def test_create_member_domain_on_two_accounts_waits_for_review(db):
    factories.AccountFactory(email_domains=["shared.test"])
    factories.AccountFactory(email_domains=["shared.test"])

    member = create_member(user=factories.UserFactory(email="x@shared.test"))

    assert member.account is None


def test_create_member_twice_returns_same_member(db):
    user = factories.UserFactory()

    assert create_member(user=user).pk == create_member(user=user).pk


def test_assign_member_account_moves_member_out_of_queue(db):
    member = create_member(user=factories.UserFactory(email="a@nowhere.test"))
    account = factories.AccountFactory()

    assign_member_account(member=member, account=account)

    member.refresh_from_db()
    assert member.account == account


def test_sign_up_joins_matching_account_only_after_verification(client, db):
    from allauth.account.models import EmailAddress, EmailConfirmationHMAC

    from apps.membership.models import Member

    account = factories.AccountFactory(email_domains=["globex.test"])

    response = client.post(
        "/accounts/signup/",
        {
            "email": "Hank@Globex.test",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )

    member = Member.objects.get()
    assert response.status_code == 302
    assert member.user.email == "hank@globex.test"
    assert member.account is None
    address = EmailAddress.objects.get(email="hank@globex.test")
    key = EmailConfirmationHMAC(address).key
    client.post(f"/accounts/confirm-email/{key}/")
    member.refresh_from_db()
    assert member.account == account
