import pytest
from django.urls import reverse

from apps.advocacy.models import Badge, MemberBadge
from apps.advocacy.services import award_badge, award_points
from apps.lifecycle.models import ActivityEvent, Enrolment, Notification, Touch
from apps.lifecycle.plays.runner import run_enrolment
from rm6.errors import DomainError
from tests import factories
from tests.advocacy.helpers import enrol, outcomes
from tests.plays.factories import PlayFactory, PlayStepFactory

pytestmark = pytest.mark.django_db

HOME_URL = reverse("advocacy:home")


def make_badge(slug: str = "helper", **fields) -> Badge:
    return Badge.objects.create(
        name=slug.title(), slug=slug, description="Answered ten questions.", **fields
    )


def test_award_badge_once_per_member():
    member = factories.MemberFactory()
    badge = make_badge()

    first, first_created = award_badge(member=member, badge=badge, reason="manual")
    second, second_created = award_badge(member=member, badge=badge, reason="again")

    assert first_created is True
    assert second_created is False
    assert second.pk == first.pk
    assert second.reason == "manual"
    assert MemberBadge.objects.filter(member=member).count() == 1


def test_award_badge_records_event_and_notifies_once():
    member = factories.MemberFactory()
    badge = make_badge()

    award, _ = award_badge(member=member, badge=badge, reason="manual")
    award_badge(member=member, badge=badge, reason="manual")

    events = ActivityEvent.objects.filter(member=member, kind="advocacy.badge_awarded")
    assert events.count() == 1
    assert events.get().properties == {"badge": "helper"}
    assert events.get().subject_id == str(award.pk)
    notification = Notification.objects.get(member=member)
    assert notification.kind == "advocacy.badge"
    assert notification.title == "You earned the Helper badge"
    assert notification.url == HOME_URL


def test_award_badge_inactive_rejected():
    member = factories.MemberFactory()
    badge = make_badge(is_active=False)

    with pytest.raises(DomainError, match="inactive"):
        award_badge(member=member, badge=badge, reason="manual")

    assert not MemberBadge.objects.exists()


def test_badge_action_awards_through_play_run():
    badge = make_badge()
    play = PlayFactory(play_id="welcome-badge", campaign_id="cmp-1")
    PlayStepFactory(play=play, position=1, action="badge", config={"badge": "helper"})
    member = factories.MemberFactory()
    enrolment = enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    award = MemberBadge.objects.get(member=member)
    assert award.badge == badge
    assert award.reason == "play:welcome-badge"
    assert award.step_run.enrolment == enrolment
    assert outcomes(enrolment) == [(1, "done", "badge helper awarded")]
    event = ActivityEvent.objects.get(kind="advocacy.badge_awarded")
    assert (event.play_id, event.campaign_id) == ("welcome-badge", "cmp-1")


def test_badge_action_run_twice_awards_once():
    make_badge()
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="badge", config={"badge": "helper"})
    member = factories.MemberFactory()
    enrolment = enrol(play, member)

    first = run_enrolment(enrolment_id=enrolment.pk)
    second = run_enrolment(enrolment_id=enrolment.pk)

    assert (first, second) == (1, 0)
    assert MemberBadge.objects.filter(member=member).count() == 1


def test_badge_action_second_occurrence_earned_before():
    make_badge()
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="badge", config={"badge": "helper"})
    member = factories.MemberFactory()
    first = enrol(play, member, occurrence_key="one")
    second = enrol(play, member, occurrence_key="two")

    run_enrolment(enrolment_id=first.pk)
    run_enrolment(enrolment_id=second.pk)

    assert MemberBadge.objects.filter(member=member).count() == 1
    assert outcomes(second) == [(1, "done", "badge helper earned before")]


def test_badge_action_writes_no_touch():
    make_badge()
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="badge", config={"badge": "helper"})
    member = factories.MemberFactory()

    run_enrolment(enrolment_id=enrol(play, member).pk)

    assert not Touch.objects.filter(member=member).exists()


def test_badge_action_unknown_badge_fails_step():
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="badge", config={"badge": "nope"})
    member = factories.MemberFactory()
    enrolment = enrol(play, member)

    run_enrolment(enrolment_id=enrolment.pk)

    enrolment.refresh_from_db()
    step_run = enrolment.step_runs.get()
    assert step_run.status == "failed"
    assert step_run.error == (
        "Unknown badge 'nope' in the step config; set "
        '{"badge": "<slug>"} to the slug of a badge in admin.'
    )
    assert enrolment.status == Enrolment.Status.FAILED
    assert not MemberBadge.objects.exists()


def test_badge_action_inactive_badge_fails_step():
    make_badge(is_active=False)
    play = PlayFactory()
    PlayStepFactory(play=play, position=1, action="badge", config={"badge": "helper"})
    enrolment = enrol(play, factories.MemberFactory())

    run_enrolment(enrolment_id=enrolment.pk)

    step_run = enrolment.step_runs.get()
    assert step_run.status == "failed"
    assert step_run.error == (
        "The badge 'helper' is inactive, and an inactive badge cannot be "
        "awarded: activate it in admin, or set the slug of an active badge."
    )


def test_advocacy_home_shows_badges_and_balance(member_client, member):
    award_badge(member=member, badge=make_badge(), reason="manual")
    award_points(member=member, points=30, reason="manual")

    response = member_client.get(HOME_URL)

    assert response.status_code == 200
    assert response.context["points_balance"] == 30
    assert [award.badge.slug for award in response.context["badges"]] == ["helper"]
    assert "Helper" in response.content.decode()


def test_advocacy_home_requires_sign_in(client):
    response = client.get(HOME_URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_advocacy_home_staff_without_member(staff_client):
    response = staff_client.get(HOME_URL)

    assert response.status_code == 200
    assert response.context["member"] is None


@pytest.mark.parametrize("size", [1, 6])
def test_advocacy_home_query_count_fixed(
    member_client, member, django_assert_num_queries, size
):
    for number in range(size):
        award_badge(member=member, badge=make_badge(f"badge-{number}"), reason="x")
        award_points(member=member, points=5, reason="manual")

    # Session, user, member, unread notification count, badges, balance.
    with django_assert_num_queries(6):
        response = member_client.get(HOME_URL)

    assert len(response.context["badges"]) == size


def test_admin_award_badge_records_event(admin_client):
    member = factories.MemberFactory()
    badge = make_badge()

    response = admin_client.post(
        reverse("admin:advocacy_memberbadge_add"),
        {"member": member.pk, "badge": badge.pk, "reason": "Spoke at the meetup."},
    )

    assert response.status_code == 302
    award = MemberBadge.objects.get(member=member)
    assert award.reason == "Spoke at the meetup."
    assert ActivityEvent.objects.filter(kind="advocacy.badge_awarded").count() == 1


def test_admin_award_badge_twice_rejected(admin_client):
    member = factories.MemberFactory()
    badge = make_badge()
    award_badge(member=member, badge=badge, reason="manual")

    response = admin_client.post(
        reverse("admin:advocacy_memberbadge_add"),
        {"member": member.pk, "badge": badge.pk, "reason": "again"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["badge"] == [
        f"{member} already has the Helper badge."
    ]
    assert MemberBadge.objects.count() == 1


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:advocacy_badge_add",
        "admin:advocacy_memberbadge_changelist",
        "admin:advocacy_advocacyask_add",
        "admin:advocacy_advocacyask_changelist",
    ],
)
def test_admin_advocacy_pages_render(admin_client, url_name):
    award_badge(member=factories.MemberFactory(), badge=make_badge(), reason="x")

    response = admin_client.get(reverse(url_name))

    assert response.status_code == 200
