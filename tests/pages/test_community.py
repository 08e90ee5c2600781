from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.community.models import Reply, Topic
from apps.lifecycle.models import ActivityEvent
from rm6.errors import DomainError
from tests import factories

HTMX_HEADERS = {"HTTP_HX_REQUEST": "true"}


def space_url(space) -> str:
    return reverse("community:space", kwargs={"slug": space.slug})


def topic_url(topic) -> str:
    return reverse("community:topic", kwargs={"pk": topic.pk})


def new_topic_url(space) -> str:
    return reverse("community:new_topic", kwargs={"slug": space.slug})


def reply_url(topic) -> str:
    return reverse("community:reply", kwargs={"pk": topic.pk})


def community_events():
    """Return community events; force_login also records a sign-in event."""
    return ActivityEvent.objects.filter(kind__startswith="community.")


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries)


# Space list


def test_space_list_anonymous_sees_public_only(
    client, public_space, members_space, other_account_space
):
    response = client.get(reverse("community:spaces"))

    assert response.status_code == 200
    assert list(response.context["spaces"]) == [public_space]


def test_space_list_member_sees_own_account_space(
    member_client, public_space, members_space, account_space, other_account_space
):
    response = member_client.get(reverse("community:spaces"))

    spaces = set(response.context["spaces"])
    assert spaces == {public_space, members_space, account_space}


def test_space_list_staff_sees_every_space(
    staff_client, public_space, members_space, other_account_space
):
    response = staff_client.get(reverse("community:spaces"))

    spaces = set(response.context["spaces"])
    assert spaces == {public_space, members_space, other_account_space}


def test_space_list_shows_topic_counts(member_client, members_space):
    factories.TopicFactory.create_batch(3, space=members_space)
    members_space.topic_count = 3
    members_space.save(update_fields=["topic_count"])

    response = member_client.get(reverse("community:spaces"))

    assert "3 topics" in response.content.decode()


def test_space_list_empty_state(member_client):
    response = member_client.get(reverse("community:spaces"))

    assert "There are no spaces you can read yet." in response.content.decode()


# Space page


def test_space_page_anonymous_reads_public_space(client, public_space):
    response = client.get(space_url(public_space))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Sign in to post" in html
    assert f'href="/accounts/login/?next={new_topic_url(public_space)}"' in html


def test_space_page_anonymous_gets_404_for_members_space(client, members_space):
    response = client.get(space_url(members_space))

    assert response.status_code == 404


def test_space_page_member_gets_404_for_other_account(
    member_client, other_account_space
):
    response = member_client.get(space_url(other_account_space))

    assert response.status_code == 404


def test_space_page_member_reads_own_account_space(member_client, account_space):
    response = member_client.get(space_url(account_space))

    assert response.status_code == 200
    assert "Ask a question" in response.content.decode()


def test_space_page_unknown_slug_is_404(member_client):
    response = member_client.get("/community/no-such-space/")

    assert response.status_code == 404


def test_space_page_staff_without_member_reads_private_space(
    staff_client, other_account_space
):
    response = staff_client.get(space_url(other_account_space))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Posting needs a member profile" in html
    assert "Ask a question" not in html


def test_space_page_empty_state(member_client, members_space):
    response = member_client.get(space_url(members_space))

    assert "No topics yet." in response.content.decode()


def test_space_page_lists_newest_activity_first(member_client, members_space):
    now = timezone.now()
    old = factories.TopicFactory(
        space=members_space, title="Old", last_activity_at=now - timedelta(days=2)
    )
    fresh = factories.TopicFactory(
        space=members_space, title="Fresh", last_activity_at=now
    )
    middle = factories.TopicFactory(
        space=members_space, title="Middle", last_activity_at=now - timedelta(days=1)
    )

    response = member_client.get(space_url(members_space))

    assert list(response.context["page_obj"].object_list) == [fresh, middle, old]


def test_space_page_paginates_25_topics(member_client, members_space):
    factories.TopicFactory.create_batch(26, space=members_space)

    first = member_client.get(space_url(members_space))
    next_cursor = first.context["page_obj"].next_cursor
    second = member_client.get(space_url(members_space) + f"?after={next_cursor}")

    assert len(first.context["page_obj"].object_list) == 25
    assert len(second.context["page_obj"].object_list) == 1
    assert f'href="?after={next_cursor}" rel="next">Older topics' in (
        first.content.decode()
    )


def test_space_page_invalid_page_shows_first(member_client, members_space):
    factories.TopicFactory(space=members_space)

    response = member_client.get(space_url(members_space) + "?page=abc")

    assert response.status_code == 200
    assert len(response.context["page_obj"].object_list) == 1
    assert not response.context["page_obj"].has_previous


def test_space_page_query_count_fixed(
    member_client, members_space, django_assert_num_queries
):
    factories.TopicFactory(space=members_space)
    url = space_url(members_space)
    count_queries(member_client, url)
    few = count_queries(member_client, url)

    factories.TopicFactory.create_batch(24, space=members_space)
    many = count_queries(member_client, url)

    assert few == many
    # Session, user, member, space, whether the member moderates the space,
    # topic page with authors, the page's tags, and the unread notification
    # count in the nav.
    with django_assert_num_queries(8):
        member_client.get(url)


# Topic page


def test_topic_page_renders_topic_and_replies(member_client, members_space):
    topic = factories.TopicFactory(space=members_space, title="Export fails")
    factories.ReplyFactory(topic=topic, body="Try again after the sync.")

    response = member_client.get(topic_url(topic))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Export fails" in html
    assert "Try again after the sync." in html


def test_topic_page_escapes_body(member_client, members_space):
    topic = factories.TopicFactory(
        space=members_space, body="<script>alert(1)</script>\n\nSecond paragraph"
    )

    html = member_client.get(topic_url(topic)).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "alert(1)" not in html
    assert "<p>Second paragraph</p>" in html


def test_topic_page_empty_state(member_client, members_space):
    topic = factories.TopicFactory(space=members_space)

    html = member_client.get(topic_url(topic)).content.decode()

    assert "No replies yet." in html


def test_topic_page_records_topic_viewed(member_client, member, members_space):
    topic = factories.TopicFactory(space=members_space)

    member_client.get(topic_url(topic))

    event = community_events().get(member=member)
    assert event.kind == "community.topic_viewed"
    assert event.subject == topic
    assert event.account_id == member.account_id


def test_topic_page_anonymous_records_nothing(client, public_space):
    topic = factories.TopicFactory(space=public_space)

    response = client.get(topic_url(topic))

    assert response.status_code == 200
    assert "to reply." in response.content.decode()
    assert community_events().count() == 0


def test_topic_page_staff_without_member_records_nothing(
    staff_client, other_account_space
):
    topic = factories.TopicFactory(space=other_account_space)

    response = staff_client.get(topic_url(topic))

    assert response.status_code == 200
    assert "Posting needs a member profile" in response.content.decode()
    assert community_events().count() == 0


def test_topic_page_member_gets_404_for_other_account(
    member_client, other_account_space
):
    topic = factories.TopicFactory(space=other_account_space)

    response = member_client.get(topic_url(topic))

    assert response.status_code == 404
    assert community_events().count() == 0


def test_topic_page_anonymous_gets_404_for_members_space(client, members_space):
    topic = factories.TopicFactory(space=members_space)

    response = client.get(topic_url(topic))

    assert response.status_code == 404


def test_topic_page_paginates_50_replies(member_client, members_space):
    topic = factories.TopicFactory(space=members_space)
    start = timezone.now() - timedelta(hours=1)
    for minute in range(51):
        factories.ReplyFactory(
            topic=topic, created_at=start + timedelta(minutes=minute)
        )

    first = member_client.get(topic_url(topic))
    last = member_client.get(topic_url(topic) + "?page=last")

    assert len(first.context["page_obj"].object_list) == 50
    assert len(last.context["page_obj"].object_list) == 50
    assert last.context["page_obj"].object_list[-1] == Reply.objects.last()
    assert not last.context["page_obj"].has_next


def test_topic_page_htmx_form_last_page_only(member_client, members_space):
    topic = factories.TopicFactory(space=members_space)
    factories.ReplyFactory.create_batch(51, topic=topic)

    first_response = member_client.get(topic_url(topic))
    next_cursor = first_response.context["page_obj"].next_cursor
    first = first_response.content.decode()
    last = member_client.get(
        topic_url(topic) + f"?after={next_cursor}"
    ).content.decode()

    assert f'hx-post="{reply_url(topic)}"' not in first
    assert f'hx-post="{reply_url(topic)}"' in last


def test_topic_page_query_count_fixed(
    member_client, members_space, django_assert_num_queries
):
    topic = factories.TopicFactory(space=members_space)
    factories.ReplyFactory(topic=topic)
    url = topic_url(topic)
    count_queries(member_client, url)
    few = count_queries(member_client, url)

    factories.ReplyFactory.create_batch(19, topic=topic)
    many = count_queries(member_client, url)

    assert few == many
    # Session, user, member, topic; the topic_viewed event (one insert, no
    # savepoint); whether the member moderates the space; the reply page
    # with authors and quoted replies; the member's votes and kudos on the
    # page; the unread notification count in the nav; the topic's tags.
    with django_assert_num_queries(10):
        member_client.get(url)


# New topic


def test_new_topic_anonymous_redirected_to_sign_in(client, public_space):
    response = client.get(new_topic_url(public_space))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_new_topic_anonymous_post_creates_nothing(client, public_space):
    response = client.post(
        new_topic_url(public_space), {"title": "Hi", "body": "Hi", "kind": "question"}
    )

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert Topic.objects.count() == 0


def test_new_topic_form_offers_member_kinds(member_client, members_space):
    response = member_client.get(new_topic_url(members_space))

    kinds = [value for value, _ in response.context["form"].fields["kind"].choices]
    assert response.status_code == 200
    assert kinds == ["question", "discussion", "idea"]


def test_new_topic_form_offers_announcement_to_admin(
    client, account_admin, members_space
):
    client.force_login(account_admin.user)

    response = client.get(new_topic_url(members_space))

    kinds = [value for value, _ in response.context["form"].fields["kind"].choices]
    assert "announcement" in kinds


def test_new_topic_posts_question(member_client, member, members_space):
    response = member_client.post(
        new_topic_url(members_space),
        {"title": "How to export?", "body": "Step one\n\nStep two", "kind": "question"},
    )

    topic = Topic.objects.get()
    assert response.status_code == 302
    assert response.url == topic_url(topic)
    assert topic.author == member
    assert topic.space == members_space
    assert topic.title == "How to export?"
    event = community_events().get(member=member)
    assert event.kind == "community.question_posted"
    assert event.subject == topic


def test_new_topic_shows_topic_in_space(member_client, members_space):
    member_client.post(
        new_topic_url(members_space),
        {"title": "Where is billing?", "body": "I cannot find it.", "kind": "question"},
        follow=True,
    )

    html = member_client.get(space_url(members_space)).content.decode()

    assert "Where is billing?" in html


def test_new_topic_discussion_records_topic_posted(
    member_client, member, members_space
):
    member_client.post(
        new_topic_url(members_space),
        {"title": "Roadmap thoughts", "body": "Ideas welcome.", "kind": "discussion"},
    )

    assert community_events().get(member=member).kind == "community.topic_posted"


def test_new_topic_member_cannot_post_announcement(
    member_client, member, members_space
):
    response = member_client.post(
        new_topic_url(members_space),
        {"title": "Big news", "body": "Read this.", "kind": "announcement"},
    )

    assert response.status_code == 200
    assert "kind" in response.context["form"].errors
    assert Topic.objects.count() == 0
    assert community_events().count() == 0


def test_new_topic_admin_posts_announcement(client, account_admin, members_space):
    client.force_login(account_admin.user)

    response = client.post(
        new_topic_url(members_space),
        {"title": "Maintenance", "body": "Sunday night.", "kind": "announcement"},
    )

    assert response.status_code == 302
    assert Topic.objects.get().kind == Topic.Kind.ANNOUNCEMENT


def test_new_topic_blank_title_shows_error(member_client, members_space):
    response = member_client.post(
        new_topic_url(members_space),
        {"title": "  ", "body": "Body", "kind": "question"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["title"] == ["This field is required."]
    assert Topic.objects.count() == 0


def test_new_topic_service_field_error_goes_to_field(
    member_client, members_space, monkeypatch
):
    def reject(**kwargs):
        raise DomainError("The title repeats an existing topic.", field="title")

    monkeypatch.setattr("apps.community.views.post_topic", reject)

    response = member_client.post(
        new_topic_url(members_space), {"title": "T", "body": "B", "kind": "question"}
    )

    errors = response.context["form"].errors
    assert errors["title"] == ["The title repeats an existing topic."]


def test_new_topic_service_error_non_field(member_client, members_space, monkeypatch):
    def reject(**kwargs):
        raise DomainError("You cannot post in Questions.", code="forbidden")

    monkeypatch.setattr("apps.community.views.post_topic", reject)

    response = member_client.post(
        new_topic_url(members_space), {"title": "T", "body": "B", "kind": "question"}
    )

    form = response.context["form"]
    assert form.non_field_errors() == ["You cannot post in Questions."]
    assert "You cannot post in Questions." in response.content.decode()


def test_new_topic_hidden_space_is_404(member_client, other_account_space):
    response = member_client.post(
        new_topic_url(other_account_space),
        {"title": "T", "body": "B", "kind": "question"},
    )

    assert response.status_code == 404
    assert Topic.objects.count() == 0


def test_new_topic_staff_without_member_rejected(staff_client, members_space):
    response = staff_client.post(
        new_topic_url(members_space),
        {"title": "T", "body": "B", "kind": "question"},
        follow=True,
    )

    assert response.redirect_chain == [(space_url(members_space), 302)]
    assert "Posting needs a member profile" in response.content.decode()
    assert Topic.objects.count() == 0


# Replies


def test_reply_post_redirects_to_reply(member_client, member, members_space):
    topic = factories.TopicFactory(space=members_space)

    response = member_client.post(reply_url(topic), {"body": "Use the API."})

    reply = Reply.objects.get()
    assert response.status_code == 302
    assert response.url.startswith(f"{topic_url(topic)}?before=")
    assert response.url.endswith(f"#reply-{reply.pk}")
    assert reply.author == member
    assert reply.body == "Use the API."


def test_reply_post_records_reply_posted(member_client, member, members_space):
    topic = factories.TopicFactory(space=members_space)

    member_client.post(reply_url(topic), {"body": "Use the API."})

    event = community_events().get(member=member)
    assert event.kind == "community.reply_posted"
    assert event.subject == Reply.objects.get()


def test_reply_post_shows_reply_after_redirect(member_client, members_space):
    topic = factories.TopicFactory(space=members_space)

    response = member_client.post(
        reply_url(topic), {"body": "Works for me."}, follow=True
    )

    html = response.content.decode()
    assert "Works for me." in html
    assert "Your reply is posted." in html


def test_reply_htmx_returns_reply_fragment(member_client, members_space):
    topic = factories.TopicFactory(space=members_space)

    response = member_client.post(
        reply_url(topic), {"body": "Fragment reply"}, **HTMX_HEADERS
    )

    html = response.content.decode()
    reply = Reply.objects.get()
    assert response.status_code == 200
    assert f'<li id="reply-{reply.pk}" class="post">' in html
    assert "Fragment reply" in html
    assert "<html" not in html
    assert '<span id="reply-count" hx-swap-oob="true">1 reply</span>' in html
    assert '<form id="reply-form"' in html


def test_reply_htmx_records_reply_posted(member_client, member, members_space):
    topic = factories.TopicFactory(space=members_space)

    member_client.post(reply_url(topic), {"body": "Fragment reply"}, **HTMX_HEADERS)

    assert community_events().get(member=member).kind == "community.reply_posted"


def test_reply_htmx_invalid_retargets_form(member_client, members_space):
    topic = factories.TopicFactory(space=members_space)

    response = member_client.post(reply_url(topic), {"body": " "}, **HTMX_HEADERS)

    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#reply-form"
    assert response["HX-Reswap"] == "outerHTML"
    assert "This field is required." in html
    assert Reply.objects.count() == 0


def test_reply_invalid_without_htmx_renders_topic(member_client, members_space):
    topic = factories.TopicFactory(space=members_space, title="Export fails")

    response = member_client.post(reply_url(topic), {"body": ""})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Export fails" in html
    assert "This field is required." in html
    assert Reply.objects.count() == 0


def test_reply_anonymous_redirected_to_sign_in(client, public_space):
    topic = factories.TopicFactory(space=public_space)

    response = client.post(reply_url(topic), {"body": "Hello"})

    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next={topic_url(topic)}"
    assert Reply.objects.count() == 0


def test_reply_anonymous_htmx_gets_client_redirect(client, public_space):
    topic = factories.TopicFactory(space=public_space)

    response = client.post(reply_url(topic), {"body": "Hello"}, **HTMX_HEADERS)

    expected = f"{reverse('account_login')}?next={topic_url(topic)}"
    assert response["HX-Redirect"] == expected
    assert Reply.objects.count() == 0


def test_reply_hidden_topic_is_404(member_client, other_account_space):
    topic = factories.TopicFactory(space=other_account_space)

    response = member_client.post(reply_url(topic), {"body": "Hello"})

    assert response.status_code == 404
    assert Reply.objects.count() == 0
    assert community_events().count() == 0


def test_reply_staff_without_member_creates_nothing(staff_client, members_space):
    topic = factories.TopicFactory(space=members_space)

    response = staff_client.post(reply_url(topic), {"body": "Hello"}, follow=True)

    assert response.redirect_chain == [(topic_url(topic), 302)]
    assert "Posting needs a member profile" in response.content.decode()
    assert Reply.objects.count() == 0


def test_reply_get_not_allowed(member_client, members_space):
    topic = factories.TopicFactory(space=members_space)

    response = member_client.get(reply_url(topic))

    assert response.status_code == 405


@pytest.mark.parametrize("kind", ["question", "discussion", "idea"])
def test_new_topic_member_kinds_accepted(member_client, members_space, kind):
    response = member_client.post(
        new_topic_url(members_space), {"title": "T", "body": "B", "kind": kind}
    )

    assert response.status_code == 302
    assert Topic.objects.get().kind == kind
