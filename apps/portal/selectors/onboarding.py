"""Reads of onboarding paths and progress, per member and per account."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import (
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    prefetch_related_objects,
)

from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Account, Member
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.roles import has_capability
from apps.portal.models import (
    OnboardingPath,
    OnboardingProgress,
    OnboardingStep,
    PathCompletion,
)

_PATH_ACCOUNTS = OnboardingPath.accounts.through
_PATH_ACCOUNTS_TABLE = _PATH_ACCOUNTS._meta.db_table

# The kinds whose subject counts as visited. Other events about the same
# content (a moderation action on the member's topic, a notification about
# it) do not mean the member opened it.
VISIT_KINDS = (
    "portal.article_viewed",
    "portal.course_viewed",
    "portal.lesson_viewed",
    "portal.hub_viewed",
    "community.topic_viewed",
    "community.event_rsvp",
    "community.event_attended",
)


def build_path_applies_sql(
    *, path: str = "p", member: str = "m", account: str = "a"
) -> str:
    """Return the SQL condition for a published path applying to a member.

    `account` must be a LEFT JOIN of the member's account, so a member
    without one matches only paths with no segment and no account filter.
    The same rule in Python is `list_applicable_paths`.
    """
    return f"""(
        {path}.is_published
        AND (cardinality({path}.roles) = 0
             OR coalesce({member}.role = ANY({path}.roles), false))
        AND (cardinality({path}.segments) = 0
             OR coalesce({account}.segment = ANY({path}.segments), false))
        AND (
            NOT EXISTS (
                SELECT 1 FROM {_PATH_ACCOUNTS_TABLE} pa
                WHERE pa.onboardingpath_id = {path}.id
            )
            OR EXISTS (
                SELECT 1 FROM {_PATH_ACCOUNTS_TABLE} pa
                WHERE pa.onboardingpath_id = {path}.id
                  AND pa.account_id = {member}.account_id
            )
        )
    )"""


def list_applicable_paths(*, member: Member) -> QuerySet[OnboardingPath]:
    """Return the published paths whose role, segment and account filters match.

    An empty filter matches everyone. A member without an account matches
    only paths that filter neither on segment nor on account. The same rule
    in SQL is `build_path_applies_sql`.
    """
    has_accounts = Exists(
        _PATH_ACCOUNTS.objects.filter(onboardingpath_id=OuterRef("pk"))
    )
    paths = OnboardingPath.objects.filter(is_published=True).filter(
        Q(roles=[]) | Q(roles__contains=[member.role])
    )
    if member.account_id is None:
        return paths.filter(segments=[]).filter(~has_accounts)

    for_account = Exists(
        _PATH_ACCOUNTS.objects.filter(
            onboardingpath_id=OuterRef("pk"), account_id=member.account_id
        )
    )
    return paths.filter(
        Q(segments=[]) | Q(segments__contains=[member.account.segment])
    ).filter(~has_accounts | for_account)


def path_applies(*, path: OnboardingPath, member: Member) -> bool:
    return list_applicable_paths(member=member).filter(pk=path.pk).exists()


@dataclass(frozen=True)
class StepStatus:
    """One published step and the member's progress on it, if any."""

    step: OnboardingStep
    progress: OnboardingProgress | None

    @property
    def is_done(self) -> bool:
        return self.progress is not None

    @property
    def completed_at(self) -> datetime | None:
        return self.progress.completed_at if self.progress else None

    @property
    def is_manual(self) -> bool:
        return self.step.completion == OnboardingStep.Completion.MANUAL


@dataclass(frozen=True)
class PathProgress:
    """A path assigned to a member, with each published step's status."""

    path: OnboardingPath
    steps: list[StepStatus]
    completion: PathCompletion | None

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def done_count(self) -> int:
        return sum(1 for status in self.steps if status.is_done)

    @property
    def percent(self) -> int:
        if not self.steps:
            return 0
        return round(100 * self.done_count / self.total)

    @property
    def is_complete(self) -> bool:
        return self.completion is not None

    @property
    def next_step(self) -> StepStatus | None:
        return next((status for status in self.steps if not status.is_done), None)


def list_member_paths(*, member: Member) -> QuerySet[OnboardingPath]:
    """Return the member's assigned paths that have a published step, in order."""
    has_published_step = Exists(
        OnboardingStep.objects.filter(path_id=OuterRef("pk"), is_published=True)
    )
    return list_applicable_paths(member=member).filter(has_published_step)


def list_path_progress(
    *, member: Member, paths: Sequence[OnboardingPath]
) -> list[PathProgress]:
    """Return the member's progress on the given paths, in the given order.

    The published steps, the member's progress on them and their path
    completions take three queries whatever the number of paths. Paths
    without a published step are left out, because there is nothing to do.
    """
    own_progress = OnboardingProgress.objects.filter(member=member)
    steps = OnboardingStep.objects.filter(is_published=True).prefetch_related(
        Prefetch("progress", queryset=own_progress, to_attr="member_progress")
    )
    paths = list(paths)
    prefetch_related_objects(
        paths,
        Prefetch("steps", queryset=steps, to_attr="published_steps"),
        Prefetch(
            "completions",
            queryset=PathCompletion.objects.filter(member=member),
            to_attr="member_completions",
        ),
    )

    result = []
    for each in paths:
        if not each.published_steps:
            continue
        statuses = [
            StepStatus(step=step, progress=next(iter(step.member_progress), None))
            for step in each.published_steps
        ]
        completion = next(iter(each.member_completions), None)
        result.append(PathProgress(path=each, steps=statuses, completion=completion))
    return result


def list_member_path_progress(
    *, member: Member, path: OnboardingPath | None = None
) -> list[PathProgress]:
    """Return the member's assigned paths with their published steps and progress.

    Four queries whatever the number of paths, steps or events. Paths
    without a published step are left out, because there is nothing to do.
    """
    paths = list_applicable_paths(member=member)
    if path is not None:
        paths = paths.filter(pk=path.pk)
    return list_path_progress(member=member, paths=list(paths))


def access_member_path(*, member: Member, slug: str) -> OnboardingPath:
    """Return the published path with this slug if it is assigned to the member.

    Raise OnboardingPath.DoesNotExist otherwise, so that a path for another
    role or account does not show that it exists.
    """
    return list_applicable_paths(member=member).get(slug=slug)


def access_member_step(*, member: Member, step_id: int) -> OnboardingStep:
    """Return a published step of a path assigned to the member.

    Raise OnboardingStep.DoesNotExist otherwise.
    """
    return OnboardingStep.objects.select_related("path").get(
        pk=step_id,
        is_published=True,
        path__in=list_applicable_paths(member=member),
    )


# Accounts ---------------------------------------------------------------------


def can_view_account_progress(*, user, account: Account) -> bool:
    """Return whether the user may see the onboarding progress of an account's people.

    Staff see every account (the account's CSM, its owner, is staff), and an
    account admin sees their own account through the account-scoped
    view_account_members capability.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or account.owner_id == user.pk:
        return True
    member = get_member_for_user(user)
    if member is None or member.account_id != account.pk:
        return False
    return has_capability(user, "view_account_members", account)


def access_account_progress(*, user, account_id: int) -> Account:
    """Return the account if the user may see its onboarding progress.

    Raise Account.DoesNotExist otherwise, whether or not the account exists.
    """
    account = Account.objects.select_related("owner").get(pk=account_id)
    if not can_view_account_progress(user=user, account=account):
        raise Account.DoesNotExist(f"No account {account_id} visible to this user.")
    return account


def list_progress_accounts(*, user) -> QuerySet[Account]:
    """Return the accounts whose progress the user may see, theirs first for CSMs."""
    accounts = Account.objects.select_related("owner").order_by("name", "pk")
    if user.is_staff:
        return accounts
    member = get_member_for_user(user)
    if member is None or member.account_id is None:
        return accounts.none()
    account = accounts.filter(pk=member.account_id).first()
    if account is None or not can_view_account_progress(user=user, account=account):
        return accounts.none()
    return accounts.filter(pk=account.pk)


@dataclass(frozen=True)
class AccountPathSummary:
    """How far an account's people are on one path."""

    path: OnboardingPath
    assigned: int
    completed: int
    mean_percent: int


@dataclass(frozen=True)
class MemberPathCell:
    path_id: int
    steps: int
    done: int
    completed_at: datetime | None

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.steps) if self.steps else 0


@dataclass(frozen=True)
class MemberProgressRow:
    member: Member
    cells: dict[int, MemberPathCell]

    def cell(self, path_id: int) -> MemberPathCell | None:
        return self.cells.get(path_id)


_MEMBER_PATH_CELLS_SQL = f"""
    SELECT m.id, p.id, count(s.id), count(g.id), c.completed_at
    FROM {Member._meta.db_table} m
    LEFT JOIN {Account._meta.db_table} a ON a.id = m.account_id
    JOIN {OnboardingPath._meta.db_table} p ON {build_path_applies_sql()}
    JOIN {OnboardingStep._meta.db_table} s ON s.path_id = p.id AND s.is_published
    LEFT JOIN {OnboardingProgress._meta.db_table} g
           ON g.step_id = s.id AND g.member_id = m.id
    LEFT JOIN {PathCompletion._meta.db_table} c
           ON c.member_id = m.id AND c.path_id = p.id
    WHERE {{member_filter}}
    GROUP BY m.id, p.id, c.completed_at
"""


def _fetch_cells(member_filter: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            _MEMBER_PATH_CELLS_SQL.format(member_filter=member_filter), params
        )
        return cursor.fetchall()


def list_account_members_for_progress(*, account: Account) -> QuerySet[Member]:
    """Return the account's active members, for the progress table's pages."""
    return (
        Member.objects.filter(account=account, deactivated_at__isnull=True)
        .select_related("user")
        .order_by("user__email", "pk")
    )


def list_account_path_summaries(*, account: Account) -> list[AccountPathSummary]:
    """Return, for each path assigned to someone in the account, its progress.

    Two queries whatever the number of members or paths.
    """
    rows = _fetch_cells(
        "m.account_id = %(account_id)s AND m.deactivated_at IS NULL",
        {"account_id": account.pk},
    )
    by_path: dict[int, list[tuple]] = {}
    for row in rows:
        by_path.setdefault(row[1], []).append(row)
    paths = OnboardingPath.objects.in_bulk(list(by_path))
    summaries = []
    for path_id, path_rows in by_path.items():
        percents = [100 * done / steps for _, _, steps, done, _ in path_rows]
        summaries.append(
            AccountPathSummary(
                path=paths[path_id],
                assigned=len(path_rows),
                completed=sum(1 for row in path_rows if row[4] is not None),
                mean_percent=round(sum(percents) / len(percents)),
            )
        )
    return sorted(summaries, key=lambda s: (s.path.position, s.path.pk))


def list_member_progress_rows(*, members: list[Member]) -> list[MemberProgressRow]:
    """Return each member's progress on each assigned path, in one query."""
    if not members:
        return []
    rows = _fetch_cells(
        "m.id = ANY(%(member_ids)s)", {"member_ids": [m.pk for m in members]}
    )
    cells: dict[int, dict[int, MemberPathCell]] = {m.pk: {} for m in members}
    for member_id, path_id, steps, done, completed_at in rows:
        cells[member_id][path_id] = MemberPathCell(
            path_id=path_id, steps=steps, done=done, completed_at=completed_at
        )
    return [MemberProgressRow(member=m, cells=cells[m.pk]) for m in members]


def get_member_of_account(*, account: Account, member_id: int) -> Member:
    """Return an active member of the account; raise Member.DoesNotExist otherwise."""
    return list_account_members_for_progress(account=account).get(pk=member_id)


# Health score measure -----------------------------------------------------------

# Per member: the share (%) of the published steps of their assigned paths
# that they have done, NULL when no published step is assigned to them. A
# step counts as done when it has a progress row, or when a qualifying event
# exists that the next sync would turn into one, so scores do not wait for
# the sync.
_MEMBER_ONBOARDING_SHARE_SQL = f"""
    SELECT m.id AS member_id, m.account_id,
           100.0 * count(s.id) FILTER (
               WHERE EXISTS (
                   SELECT 1 FROM {OnboardingProgress._meta.db_table} g
                   WHERE g.member_id = m.id AND g.step_id = s.id
               )
               OR (s.completion = 'event' AND EXISTS (
                   SELECT 1 FROM {ActivityEvent._meta.db_table} e
                   WHERE e.member_id = m.id AND e.kind = s.completion_kind
               ))
               OR (s.completion = 'visit' AND EXISTS (
                   SELECT 1 FROM {ActivityEvent._meta.db_table} e
                   WHERE e.member_id = m.id
                     AND e.subject_type_id = s.target_type_id
                     AND e.subject_id = s.target_id::text
                     AND e.kind IN ({", ".join(f"'{kind}'" for kind in VISIT_KINDS)})
               ))
           ) / nullif(count(s.id), 0) AS value
    FROM {Member._meta.db_table} m
    LEFT JOIN {Account._meta.db_table} a ON a.id = m.account_id
    LEFT JOIN {OnboardingPath._meta.db_table} p ON {build_path_applies_sql()}
    LEFT JOIN {OnboardingStep._meta.db_table} s
           ON s.path_id = p.id AND s.is_published
    WHERE m.id IN (SELECT id FROM scope)
    GROUP BY m.id, m.account_id
"""


def build_onboarding_share_sql(level: str) -> str:
    """Return the onboarding share measure's SQL for a scorecard level.

    An account's value is the mean share of its members, deactivated ones
    and those without assigned steps excluded. The measure ignores the
    window: onboarding done once stays done.
    """
    if level == "member":
        return f"""
            WITH scope AS (
                SELECT id FROM {Member._meta.db_table}
                WHERE id = ANY(%(subject_ids)s::bigint[])
            ),
            shares AS ({_MEMBER_ONBOARDING_SHARE_SQL})
            SELECT member_id AS subject_id, value FROM shares
        """
    return f"""
        WITH scope AS (
            SELECT id FROM {Member._meta.db_table}
            WHERE account_id = ANY(%(subject_ids)s::bigint[])
              AND deactivated_at IS NULL
        ),
        shares AS ({_MEMBER_ONBOARDING_SHARE_SQL})
        SELECT account_id AS subject_id, avg(value) AS value
        FROM shares
        GROUP BY account_id
    """


def export_member_onboarding(member: Member) -> dict:
    """Return the member's onboarding steps done and paths completed, for export."""
    progress = OnboardingProgress.objects.filter(member=member).select_related(
        "step__path"
    )
    completions = PathCompletion.objects.filter(member=member).select_related("path")
    return {
        "steps_done": [
            {
                "path": row.step.path.title,
                "step": row.step.title,
                "how": row.how,
                "completed_at": row.completed_at,
            }
            for row in progress.order_by("completed_at", "id")
        ],
        "paths_completed": [
            {"path": row.path.title, "completed_at": row.completed_at}
            for row in completions.order_by("completed_at", "id")
        ],
    }
