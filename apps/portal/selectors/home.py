"""Reads for the member's home page, each a fixed number of queries.

The page is personal by role and lifecycle stage: `get_home_layout` orders
its panels and picks the headline, and each `list_`/`get_` function below
fills one panel whatever the size of the member's history.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import CharField, Exists, F, OuterRef
from django.db.models.functions import Cast

from apps.community.models import CommunityEvent, Subscription, Topic
from apps.community.selectors.access import filter_visible_topics
from apps.community.selectors.events import list_upcoming_events
from apps.community.selectors.questions import list_unanswered_questions
from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Member
from apps.portal.models import Article, Case, Course, CourseEnrolment

OPEN_CASE_STATUSES = (Case.Status.NEW, Case.Status.OPEN, Case.Status.WAITING)
ARTICLE_VIEWED_KIND = "portal.article_viewed"
HOME_LIST_LIMIT = 5
HOME_EVENT_LIMIT = 3

Stage = Member.LifecycleStage
Role = Member.Role

# The panels of the home page in the order each lifecycle stage needs them
# most: a new member starts with onboarding, an adopting one with learning,
# an established one with the community, and one at risk with support.
STAGE_PANEL_ORDER = {
    Stage.ONBOARDING: ["onboarding", "next", "events", "cases", "community", "score"],
    Stage.ADOPTING: ["next", "onboarding", "events", "community", "cases", "score"],
    Stage.ESTABLISHED: ["community", "events", "next", "score", "cases", "onboarding"],
    Stage.AT_RISK: ["cases", "onboarding", "next", "events", "community", "score"],
    Stage.CHURNED: ["next", "community", "events", "cases", "onboarding", "score"],
}
STAGE_HEADLINES = {
    Stage.ONBOARDING: "Finish your onboarding path to get the most from the product.",
    Stage.ADOPTING: "Keep learning: your next course and the articles peers found "
    "helpful are below.",
    Stage.ESTABLISHED: "See what your peers are discussing, and share what you know.",
    Stage.AT_RISK: "Your open cases and your success manager are one click away.",
    Stage.CHURNED: "Catch up on what changed: courses, articles and community events.",
}
ONBOARDING_DONE_HEADLINE = (
    "You finished every onboarding path assigned to you. Your next course and "
    "the use-case hubs are below."
)


@dataclass(frozen=True)
class HomeLayout:
    """The panels of one member's home page, in order, and its headline."""

    panels: list[str]
    headline: str
    shows_team: bool
    shows_unanswered: bool


def get_home_layout(*, member: Member) -> HomeLayout:
    """Return the panel order and extras for the member's role and lifecycle stage.

    Account admins also see their team's onboarding, and contributors and
    champions the questions waiting for a first reply.
    """
    stage = member.lifecycle_stage
    return HomeLayout(
        panels=list(STAGE_PANEL_ORDER.get(stage, STAGE_PANEL_ORDER[Stage.ONBOARDING])),
        headline=STAGE_HEADLINES.get(stage, STAGE_HEADLINES[Stage.ONBOARDING]),
        shows_team=member.role == Role.ADMIN and member.account_id is not None,
        shows_unanswered=member.role in (Role.CONTRIBUTOR, Role.CHAMPION),
    )


def get_home_headline(*, layout: HomeLayout, paths: Sequence) -> str:
    """Return the headline, which urges onboarding only while a path is unfinished.

    `paths` holds the member's path progress rows (each with `is_complete`).
    A member in the onboarding stage without an unfinished path gets the done
    message in place of "Finish your onboarding path".
    """
    if layout.headline != STAGE_HEADLINES[Stage.ONBOARDING]:
        return layout.headline
    if any(not progress.is_complete for progress in paths):
        return layout.headline
    return ONBOARDING_DONE_HEADLINE


def get_next_course(*, member: Member) -> Course | None:
    """Return the course to take next, or None.

    A published course the member has not completed and whose prerequisites
    they have all completed; one they already started comes first, then the
    catalogue order. One query.
    """
    completed = CourseEnrolment.objects.filter(
        member=member, completed_at__isnull=False
    ).values("course_id")
    unmet_prerequisites = Course.prerequisites.through.objects.filter(
        from_course_id=OuterRef("pk")
    ).exclude(to_course_id__in=completed)
    started = CourseEnrolment.objects.filter(member=member, course_id=OuterRef("pk"))
    return (
        Course.objects.filter(is_published=True)
        .exclude(pk__in=completed)
        .filter(~Exists(unmet_prerequisites))
        .annotate(is_started=Exists(started))
        .order_by("-is_started", "position", "title", "pk")
        .first()
    )


def get_next_article(*, member: Member) -> Article | None:
    """Return a helpful published article the member has not read, or None.

    Helpful means more "yes" than "no" votes on "was this helpful". Read
    means a `portal.article_viewed` event of the member about it. One query.
    """
    viewed = ActivityEvent.objects.filter(
        member=member,
        kind=ARTICLE_VIEWED_KIND,
        subject_type__app_label="portal",
        subject_type__model="article",
        subject_id=Cast(OuterRef("pk"), output_field=CharField()),
    )
    return (
        Article.objects.filter(
            is_published=True, helpful_count__gt=F("not_helpful_count")
        )
        .filter(~Exists(viewed))
        .order_by("-helpful_count", "-view_count", "title", "pk")
        .first()
    )


def list_open_cases(*, member: Member) -> list[Case]:
    """Return up to HOME_LIST_LIMIT + 1 of the member's own open cases, newest first.

    The extra row tells the page that there are more.
    """
    cases = Case.objects.filter(member=member, status__in=OPEN_CASE_STATUSES)
    return list(cases.order_by("-created_at", "-id")[: HOME_LIST_LIMIT + 1])


def list_watched_topics(*, member: Member) -> list[Topic]:
    """Return the watched topics the member may still read, latest activity first."""
    watched = Subscription.objects.filter(member=member, topic__isnull=False).values(
        "topic_id"
    )
    topics = Topic.objects.filter(
        pk__in=watched, is_hidden=False, deleted_at__isnull=True
    ).select_related("space")
    topics = filter_visible_topics(topics, member, False)
    return list(topics.order_by("-last_activity_at", "-id")[: HOME_LIST_LIMIT + 1])


def list_home_events(*, member: Member) -> list[CommunityEvent]:
    """Return the next events the member may see, not cancelled, soonest first."""
    events = list_upcoming_events(member=member).filter(cancelled_at__isnull=True)
    return list(events[:HOME_EVENT_LIMIT])


def list_unanswered_for_member(*, member: Member) -> list[Topic]:
    """Return questions others asked that still wait for a first reply."""
    questions = list_unanswered_questions(member=member).exclude(author=member)
    return list(questions[:HOME_LIST_LIMIT])
