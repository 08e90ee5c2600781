"""Editing posts, quoting, @mentions and tags."""

import re

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from apps.community.models import Mention, PostRevision, Reply, Tag, Topic
from apps.community.selectors import (
    can_moderate_space,
    can_view_space,
    is_community_moderator,
)
from apps.community.services import (
    MAX_BODY_LENGTH,
    MAX_TITLE_LENGTH,
    _clean_text,
)
from apps.lifecycle.delivery.notifications import notify_member
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from rm6.errors import DomainError

MAX_TAGS_PER_TOPIC = 5
# Each mention costs a query or two and may send a notification, so a post
# may name only this many members.
MAX_MENTIONS_PER_POST = 20

# The form the mention search inserts: @[Display Name](member:42).
MEMBER_MENTION = re.compile(r"@\[([^\]\n]{1,150})\]\(member:(\d{1,12})\)")
# A typed handle: @ and the slug of a display name, "@jane-doe" for
# "Jane Doe". A word character before the @ marks an email address instead.
HANDLE_MENTION = re.compile(r"(?<![\w@/])@([a-z0-9][a-z0-9-]{0,99})", re.IGNORECASE)


def _topic_of(post: Topic | Reply) -> Topic:
    return post if isinstance(post, Topic) else post.topic


def _moderates(user, post: Topic | Reply) -> bool:
    member = get_member_for_user(user)
    space = _topic_of(post).space
    return can_moderate_space(member=member, space=space, is_staff=user.is_staff)


def _is_author(user, post: Topic | Reply) -> bool:
    member = get_member_for_user(user)
    return member is not None and post.author_id == member.pk


def can_edit_post(*, user, post: Topic | Reply) -> bool:
    """Return whether the user may edit the topic or reply.

    Authors may edit their own posts at any time unless the topic is locked
    or a moderator hid the post. Moderators of the post's space, champions
    and staff may edit every post that is not deleted.
    """
    if not user.is_authenticated or post.deleted_at is not None:
        return False
    if _moderates(user, post):
        return True
    topic = _topic_of(post)
    if topic.is_locked or post.is_hidden:
        return False
    return _is_author(user, post)


def can_view_revisions(*, user, post: Topic | Reply) -> bool:
    """Return whether the user may read the post's edit history."""
    if not user.is_authenticated:
        return False
    return _is_author(user, post) or _moderates(user, post)


def _check_can_edit(user, post: Topic | Reply) -> None:
    if not can_edit_post(user=user, post=post):
        raise DomainError("You cannot edit this post.", code="forbidden")


@transaction.atomic
def edit_topic(*, topic: Topic, editor, title: str, body: str) -> Topic:
    """Change a topic's title and body, keeping the old text as a revision."""
    topic = Topic.objects.select_for_update().select_related("space").get(pk=topic.pk)
    _check_can_edit(editor, topic)
    title = _clean_text(title, name="title", max_length=MAX_TITLE_LENGTH)
    body = _clean_text(body, name="body", max_length=MAX_BODY_LENGTH)
    if title == topic.title and body == topic.body:
        return topic

    PostRevision.objects.create(
        topic=topic, editor=editor, title=topic.title, body=topic.body
    )
    topic.title = title
    topic.body = body
    topic.edited_at = timezone.now()
    topic.save(update_fields=["title", "body", "edited_at"])

    if topic.author is not None:
        record_mentions(post=topic, author=topic.author)
    _record_edit_event(editor, kind="community.topic_edited", post=topic, topic=topic)
    return topic


@transaction.atomic
def edit_reply(*, reply: Reply, editor, body: str) -> Reply:
    """Change a reply's body, keeping the old text as a revision."""
    reply = (
        Reply.objects.select_for_update(of=("self",))
        .select_related("topic__space")
        .get(pk=reply.pk)
    )
    _check_can_edit(editor, reply)
    body = _clean_text(body, name="body", max_length=MAX_BODY_LENGTH)
    if body == reply.body:
        return reply

    PostRevision.objects.create(reply=reply, editor=editor, body=reply.body)
    reply.body = body
    reply.edited_at = timezone.now()
    reply.save(update_fields=["body", "edited_at"])

    if reply.author is not None:
        record_mentions(post=reply, author=reply.author)
    _record_edit_event(
        editor, kind="community.reply_edited", post=reply, topic=reply.topic
    )
    return reply


def _record_edit_event(editor, *, kind: str, post: Topic | Reply, topic: Topic):
    member = get_member_for_user(editor)
    # NOTE: activity events belong to members, so an edit by a staff user
    # without a member profile leaves only its PostRevision row.
    if member is None:
        return
    record_activity(
        member=member,
        kind=kind,
        subject=post,
        properties={
            "topic_id": topic.pk,
            "space": topic.space.slug,
            "is_own_post": post.author_id == member.pk,
        },
    )


def list_post_revisions(*, post: Topic | Reply):
    """Return the post's revisions, newest first, with their editors."""
    return post.revisions.select_related("editor").order_by("-created_at", "-id")


# Quoting


def get_quotable_reply(*, topic: Topic, reply_id: int | None) -> Reply | None:
    """Return the reply to quote, which must be a visible reply in this topic."""
    if reply_id is None:
        return None
    quoted = (
        Reply.objects.filter(
            pk=reply_id, topic_id=topic.pk, is_hidden=False, deleted_at__isnull=True
        )
        .select_related("author__user")
        .first()
    )
    if quoted is None:
        raise DomainError(
            f"Reply {reply_id} is not a visible reply in this topic; "
            "quote a reply from the same topic.",
            field="quoted_reply",
        )
    return quoted


# Mentions


def _resolve_handle(handle: str) -> Member | None:
    """Return the only active member whose display name slugifies to the handle."""
    handle = handle.lower().strip("-")
    first_word = handle.split("-")[0]
    if not first_word:
        return None
    candidates = Member.objects.filter(
        display_name__istartswith=first_word,
        deactivated_at__isnull=True,
        anonymised_at__isnull=True,
    ).select_related("user")[:50]
    matches = [m for m in candidates if slugify(m.display_name) == handle]
    return matches[0] if len(matches) == 1 else None


def find_mentioned_members(body: str) -> list[Member]:
    """Return the active members the text mentions, in order of first mention.

    `@[Name](member:ID)` names a member by id, whatever the name says, and
    `@handle` names the one member whose display name slugifies to the
    handle. A handle that matches no member, or several, mentions nobody.
    """
    ids: list[int] = []
    for match in MEMBER_MENTION.finditer(body):
        ids.append(int(match.group(2)))
    by_id = Member.objects.filter(
        pk__in=ids[:MAX_MENTIONS_PER_POST],
        deactivated_at__isnull=True,
        anonymised_at__isnull=True,
    ).select_related("user")
    members = {member.pk: member for member in by_id}
    found = [members[pk] for pk in dict.fromkeys(ids) if pk in members]

    remaining = MEMBER_MENTION.sub(" ", body)
    handles = dict.fromkeys(
        match.group(1).lower() for match in HANDLE_MENTION.finditer(remaining)
    )
    for handle in list(handles)[:MAX_MENTIONS_PER_POST]:
        member = _resolve_handle(handle)
        if member is not None and member.pk not in {m.pk for m in found}:
            found.append(member)
    return found[:MAX_MENTIONS_PER_POST]


def record_mentions(*, post: Topic | Reply, author: Member) -> list[Mention]:
    """Store the post's new mentions and notify each newly mentioned member.

    A member is notified only the first time a post mentions them, because
    the Mention row is unique per member and post, so editing a post never
    notifies anyone twice. Members who cannot read the post's space, and the
    author, are neither stored nor notified. Return the new Mention rows.
    """
    topic = _topic_of(post)
    created_mentions = []
    for member in find_mentioned_members(post.body):
        if member.pk == author.pk:
            continue
        if not can_view_space(member=member, space=topic.space):
            continue
        post_field = "topic" if isinstance(post, Topic) else "reply"
        mention, created = Mention.objects.get_or_create(
            member=member, **{post_field: post}
        )
        if not created:
            continue
        created_mentions.append(mention)
        notify_member(
            member=member,
            kind="community.mention",
            title=f"{author.name} mentioned you in {topic.title}",
            url=post.get_absolute_url(),
            subject=post,
        )
    return created_mentions


# Tags


def _clean_tag_names(names: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    if len(cleaned) > MAX_TAGS_PER_TOPIC:
        raise DomainError(
            f"A topic has at most {MAX_TAGS_PER_TOPIC} tags; "
            f"{len(cleaned)} were given.",
            field="tags",
        )
    return cleaned


def _get_or_create_tags(names: list[str], *, user) -> list[Tag]:
    tags = []
    for name in names:
        slug = slugify(name)
        if not slug:
            raise DomainError(
                f"The tag {name!r} has no letters or digits.", field="tags"
            )
        tag = Tag.objects.filter(slug=slug).first()
        if tag is None:
            member = get_member_for_user(user)
            if not is_community_moderator(member=member, is_staff=user.is_staff):
                raise DomainError(
                    f"There is no tag {name!r}; pick an existing tag. "
                    "Champions and staff create new ones.",
                    field="tags",
                )
            tag, _ = Tag.objects.get_or_create(slug=slug, defaults={"name": name})
        tags.append(tag)
    return tags


@transaction.atomic
def set_topic_tags(*, topic: Topic, editor, names: list[str]) -> list[Tag]:
    """Replace the topic's tags and adjust each tag's topic count.

    Members pick existing tags by name or slug; champions and staff may also
    name new tags, which are created. The topic row is locked so that two
    concurrent changes cannot both count the same added tag.
    """
    topic = Topic.objects.select_for_update().get(pk=topic.pk)
    _check_can_edit(editor, topic)
    tags = _get_or_create_tags(_clean_tag_names(names), user=editor)

    current = set(topic.tags.values_list("pk", flat=True))
    wanted = {tag.pk for tag in tags}
    added = wanted - current
    removed = current - wanted
    if removed:
        topic.tags.remove(*removed)
        Tag.objects.filter(pk__in=removed, topic_count__gt=0).update(
            topic_count=F("topic_count") - 1
        )
    if added:
        topic.tags.add(*added)
        Tag.objects.filter(pk__in=added).update(topic_count=F("topic_count") + 1)
    return tags
