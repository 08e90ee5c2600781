from tests import factories


def test_member_factory_email_matches_account_domain(db):
    member = factories.MemberFactory()

    assert member.user.email.endswith("@" + member.account.email_domains[0])
