import pytest
from rest_framework.test import APIClient

from apps.community.models import Topic, Vote
from tests import factories

pytestmark = pytest.mark.django_db

TOPICS_URL = "/api/v1/community/topics/"


@pytest.fixture
def outsider_api(outsider):
    client = APIClient()
    client.force_login(outsider.user)
    return client


@pytest.fixture
def group_api(group_member):
    client = APIClient()
    client.force_login(group_member.user)
    return client


def test_spaces_list_hides_private(outsider_api, private_space, members_space):
    response = outsider_api.get("/api/v1/community/spaces/")

    assert [space["slug"] for space in response.json()["results"]] == ["questions"]


def test_space_retrieve_private_is_404(outsider_api, private_space):
    response = outsider_api.get("/api/v1/community/spaces/champions/")

    assert response.status_code == 404


def test_space_retrieve_private_for_member(group_api, private_space):
    response = group_api.get("/api/v1/community/spaces/champions/")

    assert response.status_code == 200


def test_topics_list_hides_private_and_hidden(
    outsider_api, private_topic, members_space
):
    visible = factories.TopicFactory(space=members_space)
    factories.TopicFactory(space=members_space, is_hidden=True)

    response = outsider_api.get(TOPICS_URL)

    assert [topic["id"] for topic in response.json()["results"]] == [visible.pk]


def test_topics_list_filters(outsider_api, members_space):
    question = factories.TopicFactory(space=members_space)
    factories.TopicFactory(space=members_space, kind=Topic.Kind.IDEA)

    response = outsider_api.get(TOPICS_URL, {"kind": "question", "solved": "false"})

    assert [topic["id"] for topic in response.json()["results"]] == [question.pk]


@pytest.mark.parametrize(
    ("value", "solved_only"),
    [("true", True), ("1", True), ("false", False), ("0", False)],
)
def test_topics_list_solved_filter_values(
    outsider_api, members_space, value, solved_only
):
    unsolved = factories.TopicFactory(space=members_space)
    solved = factories.TopicFactory(space=members_space)
    solved.accepted_reply = factories.ReplyFactory(topic=solved)
    solved.save(update_fields=["accepted_reply"])

    response = outsider_api.get(TOPICS_URL, {"solved": value})

    expected = solved if solved_only else unsolved
    assert [topic["id"] for topic in response.json()["results"]] == [expected.pk]


def test_topics_list_solved_filter_invalid_rejected(outsider_api, members_space):
    factories.TopicFactory(space=members_space)

    response = outsider_api.get(TOPICS_URL, {"solved": "maybe"})

    assert response.status_code == 400
    assert response.json() == {"solved": ["Invalid value 'maybe': use true or false."]}


def test_topic_retrieve_private_is_404(outsider_api, private_topic):
    response = outsider_api.get(f"{TOPICS_URL}{private_topic.pk}/")

    assert response.status_code == 404


def test_topic_replies_private_is_404(outsider_api, private_topic):
    factories.ReplyFactory(topic=private_topic)

    response = outsider_api.get(f"{TOPICS_URL}{private_topic.pk}/replies/")

    assert response.status_code == 404


def test_topic_create_in_private_space_rejected(outsider_api, private_space):
    response = outsider_api.post(
        TOPICS_URL,
        {"space": "champions", "title": "Let me in", "body": "Please."},
        format="json",
    )

    assert response.status_code == 404
    assert not Topic.objects.exists()


def test_topic_create_by_group_member(group_api, private_space, group_member):
    response = group_api.post(
        TOPICS_URL,
        {"space": "champions", "title": "Beta feedback", "body": "It works."},
        format="json",
    )

    assert response.status_code == 201
    assert Topic.objects.get().author == group_member


def test_reply_create_private_is_404(outsider_api, private_topic):
    response = outsider_api.post(
        f"{TOPICS_URL}{private_topic.pk}/replies/", {"body": "Hi"}, format="json"
    )

    assert response.status_code == 404
    assert private_topic.replies.count() == 0


def test_reply_create_and_list(group_api, private_topic):
    created = group_api.post(
        f"{TOPICS_URL}{private_topic.pk}/replies/", {"body": "Hi"}, format="json"
    )
    listed = group_api.get(f"{TOPICS_URL}{private_topic.pk}/replies/")

    assert created.status_code == 201
    assert [reply["body"] for reply in listed.json()["results"]] == ["Hi"]


def test_topic_vote_private_is_404(outsider_api, private_topic):
    response = outsider_api.post(
        f"{TOPICS_URL}{private_topic.pk}/vote/", {"value": 1}, format="json"
    )

    assert response.status_code == 404
    assert not Vote.objects.exists()


def test_topic_vote_and_withdraw(outsider_api, members_space):
    topic = factories.TopicFactory(space=members_space)

    voted = outsider_api.post(f"{TOPICS_URL}{topic.pk}/vote/", {"value": 1})
    topic.refresh_from_db()
    score_after_vote = topic.vote_score
    withdrawn = outsider_api.delete(f"{TOPICS_URL}{topic.pk}/vote/")
    topic.refresh_from_db()

    assert voted.status_code == 204
    assert score_after_vote == 1
    assert withdrawn.status_code == 204
    assert topic.vote_score == 0


def test_reply_vote_hidden_is_404(outsider_api, members_space):
    reply = factories.ReplyFactory(
        topic=factories.TopicFactory(space=members_space), is_hidden=True
    )

    response = outsider_api.post(f"/api/v1/community/replies/{reply.pk}/vote/")

    assert response.status_code == 404


def test_solution_accept_by_author(members_space):
    author = factories.MemberFactory()
    topic = factories.TopicFactory(space=members_space, author=author)
    reply = factories.ReplyFactory(topic=topic)
    client = APIClient()
    client.force_login(author.user)

    accepted = client.post(f"{TOPICS_URL}{topic.pk}/solution/", {"reply": reply.pk})
    topic.refresh_from_db()
    accepted_reply_id = topic.accepted_reply_id
    cleared = client.delete(f"{TOPICS_URL}{topic.pk}/solution/")
    topic.refresh_from_db()

    assert accepted.status_code == 204
    assert accepted_reply_id == reply.pk
    assert cleared.status_code == 204
    assert topic.accepted_reply_id is None


def test_solution_accept_by_other_member_rejected(outsider_api, members_space):
    topic = factories.TopicFactory(space=members_space)
    reply = factories.ReplyFactory(topic=topic)

    response = outsider_api.post(
        f"{TOPICS_URL}{topic.pk}/solution/", {"reply": reply.pk}
    )
    topic.refresh_from_db()

    assert response.status_code in (400, 403)
    assert topic.accepted_reply_id is None


@pytest.mark.parametrize("page_size", [2, 10])
def test_topics_list_query_count(
    outsider_api, members_space, page_size, django_assert_num_queries
):
    for topic in factories.TopicFactory.create_batch(12, space=members_space):
        topic.tags.add(factories_tag(topic.pk))

    # The same count at both page sizes: no query runs per topic.
    with django_assert_num_queries(5):
        response = outsider_api.get(TOPICS_URL, {"page_size": page_size})

    assert len(response.json()["results"]) == page_size


@pytest.mark.parametrize("page_size", [2, 10])
def test_replies_list_query_count(
    outsider_api, members_space, page_size, django_assert_num_queries
):
    topic = factories.TopicFactory(space=members_space)
    factories.ReplyFactory.create_batch(12, topic=topic)

    # The same count at both page sizes: no query runs per reply.
    with django_assert_num_queries(6):
        response = outsider_api.get(
            f"{TOPICS_URL}{topic.pk}/replies/", {"page_size": page_size}
        )

    assert len(response.json()["results"]) == page_size


def factories_tag(number):
    from apps.community.models import Tag

    return Tag.objects.create(name=f"Tag {number}", slug=f"tag-{number}")
