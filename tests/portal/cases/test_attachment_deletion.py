"""Deleting case attachment rows deletes their files once the deletion commits."""

import pytest
from django.db import transaction

from apps.portal.models import Case, CaseAttachment, CaseMessage
from apps.portal.services.cases import file_case, reply_to_case
from tests.portal.cases.conftest import png, text

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    pass


def delete_and_roll_back(case: Case) -> None:
    with transaction.atomic():
        case.delete()
        raise Rollback


def stored_files(media_root) -> set[str]:
    if not media_root.exists():
        return set()
    return {
        path.relative_to(media_root).as_posix()
        for path in media_root.rglob("*")
        if path.is_file()
    }


@pytest.fixture
def case(filer):
    case = file_case(
        member=filer,
        subject="Export",
        body="Fails.",
        uploads=[png("screen.png"), text("server.log")],
    )
    reply_to_case(case=case, author=filer.user, body="More.", uploads=[png("b.png")])
    return case


def test_case_delete_removes_all_files(case, media_root):
    assert len(stored_files(media_root)) == 3

    with transaction.atomic():
        case.delete()

    assert CaseAttachment.objects.count() == 0
    assert stored_files(media_root) == set()


def test_case_queryset_delete_removes_files(case, media_root):
    Case.objects.filter(pk=case.pk).delete()

    assert stored_files(media_root) == set()


def test_message_delete_removes_only_its_files(case, media_root):
    case_files = {a.file.name for a in case.attachments.filter(message=None)}

    CaseMessage.objects.filter(case=case).delete()

    assert stored_files(media_root) == case_files
    assert CaseAttachment.objects.count() == 2


def test_attachment_delete_removes_its_file(case, media_root):
    attachment = case.attachments.filter(message=None).first()
    others = stored_files(media_root) - {attachment.file.name}

    with transaction.atomic():
        attachment.delete()

    assert stored_files(media_root) == others


def test_rolled_back_case_delete_keeps_files(case, media_root):
    before = stored_files(media_root)

    with pytest.raises(Rollback):
        delete_and_roll_back(case)

    assert stored_files(media_root) == before
    assert CaseAttachment.objects.count() == 3


def test_file_kept_until_outer_transaction_commits(case, media_root):
    before = stored_files(media_root)

    with transaction.atomic():
        with transaction.atomic():
            case.delete()
        assert stored_files(media_root) == before

    assert stored_files(media_root) == set()


def test_admin_case_delete_removes_files(admin_client, case, media_root):
    response = admin_client.post(
        f"/admin/portal/case/{case.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert Case.objects.filter(pk=case.pk).exists() is False
    assert stored_files(media_root) == set()
