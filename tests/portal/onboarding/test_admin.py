import pytest
from django.contrib.contenttypes.models import ContentType

from apps.community.models import Topic
from apps.portal.models import (
    HubItem,
    OnboardingPath,
    OnboardingProgress,
    OnboardingStep,
    UseCaseHub,
)
from rm6.celery import app as celery_app
from tests import factories
from tests.admin.rows import changelist_url
from tests.portal.onboarding.factories import HubFactory, PathFactory, add_hub_item

pytestmark = pytest.mark.django_db

STEPS_URL = changelist_url(OnboardingStep)
PATHS_URL = changelist_url(OnboardingPath)
HUBS_URL = changelist_url(UseCaseHub)


@pytest.fixture
def eager_celery():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def step_form(path, **fields) -> dict:
    return {"path": path.pk, "title": "Step", "position": 1, **fields}


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def test_visit_step_without_target_rejected(admin_client):
    path = PathFactory()

    response = admin_client.post(
        f"{STEPS_URL}add/", step_form(path, completion="visit")
    )

    assert response.status_code == 200
    assert form_errors(response)["target_id"] == [
        "A step done by visiting content needs the content: choose its type and "
        "enter its id."
    ]
    assert not OnboardingStep.objects.exists()


def test_visit_step_missing_target_rejected(admin_client):
    path = PathFactory()
    topic_type = ContentType.objects.get_for_model(Topic)

    response = admin_client.post(
        f"{STEPS_URL}add/",
        step_form(path, completion="visit", target_type=topic_type.pk, target_id=999),
    )

    assert response.status_code == 200
    assert form_errors(response)["target_id"] == [
        "No topic with id 999 exists; enter the id of an existing one, as shown "
        "in its admin page address."
    ]
    assert not OnboardingStep.objects.exists()


def test_visit_step_with_target_saved_without_kind(admin_client):
    path = PathFactory()
    topic = factories.TopicFactory()
    topic_type = ContentType.objects.get_for_model(Topic)

    response = admin_client.post(
        f"{STEPS_URL}add/",
        step_form(
            path,
            completion="visit",
            target_type=topic_type.pk,
            target_id=topic.pk,
            completion_kind="community.question_posted",
        ),
    )

    step = OnboardingStep.objects.get()
    assert response.status_code == 302
    assert step.target == topic
    assert step.completion_kind == ""


def test_manual_step_saved_without_kind_or_target(admin_client):
    path = PathFactory()

    response = admin_client.post(
        f"{STEPS_URL}add/",
        step_form(path, completion="manual", completion_kind="not a kind"),
    )

    step = OnboardingStep.objects.get()
    assert response.status_code == 302
    assert (step.completion, step.completion_kind, step.target_id) == (
        "manual",
        "",
        None,
    )


def test_event_step_unknown_kind_rejected(admin_client):
    path = PathFactory()

    response = admin_client.post(
        f"{STEPS_URL}add/",
        step_form(path, completion="event", completion_kind="product.Bad Kind"),
    )

    assert response.status_code == 200
    assert "completion_kind" in form_errors(response)
    assert not OnboardingStep.objects.exists()


def test_new_step_counts_past_events(
    admin_client, eager_celery, django_capture_on_commit_callbacks
):
    path = PathFactory()
    member = factories.MemberFactory()
    factories.ActivityEventFactory(member=member, kind="community.reply_posted")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"{STEPS_URL}add/",
            step_form(
                path,
                completion="event",
                completion_kind="community.reply_posted",
                is_published="on",
            ),
        )

    assert response.status_code == 302
    assert OnboardingProgress.objects.filter(member=member).count() == 1


def test_path_reserved_slug_rejected(admin_client):
    response = admin_client.post(
        f"{PATHS_URL}add/",
        {
            "title": "Accounts",
            "slug": "accounts",
            "position": 0,
            "steps-TOTAL_FORMS": 0,
            "steps-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 200
    assert "slug" in form_errors(response)
    assert not OnboardingPath.objects.exists()


def test_path_saved_with_inline_steps(admin_client):
    response = admin_client.post(
        f"{PATHS_URL}add/",
        {
            "title": "First week",
            "slug": "first-week",
            "position": 0,
            "is_published": "on",
            "roles": "admin",
            "steps-TOTAL_FORMS": 2,
            "steps-INITIAL_FORMS": 0,
            "steps-0-title": "Ask a question",
            "steps-0-completion": "event",
            "steps-0-completion_kind": "community.question_posted",
            "steps-0-position": 1,
            "steps-0-is_published": "on",
            "steps-1-title": "Invite your team",
            "steps-1-completion": "manual",
            "steps-1-position": 2,
            "steps-1-is_published": "on",
        },
    )

    path = OnboardingPath.objects.get()
    assert response.status_code == 302
    assert path.roles == ["admin"]
    assert list(path.steps.values_list("title", "completion")) == [
        ("Ask a question", "event"),
        ("Invite your team", "manual"),
    ]


def hub_form(**items) -> dict:
    return {
        "title": "Reporting",
        "slug": "reporting",
        "position": 0,
        "items-TOTAL_FORMS": 1,
        "items-INITIAL_FORMS": 0,
        **{f"items-0-{name}": value for name, value in items.items()},
    }


def test_hub_item_missing_content_rejected(admin_client):
    topic_type = ContentType.objects.get_for_model(Topic)

    response = admin_client.post(
        f"{HUBS_URL}add/",
        hub_form(content_type=topic_type.pk, object_id=999, position=1),
    )

    assert response.status_code == 200
    assert not UseCaseHub.objects.exists()


def test_hub_item_unsupported_type_rejected(admin_client):
    member_type = ContentType.objects.get(app_label="membership", model="member")
    member = factories.MemberFactory()

    response = admin_client.post(
        f"{HUBS_URL}add/",
        hub_form(content_type=member_type.pk, object_id=member.pk, position=1),
    )

    assert response.status_code == 200
    assert not UseCaseHub.objects.exists()


def test_hub_saved_with_inline_item(admin_client):
    topic = factories.TopicFactory()
    topic_type = ContentType.objects.get_for_model(Topic)

    response = admin_client.post(
        f"{HUBS_URL}add/",
        hub_form(content_type=topic_type.pk, object_id=topic.pk, position=1),
    )

    assert response.status_code == 302
    assert HubItem.objects.get().content == topic


def test_progress_admin_is_read_only(admin_client):
    assert (
        admin_client.get(f"{changelist_url(OnboardingProgress)}add/").status_code == 403
    )


def test_hub_changelist_lists_item_count(admin_client):
    hub = HubFactory(title="Reporting")
    add_hub_item(hub, factories.TopicFactory())

    response = admin_client.get(HUBS_URL)

    assert response.context["cl"].result_list[0].items_count == 1
