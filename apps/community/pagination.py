"""Keyset (cursor) pagination for long, append-mostly lists.

A page is fetched with one query that filters on the sort key and reads
`per_page + 1` rows. Because that query has no OFFSET and there is no COUNT
over the whole list, a deep page costs the same as the first one. In exchange,
pages have no numbers, only first, previous, next and last links.

The sort key is a timestamp field followed by an integer tie-breaker (usually
`id`), both in the same direction, so it matches a composite index such as
`(topic, created_at, id)`. A cursor is the URL-safe base64 of
"<timestamp ISO 8601>|<id>" without padding.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, Model, Q, QuerySet
from django.http import QueryDict

CURSOR_SEPARATOR = "|"
MAX_CURSOR_LENGTH = 200
PAGE_FLAG = "_keyset_beyond_cursor"


class InvalidCursor(ValueError):
    """A page cursor in the query string that cannot be decoded."""


Position = tuple[datetime, int]


def encode_cursor(position: Position) -> str:
    """Encode a sort-key position as an opaque, URL-safe cursor."""
    timestamp, tie_breaker = position
    raw = f"{timestamp.isoformat()}{CURSOR_SEPARATOR}{tie_breaker}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """Decode a cursor made by `encode_cursor`, raising `InvalidCursor`."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("The page cursor is empty or too long.")
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError):
        raise InvalidCursor("The page cursor is not valid base64 text.") from None

    timestamp_text, separator, tie_breaker_text = raw.rpartition(CURSOR_SEPARATOR)
    if not separator:
        raise InvalidCursor("The page cursor has no position separator.")
    try:
        timestamp = datetime.fromisoformat(timestamp_text)
    except ValueError:
        raise InvalidCursor("The page cursor has an invalid timestamp.") from None
    if timestamp.tzinfo is None:
        raise InvalidCursor("The page cursor timestamp has no time zone.")
    if not tie_breaker_text.isascii() or not tie_breaker_text.isdigit():
        raise InvalidCursor("The page cursor has an invalid id.")
    return timestamp, int(tie_breaker_text)


@dataclass(frozen=True)
class PageRequest:
    """The requested page: after a cursor, before one, the first or the last."""

    after: Position | None = None
    before: Position | None = None
    last: bool = False

    @classmethod
    def from_query(cls, query: QueryDict) -> "PageRequest":
        """Read `after`, `before` or `page=last` from a query string.

        Raise `InvalidCursor` for a malformed cursor or for both cursors at
        once. Any other `page` value, such as an old page number, requests
        the first page.
        """
        after = query.get("after")
        before = query.get("before")
        if after is not None and before is not None:
            raise InvalidCursor("Use either `after` or `before`, not both.")
        if after is not None:
            return cls(after=decode_cursor(after))
        if before is not None:
            return cls(before=decode_cursor(before))
        return cls(last=query.get("page") == "last")


def position_just_after(obj: Model, ordering: tuple[str, str]) -> Position:
    """Return a `before` position whose page ends with `obj`.

    No row sorts between `obj` and this position, because the tie-breaker is
    an integer and the position moves it by one in the sort direction.
    """
    timestamp, tie_breaker = _position_of(obj, ordering)
    step = -1 if ordering[0].startswith("-") else 1
    return timestamp, tie_breaker + step


def _position_of(obj: Model, ordering: tuple[str, str]) -> Position:
    timestamp_field, tie_breaker_field = (name.lstrip("-") for name in ordering)
    return getattr(obj, timestamp_field), getattr(obj, tie_breaker_field)


class KeysetPage:
    """One page of a queryset, fetched by sort-key position instead of OFFSET.

    `ordering` is the timestamp field and the integer tie-breaker, both
    ascending or both descending, for example `("-last_activity_at", "-id")`.
    `next_cursor` is for `?after=` and `previous_cursor` for `?before=`, and
    each is None when there is no page in that direction.
    """

    def __init__(
        self,
        queryset: QuerySet,
        *,
        ordering: tuple[str, str],
        per_page: int,
        request: PageRequest,
    ) -> None:
        if ordering[0].startswith("-") != ordering[1].startswith("-"):
            raise ValueError(f"Both ordering fields need one direction: {ordering!r}")
        self.queryset = queryset
        self.ordering = ordering
        self.per_page = per_page
        self.request = request
        self.object_list: list[Any] = []
        self.has_next = False
        self.has_previous = False
        self._fetch()

    @property
    def next_cursor(self) -> str | None:
        if not self.has_next or not self.object_list:
            return None
        return encode_cursor(_position_of(self.object_list[-1], self.ordering))

    @property
    def previous_cursor(self) -> str | None:
        if not self.has_previous or not self.object_list:
            return None
        return encode_cursor(_position_of(self.object_list[0], self.ordering))

    def _fetch(self) -> None:
        if self.request.after is not None:
            self._fetch_after(self.request.after)
        elif self.request.before is not None:
            self._fetch_before(self.request.before)
        elif self.request.last:
            self._fetch_last()
        else:
            self._fetch_first()

    def _fetch_first(self) -> None:
        rows = list(self.queryset.order_by(*self.ordering)[: self.per_page + 1])
        self.has_next = len(rows) > self.per_page
        self.object_list = rows[: self.per_page]

    def _fetch_last(self) -> None:
        reverse = self._reversed_ordering()
        rows = list(self.queryset.order_by(*reverse)[: self.per_page + 1])
        self.has_previous = len(rows) > self.per_page
        self.object_list = rows[: self.per_page][::-1]

    def _fetch_after(self, position: Position) -> None:
        # The EXISTS flag checks, in the same query, whether any row sorts at
        # or before the cursor, which means there is a previous page.
        rows = list(
            self.queryset.filter(self._beyond(position, forward=True))
            .annotate(**{PAGE_FLAG: Exists(self._not_beyond(position, forward=True))})
            .order_by(*self.ordering)[: self.per_page + 1]
        )
        if not rows:
            # The cursor is past the end, for example after rows were deleted.
            self._fetch_last()
            return
        self.has_previous = getattr(rows[0], PAGE_FLAG)
        self.has_next = len(rows) > self.per_page
        self.object_list = rows[: self.per_page]

    def _fetch_before(self, position: Position) -> None:
        rows = list(
            self.queryset.filter(self._beyond(position, forward=False))
            .annotate(**{PAGE_FLAG: Exists(self._not_beyond(position, forward=False))})
            .order_by(*self._reversed_ordering())[: self.per_page + 1]
        )
        if not rows:
            # The cursor is before the start, so show the first page.
            self._fetch_first()
            return
        self.has_next = getattr(rows[0], PAGE_FLAG)
        self.has_previous = len(rows) > self.per_page
        self.object_list = rows[: self.per_page][::-1]

    def _not_beyond(self, position: Position, *, forward: bool) -> QuerySet:
        """Return the rows at `position` or past it in the other direction.

        This is the complement of `_beyond`, written as a range rather than
        a NOT so that the EXISTS subquery also starts its index scan at the
        cursor.
        """
        rows = self.queryset.filter(
            self._beyond(position, forward=not forward, inclusive=True)
        )
        return rows.order_by()

    def _beyond(
        self, position: Position, *, forward: bool, inclusive: bool = False
    ) -> Q:
        """Match rows past `position`, in sort order or against it.

        With `inclusive`, a row exactly at `position` matches too. The
        redundant `>=` (or `<=`) on the timestamp lets the database start an
        index range scan at the cursor instead of filtering every row.
        """
        timestamp_field, tie_breaker_field = (
            name.lstrip("-") for name in self.ordering
        )
        timestamp, tie_breaker = position
        ascending = not self.ordering[0].startswith("-")
        operator = "gt" if ascending == forward else "lt"
        tie_breaker_operator = f"{operator}e" if inclusive else operator
        return Q(**{f"{timestamp_field}__{operator}e": timestamp}) & (
            Q(**{f"{timestamp_field}__{operator}": timestamp})
            | Q(
                **{
                    timestamp_field: timestamp,
                    f"{tie_breaker_field}__{tie_breaker_operator}": tie_breaker,
                }
            )
        )

    def _reversed_ordering(self) -> list[str]:
        return [
            name[1:] if name.startswith("-") else f"-{name}" for name in self.ordering
        ]
