"""Reads of support cases, all through the one visibility rule.

`visible_cases` decides who sees which case: the member who filed it, the
admins of the account it was filed under, and staff. Pages, the API,
attachment downloads and search all start from it, and a case someone may
not see is "not found" for them, so its existence does not leak.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Case as DbCase
from django.db.models import F, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from apps.community.models import Topic
from apps.community.selectors import access_topic
from apps.membership.models import Account, Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.roles import has_capability
from apps.portal.models import Case, CaseAttachment, CaseMessage, EscalationOffer

OPEN_STATUSES = (Case.Status.NEW, Case.Status.OPEN, Case.Status.WAITING)
MEMBER_PRIORITIES = (Case.Priority.LOW, Case.Priority.NORMAL, Case.Priority.HIGH)
# Members of these CS tiers may file urgent cases too; staff set any priority.
URGENT_CS_TIERS = (Account.CsTier.HIGH_TOUCH,)


def get_admin_account(user) -> Account | None:
    """Return the account whose cases the user may see as its admin, or None."""
    member = get_member_for_user(user)
    if member is None or member.account_id is None:
        return None
    account = member.account
    if has_capability(user, "view_account_cases", account):
        return account
    return None


def visible_cases(user) -> QuerySet[Case]:
    """Return the cases the user may see: the one rule every read goes through.

    Staff see every case. A member sees the cases they filed, and an account
    admin also every case filed under their account. Anyone else, and a
    deactivated member, sees none.
    """
    cases = Case.objects.all()
    if not user.is_authenticated or not user.is_active:
        return cases.none()
    if user.is_staff:
        return cases
    member = get_member_for_user(user)
    if member is None or member.is_deactivated or member.anonymised_at is not None:
        return cases.none()
    rule = Q(member_id=member.pk)
    account = get_admin_account(user)
    if account is not None:
        rule |= Q(account_id=account.pk)
    return cases.filter(rule)


def access_case(*, user, case_id: int) -> Case:
    """Return a case the user may see, with its people and topic loaded.

    Raise Case.DoesNotExist when it does not exist or the user may not see
    it, so both look the same to the caller.
    """
    return (
        visible_cases(user)
        .select_related("member__user", "account__owner", "topic", "assignee")
        .get(pk=case_id)
    )


@dataclass(frozen=True)
class CaseFilters:
    """List filters; None and empty values mean "any"."""

    status: str = ""
    priority: str = ""
    topic_id: int | None = None
    assignee: str = ""  # a staff user id, "me" or "none"
    is_breached: bool | None = None
    query: str = ""
    sort: str = "newest"  # or "due"


def _next_due_at():
    # The due time a case works towards now: the first response until it
    # happens, then the resolution.
    return DbCase(
        When(first_responded_at__isnull=True, then=F("first_response_due_at")),
        default=F("resolution_due_at"),
    )


def list_cases(*, user, filters: CaseFilters, scope: str = "mine") -> QuerySet[Case]:
    """Return the visible cases that match the filters, in the asked order.

    `scope` "mine" keeps the cases the user filed, "account" those of the
    account the user administers, and "all" every visible case.
    """
    cases = visible_cases(user).select_related(
        "member__user", "topic", "assignee", "account"
    )
    member = get_member_for_user(user)
    if scope == "mine":
        cases = cases.filter(member_id=member.pk) if member else cases.none()
    elif scope == "account":
        account = get_admin_account(user)
        cases = cases.filter(account_id=account.pk) if account else cases.none()

    if filters.status:
        cases = cases.filter(status=filters.status)
    if filters.priority:
        cases = cases.filter(priority=filters.priority)
    if filters.topic_id:
        cases = cases.filter(topic_id=filters.topic_id)
    if filters.assignee == "none":
        cases = cases.filter(assignee__isnull=True)
    elif filters.assignee == "me":
        cases = cases.filter(assignee_id=user.pk)
    elif filters.assignee.isdigit():
        cases = cases.filter(assignee_id=int(filters.assignee))
    breached = Q(first_response_breached_at__isnull=False) | Q(
        resolution_breached_at__isnull=False
    )
    if filters.is_breached is True:
        cases = cases.filter(breached)
    elif filters.is_breached is False:
        cases = cases.exclude(breached)
    if filters.query.strip():
        cases = cases.filter(search_vector=_search_query(filters.query))

    if filters.sort == "due":
        # Cases still being worked on come first, then solved and closed ones.
        is_done = DbCase(
            When(status__in=OPEN_STATUSES, then=Value(False)), default=Value(True)
        )
        return cases.annotate(next_due_at=_next_due_at(), is_done=is_done).order_by(
            "is_done", F("next_due_at").asc(nulls_last=True), "id"
        )
    return cases.order_by("-created_at", "-id")


def _search_query(text: str):
    from django.contrib.postgres.search import SearchQuery

    return SearchQuery(text.strip(), search_type="websearch", config="english")


def list_case_messages(*, case: Case, user) -> QuerySet[CaseMessage]:
    """Return the case's thread, oldest first; internal notes only for staff."""
    messages = case.messages.select_related("author").prefetch_related(
        Prefetch("attachments", queryset=CaseAttachment.objects.order_by("id"))
    )
    if not user.is_staff:
        messages = messages.filter(visibility=CaseMessage.Visibility.PUBLIC)
    return messages.order_by("created_at", "id")


def list_case_attachments(*, case: Case, user) -> QuerySet[CaseAttachment]:
    """Return the case's files; those on internal notes only for staff."""
    attachments = case.attachments.select_related("message").order_by("id")
    if not user.is_staff:
        attachments = attachments.exclude(
            message__visibility=CaseMessage.Visibility.INTERNAL
        )
    return attachments


def access_case_attachment(*, user, case_id: int, attachment_id: int):
    """Return an attachment of a case the user may see.

    Raise CaseAttachment.DoesNotExist for a file on an internal note when
    the user is not staff, as for a case they may not see.
    """
    case_ids = visible_cases(user).filter(pk=case_id).values("pk")
    attachments = CaseAttachment.objects.filter(case_id__in=case_ids)
    if not user.is_staff:
        attachments = attachments.exclude(
            message__visibility=CaseMessage.Visibility.INTERNAL
        )
    return attachments.get(pk=attachment_id)


def list_member_priorities(member: Member | None) -> list[str]:
    """Return the priorities a member may pick when filing a case."""
    priorities = list(MEMBER_PRIORITIES)
    if (
        member is not None
        and member.account_id is not None
        and member.account.cs_tier in URGENT_CS_TIERS
    ):
        priorities.append(Case.Priority.URGENT)
    return priorities


def list_staff_assignees() -> QuerySet:
    """Return the active staff users a case can be assigned to."""
    return (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .order_by("email", "pk")
    )


# Escalation of community questions --------------------------------------------


def get_escalation_delay() -> timedelta:
    return timedelta(hours=settings.RM6_ESCALATION_AFTER_HOURS)


def get_escalation_rejection_reason(
    *, topic: Topic, member: Member | None, now: datetime | None = None
) -> str | None:
    """Return why the member may not turn the question into a support case now.

    Return None when the member may. Only the question's author may, once
    the question has been published for the escalation delay with no reply
    from anyone else. An existing case is checked apart, because a unique
    constraint enforces one case per question.
    """
    now = now or timezone.now()
    if member is None or topic.author_id != member.pk:
        return f"Only the author of question {topic.pk} can escalate it to support."
    if topic.kind != Topic.Kind.QUESTION:
        article = (
            "an" if topic.kind in {Topic.Kind.IDEA, Topic.Kind.ANNOUNCEMENT} else "a"
        )
        return (
            f"Topic {topic.pk} is {article} {topic.get_kind_display().lower()}, "
            "not a question; only questions can be escalated to support."
        )
    if topic.is_hidden or topic.deleted_at is not None:
        return f"Question {topic.pk} is hidden or deleted, so it cannot be escalated."
    if topic.first_reply_at is not None:
        return (
            f"Question {topic.pk} has a reply already, so it cannot be escalated; "
            "file a new case instead if the reply did not help."
        )
    eligible_at = topic.created_at + get_escalation_delay()
    if eligible_at > now:
        return (
            f"Question {topic.pk} can be escalated from {eligible_at.isoformat()}, "
            f"once it has had no reply for {settings.RM6_ESCALATION_AFTER_HOURS} "
            "hours."
        )
    return None


def is_topic_escalatable(
    *, topic: Topic, member: Member | None, now: datetime | None = None
) -> bool:
    """Return whether the member may turn the question into a support case now."""
    return get_escalation_rejection_reason(topic=topic, member=member, now=now) is None


@dataclass(frozen=True)
class EscalationState:
    """The support choice that the topic page shows a question's author."""

    is_available: bool
    case: Case | None = None


def get_escalation_state(*, topic: Topic, user) -> EscalationState | None:
    """Return the support choice for the topic's viewer, or None to show nothing.

    At most one query, and none unless the viewer is the topic's author.
    """
    member = get_member_for_user(user)
    if member is None or topic.author_id != member.pk:
        return None
    existing = (
        Case.objects.filter(source_topic_id=topic.pk, member_id=member.pk)
        .only("id", "subject", "status")
        .first()
        if topic.kind == Topic.Kind.QUESTION
        else None
    )
    if existing is not None:
        return EscalationState(is_available=False, case=existing)
    if not is_topic_escalatable(topic=topic, member=member):
        return None
    return EscalationState(is_available=True)


def access_escalatable_topic(*, topic_id: int, member: Member | None) -> Topic:
    """Return a question its author may escalate now and has not escalated yet.

    Raise Topic.DoesNotExist otherwise, so other members learn nothing.
    """
    topic = access_topic(pk=topic_id, member=member)
    if not is_topic_escalatable(topic=topic, member=member):
        raise Topic.DoesNotExist
    if Case.objects.filter(source_topic_id=topic.pk).exists():
        raise Topic.DoesNotExist
    return topic


def list_questions_to_offer(*, now: datetime, limit: int) -> list[Topic]:
    """Return questions that just passed the escalation delay unanswered.

    Questions older than the delay plus a week are left out, so turning the
    feature on does not notify the authors of every old question.
    """
    passed_at = now - get_escalation_delay()
    offered = EscalationOffer.objects.values("topic_id")
    escalated = Case.objects.filter(source_topic__isnull=False).values(
        "source_topic_id"
    )
    return list(
        Topic.objects.filter(
            kind=Topic.Kind.QUESTION,
            first_reply_at__isnull=True,
            is_hidden=False,
            deleted_at__isnull=True,
            author__isnull=False,
            created_at__lte=passed_at,
            created_at__gt=passed_at - timedelta(days=7),
        )
        .exclude(pk__in=offered)
        .exclude(pk__in=escalated)
        .select_related("author")
        .order_by("created_at", "id")[:limit]
    )


# Scorecard measure --------------------------------------------------------------


def build_open_cases_sql(level: str) -> str:
    """Return the open-cases measure's SQL for a scorecard level.

    The value is the number of cases now new, open or waiting on the member:
    filed by the member, or filed under the account. Subjects without open
    cases get 0, not NULL, since none open is the best value. The measure
    ignores the window because it reads the cases' current state.
    """
    statuses = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
    column = "member_id" if level == "member" else "account_id"
    return f"""
        SELECT subject.id AS subject_id, count(c.id) AS value
        FROM unnest(%(subject_ids)s::bigint[]) AS subject(id)
        LEFT JOIN {Case._meta.db_table} c
          ON c.{column} = subject.id AND c.status IN ({statuses})
        GROUP BY subject.id
    """


# Notifications and data exports ----------------------------------------------


def filter_visible_case_ids(member: Member, case_ids: set[str]) -> set[str]:
    """Return the ids, of those given, of cases the member may still see."""
    numbers = [int(i) for i in case_ids if i.isdigit()]
    visible = visible_cases(member.user).filter(pk__in=numbers)
    return {str(pk) for pk in visible.values_list("pk", flat=True)}


def export_member_cases(member: Member) -> list[dict]:
    """Return the member's cases with their public thread, for their data export.

    Internal notes stay out: they are staff's, not the member's data.
    """
    cases = (
        Case.objects.filter(member_id=member.pk)
        .select_related("topic")
        .prefetch_related(
            Prefetch(
                "messages",
                queryset=CaseMessage.objects.filter(
                    visibility=CaseMessage.Visibility.PUBLIC
                ).order_by("created_at", "id"),
                to_attr="public_messages",
            ),
            Prefetch(
                "attachments",
                queryset=CaseAttachment.objects.exclude(
                    message__visibility=CaseMessage.Visibility.INTERNAL
                ).order_by("id"),
                to_attr="public_attachments",
            ),
        )
        .order_by("created_at", "id")
    )
    return [
        {
            "id": case.pk,
            "subject": case.subject,
            "description": case.body,
            "topic": case.topic.name if case.topic else "",
            "status": case.status,
            "priority": case.priority,
            "filed_at": case.created_at,
            "solved_at": case.solved_at,
            "closed_at": case.closed_at,
            "csat_score": case.csat_score,
            "csat_comment": case.csat_comment,
            "messages": [
                {
                    "from_member": message.author_id == member.user_id,
                    "body": message.body,
                    "created_at": message.created_at,
                }
                for message in case.public_messages
            ],
            "attachments": [
                {"name": a.original_name, "size": a.size, "uploaded_at": a.created_at}
                for a in case.public_attachments
            ],
        }
        for case in cases
    ]
