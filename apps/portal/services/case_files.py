"""Checks and storage of case attachments.

A file's type comes from its first bytes (the `filetype` package), and its
extension must name that same type, so a renamed executable is rejected.
Plain-text formats have no magic bytes: they are accepted by extension
when the content is valid UTF-8 without NUL bytes. Every file of an upload
is checked before any is stored, so a rejected upload stores nothing.
"""

import os
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import filetype
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

from apps.portal.models import Case, CaseAttachment, CaseMessage
from rm6.errors import DomainError

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
            raise DomainError(
                f"{name} is {format_bytes(upload.size)}, over the limit of "
                f"{format_bytes(max_bytes)} per file. Attach a smaller file, "
                "or compress it.",
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


@contextmanager
def removing_files_on_error() -> Iterator[list[str]]:
    """Yield a list of stored names, deleting those files if the block raises.

    A database rollback does not delete files, so a failed filing removes
    the files it stored itself.
    """
    stored: list[str] = []
    try:
        yield stored
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


def store_attachments(
    *,
    case: Case,
    files: list[CheckedFile],
    uploaded_by,
    message: CaseMessage | None = None,
    stored: list[str],
) -> list[CaseAttachment]:
    """Store checked files under generated names and create their rows.

    Each stored name is appended to `stored`, for `removing_files_on_error`.
    """
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
        checked.upload.seek(0)
        generated = f"{uuid.uuid4().hex}.{checked.extension}"
        attachment.file.save(generated, checked.upload, save=False)
        stored.append(attachment.file.name)
        attachment.save()
        attachments.append(attachment)
    return attachments
