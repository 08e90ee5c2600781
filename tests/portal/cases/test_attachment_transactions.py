"""Case files and the transaction that creates their rows, with real commits."""

import logging

import pytest
from django.db import transaction

from apps.portal.models import Case, CaseAttachment, CaseMessage
from apps.portal.services.cases import add_case_attachments, file_case, reply_to_case
from tests.portal.cases.conftest import PNG_BYTES, png, text

pytestmark = pytest.mark.django_db(transaction=True)


class OuterRollback(Exception):
    """Raised by a test to roll back the transaction it opened."""


def roll_back_after(action) -> None:
    """Run `action` in a transaction, then roll the transaction back."""
    with transaction.atomic():
        action()
        raise OuterRollback


def stored_files(media_root) -> list:
    return sorted(
        str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file()
    )


def file_with(filer, *uploads):
    return file_case(member=filer, subject="Export", body="Fails.", uploads=uploads)


def test_file_case_outermost_commit_keeps_files(filer, media_root):
    case = file_with(filer, png("a.png"), text("b.log"))

    names = sorted(a.file.name for a in case.attachments.all())
    assert len(names) == 2
    assert stored_files(media_root) == names


def test_file_case_outer_rollback_leaves_no_file(filer, media_root):
    with pytest.raises(OuterRollback):
        roll_back_after(lambda: file_with(filer, png("a.png"), text("b.log")))

    assert Case.objects.count() == 0
    assert CaseAttachment.objects.count() == 0
    assert stored_files(media_root) == []


def test_file_case_outer_commit_keeps_files(filer, media_root):
    with transaction.atomic():
        case = file_with(filer, png("a.png"), text("b.log"))
        # Nothing is written before the caller's transaction commits.
        assert stored_files(media_root) == []

    attachments = list(case.attachments.order_by("id"))
    assert stored_files(media_root) == sorted(a.file.name for a in attachments)
    with attachments[0].file.open("rb") as stored:
        assert stored.read() == PNG_BYTES
    with attachments[1].file.open("rb") as stored:
        assert stored.read() == b"line one\n"


def test_file_case_savepoint_rollback_keeps_outer_case_files(filer, media_root):
    with transaction.atomic():
        committed_case = file_with(filer, png("kept.png"))
        with pytest.raises(OuterRollback):
            roll_back_after(lambda: file_with(filer, png("dropped.png")))

    assert list(Case.objects.values_list("pk", flat=True)) == [committed_case.pk]
    assert stored_files(media_root) == [committed_case.attachments.get().file.name]


def test_reply_outer_rollback_leaves_no_file(filer, media_root):
    case = file_with(filer)

    with pytest.raises(OuterRollback):
        roll_back_after(
            lambda: reply_to_case(
                case=case, author=filer.user, body="Log attached.", uploads=[png()]
            )
        )

    assert CaseMessage.objects.count() == 0
    assert CaseAttachment.objects.count() == 0
    assert stored_files(media_root) == []


def test_add_attachments_outer_rollback_leaves_no_file(filer, media_root):
    case = file_with(filer)

    with pytest.raises(OuterRollback):
        roll_back_after(
            lambda: add_case_attachments(
                case=case, uploaded_by=filer.user, uploads=[png()]
            )
        )

    assert CaseAttachment.objects.count() == 0
    assert stored_files(media_root) == []


def test_add_attachments_outer_commit_keeps_files(filer, media_root):
    case = file_with(filer)

    with transaction.atomic():
        added = add_case_attachments(
            case=case, uploaded_by=filer.user, uploads=[png(), text()]
        )

    assert stored_files(media_root) == sorted(a.file.name for a in added)


def test_file_case_write_failure_after_commit_logged(filer, media_root, caplog):
    # A plain file where the storage folder should be makes every write fail.
    media_root.parent.mkdir(parents=True, exist_ok=True)
    media_root.write_bytes(b"")

    logger_name = "apps.portal.services.case_files"
    with caplog.at_level(logging.ERROR, logger=logger_name), transaction.atomic():
        case = file_with(filer, png("a.png"))

    attachment = case.attachments.get()
    assert [r.getMessage() for r in caplog.records] == [
        f"case attachment write failed after commit: attachment {attachment.pk}"
    ]
    assert not attachment.file.storage.exists(attachment.file.name)
