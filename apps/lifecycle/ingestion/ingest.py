"""Recording one request's Segment messages, the write behind the endpoint.

`ingest_segment_messages` parses the messages and handles identify and alias
messages first, which tie user IDs to members when the source links
identities. It records usage messages as events of the members they name,
holds the rest up to the source's held limit, and then releases the held
messages of the members identified.
"""

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower

from apps.lifecycle.ingestion.held import release_held_events
from apps.lifecycle.ingestion.identities import _link_user_id
from apps.lifecycle.ingestion.messages import (
    MAX_REPORTED_ERRORS,
    InvalidMessage,
    SegmentMessage,
    parse_message,
)
from apps.lifecycle.ingestion.recording import _event_row, _ingest_rows
from apps.lifecycle.ingestion.selectors import count_held_messages, is_at_held_limit
from apps.lifecycle.models import (
    ActivityEvent,
    HeldUsageEvent,
    SegmentIdentity,
    SegmentSource,
)
from apps.lifecycle.services import get_surviving_member
from apps.membership.models import Member
from apps.membership.selectors.sso import list_unconfirmed_sign_up_member_ids
from apps.membership.services.data_sources import (
    RECORD_INTERVAL,
    get_standing_error,
    record_source_failure,
    record_source_success,
    segment_source_origin,
)
from apps.membership.services.data_sources import Source as DataSource

logger = logging.getLogger(__name__)

HELD_LIMIT_REACHED = "held_limit_reached"
# The start of the freshness panel's error for a run that dropped messages.
HELD_LIMIT_ERROR = "held limit reached"


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
    # Identify messages whose userId, and alias messages whose previousId,
    # the source may not link to the member found. Either the source does not
    # link identities, or the ID already names another member.
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


@transaction.atomic
def ingest_segment_messages(
    *, source: SegmentSource, messages: list, received_at: datetime
) -> SegmentResult:
    """Record one request's messages from a Segment client, skipping invalid ones.

    `identify` messages are handled first, so every track message of the
    same batch already matches the member an identify links, also by the
    identify's anonymousId when the source links identities. Such messages are
    recorded even when the source is at its held limit. An identify names its
    member by external ID (userId) or email. From a source that links
    identities it sets the member's empty external ID to its userId. Then it
    releases the member's held messages, and from such a source also those
    held under its anonymousId.
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
        # Only a source that links identities may tie an anonymousId to the
        # member, because anyone with a browser's public key could otherwise
        # claim the usage held under another person's anonymousId.
        if message.anonymous_id and source.links_identities:
            release.anonymous_ids.add(message.anonymous_id)
            index.add_request_anonymous_id(member, message.anonymous_id)
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
    elif result.dropped:
        # Usage of the source was lost at its held limit, which the freshness
        # panel shows as a failed run while the source stays at its limit.
        record_source_failure(
            source=DataSource.USAGE_INGESTION,
            origin=segment_source_origin(source.pk),
            error=f"{HELD_LIMIT_ERROR}: {result.dropped} message(s) dropped",
            at=received_at,
        )
    elif result.received and not _is_held_limit_standing(source):
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


@dataclass
class _Release:
    """A member identified in a request, with the anonymous IDs its identifies tie.

    The identifies of a source that does not link identities tie none.
    """

    member: Member
    anonymous_ids: set[str] = field(default_factory=set)


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
        # The anonymous IDs that this request's identifies tie to a member.
        self.by_request_anonymous_id: dict[str, Member] = {}
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
        source's identity for the anonymousId comes first, then the member
        that an identify of this request ties it to, the order that
        `release_held_events` applies to held messages. A member who is
        deactivated or deleted, after merges, gets None, so their usage is
        held as staff's "Match to member" holds it, and a member reactivated
        later gets it from the periodic release.
        """
        member = None
        if user_id:
            member = self.by_identity.get(user_id) or self.by_external_id.get(user_id)
        elif anonymous_id:
            member = self.by_identity.get(anonymous_id)
            if member is None:
                member = self.by_request_anonymous_id.get(anonymous_id)
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

    def add_request_anonymous_id(self, member: Member, anonymous_id: str) -> None:
        # The first identify of the request that sends the ID keeps it.
        self.by_request_anonymous_id.setdefault(anonymous_id, member)


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


def _is_held_limit_standing(source: SegmentSource) -> bool:
    """Return whether the source's last run failed at its held limit, still reached.

    A request that drops nothing, say one of matched usage only, would
    otherwise show the source as fresh while it keeps losing the usage of
    people who are not members yet.
    """
    limit = settings.RM6_SEGMENT_MAX_HELD_MESSAGES
    if limit <= 0:
        return False
    error = get_standing_error(
        source=DataSource.USAGE_INGESTION, origin=segment_source_origin(source.pk)
    )
    if error is None or not error.startswith(HELD_LIMIT_ERROR):
        return False
    return is_at_held_limit(source=source, limit=limit)


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
