"""Import accounts and members from CSV files: every row, or none of them.

Both imports read UTF-8 with or without a byte order mark, with a header
row naming the columns in any order. An empty cell leaves the stored value
as it is. Every row is parsed and checked first. Then all rows are written
in one transaction, each through the service that the API uses, and a
single failing row rolls the whole file back. The result lists every
failing row with its row number as a spreadsheet shows it (the header is
row 1), the column, the value and what to fix.

Accounts, matched by external_id:
    external_id (required), name, email_domains (separated by ";"),
    segment, cs_tier, arr (USD), contract_start and renewal_date
    (YYYY-MM-DD), owner_email (a staff user), time_zone,
    parent_external_id (an account in the hub or in the same file).

Members, matched by email in any letter case:
    email (required), display_name, account_external_id, role,
    lifecycle_stage, time_zone, external_id.
"""

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from django.db import transaction

from apps.membership.models import Account, AuditEntry, Member
from apps.membership.services.accounts import (
    check_time_zone,
    clean_arr,
    clean_email_domain,
    lock_accounts,
    upsert_account,
)
from apps.membership.services.data_sources import (
    Source,
    record_source_failure,
    record_source_success,
)
from apps.membership.services.members import clean_email, upsert_member_by_email
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
LIST_SEPARATOR = ";"

ACCOUNT_COLUMNS = (
    "external_id",
    "name",
    "email_domains",
    "segment",
    "cs_tier",
    "arr",
    "contract_start",
    "renewal_date",
    "owner_email",
    "time_zone",
    "parent_external_id",
)
# Errors of the column names carry the header's row number.
HEADER_ROW = 1
MEMBER_COLUMNS = (
    "email",
    "display_name",
    "account_external_id",
    "role",
    "lifecycle_stage",
    "time_zone",
    "external_id",
)


@dataclass(frozen=True)
class RowError:
    """One problem in an import file.

    `row` counts the header as row 1, as spreadsheets number rows; it is
    None for a problem with the whole file.
    """

    row: int | None
    column: str
    value: str
    message: str


@dataclass
class ImportResult:
    """The outcome of an import: the counts written, or the errors that stopped it."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def is_successful(self) -> bool:
        return not self.errors


@dataclass
class Row:
    number: int
    cells: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)
    is_valid: bool = True


def _file_error(message: str) -> RowError:
    return RowError(row=None, column="", value="", message=message)


def _read_text(file: IO[bytes]) -> tuple[str | None, RowError | None]:
    data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return None, _file_error(
            f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB. Split "
            "it into smaller files and import each one."
        )
    try:
        # utf-8-sig drops a byte order mark when there is one.
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        return None, _file_error(
            f"The file is not UTF-8 text: byte {error.start + 1} cannot be read. "
            "Save it as “CSV UTF-8” and import it again."
        )


def read_rows(
    file: IO[bytes], *, columns: tuple[str, ...], key: str
) -> tuple[list[Row], list[RowError]]:
    """Return the file's data rows as column-to-cell dicts, or the file's errors.

    Blank rows are skipped but still counted, so row numbers match the file.
    A row with fewer cells than the header gets empty cells.
    """
    text, error = _read_text(file)
    if error is not None:
        return [], [error]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as csv_error:
        return [], [_file_error(f"Row 1 is not valid CSV: {csv_error}.")]
    if not any(header):
        return [], [
            _file_error("The file is empty; the first row must name the columns.")
        ]

    errors = _check_header(header, columns=columns, key=key)
    if errors:
        return [], errors

    rows: list[Row] = []
    number = 1
    data_rows = 0
    try:
        for cells in reader:
            number += 1
            if not any(cell.strip() for cell in cells):
                continue
            data_rows += 1
            if data_rows > MAX_ROWS:
                return [], [
                    _file_error(
                        f"The file has more than {MAX_ROWS:,} rows. Split it into "
                        "smaller files and import each one."
                    )
                ]
            extra = [cell for cell in cells[len(header) :] if cell.strip()]
            if extra:
                errors.append(
                    RowError(
                        row=number,
                        column="",
                        value=extra[0],
                        message=f"The row has {len(cells)} cells but the header "
                        f"names {len(header)} columns. Remove the extra cells or "
                        "add their column to the header.",
                    )
                )
                continue
            padded = [*cells, *[""] * (len(header) - len(cells))]
            rows.append(
                Row(
                    number=number,
                    cells={
                        name: cell.strip()
                        for name, cell in zip(header, padded, strict=True)
                    },
                )
            )
    except csv.Error as csv_error:
        errors.append(
            RowError(
                row=number + 1,
                column="",
                value="",
                message=f"The row is not valid CSV: {csv_error}.",
            )
        )
    return rows, errors


def _check_header(
    header: list[str], *, columns: tuple[str, ...], key: str
) -> list[RowError]:
    errors = []
    known = ", ".join(columns)
    seen = set()
    for name in header:
        if name in seen:
            errors.append(
                RowError(
                    HEADER_ROW,
                    name,
                    name,
                    f"The column {name!r} appears twice; keep one.",
                )
            )
        seen.add(name)
        if name not in columns:
            errors.append(
                RowError(
                    HEADER_ROW,
                    name,
                    name,
                    f"Unknown column {name!r}. Rename or remove it; the columns "
                    f"are: {known}.",
                )
            )
    if key not in seen:
        errors.append(
            RowError(
                HEADER_ROW, key, "", f"The required column {key!r} is missing; add it."
            )
        )
    return errors


def _parse_choice(text: str, choices, *, label: str) -> str:
    lookup = {value.lower(): value for value in choices.values}
    lookup.update({name.lower(): value for value, name in choices.choices})
    value = lookup.get(text.lower())
    if value is None:
        raise DomainError(
            f"{text!r} is not a valid {label}. Use one of: {', '.join(choices.values)}."
        )
    return value


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DomainError(
            f"{text!r} is not a date. Use the form YYYY-MM-DD, such as 2026-03-31."
        ) from None


def _parse_domains(text: str) -> list[str]:
    parts = [part for part in text.split(LIST_SEPARATOR) if part.strip()]
    return [clean_email_domain(part) for part in parts]


def _parse_time_zone(text: str) -> str:
    check_time_zone(text)
    return text


def _keep(text: str) -> str:
    return text


ACCOUNT_PARSERS: dict[str, Callable[[str], Any]] = {
    "external_id": _keep,
    "name": _keep,
    "email_domains": _parse_domains,
    "segment": lambda text: _parse_choice(text, Account.Segment, label="segment"),
    "cs_tier": lambda text: _parse_choice(text, Account.CsTier, label="CS tier"),
    "arr": clean_arr,
    "contract_start": _parse_date,
    "renewal_date": _parse_date,
    "owner_email": _keep,
    "time_zone": _parse_time_zone,
    "parent_external_id": _keep,
}
MEMBER_PARSERS: dict[str, Callable[[str], Any]] = {
    "email": clean_email,
    "display_name": _keep,
    "account_external_id": _keep,
    "role": lambda text: _parse_choice(text, Member.Role, label="role"),
    "lifecycle_stage": lambda text: _parse_choice(
        text, Member.LifecycleStage, label="lifecycle stage"
    ),
    "time_zone": _parse_time_zone,
    "external_id": _keep,
}


def _parse_rows(
    rows: list[Row], parsers: dict[str, Callable[[str], Any]]
) -> list[RowError]:
    errors = []
    for row in rows:
        for column, text in row.cells.items():
            if not text:
                continue
            try:
                row.values[column] = parsers[column](text)
            except DomainError as error:
                errors.append(RowError(row.number, column, text, error.message))
                row.is_valid = False
    return errors


def _check_unique(
    rows: list[Row], column: str, *, what: str, ignore_case: bool = False
) -> list[RowError]:
    errors = []
    first_rows: dict[str, int] = {}
    for row in rows:
        value = row.values.get(column)
        if not value:
            continue
        folded = value.lower() if ignore_case else value
        if folded in first_rows:
            errors.append(
                RowError(
                    row.number,
                    column,
                    row.cells[column],
                    f"This {column} is also on row {first_rows[folded]}; each "
                    f"{what} may appear once per file.",
                )
            )
            row.is_valid = False
        else:
            first_rows[folded] = row.number
    return errors


def _check_required(rows: list[Row], column: str) -> list[RowError]:
    errors = []
    for row in rows:
        if not row.cells.get(column):
            errors.append(
                RowError(
                    row.number, column, "", f"The {column} is missing; fill it in."
                )
            )
            row.is_valid = False
    return errors


def _order_parents_first(rows: list[Row]) -> tuple[list[Row], list[RowError]]:
    # A parent listed in the same file is written before its subsidiaries.
    by_id = {row.values["external_id"]: row for row in rows if row.is_valid}
    ordered: list[Row] = []
    placed: set[str] = set()
    errors = []
    for row in rows:
        if not row.is_valid or row.values["external_id"] in placed:
            continue
        chain = [row]
        parent_id = row.values.get("parent_external_id")
        while parent_id in by_id and parent_id not in placed:
            parent = by_id[parent_id]
            if parent in chain:
                loop = " → ".join(r.values["external_id"] for r in [*chain, parent])
                errors.append(
                    RowError(
                        row.number,
                        "parent_external_id",
                        row.cells["parent_external_id"],
                        f"The parents in this file form a loop ({loop}); give one "
                        "of these accounts no parent or another one.",
                    )
                )
                row.is_valid = False
                break
            chain.append(parent)
            parent_id = parent.values.get("parent_external_id")
        if not row.is_valid:
            continue
        for member in reversed(chain):
            if member.values["external_id"] not in placed:
                placed.add(member.values["external_id"])
                ordered.append(member)
    return ordered, errors


def _write_rows(
    rows: list[Row],
    write: Callable[[Row], bool],
    result: ImportResult,
    *,
    columns: tuple[str, ...],
) -> None:
    for row in rows:
        try:
            # A savepoint per row, so one failing row does not stop the
            # others from being checked.
            with transaction.atomic():
                created = write(row)
        except DomainError as error:
            column = error.field if error.field in columns else ""
            result.errors.append(
                RowError(row.number, column, row.cells.get(column, ""), error.message)
            )
            continue
        if created:
            result.created += 1
        else:
            result.updated += 1


def _finish(
    result: ImportResult, *, action: str, actor, file_name: str
) -> ImportResult:
    if result.errors:
        # Rows written before a later row failed are rolled back too.
        transaction.set_rollback(True)
        result.errors.sort(key=lambda e: (e.row or 0, e.column))
        result.created = result.updated = 0
        logger.info("import rejected: %s, %d errors", action, len(result.errors))
        return result

    AuditEntry.objects.create(
        actor=actor,
        action=action,
        details={
            "file_name": file_name,
            "rows": result.rows,
            "created": result.created,
            "updated": result.updated,
        },
    )
    logger.info(
        "import finished: %s, %d created, %d updated",
        action,
        result.created,
        result.updated,
    )
    return result


def import_accounts(*, file: IO[bytes], actor, file_name: str = "") -> ImportResult:
    """Create or update accounts from a CSV file, writing nothing if a row fails.

    An `arr` value is recorded in the ARR history as of today. The import is
    a CRM sync run: a success once every row is written, else a failure. A
    file without rows records neither.
    """
    result = _import_accounts(file=file, actor=actor, file_name=file_name)
    _record_import_failure(result, what="account")
    return result


def _record_import_failure(result: ImportResult, *, what: str) -> None:
    # Recorded here, after the import's transaction rolled back, so that the
    # failure is kept. The stored error counts rows and never quotes them.
    if not result.errors:
        return
    rows = {error.row for error in result.errors}
    if None in rows:
        problem = "invalid file"
    elif HEADER_ROW in rows:
        problem = "invalid header"
    else:
        problem = f"{len(result.errors)} invalid row(s)"
    record_source_failure(
        source=Source.CRM_SYNC, error=f"{what} import rejected: {problem}"
    )


@transaction.atomic
def _import_accounts(*, file: IO[bytes], actor, file_name: str) -> ImportResult:
    rows, errors = read_rows(file, columns=ACCOUNT_COLUMNS, key="external_id")
    result = ImportResult(rows=len(rows), errors=errors)
    if errors:
        return result
    result.errors += _check_required(rows, "external_id")
    result.errors += _parse_rows(rows, ACCOUNT_PARSERS)
    result.errors += _check_unique(rows, "external_id", what="account")
    ordered, loop_errors = _order_parents_first(rows)
    result.errors += loop_errors

    def write(row: Row) -> bool:
        fields = dict(row.values)
        _, created = upsert_account(
            external_id=fields.pop("external_id"),
            actor=actor,
            source="import",
            **fields,
        )
        return created

    # One lock for the whole file, so that no other write changes domains
    # or parents between the checks of one row and the next.
    lock_accounts()
    _write_rows(ordered, write, result, columns=ACCOUNT_COLUMNS)
    result = _finish(
        result, action="accounts.imported", actor=actor, file_name=file_name
    )
    # A file with a header and no rows syncs nothing, so it records no run.
    if not result.errors and result.rows:
        record_source_success(source=Source.CRM_SYNC)
    return result


def import_members(*, file: IO[bytes], actor, file_name: str = "") -> ImportResult:
    """Create or update members from a CSV file, writing nothing if a row fails.

    A new email gets a user with no usable password and a member, which
    joins the account named in account_external_id or else the account that
    owns the email's domain. Like the account import, it is a CRM sync run.
    """
    result = _import_members(file=file, actor=actor, file_name=file_name)
    _record_import_failure(result, what="member")
    return result


@transaction.atomic
def _import_members(*, file: IO[bytes], actor, file_name: str) -> ImportResult:
    rows, errors = read_rows(file, columns=MEMBER_COLUMNS, key="email")
    result = ImportResult(rows=len(rows), errors=errors)
    if errors:
        return result
    result.errors += _check_required(rows, "email")
    result.errors += _parse_rows(rows, MEMBER_PARSERS)
    result.errors += _check_unique(rows, "email", what="member", ignore_case=True)
    result.errors += _check_unique(rows, "external_id", what="member")

    def write(row: Row) -> bool:
        fields = dict(row.values)
        _, created = upsert_member_by_email(
            email=fields.pop("email"), actor=actor, **fields
        )
        return created

    valid_rows = [row for row in rows if row.is_valid]
    _write_rows(valid_rows, write, result, columns=MEMBER_COLUMNS)
    result = _finish(
        result, action="members.imported", actor=actor, file_name=file_name
    )
    if not result.errors and result.rows:
        record_source_success(source=Source.CRM_SYNC)
    return result
