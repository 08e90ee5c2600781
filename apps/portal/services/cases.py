"""Every write to support cases: filing, replies, status, SLA and CSAT.

Status changes follow `TRANSITIONS` and each leaves a CaseStatusChange row.
The resolution clock pauses while a case waits on the member. The working
minutes left are stored and the due time is cleared. A reply or a status
change that ends the wait sets a new due time from the minutes left.
"""

import logging
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from apps.community.models import Topic
from apps.lifecycle.delivery.notifications import notify_member
from apps.lifecycle.services import record_activity
from apps.membership.models import Member
from apps.membership.selectors import get_member_for_user
from apps.portal.models import (
    Case,
    CaseAttachment,
    CaseMessage,
    CaseStatusChange,
    CaseTopic,
    EscalationOffer,
    SlaPolicy,
)
from apps.portal.selectors.cases import (
    get_escalation_rejection_reason,
    is_topic_escalatable,
    list_member_priorities,
)
from apps.portal.services.case_files import (
    attachment_transaction,
    check_attachments,
    store_attachments,
)
from apps.portal.services.deflection import attach_case, get_own_attempt
from apps.portal.services.sla import (
    add_business_minutes,
    count_business_minutes,
    load_working_hours,
)
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

Status = Case.Status

SUBJECT_MAX_LENGTH = Case._meta.get_field("subject").max_length
BODY_MAX_LENGTH = 20_000
CSAT_COMMENT_MAX_LENGTH = Case._meta.get_field("csat_comment").max_length

# The statuses each status may change to.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.OPEN, Status.WAITING, Status.SOLVED, Status.CLOSED}),
    Status.OPEN: frozenset({Status.WAITING, Status.SOLVED, Status.CLOSED}),
    Status.WAITING: frozenset({Status.OPEN, Status.SOLVED, Status.CLOSED}),
    Status.SOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
# A member may only mark their case solved; they reopen it by replying.
MEMBER_TARGET_STATUSES = frozenset({Status.SOLVED})
RATED_STATUSES = (Status.SOLVED, Status.CLOSED)


def _clean_text(value: str, *, name: str, label: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise DomainError(f"The {label} is missing; write one.", field=name)
    if len(value) > max_length:
        raise DomainError(
            f"The {label} is {len(value)} characters long, over the limit of "
            f"{max_length}. Shorten it.",
            field=name,
        )
    return value


def _update_search_vector(case: Case) -> None:
    Case.objects.filter(pk=case.pk).update(
        search_vector=SearchVector("subject", weight="A", config="english")
        + SearchVector("body", weight="B", config="english")
    )


def _get_policy(priority: str) -> SlaPolicy | None:
    return (
        SlaPolicy.objects.select_related("calendar").filter(priority=priority).first()
    )


def _set_due_times(case: Case, *, now: datetime) -> None:
    """Set the case's due times from its priority's policy, counted from filing."""
    policy = _get_policy(case.priority)
    if policy is None:
        case.first_response_due_at = None
        case.resolution_due_at = None
        case.resolution_minutes_left = None
        return
    hours = load_working_hours(policy.calendar)
    start = case.created_at
    if case.first_responded_at is None:
        case.first_response_due_at = add_business_minutes(
            start, policy.first_response_minutes, hours
        )
    resolution_due_at = add_business_minutes(start, policy.resolution_minutes, hours)
    if case.status == Status.WAITING:
        case.resolution_due_at = None
        case.resolution_minutes_left = count_business_minutes(
            now, resolution_due_at, hours
        )
    else:
        case.resolution_due_at = resolution_due_at
        case.resolution_minutes_left = None


def _pause_resolution_clock(case: Case, *, now: datetime) -> None:
    if case.resolution_due_at is None:
        return
    policy = _get_policy(case.priority)
    hours = load_working_hours(policy.calendar) if policy else None
    case.resolution_minutes_left = count_business_minutes(
        now, case.resolution_due_at, hours
    )
    case.resolution_due_at = None


def _resume_resolution_clock(case: Case, *, now: datetime) -> None:
    if case.resolution_minutes_left is None:
        return
    policy = _get_policy(case.priority)
    hours = load_working_hours(policy.calendar) if policy else None
    case.resolution_due_at = add_business_minutes(
        now, case.resolution_minutes_left, hours
    )
    case.resolution_minutes_left = None


def _lock(case: Case) -> Case:
    return Case.objects.select_for_update().get(pk=case.pk)


def apply_case_status(case: Case, *, to_status: str, actor, now: datetime) -> None:
    """Change a locked case's status, keep its clocks, history and events."""
    from_status = case.status
    if to_status not in TRANSITIONS[from_status]:
        allowed = ", ".join(sorted(TRANSITIONS[from_status])) or "none"
        raise DomainError(
            f"Case #{case.pk} cannot go from {from_status} to {to_status}. "
            f"Allowed next statuses: {allowed}.",
            field="status",
            code="invalid_transition",
        )

    fields = ["status"]
    if from_status == Status.WAITING:
        _resume_resolution_clock(case, now=now)
        fields += ["resolution_due_at", "resolution_minutes_left"]
    if to_status == Status.WAITING:
        _pause_resolution_clock(case, now=now)
        fields += ["resolution_due_at", "resolution_minutes_left"]
    if to_status == Status.SOLVED:
        case.solved_at = now
        fields.append("solved_at")
    elif from_status == Status.SOLVED and to_status == Status.OPEN:
        case.solved_at = None
        fields.append("solved_at")
    if to_status == Status.CLOSED:
        case.closed_at = now
        fields.append("closed_at")
    case.status = to_status
    case.save(update_fields=[*dict.fromkeys(fields), "updated_at"])

    CaseStatusChange.objects.create(
        case=case,
        from_status=from_status,
        to_status=to_status,
        changed_by=actor,
        changed_at=now,
    )
    properties = {"from": from_status, "to": to_status, "by_staff": _is_staff(actor)}
    record_activity(
        member=case.member,
        kind="portal.case_status_changed",
        subject=case,
        occurred_at=now,
        properties=properties,
    )
    if to_status == Status.SOLVED:
        record_activity(
            member=case.member, kind="portal.case_solved", subject=case, occurred_at=now
        )


def _is_staff(user) -> bool:
    return bool(user is not None and user.is_staff)


NO_ACCOUNT_MESSAGE = (
    "Support cases open once your company account is confirmed. Your sign-up "
    "is waiting for review. Until then, search the knowledge base or ask the "
    "community."
)


def can_file_cases(member: Member) -> bool:
    """Return whether the member may file a case.

    A case belongs to a customer account (its SLA, its admins' view), so a
    member whose sign-up waits for review, with no account yet, cannot file
    one. Staff users keep full access.
    """
    return member.account_id is not None or _is_staff(member.user)


# Filing ---------------------------------------------------------------------


def get_case_filed_from_attempt(*, member: Member, attempt_id) -> Case | None:
    """Return the member's case filed from the case form visit `attempt_id`.

    The id may come straight from a form, so a value that is not a number
    gives None.
    """
    try:
        attempt_id = int(attempt_id)
    except (TypeError, ValueError):
        return None
    return Case.objects.filter(attempt_id=attempt_id, member_id=member.pk).first()


def get_case_escalating_topic(*, member: Member, topic_id) -> Case | None:
    """Return the case that escalated the question `topic_id`, if `member` filed it.

    The id may come straight from a query string, so a value that is not a
    number gives None. Another member's case is never returned.
    """
    try:
        topic_id = int(topic_id)
    except (TypeError, ValueError):
        return None
    return Case.objects.filter(source_topic_id=topic_id, member_id=member.pk).first()


def file_case(
    *,
    member: Member,
    subject: str,
    body: str,
    priority: str = Case.Priority.NORMAL,
    topic: CaseTopic | None = None,
    uploads: Iterable[UploadedFile] = (),
    attempt_id: int | None = None,
    source_topic: Topic | None = None,
) -> Case:
    """File a member's case, or return the one filed from the same attempt.

    The arguments and rules are those of `get_or_file_case`.
    """
    case, _ = get_or_file_case(
        member=member,
        subject=subject,
        body=body,
        priority=priority,
        topic=topic,
        uploads=uploads,
        attempt_id=attempt_id,
        source_topic=source_topic,
    )
    return case


def get_or_file_case(
    *,
    member: Member,
    subject: str,
    body: str,
    priority: str = Case.Priority.NORMAL,
    topic: CaseTopic | None = None,
    uploads: Iterable[UploadedFile] = (),
    attempt_id: int | None = None,
    source_topic: Topic | None = None,
) -> tuple[Case, bool]:
    """File a member's case with its SLA due times and attachments.

    Returns the case and whether this call filed it. `attempt_id` is the
    case-form visit it came from, for deflection. An attempt files one case:
    a resubmitted form, sequential or concurrent, gets the case already
    filed from it and stores none of its files. `source_topic` is the
    community question it escalates, which only that question's author may
    escalate, once. Every file is checked before anything is stored, and a
    failure stores nothing. Inside a caller's transaction, the files are
    written when that transaction commits.
    """
    with attachment_transaction() as storage:
        if member.is_deactivated:
            raise DomainError(
                "A deactivated member cannot file cases.", code="forbidden"
            )
        if not can_file_cases(member):
            raise DomainError(NO_ACCOUNT_MESSAGE, code="forbidden")
        subject = _clean_text(
            subject, name="subject", label="subject", max_length=SUBJECT_MAX_LENGTH
        )
        body = _clean_text(
            body, name="body", label="description", max_length=BODY_MAX_LENGTH
        )
        allowed = list_member_priorities(member)
        if priority not in allowed:
            raise DomainError(
                f"Priority {priority!r} is not available to you. Choose one of: "
                f"{', '.join(allowed)}.",
                field="priority",
            )
        if topic is not None and not topic.is_active:
            raise DomainError(
                f"The topic {topic.name!r} is retired; choose another.", field="topic"
            )
        if source_topic is not None and not is_topic_escalatable(
            topic=source_topic, member=member
        ):
            raise DomainError(
                "Only the author of a question that has had no reply for "
                f"{settings.RM6_ESCALATION_AFTER_HOURS} hours can turn it into a case.",
                field="source_topic",
                code="forbidden",
            )
        files = check_attachments(uploads=uploads)
        attempt = get_own_attempt(attempt_id=attempt_id, member=member)

        now = timezone.now()
        case = Case(
            member=member,
            attempt=attempt,
            account_id=member.account_id,
            topic=topic,
            subject=subject,
            body=body,
            priority=priority,
            source_topic=source_topic,
            created_at=now,
        )
        _set_due_times(case, now=now)
        try:
            with transaction.atomic():
                case.save()
        except IntegrityError:
            # Another request filed a case with the same attempt or source
            # topic first and has committed, since the unique index made this
            # insert wait for it.
            if attempt is not None:
                filed = get_case_filed_from_attempt(
                    member=member, attempt_id=attempt.pk
                )
                if filed is not None:
                    logger.info(
                        "case form resubmitted: attempt %s, case %s",
                        attempt.pk,
                        filed.pk,
                    )
                    return filed, False
            if source_topic is None:
                raise
            raise DomainError(
                "This question already has a support case; open it from the "
                "question's page.",
                field="source_topic",
                code="conflict",
            ) from None
        CaseStatusChange.objects.create(
            case=case,
            from_status="",
            to_status=Status.NEW,
            changed_by=member.user,
            changed_at=now,
        )
        _update_search_vector(case)
        store_attachments(
            case=case, files=files, uploaded_by=member.user, storage=storage
        )
        attach_case(attempt_id=attempt.pk if attempt else None, case=case)
        record_activity(
            member=member,
            kind="portal.case_filed",
            subject=case,
            occurred_at=now,
            properties={
                "priority": priority,
                "topic": topic.slug if topic else "",
                "attachments": len(files),
                "source_topic_id": source_topic.pk if source_topic else None,
            },
        )
        return case, True


def build_escalation_body(*, question_body: str, url: str) -> str:
    """Return a case description from a community question's text and link.

    A question may be as long as a case description, so the text is cut
    with an ellipsis where needed to keep the whole link within
    BODY_MAX_LENGTH.
    """
    link = f"\n\nAsked in the community: {url}"
    room = BODY_MAX_LENGTH - len(link)
    text = question_body.strip()
    if len(text) > room:
        text = text[: room - 1].rstrip() + "\u2026"
    return text + link


def escalate_question(
    *,
    member: Member,
    topic: Topic,
    subject: str,
    body: str,
    priority: str = Case.Priority.NORMAL,
    case_topic: CaseTopic | None = None,
) -> tuple[Case, bool]:
    """File the support case for a community question, or return the one filed.

    Returns the case and whether this call filed it. A retried or concurrent
    request gets the same case, because the unique source topic of Case lets
    one insert win and the other call returns the winner's case. Rejections
    raise DomainError with code "forbidden" and the reason.
    """
    if member.is_deactivated:
        raise DomainError("A deactivated member cannot file cases.", code="forbidden")
    reason = get_escalation_rejection_reason(topic=topic, member=member)
    if reason is not None and topic.author_id != member.pk:
        raise DomainError(reason, field="source_topic", code="forbidden")

    # The author gets the case filed earlier even when the question has had
    # a reply since, so that a retry after a lost response succeeds.
    existing = Case.objects.filter(source_topic_id=topic.pk).first()
    if existing is not None:
        return existing, False

    if reason is not None:
        raise DomainError(reason, field="source_topic", code="forbidden")

    try:
        case = file_case(
            member=member,
            subject=subject,
            body=body,
            priority=priority,
            topic=case_topic,
            source_topic=topic,
        )
    except DomainError as error:
        if error.code != "conflict":
            raise
        # A concurrent request filed the case first and has committed, since
        # the unique index made this insert wait for it.
        logger.info("question escalation lost the race: topic %s", topic.pk)
        return Case.objects.get(source_topic_id=topic.pk), False
    return case, True


# Replies -------------------------------------------------------------------


def reply_to_case(
    *,
    case: Case,
    author,
    body: str,
    is_internal: bool = False,
    uploads: Iterable[UploadedFile] = (),
) -> CaseMessage:
    """Add a public reply or, for staff, an internal note, with files.

    The caller has checked that `author` may see the case. The first public
    staff reply sets the first response time and opens a new case. A
    member's reply on a case that waits on them, or that was solved, opens
    it again and restarts the resolution clock.
    """
    with attachment_transaction() as storage:
        body = _clean_text(body, name="body", label="reply", max_length=BODY_MAX_LENGTH)
        is_staff = _is_staff(author)
        if is_internal and not is_staff:
            raise DomainError("Only staff can write internal notes.", code="forbidden")
        case = _lock(case)
        if case.status == Status.CLOSED:
            raise DomainError(
                f"Case #{case.pk} is closed and takes no replies; file a new case.",
                field="body",
            )
        files = check_attachments(uploads=uploads, case=case)

        now = timezone.now()
        visibility = (
            CaseMessage.Visibility.INTERNAL
            if is_internal
            else CaseMessage.Visibility.PUBLIC
        )
        message = CaseMessage.objects.create(
            case=case, author=author, visibility=visibility, body=body
        )
        store_attachments(
            case=case, files=files, uploaded_by=author, message=message, storage=storage
        )
        if is_internal:
            # NOTE: internal notes record no activity event, because events
            # belong to the case's member and reach their data export.
            Case.objects.filter(pk=case.pk).update(updated_at=now)
            return message
        if is_staff:
            _after_staff_reply(case, author=author, now=now)
        else:
            _after_member_reply(case, author=author, now=now)
        return message


def add_case_attachments(
    *, case: Case, uploaded_by, uploads: Iterable[UploadedFile]
) -> list[CaseAttachment]:
    """Add files to an open case's own files, within the same limits.

    The caller has checked that `uploaded_by` may see the case.
    """
    with attachment_transaction() as storage:
        uploads = list(uploads)
        if not uploads:
            raise DomainError(
                "No files were sent; attach at least one.", field="attachments"
            )
        case = _lock(case)
        if case.status == Status.CLOSED:
            raise DomainError(
                f"Case #{case.pk} is closed and takes no files; file a new case.",
                field="attachments",
            )
        files = check_attachments(uploads=uploads, case=case)

        attachments = store_attachments(
            case=case, files=files, uploaded_by=uploaded_by, storage=storage
        )
        Case.objects.filter(pk=case.pk).update(updated_at=timezone.now())
        record_activity(
            member=get_member_for_user(uploaded_by) or case.member,
            kind="portal.case_files_added",
            subject=case,
            properties={"files": len(attachments), "by_staff": _is_staff(uploaded_by)},
        )
        return attachments


def _after_staff_reply(case: Case, *, author, now: datetime) -> None:
    # The UPDATE checks the condition, so two concurrent replies set it once.
    Case.objects.filter(pk=case.pk, first_responded_at__isnull=True).update(
        first_responded_at=now
    )
    case.refresh_from_db(fields=["first_responded_at"])
    if case.status == Status.NEW:
        apply_case_status(case, to_status=Status.OPEN, actor=author, now=now)
    else:
        Case.objects.filter(pk=case.pk).update(updated_at=now)
    record_activity(
        member=case.member,
        kind="portal.case_answered",
        subject=case,
        occurred_at=now,
    )
    notify_member(
        member=case.member,
        kind="portal.case_answered",
        title=f"Support replied on case #{case.pk}: {case.subject}",
        url=reverse("portal:case_detail", kwargs={"pk": case.pk}),
        subject=case,
    )


def _after_member_reply(case: Case, *, author, now: datetime) -> None:
    if case.status in (Status.WAITING, Status.SOLVED):
        apply_case_status(case, to_status=Status.OPEN, actor=author, now=now)
    else:
        Case.objects.filter(pk=case.pk).update(updated_at=now)
    replier = get_member_for_user(author) or case.member
    record_activity(
        member=replier,
        kind="portal.case_replied",
        subject=case,
        occurred_at=now,
        properties={"case_member_id": case.member_id},
    )


# Status, assignment and priority ------------------------------------------------


@transaction.atomic
def change_case_status(*, case: Case, status: str, actor) -> Case:
    """Move a case to another status, as staff or as a member who sees it.

    Members may only mark a case solved. The same status again changes
    nothing.
    """
    if status not in Status.values:
        raise DomainError(
            f"Status {status!r} is invalid; use one of {', '.join(Status.values)}.",
            field="status",
        )
    if not _is_staff(actor) and status not in MEMBER_TARGET_STATUSES:
        raise DomainError(
            "Members can only mark a case solved; reply to reopen it.",
            field="status",
            code="forbidden",
        )
    case = _lock(case)
    if case.status == status:
        return case
    apply_case_status(case, to_status=status, actor=actor, now=timezone.now())
    return case


def _require_staff(actor, what: str) -> None:
    if not _is_staff(actor):
        raise DomainError(f"Only staff can {what}.", code="forbidden")


@transaction.atomic
def assign_case(*, case: Case, assignee, actor) -> Case:
    """Assign the case to an active staff user, or to nobody with None."""
    _require_staff(actor, "assign cases")
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        raise DomainError(
            f"{assignee.email} is not active staff; assign the case to staff.",
            field="assignee",
        )
    case = _lock(case)
    new_id = assignee.pk if assignee else None
    if case.assignee_id == new_id:
        return case
    case.assignee = assignee
    case.save(update_fields=["assignee", "updated_at"])
    record_activity(
        member=case.member,
        kind="portal.case_assigned",
        subject=case,
        properties={"assignee_id": new_id},
    )
    return case


@transaction.atomic
def change_case_priority(*, case: Case, priority: str, actor) -> Case:
    """Set a new priority and recompute the due times from the filing time.

    NOTE: the recomputed resolution due time counts from filing and leaves
    out earlier pauses while the case waited on the member, so it can come
    out earlier than the old clock would have run. Breach flags already set
    stay set.
    """
    _require_staff(actor, "change the priority of cases")
    if priority not in Case.Priority.values:
        raise DomainError(
            f"Priority {priority!r} is invalid; use one of "
            f"{', '.join(Case.Priority.values)}.",
            field="priority",
        )
    case = _lock(case)
    if case.priority == priority:
        return case
    previous = case.priority
    case.priority = priority
    _set_due_times(case, now=timezone.now())
    case.save(
        update_fields=[
            "priority",
            "first_response_due_at",
            "resolution_due_at",
            "resolution_minutes_left",
            "updated_at",
        ]
    )
    record_activity(
        member=case.member,
        kind="portal.case_priority_changed",
        subject=case,
        properties={"from": previous, "to": priority},
    )
    return case


# CSAT ------------------------------------------------------------------------


@transaction.atomic
def rate_case(
    *, case: Case, member: Member | None, score: int, comment: str = ""
) -> Case:
    """Store the filer's satisfaction score, 1 to 5, once per case.

    Only the member who filed the case may rate it, after it is solved or
    closed. The UPDATE checks that no score exists, so two submissions at
    once store one.
    """
    if member is None or member.pk != case.member_id:
        raise DomainError(
            "Only the member who filed the case can rate it.", code="forbidden"
        )
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise DomainError(
            f"Score {score!r} is invalid; give a whole number from 1 to 5.",
            field="score",
        )
    comment = (comment or "").strip()
    if len(comment) > CSAT_COMMENT_MAX_LENGTH:
        raise DomainError(
            f"The comment is {len(comment)} characters long, over the limit of "
            f"{CSAT_COMMENT_MAX_LENGTH}. Shorten it.",
            field="comment",
        )

    now = timezone.now()
    rated = Case.objects.filter(
        pk=case.pk, status__in=RATED_STATUSES, csat_score__isnull=True
    ).update(csat_score=score, csat_comment=comment, csat_rated_at=now, updated_at=now)
    if rated == 0:
        case.refresh_from_db()
        if case.csat_score is not None:
            raise DomainError(
                f"Case #{case.pk} was already rated; a case is rated once.",
                field="score",
                code="conflict",
            )
        raise DomainError(
            f"Case #{case.pk} is {case.get_status_display().lower()}; rate it "
            "once it is solved.",
            field="score",
        )
    case.refresh_from_db()
    record_activity(
        member=member,
        kind="portal.case_rated",
        subject=case,
        occurred_at=now,
        properties={"score": score},
    )
    return case


def move_merged_member_cases(*, survivor: Member, duplicate: Member) -> dict[str, int]:
    """Give the survivor of a member merge the duplicate's cases and offers."""
    cases = Case.objects.filter(member=duplicate).update(member=survivor)
    offers = EscalationOffer.objects.filter(member=duplicate).update(member=survivor)
    return {"cases_moved": cases, "escalation_offers_moved": offers}
