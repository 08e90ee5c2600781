import logging
from dataclasses import dataclass
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Exists, Model, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone

from apps.lifecycle import registry
from apps.lifecycle.attribution import current_attribution_for
from apps.lifecycle.models import (
    ActivityEvent,
    Enrolment,
    HealthScore,
    SegmentIdentity,
    Touch,
)
from apps.lifecycle.models.events import EARLIEST_OCCURRED_AT, MAX_CLOCK_SKEW
from apps.lifecycle.plays import dispatch as play_dispatch
from apps.lifecycle.storable import find_unstorable
from apps.membership.models import Member
from apps.membership.selectors.sso import list_unconfirmed_sign_up_member_ids
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

ATTRIBUTION_FIELDS = (
    "campaign_id",
    "play_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
# The row field that names a member, by the kind of key `_member_key` returns.
MEMBER_KEY_FIELDS = {
    "id": "member_id",
    "email": "member_email",
    "external_id": "member_external_id",
}
# Merged members are followed to the member they were merged into, through at
# most this many merges.
MAX_MERGE_HOPS = 5
# Rows per INSERT statement of a batch.
INSERT_BATCH_SIZE = 1000


def _check_kind(kind: str) -> None:
    if registry.get_kind(kind) is None:
        raise DomainError(
            f"Unknown event kind {kind!r}: register it with "
            "apps.lifecycle.registry.register_kind, or use a product.* kind "
            "for product usage.",
            field="kind",
            code="unknown_kind",
        )


def _schedule_rescore(member_ids: set[int]) -> None:
    from apps.lifecycle.tasks import refresh_member_scores_task

    ids = sorted(member_ids)
    transaction.on_commit(lambda: refresh_member_scores_task.delay(member_ids=ids))


def record_activity(
    *,
    member: Member,
    kind: str,
    subject: Model | None = None,
    occurred_at: datetime | None = None,
    properties: dict | None = None,
    attribution: dict | None = None,
    idempotency_key: str | None = None,
) -> ActivityEvent:
    """Record one activity event inside the caller's transaction.

    Handlers subscribed to the kind run in the same transaction. Nothing is
    sent to the workers: the beat tasks `lifecycle.sweep_event_triggers`
    (play triggers) and `lifecycle.rescore_stale_members` (scores) find new
    events in the event table by `recorded_at`, and the commit horizon makes
    that safe for transactions that commit late (see apps.lifecycle.horizon).
    A message per event cost more than the insert itself; see the Scoring
    section of docs/benchmarks.md. With an idempotency key already recorded,
    return that event and do nothing else. Without `attribution`, the event
    takes that of the running request's visit when `member` is the signed-in
    user's member.
    """
    event, _created = _record_activity(
        member=member,
        kind=kind,
        subject=subject,
        occurred_at=occurred_at,
        properties=properties,
        attribution=attribution,
        idempotency_key=idempotency_key,
    )
    return event


def _record_activity(
    *,
    member: Member,
    kind: str,
    subject: Model | None,
    occurred_at: datetime | None,
    properties: dict | None,
    attribution: dict | None,
    idempotency_key: str | None,
) -> tuple[ActivityEvent, bool]:
    """Record one event as `record_activity` does; return it and whether it is new."""
    _check_kind(kind)
    if attribution is None:
        attribution = current_attribution_for(user_id=member.user_id)
    attribution = {
        k: v for k, v in (attribution or {}).items() if k in ATTRIBUTION_FIELDS
    }

    values = {
        "member": member,
        "account_id": member.account_id,
        "kind": kind,
        "occurred_at": occurred_at or timezone.now(),
        "properties": properties or {},
        **attribution,
    }
    if subject is not None:
        values["subject_type"] = ContentType.objects.get_for_model(subject)
        values["subject_id"] = str(subject.pk)
    # Bad input is rejected above, before any write. From here on, no
    # savepoint: inside the caller's transaction it would cost two more round
    # trips per event. An error in a handler therefore fails the caller's
    # whole transaction, as no caller catches it and goes on.
    with transaction.atomic(savepoint=False):
        if idempotency_key:
            event, created = ActivityEvent.objects.get_or_create(
                idempotency_key=idempotency_key, defaults=values
            )
            if not created:
                return event, False
        else:
            event = ActivityEvent.objects.create(**values)

        for handler in registry.list_handlers(kind):
            handler(event)
    return event, True


@dataclass
class IngestResult:
    created: int = 0
    duplicates: int = 0


class IngestError(DomainError):
    """A batch had invalid rows; `row_errors` maps each row index to its errors."""

    def __init__(self, row_errors: dict[int, list[str]]):
        super().__init__(
            f"{len(row_errors)} row(s) are invalid; nothing was recorded. "
            "Fix the rows listed in row_errors and send the batch again.",
            code="invalid_rows",
        )
        self.row_errors = row_errors


def get_surviving_member(member: Member) -> Member:
    """Return the member that `member` was merged into, through merges, or itself.

    A merged member stays, deactivated, with its email and possibly its
    external ID, so integrations may still name it. Its new events belong
    to the survivor, where its old ones were moved.
    """
    for _ in range(MAX_MERGE_HOPS):
        if member.merged_into_id is None:
            break
        member = member.merged_into
    return member


def _resolve_members(rows: list[dict]) -> dict[tuple[str, str], Member]:
    ids = {int(r["member_id"]) for r in rows if r.get("member_id")}
    emails = {r["member_email"].strip().lower() for r in rows if r.get("member_email")}
    external_ids = {
        r["member_external_id"] for r in rows if r.get("member_external_id")
    }
    found: dict[tuple[str, str], Member] = {}
    members = (
        Member.objects.select_related("user", "merged_into")
        .annotate(email_lower=Lower("user__email"))
        .filter(
            Q(pk__in=ids) | Q(email_lower__in=emails) | Q(external_id__in=external_ids)
        )
    )
    members = list(members)
    # A sign-up's email matches no member until it is confirmed, because anyone
    # can sign up with another person's address and would then read their events.
    unconfirmed_ids = set()
    if emails:
        unconfirmed_ids = list_unconfirmed_sign_up_member_ids(
            member_ids=[m.pk for m in members if m.email_lower in emails]
        )
    for member in members:
        survivor = get_surviving_member(member)
        found[("id", str(member.pk))] = survivor
        if member.pk not in unconfirmed_ids:
            found[("email", member.email_lower)] = survivor
        if member.external_id:
            found[("external_id", member.external_id)] = survivor
    return found


def _member_key(row: dict) -> tuple[str, str] | None:
    if row.get("member_id"):
        return ("id", str(row["member_id"]))
    if row.get("member_email"):
        return ("email", row["member_email"].strip().lower())
    if row.get("member_external_id"):
        return ("external_id", row["member_external_id"])
    return None


@transaction.atomic
def ingest_events(
    *, rows: list[dict], now: datetime | None = None, from_integration: bool = False
) -> IngestResult:
    """Record a batch of events, all or nothing.

    Each row names its member by `member_id`, `member_email` or
    `member_external_id`. An email matches no member who signed up and has
    not confirmed it yet. Each row has `kind`, `occurred_at` (aware datetime),
    optional `properties`, attribution fields and `idempotency_key`. Rows whose
    idempotency key was already recorded count as duplicates and change
    nothing, so a retried batch is safe. With `from_integration`, as for the
    API and Segment sources, only kinds registered for integrations pass.
    """
    now = now or timezone.now()
    members = _resolve_members(rows)
    integration_kinds = " or ".join(
        kind.name for kind in registry.list_kinds() if kind.from_integrations
    )
    errors: dict[int, list[str]] = {}
    keys_in_batch: set[str] = set()
    events: list[ActivityEvent] = []

    for index, row in enumerate(rows):
        row_errors = []
        key = _member_key(row)
        member = members.get(key) if key else None
        if key is None:
            row_errors.append(
                "missing member: give member_id, member_email or member_external_id"
            )
        elif member is None and key[0] == "email":
            row_errors.append(
                f"member not found: no confirmed member has member_email "
                f"{key[1]!r}; check the value, or create the member first with "
                "PUT /api/v1/members/by-external-id/<external_id>/. A member "
                "who signed up on the site matches by email once they confirm "
                "the address"
            )
        elif member is None:
            row_errors.append(
                f"member not found: no member has {MEMBER_KEY_FIELDS[key[0]]} "
                f"{key[1]!r}; check the value, or create the member first with "
                "PUT /api/v1/members/by-external-id/<external_id>/"
            )
        kind = registry.get_kind(row.get("kind", ""))
        if kind is None:
            row_errors.append(
                f"unknown event kind {row.get('kind')!r}; send a registered kind, "
                f"or name product usage under {integration_kinds}, for example "
                "product.report_exported"
            )
        elif from_integration and not kind.from_integrations:
            row_errors.append(
                f"event kind {row.get('kind')!r} is recorded by the hub itself, "
                f"not by integrations; name product usage under "
                f"{integration_kinds}, for example product.report_exported"
            )
        occurred_at = row.get("occurred_at")
        if occurred_at is not None and occurred_at > now + MAX_CLOCK_SKEW:
            row_errors.append(
                f"occurred_at {occurred_at.isoformat()} is in the future; "
                "send the time the action happened, in UTC or with an offset"
            )
        if occurred_at is not None and occurred_at < EARLIEST_OCCURRED_AT:
            row_errors.append(
                f"occurred_at {occurred_at.isoformat()} is before "
                f"{EARLIEST_OCCURRED_AT.date().isoformat()}; send the real time "
                "of the action"
            )
        for name in ("properties", "idempotency_key", *ATTRIBUTION_FIELDS):
            problem = find_unstorable(row.get(name))
            if problem:
                row_errors.append(f"{name} {problem}")
        idempotency_key = row.get("idempotency_key") or None
        if idempotency_key in keys_in_batch:
            row_errors.append(
                f"idempotency_key {idempotency_key!r} repeats within the batch"
            )
        if idempotency_key:
            keys_in_batch.add(idempotency_key)
        if row_errors:
            errors[index] = row_errors
            continue
        events.append(
            ActivityEvent(
                member=member,
                account_id=member.account_id,
                kind=row["kind"],
                occurred_at=occurred_at or now,
                properties=row.get("properties") or {},
                idempotency_key=idempotency_key,
                **{f: row.get(f) or "" for f in ATTRIBUTION_FIELDS},
            )
        )
    if errors:
        raise IngestError(errors)

    keys = [e.idempotency_key for e in events if e.idempotency_key]
    seen = set(
        ActivityEvent.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )
    # Keyed rows go in key order, so that two batches sharing keys lock them
    # in the same order and wait for each other instead of deadlocking.
    fresh = sorted(
        (e for e in events if e.idempotency_key not in seen),
        key=lambda e: e.idempotency_key or "",
    )

    # Kinds with subscribed handlers go through record_activity one by one so
    # that their handlers run; the rest are inserted in bulk. A key inserted
    # by a concurrent batch since the check above is skipped by the unique
    # constraint, never stored twice, and counts as a duplicate here.
    bulk = [e for e in fresh if not registry.list_handlers(e.kind)]
    unkeyed = [e for e in bulk if not e.idempotency_key]
    ActivityEvent.objects.bulk_create(unkeyed, batch_size=1000)
    event_ids = [e.pk for e in unkeyed]
    event_ids += _insert_keyed_events([e for e in bulk if e.idempotency_key])
    for event in fresh:
        if registry.list_handlers(event.kind):
            recorded, created = _record_activity(
                member=event.member,
                kind=event.kind,
                subject=None,
                occurred_at=event.occurred_at,
                properties=event.properties,
                idempotency_key=event.idempotency_key,
                attribution={f: getattr(event, f) for f in ATTRIBUTION_FIELDS},
            )
            if created:
                event_ids.append(recorded.pk)
    result = IngestResult(
        created=len(event_ids), duplicates=len(events) - len(event_ids)
    )

    # Unlike record_activity, a batch sends its messages: one per batch, not
    # per event, and integrations expect their events to act at once. The
    # beat tasks would find them a little later anyway.
    play_dispatch.evaluate_triggers_on_commit(event_ids)
    if fresh:
        _schedule_rescore({e.member_id for e in fresh})
    logger.info(
        "events ingested: %d created, %d duplicates", result.created, result.duplicates
    )
    return result


def _insert_keyed_events(events: list[ActivityEvent]) -> list[int]:
    """Insert events that have idempotency keys and return the new rows' ids.

    A key already stored, by a concurrent batch too, is skipped. Django's
    `bulk_create(ignore_conflicts=True)` returns no ids on PostgreSQL, so
    this runs INSERT ... ON CONFLICT DO NOTHING RETURNING itself: only the
    rows this call inserted come back, which keeps the created count and the
    play triggers to this batch's own events.
    """
    fields = [
        field
        for field in ActivityEvent._meta.concrete_fields
        if not field.primary_key and field.name != "recorded_at"
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row_placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    ids = []
    for start in range(0, len(events), INSERT_BATCH_SIZE):
        chunk = events[start : start + INSERT_BATCH_SIZE]
        params = [
            field.get_db_prep_save(getattr(event, field.attname), connection)
            for event in chunk
            for field in fields
        ]
        sql = (
            f"INSERT INTO {quote(ActivityEvent._meta.db_table)} ({columns}) "
            f"VALUES {', '.join([row_placeholders] * len(chunk))} "
            "ON CONFLICT DO NOTHING RETURNING id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids += [row[0] for row in cursor.fetchall()]
    return ids


@transaction.atomic
def move_merged_member_activity(
    *, survivor: Member, duplicate: Member
) -> dict[str, int]:
    """Move the duplicate's events, touches and enrolments to the survivor of a merge.

    Each event keeps the account it was recorded with. The duplicate's
    current health score is deleted, its daily snapshots stay as its own
    history, and the survivor is rescored after commit. Touches move, so the
    survivor's fatigue caps count them. A member-level enrolment moves unless
    the survivor already has one for the same play and occurrence: that one
    stays on the duplicate, and is exited if it was still running, so that
    the person is not reached twice. Called through the merge handler
    registry by `apps.membership.services.merge.merge_members`.
    """
    events = ActivityEvent.objects.filter(member=duplicate).update(member=survivor)
    scores, _ = HealthScore.objects.filter(member=duplicate).delete()
    touches = Touch.objects.filter(member=duplicate).update(member=survivor)
    # The user IDs that sources tied to the duplicate now name the survivor.
    identities = SegmentIdentity.objects.filter(member=duplicate).update(
        member=survivor
    )

    duplicate_key = f"member:{duplicate.pk}"
    survivor_key = f"member:{survivor.pk}"
    enrolments = Enrolment.objects.filter(member=duplicate, subject_key=duplicate_key)
    repeated = enrolments.filter(
        Exists(
            Enrolment.objects.filter(
                play=OuterRef("play"),
                subject_key=survivor_key,
                occurrence_key=OuterRef("occurrence_key"),
            )
        )
    )
    exited = repeated.filter(
        status__in=[Enrolment.Status.ACTIVE, Enrolment.Status.WAITING]
    ).update(
        status=Enrolment.Status.EXITED,
        next_run_at=None,
        finished_at=timezone.now(),
        last_error=f"Merged into member {survivor.pk}, already enrolled.",
    )
    moved = enrolments.exclude(pk__in=repeated.values("pk")).update(
        member=survivor, subject_key=survivor_key
    )
    _schedule_rescore({survivor.pk})
    return {
        "events_moved": events,
        "health_scores_deleted": scores,
        "touches_moved": touches,
        "segment_identities_moved": identities,
        "enrolments_moved": moved,
        "enrolments_exited": exited,
    }
