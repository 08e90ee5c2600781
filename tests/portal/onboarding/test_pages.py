import pytest
from django.urls import reverse

from apps.membership.models import Member
from apps.membership.services.roles import sync_role_groups
from apps.portal.models import OnboardingProgress
from tests import factories
from tests.portal.onboarding.factories import (
    EventStepFactory,
    ManualStepFactory,
    PathFactory,
)

pytestmark = pytest.mark.django_db

PATHS_URL = reverse("portal:onboarding")
ACCOUNTS_URL = reverse("portal:onboarding_accounts")


def account_url(account) -> str:
    return reverse("portal:onboarding_account", args=[account.pk])


def toggle_url(step) -> str:
    return reverse("portal:onboarding_step_toggle", args=[step.pk])


def test_path_list_shows_assigned_paths_with_progress(client):
    path = PathFactory(title="First week")
    EventStepFactory(path=path, completion_kind="community.question_posted")
    EventStepFactory(path=path, completion_kind="community.reply_posted")
    PathFactory(title="Admins only", roles=[Member.Role.ADMIN])
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.reply_posted")
    client.force_login(member.user)

    html = client.get(PATHS_URL).content.decode()

    assert "First week" in html
    assert "1 of 2 steps done" in html
    assert "Admins only" not in html


def test_path_list_empty_state(client):
    member = factories.MemberFactory()
    client.force_login(member.user)

    html = client.get(PATHS_URL).content.decode()

    assert "No onboarding path is assigned to you yet." in html


def test_path_list_staff_without_member_redirected(client):
    client.force_login(factories.StaffFactory())

    response = client.get(PATHS_URL)

    assert response.status_code == 302
    assert response.url == ACCOUNTS_URL


def test_path_detail_of_unassigned_path_is_404(client):
    path = PathFactory(roles=[Member.Role.ADMIN])
    EventStepFactory(path=path)
    member = factories.MemberFactory()
    client.force_login(member.user)

    response = client.get(reverse("portal:onboarding_path", args=[path.slug]))

    assert response.status_code == 404


def test_path_detail_lists_steps_with_modes(client):
    path = PathFactory()
    EventStepFactory(path=path, title="Ask a question")
    ManualStepFactory(path=path, title="Invite your team")
    member = factories.MemberFactory()
    client.force_login(member.user)

    html = client.get(reverse("portal:onboarding_path", args=[path.slug])).content
    html = html.decode()

    assert "Ask a question" in html
    assert "Ticked for you when you do it." in html
    assert "Invite your team" in html
    assert "Mark done" in html


def test_step_toggle_marks_and_unmarks(client):
    step = ManualStepFactory()
    member = factories.MemberFactory()
    client.force_login(member.user)

    done = client.post(toggle_url(step), {"action": "done"})
    assert done.status_code == 302
    assert OnboardingProgress.objects.filter(member=member, step=step).exists()

    undone = client.post(toggle_url(step), {"action": "undo"})
    assert undone.status_code == 302
    assert not OnboardingProgress.objects.filter(member=member, step=step).exists()


def test_step_toggle_htmx_returns_step_fragment(client):
    step = ManualStepFactory(title="Invite your team")
    member = factories.MemberFactory()
    client.force_login(member.user)

    response = client.post(toggle_url(step), {"action": "done"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="step-{step.pk}"' in html
    assert "Mark not done" in html
    assert 'hx-swap-oob="true"' in html


def test_step_toggle_event_step_shows_error_and_changes_nothing(client):
    step = EventStepFactory()
    member = factories.MemberFactory()
    client.force_login(member.user)

    response = client.post(toggle_url(step), {"action": "done"}, follow=True)

    assert "only steps done by hand can be marked" in response.content.decode()
    assert not OnboardingProgress.objects.exists()


def test_step_toggle_other_members_path_is_404(client):
    step = ManualStepFactory(path=PathFactory(roles=[Member.Role.ADMIN]))
    member = factories.MemberFactory()
    client.force_login(member.user)

    response = client.post(toggle_url(step), {"action": "done"})

    assert response.status_code == 404
    assert not OnboardingProgress.objects.exists()


@pytest.mark.parametrize("action", ["bogus", "", "DONE"])
def test_step_toggle_rejects_unknown_action(client, action):
    step = ManualStepFactory()
    member = factories.MemberFactory()
    client.force_login(member.user)

    response = client.post(toggle_url(step), {"action": action})

    assert response.status_code == 400
    assert f"Invalid action {action!r}" in response.content.decode()
    assert "action=done" in response.content.decode()
    assert not OnboardingProgress.objects.exists()


def test_step_toggle_unknown_action_keeps_done_step(client):
    step = ManualStepFactory()
    member = factories.MemberFactory()
    client.force_login(member.user)
    client.post(toggle_url(step), {"action": "done"})

    response = client.post(toggle_url(step), {"action": "bogus"})

    assert response.status_code == 400
    assert OnboardingProgress.objects.filter(member=member, step=step).exists()


# Account progress visibility ------------------------------------------------------


@pytest.fixture
def account_with_progress():
    csm = factories.StaffFactory()
    account = factories.AccountFactory(owner=csm, name="Globex")
    path = PathFactory(title="First week")
    EventStepFactory(path=path, completion_kind="community.question_posted")
    done = factories.MemberFactory(account=account, display_name="Ada")
    factories.MemberFactory(account=account, display_name="Bo")
    factories.ActivityEventFactory(member=done, kind="community.question_posted")
    from apps.portal.services.onboarding import sync_all_progress

    sync_all_progress()
    return account


def test_account_progress_visible_to_csm(client, account_with_progress):
    client.force_login(account_with_progress.owner)

    response = client.get(account_url(account_with_progress))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Onboarding at Globex" in html
    assert "Ada" in html
    assert "Bo" in html
    summary = response.context["summaries"][0]
    assert (summary.assigned, summary.completed, summary.mean_percent) == (2, 1, 50)


def test_account_progress_visible_to_other_staff(client, account_with_progress):
    client.force_login(factories.StaffFactory())

    response = client.get(account_url(account_with_progress))

    assert response.status_code == 200


def test_account_progress_visible_to_account_admin(client, account_with_progress):
    admin = factories.MemberFactory(
        account=account_with_progress, role=Member.Role.ADMIN
    )
    sync_role_groups(admin)
    client.force_login(admin.user)

    response = client.get(account_url(account_with_progress))

    assert response.status_code == 200


def test_account_progress_links_account_health(client, account_with_progress):
    client.force_login(account_with_progress.owner)

    html = client.get(account_url(account_with_progress)).content.decode()

    health_url = reverse("lifecycle:account_health", args=[account_with_progress.pk])
    assert f'href="{health_url}"' in html


def test_account_progress_refused_to_plain_member(client, account_with_progress):
    member = account_with_progress.members.get(display_name="Bo")
    client.force_login(member.user)

    response = client.get(account_url(account_with_progress))

    assert response.status_code == 404


def test_account_progress_refused_to_other_account_admin(client, account_with_progress):
    admin = factories.MemberFactory(role=Member.Role.ADMIN)
    sync_role_groups(admin)
    client.force_login(admin.user)

    response = client.get(account_url(account_with_progress))
    member_response = client.get(
        reverse(
            "portal:onboarding_account_member",
            args=[account_with_progress.pk, account_with_progress.members.first().pk],
        )
    )

    assert response.status_code == 404
    assert member_response.status_code == 404


def test_account_member_detail_shows_steps(client, account_with_progress):
    member = account_with_progress.members.get(display_name="Ada")
    client.force_login(account_with_progress.owner)

    response = client.get(
        reverse(
            "portal:onboarding_account_member",
            args=[account_with_progress.pk, member.pk],
        )
    )

    assert response.status_code == 200
    assert "Ada's onboarding" in response.content.decode()


def test_account_member_detail_names_member_who_completed(
    client, account_with_progress
):
    member = account_with_progress.members.get(display_name="Ada")
    client.force_login(account_with_progress.owner)

    response = client.get(
        reverse(
            "portal:onboarding_account_member",
            args=[account_with_progress.pk, member.pk],
        )
    )

    html = response.content.decode()
    assert f"{member.name} completed this path on" in html
    assert "You completed this path" not in html


def test_account_list_account_admin_redirected_to_own(client, account_with_progress):
    admin = factories.MemberFactory(
        account=account_with_progress, role=Member.Role.ADMIN
    )
    sync_role_groups(admin)
    client.force_login(admin.user)

    response = client.get(ACCOUNTS_URL)

    assert response.status_code == 302
    assert response.url == account_url(account_with_progress)


def test_account_list_plain_member_is_404(client, account_with_progress):
    client.force_login(account_with_progress.members.first().user)

    assert client.get(ACCOUNTS_URL).status_code == 404


def test_account_list_mine_filters_to_owned(client, account_with_progress):
    factories.AccountFactory(name="Initech")
    client.force_login(account_with_progress.owner)

    mine = client.get(ACCOUNTS_URL, {"mine": "1"})
    everyone = client.get(ACCOUNTS_URL)

    assert [a.name for a in mine.context["page_obj"]] == ["Globex"]
    assert "Initech" in everyone.content.decode()


def test_account_progress_query_count_fixed(
    client, account_with_progress, django_assert_num_queries
):
    client.force_login(account_with_progress.owner)
    url = account_url(account_with_progress)
    client.get(url)
    # Session, user, account, per-path cells, paths, member count, member
    # page, that page's cells.
    with django_assert_num_queries(8) as few:
        client.get(url)

    path = PathFactory()
    EventStepFactory(path=path, completion_kind="community.reply_posted")
    for _ in range(6):
        member = factories.MemberFactory(account=account_with_progress)
        factories.ActivityEventFactory(member=member, kind="community.reply_posted")
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)
