"""Factories for knowledge base and deflection rows, shared by the
knowledge, deflection and gaps tests."""

from datetime import timedelta

from django.utils import timezone

from apps.community.models import Topic
from apps.membership.models import Member
from apps.portal.models import Article, Case, CaseAttempt, CaseTopic, Suggestion
from apps.portal.services.knowledge import ArticleInput, create_article
from tests import factories


def make_article(
    *,
    title: str = "Export a report",
    body: str = "Open Reports, choose Export and pick CSV.",
    summary: str = "",
    audience: str = Article.Audience.MEMBERS,
    is_published: bool = True,
    owner=None,
    review_interval_days: int = 180,
) -> Article:
    """Create an article through the service, so it has a version and vector."""
    owner = owner or factories.StaffFactory()
    return create_article(
        data=ArticleInput(
            title=title,
            body=body,
            summary=summary,
            audience=audience,
            owner_id=owner.pk,
            review_interval_days=review_interval_days,
            is_published=is_published,
        ),
        edited_by=owner,
    )


def make_solved_question(*, title: str, space=None, body: str = "How?") -> Topic:
    """Create a question topic with an accepted reply."""
    topic = factories.TopicFactory(
        title=title,
        body=body,
        kind=Topic.Kind.QUESTION,
        **({"space": space} if space else {}),
    )
    reply = factories.ReplyFactory(topic=topic, body="Do it this way.")
    Topic.objects.filter(pk=topic.pk).update(
        accepted_reply=reply, solved_at=timezone.now()
    )
    topic.refresh_from_db()
    return topic


def make_attempt(
    *, member: Member | None = None, started_at=None, **fields
) -> CaseAttempt:
    member = member or factories.MemberFactory()
    return CaseAttempt.objects.create(
        member=member, started_at=started_at or timezone.now(), **fields
    )


def make_suggestion(
    *, attempt: CaseAttempt, article: Article | None = None, topic=None, **fields
) -> Suggestion:
    if article is None and topic is None:
        article = make_article()
    return Suggestion.objects.create(
        attempt=attempt,
        article=article,
        topic=topic,
        shown_at=fields.pop("shown_at", attempt.started_at),
        **fields,
    )


def make_case(
    *, member: Member, created_at=None, topic: CaseTopic | None = None
) -> Case:
    return Case.objects.create(
        member=member,
        account=member.account,
        topic=topic,
        subject="Export fails",
        body="The export button does nothing.",
        created_at=created_at or timezone.now(),
    )


def make_case_topic(name: str = "Reporting") -> CaseTopic:
    topic, _ = CaseTopic.objects.get_or_create(
        slug=name.lower().replace(" ", "-"), defaults={"name": name}
    )
    return topic


DAY = timedelta(hours=24)
