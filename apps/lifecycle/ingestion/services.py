"""Writes of the Segment-compatible endpoint: sources, messages, held events."""

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, Case, Q, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from apps.lifecycle.ingestion.auth import (
    WRITE_KEY_PREFIX_LENGTH,
    generate_write_key,
    hash_write_key,
)
from apps.lifecycle.ingestion.messages import (
    InvalidMessage,
    SegmentMessage,
    is_integration_prefix,
    list_integration_families,
    parse_message,
)
from apps.lifecycle.ingestion.selectors import count_held_messages
from apps.lifecycle.models import (
    ActivityEvent,
    HeldUsageEvent,
    SegmentIdentity,
    SegmentSource,
)
from apps.lifecycle.services import (
    MAX_MERGE_HOPS,
    IngestError,
    IngestResult,
    get_surviving_member,
    ingest_events,
)
from apps.membership.models import AuditEntry, Member
from apps.membership.selectors.sso import list_unconfirmed_sign_up_member_ids
from apps.membership.services.data_sources import (
    RECORD_INTERVAL,
    record_source_failure,
    record_source_success,
    segment_source_origin,
)
from apps.membership.services.data_sources import Source as DataSource
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

EVENT_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
MAX_EVENT_PREFIX_LENGTH = 50
MAX_EXTERNAL_ID_LENGTH = 100
# The response explains at most this many skipped messages of a request.
MAX_REPORTED_ERRORS = 20
# Held messages locked and recorded per transaction by the periodic release.
RELEASE_BATCH_SIZE = 500
HELD_LIMIT_REACHED = "held_limit_reached"


@dataclass
class SegmentResult:
    """Counts of what one request's messages became, returned by the endpoint."""

    received: int = 0
    recorded: int = 0
    # Messages whose event or held copy already existed: repeats within the
    # request, retries, and held messages released here that had been
    # recorded when a client sent their messageId again.
    duplicates: int = 0
    held: int = 0
    # Usage messages matching no member that were not stored, because their
    # source already has RM6_SEGMENT_MAX_HELD_MESSAGES held messages.
    dropped: int = 0
    # Identify and alias messages that named a known member.
    identified: int = 0
    # Identify messages whose userId the source may not link to the member
    # found by email, and alias messages whose previousId it may not link to
    # the member of their userId: the source does not link identities, or the
    # ID already names another member.
    not_linked: int = 0
    released: int = 0
    # Group messages, and identify or alias messages that name no member.
    ignored: int = 0
    invalid: int = 0
    invalid_reasons: Counter = field(default_factory=Counter)
    # The first MAX_REPORTED_ERRORS skipped messages: index in the request,
    # reason code and an explanation.
    errors: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = asdict(self)
        del counts["invalid_reasons"]
        del counts["errors"]
        return counts


@dataclass
class HeldRecording:
    """Held messages recorded as new events, and those whose event existed.

    A held message's event exists when a client sent its messageId again
    after its person became a member, which recorded the resent copy.
    """

    recorded: int = 0
    duplicates: int = 0


@dataclass
class HeldMatchResult:
    recorded: int
    released: int
    linked_external_id: str
    # Matched or released messages whose event had already been recorded.
    duplicates: int = 0


def check_event_prefix(event_prefix: str) -> None:
    """Raise DomainError unless events under the prefix can be recorded.

    The prefix must be `product`, or another kind family registered for
    integrations such as `product.*`, or lie under one.
    """
    if len(event_prefix) > MAX_EVENT_PREFIX_LENGTH or not EVENT_PREFIX_PATTERN.match(
        event_prefix
    ):
        raise DomainError(
            f"{event_prefix!r} is not a valid event prefix. Use at most "
            f"{MAX_EVENT_PREFIX_LENGTH} characters of lower-case words separated "
            "by dots, for example product or product.web.",
            field="event_prefix",
        )
    families = list_integration_families()
    if not is_integration_prefix(event_prefix, families):
        names = ", ".join(f"{family}.*" for family in families)
        raise DomainError(
            f"No kind family registered for integrations covers {event_prefix!r}, "
            "so every tracked event would be rejected. Use a prefix under one "
            f"of: {names}.",
            field="event_prefix",
            code="unknown_kind",
        )


@transaction.atomic
def create_segment_source(
    *,
    name: str,
    event_prefix: str = "product",
    is_active: bool = True,
    links_identities: bool = False,
) -> tuple[SegmentSource, str]:
    """Create a source and return it with its write key.

    Only the key's digest is stored, so the returned key is the only copy.
    """
    check_event_prefix(event_prefix)
    write_key = generate_write_key()

    source = SegmentSource.objects.create(
        name=name,
        event_prefix=event_prefix,
        is_active=is_active,
        links_identities=links_identities,
        write_key_digest=hash_write_key(write_key),
        write_key_prefix=write_key[:WRITE_KEY_PREFIX_LENGTH],
    )

    logger.info("segment source created: source=%s", source.pk)
    return source, write_key


@transaction.atomic
def update_segment_source(
    *,
    source: SegmentSource,
    name: str,
    event_prefix: str,
    is_active: bool,
    links_identities: bool,
) -> SegmentSource:
    """Change a source's name, event prefix, active flag or identity linking."""
    check_event_prefix(event_prefix)

    source.name = name
    source.event_prefix = event_prefix
    source.is_active = is_active
    source.links_identities = links_identities
    source.save(update_fields=["name", "event_prefix", "is_active", "links_identities"])

    logger.info(
        "segment source updated: source=%s active=%s links_identities=%s",
        source.pk,
        is_active,
        links_identities,
    )
    return source


@transaction.atomic
def rotate_segment_write_key(*, source: SegmentSource) -> str:
    """Give a source a new write key and return it. The old key stops working."""
    write_key = generate_write_key()

    source.write_key_digest = hash_write_key(write_key)
    source.write_key_prefix = write_key[:WRITE_KEY_PREFIX_LENGTH]
    source.save(update_fields=["write_key_digest", "write_key_prefix"])

    logger.info("segment write key rotated: source=%s", source.pk)
    return write_key


@transaction.atomic
def ingest_segment_messages(
    *, source: SegmentSource, messages: list, received_at: datetime
) -> SegmentResult:
    """Record one request's messages from a Segment client, skipping invalid ones.

    `identify` messages are handled first, so every track message of the
    same batch already matches the member an identify links. An identify names its
    member by external ID (userId) or email. From a source that links
    identities it sets the member's empty external ID to its userId. Then it
    releases the member's held messages.
    `track`, `page` and `screen` messages become events of the member whose
    external ID is their userId, else of the member whose email is in their
    context traits or is the userId itself. Messages matching no member are
    held for review. Each event's idempotency key is built from the source and
    messageId, so a retried message counts once.
    An `alias` from a source that links identities ties its previousId, which
    may have been a userId or an anonymousId, to the member of its userId as
    an identity at the source. Later messages carrying it as their userId, or
    as their anonymousId when they have no userId, then match the member, and
    the messages held under it are released. `group` messages, and
    identify or alias messages that name no member, are accepted and counted
    as ignored.
    """
    result = SegmentResult(received=len(messages))
    parsed, positions = _parse_messages(messages, source=source, result=result)
    identifies = [message for message in parsed if message.type == "identify"]
    aliases = [message for message in parsed if message.type == "alias"]
    usage = [message for message in parsed if message.is_usage]
    result.ignored = len(parsed) - len(identifies) - len(aliases) - len(usage)
    index = _MemberIndex(
        source=source,
        user_ids={message.user_id for message in parsed if message.user_id},
        anonymous_ids={
            message.anonymous_id
            for message in usage
            if message.anonymous_id and not message.user_id
        },
        emails={message.email for message in parsed if message.email},
    )

    releases: dict[int, _Release] = {}
    for message in identifies:
        member = _identify(message, source=source, index=index, result=result)
        if member is None:
            result.ignored += 1
            continue
        result.identified += 1
        release = releases.setdefault(member.pk, _Release(member))
        if message.anonymous_id:
            release.anonymous_ids.add(message.anonymous_id)
    for message in aliases:
        member = _alias(message, source=source, index=index, result=result)
        if member is None:
            continue
        result.identified += 1
        releases.setdefault(member.pk, _Release(member))

    rows = []
    unmatched = []
    for message in usage:
        member = index.find(
            user_id=message.user_id,
            anonymous_id=message.anonymous_id,
            email=message.email,
        )
        if member is None:
            unmatched.append(message)
        else:
            rows.append(_event_row(message, source_id=source.pk, member=member))
    ingested, rejected = _ingest_rows(rows, now=received_at)
    result.recorded = ingested.created
    result.duplicates += ingested.duplicates
    _count_invalid(result, "rejected_by_ingest", len(rejected))
    held, already_known, dropped = _hold_messages(unmatched, source=source)
    result.held = held
    result.duplicates += already_known
    if dropped:
        _report_dropped(result, dropped, positions=positions, source=source)

    for release in releases.values():
        recording = release_held_events(
            member=release.member,
            source=source,
            anonymous_ids=release.anonymous_ids,
            now=received_at,
        )
        result.released += recording.recorded
        result.duplicates += recording.duplicates
    # At most once per RECORD_INTERVAL, as the data source run: every request
    # of a busy source would otherwise update, and lock, the same row.
    SegmentSource.objects.filter(
        Q(last_received_at__isnull=True)
        | Q(last_received_at__lt=received_at - RECORD_INTERVAL),
        pk=source.pk,
    ).update(last_received_at=received_at)
    if result.invalid and result.invalid == result.received:
        # Every message was rejected: the source is sending, but nothing of it
        # can be used, which the freshness panel shows as a failed run.
        record_source_failure(
            source=DataSource.USAGE_INGESTION,
            origin=segment_source_origin(source.pk),
            error=f"segment batch failed: all {result.invalid} message(s) invalid",
            at=received_at,
        )
    elif result.received:
        # An empty batch does not show whether the source works.
        record_source_success(
            source=DataSource.USAGE_INGESTION,
            origin=segment_source_origin(source.pk),
            at=received_at,
        )

    if result.invalid:
        logger.warning(
            "segment messages skipped: source=%s invalid=%d reasons=%s",
            source.pk,
            result.invalid,
            dict(result.invalid_reasons),
        )
    logger.info("segment messages received: source=%s %s", source.pk, result.counts())
    return result


@transaction.atomic
def release_held_events(
    *,
    member: Member,
    source: SegmentSource | None = None,
    anonymous_ids: Iterable[str] = (),
    now: datetime | None = None,
) -> HeldRecording:
    """Record the held messages that now name `member`, and return the counts.

    Messages name members by the rules of `_lock_matched_held_events`, which
    the periodic release applies too. So a message whose userId its source
    ties to another member is never released here, even when that userId is
    this member's external ID. For messages of `source` without a userId, the
    `anonymous_ids` that this request's identifies sent with the member's
    userId rank after the source's identities and before emails.
    """
    identity_ids = list(
        SegmentIdentity.objects.filter(member=member).values_list("user_id", flat=True)
    )
    request_anonymous_ids = sorted({value for value in anonymous_ids if value})
    scope = _MemberScope(
        member_id=member.pk,
        email=member.user.email.lower(),
        user_ids=sorted({*identity_ids, member.external_id} - {""}),
        anonymous_ids=sorted({*identity_ids, *request_anonymous_ids}),
        request_source_id=source.pk if source is not None else None,
        request_anonymous_ids=request_anonymous_ids if source is not None else [],
    )
    unrecordable = _Unrecordable()

    held_events = _lock_matched_held_events(scope=scope)
    recording, _ = _record_matched(
        held_events, now=now or timezone.now(), unrecordable=unrecordable
    )

    unrecordable.log()
    return recording


@transaction.atomic
def match_held_events(
    *, held_event_ids: list[int], member: Member, actor
) -> HeldMatchResult:
    """Record held messages as events of `member`, as staff decided.

    When every matched message names the same userId, it is tied to the
    member, so that later messages match by themselves. It becomes the
    member's external ID when the member has none and the source links
    identities, and an identity at the message's source otherwise. Other held
    messages matching the member are then released too.
    """
    now = timezone.now()
    held_events = list(
        HeldUsageEvent.objects.select_for_update(of=("self",))
        .select_related("source")
        .filter(pk__in=held_event_ids, status=HeldUsageEvent.Status.HELD)
        .order_by("pk")
    )
    unrecordable = _Unrecordable()
    recording = _record_held(
        held_events, member=member, now=now, unrecordable=unrecordable
    )
    unrecordable.log()

    linked = ""
    user_ids = {held.user_id for held in held_events if held.user_id}
    if len(user_ids) == 1:
        (user_id,) = user_ids
        source = next(h.source for h in held_events if h.user_id == user_id)
        # A source whose key may be public only ever ties IDs for itself.
        if _link_user_id(
            member=member,
            user_id=user_id,
            source_id=source.pk,
            actor=actor,
            may_set_external_id=source.links_identities,
        ):
            linked = user_id
    release = release_held_events(member=member, now=now)

    logger.info(
        "held segment messages matched: member=%s recorded=%d released=%d "
        "duplicates=%d",
        member.pk,
        recording.recorded,
        release.recorded,
        recording.duplicates + release.duplicates,
    )
    return HeldMatchResult(
        recorded=recording.recorded,
        released=release.recorded,
        linked_external_id=linked,
        duplicates=recording.duplicates + release.duplicates,
    )


def release_matched_held_events(
    *, now: datetime | None = None, batch_size: int = RELEASE_BATCH_SIZE
) -> int:
    """Record held messages whose person became a member later, and return how many.

    A held message matches as a live one does: by its source's identity for
    its userId, else by the external ID equal to its userId, else by its
    email. A message without a userId matches by its source's identity for
    its anonymousId, else by its email. The identity wins even over another
    member's external ID, and a
    merged member's messages go to the member it was merged into. Messages
    whose member is deactivated or anonymised stay held, as staff's "Match to
    member" refuses such members: usage recorded for them would be personal
    data of someone who left.

    This runs as a periodic beat task, not as a hook on member writes,
    because members appear or change their external ID or email through many
    paths: API upserts, CSV imports, sign-up, SSO, admin edits of the member
    or of the user's email, merges and identify messages. Membership may not
    import lifecycle, so a hook would need a call in each of those paths, and
    a path without one would leave usage held with no sign. One query covers
    them all and adds no work to a request. The cost is the wait until the
    next run.

    Each batch runs in its own transaction and locks its held rows, so a
    concurrent run or identify waits and then finds them recorded. Events
    keep the idempotency key built from source and messageId, so a message is
    recorded once. A batch's query count does not grow with its messages or
    members, apart from one query per merge hop.

    NOTE: every run reads each held message that matches no member yet, so
    its cost grows with them. In a one-off measurement with 500,000 such
    messages and 50,000 members, a run took about 1.4 s on a shared 2-core
    machine with PostgreSQL 15, before the join on anonymousId identities
    was added.
    """
    now = now or timezone.now()
    released = duplicates = skipped = 0
    # One warning per run: the same messages stay held and come back each run.
    unrecordable = _Unrecordable()
    after_id: int | None = 0
    while after_id is not None:
        with transaction.atomic():
            held_events = _lock_matched_held_events(after_id=after_id, limit=batch_size)
            recording, inactive = _record_matched(
                held_events, now=now, unrecordable=unrecordable
            )
        released += recording.recorded
        duplicates += recording.duplicates
        skipped += inactive
        after_id = held_events[-1].pk if len(held_events) == batch_size else None

    unrecordable.log()

    if released or duplicates:
        logger.info(
            "held segment messages released to matching members: released=%d "
            "duplicates=%d skipped_inactive=%d",
            released,
            duplicates,
            skipped,
        )
    return released


@transaction.atomic
def discard_held_events(*, held_event_ids: list[int]) -> int:
    """Mark held messages as discarded and return how many changed."""
    discarded = HeldUsageEvent.objects.filter(
        pk__in=held_event_ids, status=HeldUsageEvent.Status.HELD
    ).update(status=HeldUsageEvent.Status.DISCARDED, resolved_at=timezone.now())

    logger.info("held segment messages discarded: count=%d", discarded)
    return discarded


@dataclass
class _Release:
    """A member identified in a request, with the anonymous IDs its identifies sent."""

    member: Member
    anonymous_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _MemberScope:
    """The held messages that one member's release looks at, by their IDs."""

    member_id: int
    email: str
    # The member's external ID and the user IDs that sources tied to it.
    user_ids: list[str]
    # The IDs tied to the member that a message without a userId may carry.
    anonymous_ids: list[str]
    # The source whose identifies sent `request_anonymous_ids` in this request.
    request_source_id: int | None
    request_anonymous_ids: list[str]


@dataclass
class _Unrecordable:
    """Held messages that no longer parse, collected for one warning per call."""

    reasons: dict[int, str] = field(default_factory=dict)
    source_ids: set[int] = field(default_factory=set)

    def add(self, held: HeldUsageEvent, reason: str) -> None:
        self.reasons[held.pk] = reason
        self.source_ids.add(held.source_id)

    def log(self) -> None:
        if not self.reasons:
            return
        logger.warning(
            "held segment messages not recordable: count=%d reasons=%s "
            "sources=%s held=%s",
            len(self.reasons),
            dict(Counter(self.reasons.values())),
            sorted(self.source_ids),
            sorted(self.reasons)[:MAX_REPORTED_ERRORS],
        )


class _MemberIndex:
    """The members a request's messages may name, by ID and email.

    Emails are unique regardless of case (a unique index on the lower-cased
    user email), so each maps to one member. `anonymous_ids` are those of
    usage messages without a userId, looked up among the source's identities.
    """

    def __init__(
        self,
        *,
        source: SegmentSource,
        user_ids: set[str],
        anonymous_ids: set[str],
        emails: set[str],
    ):
        self.by_external_id: dict[str, Member] = {}
        self.by_identity: dict[str, Member] = {}
        self.by_email: dict[str, Member] = {}
        if not user_ids and not anonymous_ids and not emails:
            return
        members = (
            Member.objects.select_related("user", "merged_into__user")
            .annotate(email_lower=Lower("user__email"))
            .filter(Q(external_id__in=user_ids) | Q(email_lower__in=emails))
        )
        for member in members:
            if member.external_id:
                self.by_external_id[member.external_id] = member
            self.by_email[member.email_lower] = member
        if emails:
            # A sign-up's email matches no member until it is confirmed.
            claimed_only = list_unconfirmed_sign_up_member_ids(
                member_ids=[member.pk for member in self.by_email.values()]
            )
            self.by_email = {
                email: member
                for email, member in self.by_email.items()
                if member.pk not in claimed_only
            }
        if user_ids or anonymous_ids:
            identities = SegmentIdentity.objects.select_related(
                "member__user", "member__merged_into__user"
            ).filter(source=source, user_id__in=user_ids | anonymous_ids)
            for identity in identities:
                self.by_identity[identity.user_id] = identity.member

    def find(
        self, *, user_id: str, email: str, anonymous_id: str = ""
    ) -> Member | None:
        """Return the member by source identity, external ID or email, or None.

        The source's own identity comes first: it is what this source meant by
        the ID when it was tied, even if another member later got the same ID
        as their external ID through another source. Without a userId, the
        source's identity for the anonymousId comes first. A member who is
        deactivated or deleted, after merges, gets None, so their usage is
        held as staff's "Match to member" holds it, and a member reactivated
        later gets it from the periodic release.
        """
        member = None
        if user_id:
            member = self.by_identity.get(user_id) or self.by_external_id.get(user_id)
        elif anonymous_id:
            member = self.by_identity.get(anonymous_id)
        if member is None and email:
            member = self.by_email.get(email)
        if member is None:
            return None
        member = get_surviving_member(member)
        if member.deactivated_at is not None or member.anonymised_at is not None:
            return None
        return member

    def add_user_id(self, member: Member, user_id: str) -> None:
        self.by_identity[user_id] = member


def _parse_messages(
    messages: list, *, source: SegmentSource, result: SegmentResult
) -> tuple[list[SegmentMessage], dict[str, int]]:
    """Return the valid messages and each one's index in the request, by messageId."""
    parsed = []
    positions: dict[str, int] = {}
    for position, raw in enumerate(messages):
        try:
            message = parse_message(raw, event_prefix=source.event_prefix)
        except InvalidMessage as error:
            _count_invalid(result, error.reason)
            if len(result.errors) < MAX_REPORTED_ERRORS:
                result.errors.append(
                    {
                        "index": position,
                        "reason": error.reason,
                        "message": error.explanation,
                    }
                )
            continue
        # A client retrying part of a batch may repeat a message in one request.
        if message.message_id in positions:
            result.duplicates += 1
            continue
        parsed.append(message)
        positions[message.message_id] = position
    return parsed, positions


def _count_invalid(result: SegmentResult, reason: str, count: int = 1) -> None:
    if count:
        result.invalid += count
        result.invalid_reasons[reason] += count


def _identify(
    message: SegmentMessage,
    *,
    source: SegmentSource,
    index: "_MemberIndex",
    result: SegmentResult,
) -> Member | None:
    member = index.find(user_id=message.user_id, email="")
    if member is not None or not message.email:
        return member
    member = index.find(user_id="", email=message.email)
    if member is None or not message.user_id:
        return member
    if not source.links_identities:
        # A userId that is the member's email matches without a link.
        is_email = message.user_id.strip().lower() == member.user.email.lower()
        if member.external_id != message.user_id and not is_email:
            result.not_linked += 1
        logger.info(
            "segment identify not linked: source=%s does not link identities, "
            "member=%s",
            source.pk,
            member.pk,
        )
        return member
    if _link_user_id(
        member=member, user_id=message.user_id, source_id=source.pk, actor=None
    ):
        index.add_user_id(member, message.user_id)
    else:
        result.not_linked += 1
    return member


def _alias(
    message: SegmentMessage,
    *,
    source: SegmentSource,
    index: "_MemberIndex",
    result: SegmentResult,
) -> Member | None:
    """Return the member an alias ties its previousId to, or None.

    Only a source that links identities may tie IDs: with a browser's public
    key, anyone could claim another person's held usage.
    """
    member = index.find(user_id=message.user_id, email=message.email)
    if member is None:
        result.ignored += 1
        return None
    if not source.links_identities:
        result.not_linked += 1
        logger.info(
            "segment alias not linked: source=%s does not link identities, member=%s",
            source.pk,
            member.pk,
        )
        return None
    # The previousId is tied as the source's identity, never as the member's
    # external ID, because it may be an anonymousId: messages without a
    # userId match by identity only.
    if _link_user_id(
        member=member,
        user_id=message.previous_id,
        source_id=source.pk,
        actor=None,
        may_set_external_id=False,
    ):
        index.add_user_id(member, message.previous_id)
    else:
        result.not_linked += 1
    return member


def _link_user_id(
    *,
    member: Member,
    user_id: str,
    source_id: int,
    actor,
    may_set_external_id: bool = True,
) -> bool:
    """Tie a source's user ID to the member and return whether it now matches.

    The ID becomes the member's external ID when the member has none, it
    fits and `may_set_external_id`. Otherwise it is stored as the member's
    identity at that source. An ID that is another member's external ID or
    email, or that the source already ties to another member, is not tied.
    """
    if _is_other_members_email(user_id, member):
        logger.info(
            "segment identity not linked: the id is another member's email: "
            "member=%s source=%s",
            member.pk,
            source_id,
        )
        return False
    fits_external_id = len(user_id) <= MAX_EXTERNAL_ID_LENGTH
    may_set = may_set_external_id and fits_external_id and not member.external_id
    if member.external_id == user_id or may_set:
        return _link_external_id(
            member=member, external_id=user_id, source_id=source_id, actor=actor
        )
    if Member.objects.filter(external_id=user_id).exists():
        logger.info(
            "segment identity not linked: another member has the external id: "
            "member=%s source=%s",
            member.pk,
            source_id,
        )
        return False
    identity, created = SegmentIdentity.objects.get_or_create(
        source_id=source_id, user_id=user_id, defaults={"member": member}
    )
    if identity.member_id != member.pk:
        logger.info(
            "segment identity not linked: the source ties it to another member: "
            "member=%s source=%s",
            member.pk,
            source_id,
        )
        return False
    if created:
        AuditEntry.objects.create(
            actor=actor,
            action="member.segment_identity_linked",
            member=member,
            account_id=member.account_id,
            details={"user_id": user_id, "segment_source_id": source_id},
        )
        logger.info(
            "segment identity linked: member=%s source=%s", member.pk, source_id
        )
    return True


def _is_other_members_email(user_id: str, member: Member) -> bool:
    """Return whether the ID is the email of a member other than `member`.

    Messages whose userId is an email match the member with that email, so
    tying it to someone else would send that person's usage to them.
    """
    if "@" not in user_id:
        return False
    return (
        Member.objects.filter(user__email__iexact=user_id.strip())
        .exclude(pk=member.pk)
        .exists()
    )


def _link_external_id(
    *, member: Member, external_id: str, source_id: int, actor
) -> bool:
    """Set the member's empty external ID and return whether it now matches.

    A member with another external ID keeps it. An ID that another member
    already has is left with that member, since the unique constraint on
    external IDs rejects the update.
    """
    if member.external_id:
        if member.external_id != external_id:
            logger.info(
                "external id not linked: member has another: member=%s source=%s",
                member.pk,
                source_id,
            )
        return member.external_id == external_id
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        logger.info(
            "external id not linked: longer than %d characters: member=%s",
            MAX_EXTERNAL_ID_LENGTH,
            member.pk,
        )
        return False

    try:
        with transaction.atomic():
            linked = Member.objects.filter(pk=member.pk, external_id="").update(
                external_id=external_id
            )
    except IntegrityError:
        logger.warning(
            "external id not linked: another member has it: member=%s source=%s",
            member.pk,
            source_id,
        )
        return False
    if not linked:
        # A concurrent request linked another ID since the member was read.
        return False

    member.external_id = external_id
    AuditEntry.objects.create(
        actor=actor,
        action="member.external_id_linked",
        member=member,
        account_id=member.account_id,
        details={"external_id": external_id, "segment_source_id": source_id},
    )
    logger.info("external id linked: member=%s source=%s", member.pk, source_id)
    return True


def _event_row(message: SegmentMessage, *, source_id: int, member: Member) -> dict:
    return {
        "member_id": member.pk,
        "kind": message.kind,
        "occurred_at": message.occurred_at,
        "properties": message.properties,
        "idempotency_key": f"segment:{source_id}:{message.message_id}",
        **message.attribution,
    }


def _ingest_rows(rows: list[dict], *, now: datetime) -> tuple[IngestResult, set[int]]:
    """Ingest the rows, leaving out those `ingest_events` rejects.

    Return the result and the indexes of the rejected rows. The rows were
    checked while parsing, so a rejection means that check disagrees with
    `ingest_events`. Each retry drops at least one row, so the loop ends.
    """
    rejected: set[int] = set()
    while True:
        indexes = [index for index in range(len(rows)) if index not in rejected]
        if not indexes:
            return IngestResult(), rejected
        try:
            result = ingest_events(
                rows=[rows[index] for index in indexes],
                now=now,
                from_integration=True,
            )
        except IngestError as error:
            logger.error("segment rows rejected by ingest_events: %s", error.row_errors)
            rejected.update(indexes[position] for position in error.row_errors)
            continue
        return result, rejected


def _hold_messages(
    messages: list[SegmentMessage], *, source: SegmentSource
) -> tuple[int, int, list[SegmentMessage]]:
    """Hold messages that match no member, up to the source's limit.

    Return how many were held, how many were already known and the messages
    dropped because the source has RM6_SEGMENT_MAX_HELD_MESSAGES held. A message
    already recorded or already held for this source is not held again,
    because it is a retry. Messages are held in request order until the limit.
    """
    if not messages:
        return 0, 0, []
    limit = settings.RM6_SEGMENT_MAX_HELD_MESSAGES
    if limit > 0:
        # The source row lock makes concurrent requests of the source hold in
        # turn, each counting the rows of those before it, so that together
        # they never pass the limit. Releases, discards and purges only lower
        # the count, so they need no lock.
        # NOTE: the lock lasts until the request commits. A request waiting for
        # it may hold a lock that this request's release needs, such as a
        # member row its identify changed. PostgreSQL then aborts one of the
        # two with a deadlock error, a 500 that Segment clients retry.
        SegmentSource.objects.select_for_update(no_key=True).filter(
            pk=source.pk
        ).exists()
    keys = [f"segment:{source.pk}:{message.message_id}" for message in messages]
    recorded_keys = set(
        ActivityEvent.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )
    held_ids = set(
        HeldUsageEvent.objects.filter(
            source=source, message_id__in=[message.message_id for message in messages]
        ).values_list("message_id", flat=True)
    )
    fresh = [
        message
        for message, key in zip(messages, keys, strict=True)
        if key not in recorded_keys and message.message_id not in held_ids
    ]
    dropped: list[SegmentMessage] = []
    if limit > 0 and fresh:
        room = max(0, limit - count_held_messages(source=source))
        fresh, dropped = fresh[:room], fresh[room:]

    # With the limit off, a concurrent request holding the same message is
    # skipped by the unique constraint on (source, message_id). Inserting in
    # message ID order makes two requests sharing messages wait for each
    # other, not deadlock.
    fresh.sort(key=lambda message: message.message_id)
    HeldUsageEvent.objects.bulk_create(
        [
            HeldUsageEvent(
                source=source,
                message_id=message.message_id,
                user_id=message.user_id,
                anonymous_id=message.anonymous_id,
                email=message.email,
                message=message.stored,
            )
            for message in fresh
        ],
        ignore_conflicts=True,
    )
    return len(fresh), len(messages) - len(fresh) - len(dropped), dropped


def _report_dropped(
    result: SegmentResult,
    dropped: list[SegmentMessage],
    *,
    positions: dict[str, int],
    source: SegmentSource,
) -> None:
    """Count and explain the messages dropped at the source's held limit."""
    limit = settings.RM6_SEGMENT_MAX_HELD_MESSAGES
    explanation = (
        f"The message matches no member, and the source already holds the "
        f"maximum of {limit} such messages, so it was not stored. Identify the "
        "users so that their held messages are recorded, or have staff match "
        "or discard held messages under Admin > Lifecycle > Held usage events."
    )
    result.dropped = len(dropped)
    result.errors.extend(
        {
            "index": positions[message.message_id],
            "reason": HELD_LIMIT_REACHED,
            "message": explanation,
        }
        for message in dropped[:MAX_REPORTED_ERRORS]
    )
    # Invalid and dropped messages each came in request order, so sorting
    # both keeps the first MAX_REPORTED_ERRORS skipped messages of the request.
    result.errors.sort(key=lambda error: error["index"])
    del result.errors[MAX_REPORTED_ERRORS:]

    logger.warning(
        "segment messages dropped: held limit reached: source=%s limit=%d dropped=%d",
        source.pk,
        limit,
        len(dropped),
    )


def _record_held(
    held_events: list[HeldUsageEvent],
    *,
    member: Member,
    now: datetime,
    unrecordable: _Unrecordable,
) -> HeldRecording:
    """Record held messages as events of `member`, mark them and return the counts."""
    return _record_held_as(
        [(held, member) for held in held_events], now=now, unrecordable=unrecordable
    )


def _record_held_as(
    matches: list[tuple[HeldUsageEvent, Member]],
    *,
    now: datetime,
    unrecordable: _Unrecordable,
) -> HeldRecording:
    """Record each held message as an event of its member and return the counts.

    Every message is recorded in one ingest and marked in one update, however
    many members they go to. A message whose event already exists is marked
    recorded too, but counts as a duplicate. A held message that no longer
    parses, for example because its source's event prefix was changed to one
    outside the integration families, stays held and is added to
    `unrecordable`.
    """
    rows = []
    parsed = []
    for held, member in matches:
        try:
            message = parse_message(held.message, event_prefix=held.source.event_prefix)
        except InvalidMessage as error:
            unrecordable.add(held, error.reason)
            continue
        rows.append(_event_row(message, source_id=held.source_id, member=member))
        parsed.append((held, member))
    ingested, rejected = _ingest_rows(rows, now=now)
    recorded: dict[int, list[int]] = {}
    for position, (held, member) in enumerate(parsed):
        if position not in rejected:
            recorded.setdefault(member.pk, []).append(held.pk)
    if not recorded:
        return HeldRecording()

    member_of_held = Case(
        *[When(pk__in=ids, then=Value(pk)) for pk, ids in recorded.items()],
        output_field=BigIntegerField(),
    )
    HeldUsageEvent.objects.filter(
        pk__in=[pk for ids in recorded.values() for pk in ids]
    ).update(
        status=HeldUsageEvent.Status.RECORDED,
        member_id=member_of_held,
        resolved_at=now,
    )
    return HeldRecording(recorded=ingested.created, duplicates=ingested.duplicates)


def _lock_matched_held_events(
    *, after_id: int = 0, limit: int | None = None, scope: _MemberScope | None = None
) -> list[HeldUsageEvent]:
    """Lock and return held messages that name a member, after `after_id`.

    Each comes with `matched_member_id`, the member the message names before
    merges are followed. The rules are those of `_MemberIndex.find`: the
    source's identity for the userId, else the external ID, else the email.
    A message without a userId matches the source's identity for its
    anonymousId, then the request's anonymous IDs of `scope`, then the
    email. With `scope`, only messages that name its member are returned.

    The same statement applies the rules and locks the rows, so no identity
    or external ID can change between the two. A row that a concurrent
    release records first is left out once its lock is released, because
    PostgreSQL checks the status of the locked row again.
    """
    held_table = HeldUsageEvent._meta.db_table
    identities = SegmentIdentity._meta.db_table
    members = Member._meta.db_table
    users = Member._meta.get_field("user").related_model._meta.db_table
    params: dict = {"held": HeldUsageEvent.Status.HELD, "after_id": after_id}
    request_tie = "NULL::bigint"
    if scope is not None and scope.request_anonymous_ids:
        request_tie = """CASE WHEN h.user_id = ''
            AND h.source_id = %(request_source_id)s
            AND h.anonymous_id = ANY(%(request_anonymous_ids)s::text[])
            THEN %(member_id)s::bigint END"""
    tied = f"COALESCE(si.member_id, mx.id, sa.member_id, {request_tie})"
    matched = f"COALESCE({tied}, me.id)"
    where = f"{matched} IS NOT NULL"
    if scope is not None:
        where = f"{matched} = %(member_id)s AND ({_scope_condition(scope)})"
        params.update(asdict(scope))
    limit_clause = ""
    if limit is not None:
        limit_clause = "LIMIT %(limit)s"
        params["limit"] = limit
    # The conditions on empty values let PostgreSQL use the partial unique
    # indexes on external IDs and on lower-cased emails.
    sql = f"""
        SELECT h.*, {matched} AS matched_member_id,
               {tied} IS NULL AS matched_by_email
        FROM {held_table} h
        LEFT JOIN {identities} si
            ON h.user_id <> ''
            AND si.source_id = h.source_id
            AND si.user_id = h.user_id
        LEFT JOIN {members} mx
            ON h.user_id <> ''
            AND mx.external_id <> ''
            AND mx.external_id = h.user_id
        LEFT JOIN {identities} sa
            ON h.user_id = ''
            AND h.anonymous_id <> ''
            AND sa.source_id = h.source_id
            AND sa.user_id = h.anonymous_id
        LEFT JOIN ({users} u JOIN {members} me ON me.user_id = u.id)
            ON h.email <> ''
            AND u.email <> ''
            AND lower(u.email) = h.email
        WHERE h.status = %(held)s
            AND h.id > %(after_id)s
            AND {where}
        ORDER BY h.id
        {limit_clause}
        FOR UPDATE OF h
    """
    return list(HeldUsageEvent.objects.raw(sql, params))


def _scope_condition(scope: _MemberScope) -> str:
    """Return the SQL condition for the held rows that may name the scope's member.

    It narrows the rows to those the indexes find by ID or email before the
    precedence rules run.
    """
    conditions = []
    if scope.user_ids:
        conditions.append("h.user_id = ANY(%(user_ids)s::text[])")
    if scope.email:
        conditions.append("h.email = %(email)s")
    if scope.anonymous_ids:
        conditions.append(
            "(h.user_id = '' AND h.anonymous_id = ANY(%(anonymous_ids)s::text[]))"
        )
    return " OR ".join(conditions) or "FALSE"


def _record_matched(
    held_events: list[HeldUsageEvent], *, now: datetime, unrecordable: _Unrecordable
) -> tuple[HeldRecording, int]:
    """Record locked held messages for their matched members.

    Return the counts of `_record_held_as` and how many were left held
    because their member, after merges, is deactivated or anonymised.
    """
    if not held_events:
        return HeldRecording(), 0
    survivors = _get_surviving_members({held.matched_member_id for held in held_events})
    sources = SegmentSource.objects.in_bulk({held.source_id for held in held_events})
    # A sign-up that has not confirmed its email gets no usage matched by that
    # email: anyone can sign up with another person's address.
    claimed_only = list_unconfirmed_sign_up_member_ids(
        member_ids={
            held.matched_member_id for held in held_events if held.matched_by_email
        }
    )

    matches = []
    inactive = 0
    for held in held_events:
        member = survivors.get(held.matched_member_id)
        if member is None or (
            held.matched_by_email and held.matched_member_id in claimed_only
        ):
            continue
        if member.deactivated_at is not None or member.anonymised_at is not None:
            inactive += 1
            continue
        held.source = sources[held.source_id]
        matches.append((held, member))
    return _record_held_as(matches, now=now, unrecordable=unrecordable), inactive


def _get_surviving_members(member_ids: set[int]) -> dict[int, Member]:
    """Map each member ID to the member it was merged into, or to itself.

    As `get_surviving_member`, but with one query per merge hop for all
    members, not one per member.
    """
    survivors = Member.objects.in_bulk(member_ids)
    for _ in range(MAX_MERGE_HOPS):
        next_ids = {m.merged_into_id for m in survivors.values() if m.merged_into_id}
        if not next_ids:
            break
        merged_into = Member.objects.in_bulk(next_ids)
        survivors = {
            pk: merged_into.get(member.merged_into_id, member)
            if member.merged_into_id
            else member
            for pk, member in survivors.items()
        }
    return survivors


PURGE_BATCH_SIZE = 1000


def purge_held_events(*, now: datetime | None = None) -> int:
    """Delete held messages received longer ago than the retention; return how many.

    Rows go whatever their status. A recorded one has become an event, a
    discarded one was dropped by staff, and a message still held after that
    long is usage of someone who never became a member. Its email and IDs are
    personal data with no use left. RM6_HELD_USAGE_RETENTION_DAYS of 0 keeps
    every row. Rows go in batches, each in a transaction of its own, so that
    a large backlog never holds many row locks for long.
    """
    days = settings.RM6_HELD_USAGE_RETENTION_DAYS
    if days <= 0:
        return 0
    received_before = (now or timezone.now()) - timedelta(days=days)
    old = HeldUsageEvent.objects.filter(received_at__lt=received_before)
    purged = 0
    while ids := list(
        old.order_by("pk").values_list("pk", flat=True)[:PURGE_BATCH_SIZE]
    ):
        deleted, _ = HeldUsageEvent.objects.filter(pk__in=ids).delete()
        purged += deleted
    if purged:
        logger.info(
            "held usage events purged: %d received before %s", purged, received_before
        )
    return purged


def erase_member_segment_identities(*, member: Member) -> int:
    """Delete the user IDs that sources tied to an anonymised member."""
    deleted, _ = SegmentIdentity.objects.filter(member=member).delete()
    return deleted


def export_member_segment_identities(member: Member) -> dict:
    """Return the user IDs that sources tied to the member, for their export."""
    identities = SegmentIdentity.objects.filter(member=member).select_related("source")
    return {
        "identities": [
            {
                "source": identity.source.name,
                "user_id": identity.user_id,
                "linked_at": identity.created_at,
            }
            for identity in identities.order_by("pk")
        ]
    }
