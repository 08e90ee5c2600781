"""Rows for every model the admin registers, and the admin URLs of each."""

import datetime
import itertools

from allauth.socialaccount.models import SocialApp
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from apps.advocacy.models import PointsEntry
from apps.advocacy.services import award_points
from apps.community.models import Reply, Space, Topic
from apps.lifecycle.models import (
    ActivityEvent,
    HealthBand,
    HealthScore,
    HealthScoreSnapshot,
)
from apps.membership.models import (
    Account,
    AccountAffiliation,
    AccountArr,
    AccountIdentityProvider,
    AuditEntry,
    ConsentGrant,
    ConsentPurpose,
    Member,
)
from apps.portal.models import (
    Article,
    ArticleFeedback,
    ArticleReviewReminder,
    ArticleVersion,
    BusinessCalendar,
    BusinessHoliday,
    Case,
    CaseAttachment,
    CaseAttempt,
    CaseMessage,
    CaseStatusChange,
    CaseTopic,
    Certification,
    ContentGap,
    Course,
    CourseEnrolment,
    EscalationOffer,
    HubItem,
    LearningPath,
    Lesson,
    MemberCertificate,
    OnboardingPath,
    OnboardingProgress,
    OnboardingStep,
    PathCompletion,
    Quiz,
    QuizAttempt,
    QuizQuestion,
    Suggestion,
    UseCaseHub,
)
from apps.portal.services.knowledge import ArticleInput, create_article
from tests import factories

# Every model that the apps register in the admin.
ADMIN_MODELS = [
    Account,
    Member,
    AccountAffiliation,
    AccountArr,
    ConsentPurpose,
    ConsentGrant,
    AuditEntry,
    ActivityEvent,
    HealthScore,
    HealthScoreSnapshot,
    Space,
    Topic,
    Reply,
    OnboardingStep,
    PointsEntry,
    Course,
    LearningPath,
    Lesson,
    Quiz,
    QuizQuestion,
    Certification,
    MemberCertificate,
    CourseEnrolment,
    QuizAttempt,
    OnboardingPath,
    OnboardingProgress,
    PathCompletion,
    UseCaseHub,
    HubItem,
    Article,
    ArticleVersion,
    ArticleFeedback,
    ArticleReviewReminder,
    CaseAttempt,
    Suggestion,
    ContentGap,
    BusinessCalendar,
    BusinessHoliday,
    # SlaPolicy is left out: one row per priority allows only four rows.
    # tests/portal/cases/test_admin.py checks its screens.
    # DataSourceRun is left out: its rows are keyed by data source and
    # origin. tests/reporting/test_data_freshness.py checks its screens.
    CaseTopic,
    Case,
    CaseMessage,
    CaseAttachment,
    CaseStatusChange,
    EscalationOffer,
]


_numbers = itertools.count()


def make_admin_rows(count: int) -> None:
    """Create `count` rows of every admin model, each with its own related rows.

    Each row gets its own owner, account, member and space, so a changelist
    that fetches related rows one at a time issues more queries as rows are
    added.
    """
    today = timezone.localdate()
    now = timezone.now()
    for _ in range(count):
        owner = factories.StaffFactory()
        account = factories.AccountFactory(owner=owner, renewal_date=today)
        member = factories.MemberFactory(account=account)
        factories.MemberFactory(account=None)
        HealthScore.objects.create(
            member=member, score=55, band=HealthBand.YELLOW, computed_at=now
        )
        HealthScoreSnapshot.objects.create(
            member=member, day=today, score=55, band=HealthBand.YELLOW
        )
        space = factories.SpaceFactory(
            visibility=Space.Visibility.ACCOUNT, account=account
        )
        topic = factories.TopicFactory(space=space, author=member)
        factories.ReplyFactory(topic=topic, author=member)
        event = factories.ActivityEventFactory(member=member)
        award_points(member=member, points=10, reason="reply_posted", event=event)
        factories.OnboardingStepFactory()

        number = next(_numbers)
        other_account = factories.AccountFactory(parent=account)
        AccountAffiliation.objects.create(
            member=member, account=other_account, relationship="partner"
        )
        AccountArr.objects.create(account=account, effective_on=today, arr=1000)
        social_app = SocialApp.objects.create(
            provider="openid_connect",
            provider_id=f"idp-{number}",
            name=f"IdP {number}",
            client_id=f"client-{number}",
        )
        AccountIdentityProvider.objects.create(account=account, social_app=social_app)
        purpose = ConsentPurpose.objects.create(
            key=f"purpose-{number}", name=f"Purpose {number}", description="Test."
        )
        ConsentGrant.objects.create(
            member=member,
            purpose=purpose,
            source="privacy_page",
            evidence="Ticked the box.",
            granted_at=now,
            recorded_by=owner,
        )
        AuditEntry.objects.create(
            actor=owner, action="member.merged", member=member, account=account
        )
        path = OnboardingPath.objects.create(
            title=f"Path {number}", slug=f"path-{number}", is_published=True
        )
        path.accounts.add(account)
        step = OnboardingStep.objects.create(
            path=path, title=f"Tick {number}", completion="manual"
        )
        OnboardingProgress.objects.create(
            member=member, step=step, completed_at=now, how="manual"
        )
        PathCompletion.objects.create(member=member, path=path, completed_at=now)
        hub = UseCaseHub.objects.create(
            title=f"Hub {number}", slug=f"hub-{number}", is_published=True
        )
        HubItem.objects.create(
            hub=hub,
            content_type=ContentType.objects.get_for_model(topic),
            object_id=topic.pk,
        )
        make_course_rows(member=member, number=number)
        _make_knowledge_rows(number=number, owner=owner, member=member, now=now)
        _make_case_rows(number=number, member=member, topic=topic, staff=owner)


def _make_case_rows(*, number: int, member, topic, staff) -> None:
    """Create one row of every case model, with related rows of their own."""
    calendar = BusinessCalendar.objects.create(
        name=f"Calendar {number}",
        time_zone="Europe/Berlin",
        weekdays=[0, 1, 2, 3, 4],
        opens_at=datetime.time(9),
        closes_at=datetime.time(17),
    )
    BusinessHoliday.objects.create(
        calendar=calendar, date=datetime.date(2026, 12, 25), name="Christmas"
    )
    case_topic = CaseTopic.objects.create(name=f"Area {number}", slug=f"area-{number}")
    case = Case.objects.create(
        member=member,
        account=member.account,
        topic=case_topic,
        subject=f"Export fails {number}",
        body="Stops at 50 percent.",
        assignee=staff,
        created_at=timezone.now(),
    )
    message = CaseMessage.objects.create(case=case, author=staff, body="On it.")
    CaseAttachment.objects.create(
        case=case,
        message=message,
        file=f"cases/2026/12/{number}.txt",
        original_name="log.txt",
        content_type="text/plain",
        size=10,
        uploaded_by=staff,
    )
    CaseStatusChange.objects.create(
        case=case, to_status="new", changed_by=member.user, changed_at=timezone.now()
    )
    EscalationOffer.objects.create(
        topic=topic, member=member, offered_at=timezone.now()
    )


def _make_knowledge_rows(*, number: int, owner, member, now) -> None:
    article = create_article(
        data=ArticleInput(
            title=f"Acme guide {number}", body="Steps.", owner_id=owner.pk
        ),
        edited_by=owner,
    )
    ArticleFeedback.objects.create(article=article, member=member, helpful=True)
    ArticleReviewReminder.objects.create(
        owner=owner, sent_on=now.date(), article_count=1
    )
    attempt = CaseAttempt.objects.create(member=member, started_at=now, query="acme")
    Suggestion.objects.create(attempt=attempt, article=article, shown_at=now)
    ContentGap.objects.create(
        key=f"search:acme {number}",
        title=f"acme {number}",
        source=ContentGap.Source.SEARCH,
        first_seen_at=now,
        last_seen_at=now,
        owner=owner,
        article=article,
    )


def make_course_rows(*, member: Member, number: int) -> None:
    """Create a course with a lesson, quiz, certification, enrolment and
    certificate for the member."""
    now = timezone.now()
    course = Course.objects.create(
        title=f"Course {number}", slug=f"course-{number}", is_published=True
    )
    path = LearningPath.objects.create(title=f"Path {number}", slug=f"path-{number}")
    path.courses.add(course)
    module = course.modules.create(title=f"Module {number}")
    Lesson.objects.create(module=module, title=f"Lesson {number}", slug="lesson")
    quiz = Quiz.objects.create(course=course, title=f"Quiz {number}")
    question = QuizQuestion.objects.create(quiz=quiz, prompt="Which one?")
    question.choices.create(text="This one", is_correct=True)
    certification = Certification.objects.create(
        course=course, title=f"Certification {number}", slug=f"cert-{number}"
    )
    enrolment = CourseEnrolment.objects.create(
        member=member, course=course, started_at=now, completed_at=now
    )
    attempt = QuizAttempt.objects.create(
        enrolment=enrolment,
        quiz=quiz,
        number=1,
        answers={str(question.pk): []},
        score=100,
        passed=True,
        submitted_at=now,
    )
    MemberCertificate.objects.create(
        member=member,
        certification=certification,
        attempt=attempt,
        holder_name=f"Holder {number}",
        issued_at=now,
        expires_at=now,
    )


def changelist_url(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def change_url(obj) -> str:
    return f"{changelist_url(type(obj))}{obj.pk}/change/"
