"""Recording parsed Segment messages as activity events.

Live messages and released held messages both go through `ingest_events`,
with an idempotency key built from the source and messageId, so each
message is recorded once.
"""

import logging
from datetime import datetime

from apps.lifecycle.ingestion.messages import SegmentMessage
from apps.lifecycle.services import IngestError, IngestResult, ingest_events
from apps.membership.models import Member

logger = logging.getLogger(__name__)


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
