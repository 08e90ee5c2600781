"""Checks and storage of case attachments.

A file's type comes from its first bytes (the `filetype` package), and its
extension must name that same type, so a renamed executable is rejected.
Plain-text formats have no magic bytes: they are accepted by extension
when the content is valid UTF-8 without NUL bytes. Every file of an upload
is checked before any is stored, so a rejected upload stores nothing.

Files are written in step with the transaction that creates their rows (see
`attachment_transaction`): a rolled-back case keeps no file in storage.
"""

import logging
import os
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import filetype
from django.conf import settings
from django.core.files.storage import Storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from apps.portal.models import Case, CaseAttachment, CaseMessage
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

# Extension, lower case, to the extension `filetype` reports for the content.
BINARY_TYPES = {
    "pdf": "pdf",
    "png": "png",
    "jpg": "jpg",
    "jpeg": "jpg",
    "gif": "gif",
    "webp": "webp",
    "zip": "zip",
    "docx": "docx",
    "xlsx": "xlsx",
}
# Extension to the content type stored for text files.
TEXT_TYPES = {"txt": "text/plain", "csv": "text/csv", "log": "text/plain"}
ALLOWED_EXTENSIONS = sorted({*BINARY_TYPES, *TEXT_TYPES})
# `filetype` reads at most this many leading bytes.
SNIFF_BYTES = 8192
ORIGINAL_NAME_MAX_LENGTH = 255


@dataclass(frozen=True)
class CheckedFile:
    """An uploaded file that passed the checks, with what is stored about it."""

    upload: UploadedFile
    original_name: str
    extension: str
    content_type: str
    size: int


def format_bytes(size: int) -> str:
    """Return a size for people: 10 MB, 512 KB or 12 bytes (1 MB = 1024 KB)."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.1f}".removesuffix(".0") + " KB"
    return f"{size} bytes"


def clean_original_name(name: str) -> str:
    """Return the file's own name without folders or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if len(name) > ORIGINAL_NAME_MAX_LENGTH:
        stem, dot, extension = name.rpartition(".")
        keep = ORIGINAL_NAME_MAX_LENGTH - len(extension) - len(dot)
        name = stem[:keep] + dot + extension if dot else name[:ORIGINAL_NAME_MAX_LENGTH]
    return name or "attachment"


def _read_head(upload: UploadedFile, size: int) -> bytes:
    upload.seek(0)
    head = upload.read(size)
    upload.seek(0)
    return head


def _is_utf8_text(upload: UploadedFile) -> bool:
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _type_error(name: str, message: str) -> DomainError:
    allowed = ", ".join(f".{e}" for e in ALLOWED_EXTENSIONS)
    return DomainError(
        f"{name}: {message} Allowed types: {allowed}.",
        field="attachments",
        code="invalid_attachment",
    )


def _check_type(upload: UploadedFile, name: str) -> tuple[str, str]:
    """Return the file's (extension, content type), or raise DomainError."""
    extension = os.path.splitext(name)[1].lower().lstrip(".")
    if extension in TEXT_TYPES:
        if not _is_utf8_text(upload):
            raise _type_error(
                name,
                f"a .{extension} file must be UTF-8 text, and this one is not. "
                "Save it as UTF-8 or attach it in another allowed format.",
            )
        return extension, TEXT_TYPES[extension]

    kind = filetype.guess(_read_head(upload, SNIFF_BYTES))
    if extension not in BINARY_TYPES:
        # The extension alone rules the file out: name it, whatever the
        # content turns out to be.
        if extension:
            raise _type_error(name, f".{extension} files are not allowed.")
        raise _type_error(name, "files without an extension are not allowed.")
    if kind is None or kind.extension != BINARY_TYPES[extension]:
        found = f"a .{kind.extension} file" if kind else "of an unknown type"
        raise _type_error(
            name,
            f"the name ends in .{extension} but the content is {found}. "
            "Attach the file with its real extension.",
        )
    return extension, kind.mime


def check_attachments(
    *, uploads: Iterable[UploadedFile], case: Case | None = None
) -> list[CheckedFile]:
    """Check files against the type, size and count limits; store nothing.

    `case` is the case they join, whose files count towards its limits.
    Raise DomainError naming the first file that breaks a limit, and the
    limit.
    """
    uploads = list(uploads)
    max_bytes = settings.RM6_CASE_ATTACHMENT_MAX_BYTES
    max_total = settings.RM6_CASE_ATTACHMENTS_MAX_TOTAL_BYTES
    max_files = settings.RM6_CASE_ATTACHMENTS_MAX_FILES
    existing_count, existing_bytes = 0, 0
    if case is not None and case.pk is not None:
        sizes = list(case.attachments.values_list("size", flat=True))
        existing_count, existing_bytes = len(sizes), sum(sizes)

    if existing_count + len(uploads) > max_files:
        raise DomainError(
            f"A case takes at most {max_files} attachments; it has "
            f"{existing_count} and {len(uploads)} were added. Attach fewer "
            "files, or put them in one .zip file.",
            field="attachments",
            code="invalid_attachment",
        )
    checked = []
    total = existing_bytes
    for upload in uploads:
        name = clean_original_name(upload.name or "")
        if upload.size == 0:
            raise DomainError(
                f"{name} is empty. Attach a file with content.",
                field="attachments",
                code="invalid_attachment",
            )
        if upload.size > max_bytes:
            size, limit = format_bytes(upload.size), format_bytes(max_bytes)
            if size == limit:
                # Just over the limit rounds to it; exact bytes show the gap.
                size, limit = f"{upload.size:,} bytes", f"{max_bytes:,} bytes"
            raise DomainError(
                f"{name} is {size}, over the limit of {limit} per file. "
                "Attach a smaller file, or compress it.",
                field="attachments",
                code="invalid_attachment",
            )
        total += upload.size
        if total > max_total:
            raise DomainError(
                f"{name} takes the case's attachments to {format_bytes(total)}, "
                f"over the limit of {format_bytes(max_total)} per case. Attach "
                "smaller files.",
                field="attachments",
                code="invalid_attachment",
            )
        extension, content_type = _check_type(upload, name)
        checked.append(
            CheckedFile(
                upload=upload,
                original_name=name,
                extension=extension,
                content_type=content_type,
                size=upload.size,
            )
        )
    return checked


def _in_caller_transaction() -> bool:
    """Return whether an atomic block opened by the caller is active.

    The atomic blocks that Django's TestCase opens around each test are left
    out, as Django's own check of `durable` blocks leaves them out, so tests
    see the same behaviour as requests in autocommit.
    """
    connection = transaction.get_connection()
    return any(not block._from_testcase for block in connection.atomic_blocks)


def _write_after_commit(
    storage: Storage, attachment_id: int, name: str, content: UploadedFile
) -> None:
    try:
        content.seek(0)
        stored_name = storage.save(name, content)
    except Exception:
        logger.exception(
            "case attachment write failed after commit: attachment %s",
            attachment_id,
        )
        return
    if stored_name != name:
        CaseAttachment.objects.filter(pk=attachment_id).update(file=stored_name)


class AttachmentFiles:
    """Writes of case files, tied to the transaction that creates their rows.

    Outside a caller's transaction, each file is written before its row, and
    `attachment_transaction` deletes the written files if the transaction
    raises or fails to commit. A committed row therefore always has its file.
    Inside a caller's transaction, which may roll back after this service
    returns, the write waits for that transaction's commit (Django drops
    on-commit callbacks on rollback), so a rolled-back row leaves no file.
    """

    def __init__(self, *, write_after_commit: bool) -> None:
        self.write_after_commit = write_after_commit
        self.written: list[tuple[Storage, str]] = []

    def save(self, *, attachment: CaseAttachment, name: str, content: UploadedFile):
        """Store `content` as the file of the unsaved `attachment`, then save it."""
        content.seek(0)
        if not self.write_after_commit:
            attachment.file.save(name, content, save=False)
            self.written.append((attachment.file.storage, attachment.file.name))
            attachment.save()
            return

        # NOTE: the upload must still be readable at commit, which holds when
        # the caller's transaction ends within the request. A write that fails
        # after commit is logged and leaves the row without its file.
        attachment.file.name = attachment.file.field.generate_filename(attachment, name)
        attachment.save()
        transaction.on_commit(
            partial(
                _write_after_commit,
                attachment.file.storage,
                attachment.pk,
                attachment.file.name,
                content,
            )
        )

    def delete_written(self) -> None:
        for storage, name in self.written:
            storage.delete(name)
        self.written.clear()


@contextmanager
def attachment_transaction() -> Iterator[AttachmentFiles]:
    """Open an atomic block whose case files never outlive a rollback.

    Django has no on-rollback hook. Writing files only after commit would
    leave a committed case without a file whenever the write fails, so files
    are written before commit when this block is the outermost one, and
    deleted if it raises, commit included.
    """
    files = AttachmentFiles(write_after_commit=_in_caller_transaction())
    try:
        with transaction.atomic():
            yield files
    except BaseException:
        files.delete_written()
        raise


def store_attachments(
    *,
    case: Case,
    files: list[CheckedFile],
    uploaded_by,
    message: CaseMessage | None = None,
    storage: AttachmentFiles,
) -> list[CaseAttachment]:
    """Create the rows of checked files and store them under generated names."""
    attachments = []
    for checked in files:
        attachment = CaseAttachment(
            case=case,
            message=message,
            original_name=checked.original_name,
            content_type=checked.content_type,
            size=checked.size,
            uploaded_by=uploaded_by,
        )
        generated = f"{uuid.uuid4().hex}.{checked.extension}"
        storage.save(attachment=attachment, name=generated, content=checked.upload)
        attachments.append(attachment)
    return attachments


def _delete_stored_file(storage: Storage, name: str, attachment_id: int) -> None:
    try:
        storage.delete(name)
    except OSError:
        logger.exception(
            "case attachment file delete failed: attachment %s", attachment_id
        )


def delete_attachment_file(*, attachment: CaseAttachment, using: str) -> None:
    """Delete a deleted attachment row's file once the deletion commits.

    A rolled-back deletion keeps both the row and its file, because Django
    drops on-commit callbacks on rollback. Outside a transaction the file
    goes at once.
    """
    name = attachment.file.name
    if not name:
        return
    transaction.on_commit(
        partial(_delete_stored_file, attachment.file.storage, name, attachment.pk),
        using=using,
    )
