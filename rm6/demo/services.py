"""Create and delete the demo data set.

Demo rows are marked so they can be found again. Accounts and members have
an `external_id` starting with `demo-`, and spaces a slug starting with it.
Demo staff and the demo sign-ins have emails at `demo.rm6.test`. Every other
demo row (events, topics, replies, points, scores, consents, email
addresses) belongs to one of those.
"""

import logging
import time
from datetime import datetime
from typing import TextIO

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from tqdm import tqdm

from apps.advocacy.models import PointsEntry
from apps.community.models import Space
from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Account, Member
from apps.portal.models import Article, Case, OnboardingPath, UseCaseHub
from rm6.demo import writers
from rm6.demo.simulation import Simulation
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

DEMO_ID_PREFIX = "demo-"
DEMO_EMAIL_DOMAIN = "demo.rm6.test"
DEMO_PASSWORD = "rm6-demo-2026"
# (who, email) of the people a demo visitor signs in as, all with DEMO_PASSWORD.
DEMO_SIGN_INS = [
    ("Member of the first account", f"member@{DEMO_EMAIL_DOMAIN}"),
    ("Champion of the first account", f"champion@{DEMO_EMAIL_DOMAIN}"),
    ("Staff superuser (admin site)", f"admin@{DEMO_EMAIL_DOMAIN}"),
    ("Account admin of the first account", f"account-admin@{DEMO_EMAIL_DOMAIN}"),
]
STAFF_SIGN_IN_EMAIL = DEMO_SIGN_INS[2][1]

# The PostgreSQL advisory lock that serialises seeding and deleting the demo
# data. Any fixed number works.
DEMO_LOCK_KEY = 0x726D36


def has_demo_data() -> bool:
    """Return whether demo accounts exist, which means a seed already ran."""
    return Account.objects.filter(external_id__startswith=DEMO_ID_PREFIX).exists()


def _validate_sizes(*, accounts: int, members: int, days: int) -> None:
    if accounts < 1:
        raise DomainError(
            f"Invalid number of accounts {accounts}: use 1 or more.",
            field="accounts",
        )
    if members < accounts + 2:
        raise DomainError(
            f"Invalid number of members {members} for {accounts} accounts: use "
            f"{accounts + 2} or more, for one admin per account plus the demo "
            "member and champion of the first account.",
            field="members",
        )
    if days < 1:
        raise DomainError(
            f"Invalid number of days {days}: use 1 or more.", field="days"
        )


def _check_free_names() -> None:
    demo_users = get_user_model().objects.filter(
        email__endswith=f"@{DEMO_EMAIL_DOMAIN}"
    )
    if demo_users.exists():
        raise DomainError(
            f"Users with emails at {DEMO_EMAIL_DOMAIN} exist but no demo accounts "
            "do, so the demo sign-ins cannot be created. Run seed_demo --reset to "
            "delete them and seed again.",
            code="conflict",
        )
    spaces = Space.objects.filter(slug__startswith=DEMO_ID_PREFIX)
    if spaces.exists():
        raise DomainError(
            f"Spaces with slugs starting {DEMO_ID_PREFIX!r} exist but no demo "
            "accounts do. Run seed_demo --reset to delete them and seed again.",
            code="conflict",
        )


@transaction.atomic
def seed_demo_data(
    *,
    accounts: int = 50,
    members: int = 500,
    seed: int = 2026,
    days: int = 365,
    now: datetime | None = None,
    progress: TextIO | None = None,
) -> writers.SeedResult | None:
    """Create the demo data set in one transaction, or return None if it exists.

    The same seed gives the same companies, people and activity relative to
    `now`. Most rows are written in bulk, so this skips the services, their
    handlers and their tasks, and writes what they would have: counters,
    points for replies to others' topics, and health scores. Accepted
    solutions and knowledge articles go through their services. `progress`
    receives a tqdm progress bar, for example sys.stderr.
    """
    started = time.monotonic()
    _validate_sizes(accounts=accounts, members=members, days=days)
    _lock_demo_data()
    if has_demo_data():
        return None
    _check_free_names()
    now = now or timezone.now()

    logger.info("demo seed started: %d accounts, %d members", accounts, members)
    data = Simulation(
        accounts=accounts,
        members=members,
        days=days,
        seed=seed,
        now=now,
        demo_sign_in_domain=DEMO_EMAIL_DOMAIN,
        id_prefix=DEMO_ID_PREFIX,
    ).run()
    with tqdm(
        total=writers.count_rows(data, now=now),
        desc="demo rows",
        unit="row",
        file=progress,
        disable=not progress,
    ) as bar:
        result = writers.write_data_set(
            data,
            now=now,
            bar=bar,
            password=DEMO_PASSWORD,
            staff_email=STAFF_SIGN_IN_EMAIL,
            slug_prefix=DEMO_ID_PREFIX,
            member_email=DEMO_SIGN_INS[0][1],
        )

    result.seconds = time.monotonic() - started
    logger.info(
        "demo seed finished: %d members, %d events in %.1f s",
        result.members,
        result.events,
        result.seconds,
    )
    return result


def _lock_demo_data() -> None:
    # Two seeds or resets at once wait for each other until commit, so the
    # second finds the rows the first committed.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DEMO_LOCK_KEY])


@transaction.atomic
def delete_demo_data() -> int:
    """Delete every demo row and return the number of users deleted.

    A trigger keeps the points ledger append-only by rejecting DELETE. Inside
    this transaction the trigger is disabled while the demo entries are
    deleted, and enabled again before commit. ALTER TABLE holds an exclusive
    lock on the ledger until commit, so no other session writes to it while
    the trigger is off.
    """
    _lock_demo_data()
    User = get_user_model()
    members = Member.objects.filter(external_id__startswith=DEMO_ID_PREFIX)
    users = User.objects.filter(
        Q(member__in=members) | Q(email__endswith=f"@{DEMO_EMAIL_DOMAIN}")
    )

    with connection.cursor() as cursor:
        # PostgreSQL rejects ALTER TABLE while deferred foreign-key checks from
        # earlier writes in the transaction are pending, so run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE advocacy_pointsentry "
            "DISABLE TRIGGER advocacy_pointsentry_append_only"
        )
        PointsEntry.objects.filter(
            Q(member__in=members) | Q(event__member__in=members)
        ).delete()
        cursor.execute(
            "ALTER TABLE advocacy_pointsentry "
            "ENABLE TRIGGER advocacy_pointsentry_append_only"
        )
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    Space.objects.filter(slug__startswith=DEMO_ID_PREFIX).delete()
    UseCaseHub.objects.filter(slug__startswith=DEMO_ID_PREFIX).delete()
    OnboardingPath.objects.filter(slug__startswith=DEMO_ID_PREFIX).delete()
    Article.objects.filter(slug__startswith=DEMO_ID_PREFIX).delete()
    ActivityEvent.objects.filter(member__in=members).delete()
    # Cases protect their member from deletion, so they go first.
    Case.objects.filter(member__in=members).delete()
    deleted_users = users.count()
    users.delete()
    Account.objects.filter(external_id__startswith=DEMO_ID_PREFIX).delete()
    logger.info("demo data deleted: %d users", deleted_users)
    return deleted_users
