import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from apps.portal.models import Case, CaseAttachment
from apps.portal.services.case_files import clean_original_name
from apps.portal.services.cases import add_case_attachments, file_case
from rm6.errors import DomainError
from tests.portal.cases.conftest import PDF_BYTES, png, text

ALLOWED = ".csv, .docx, .gif, .jpeg, .jpg, .log, .pdf, .png, .txt, .webp, .xlsx, .zip"


@pytest.fixture
def limits(settings):
    settings.RM6_CASE_ATTACHMENT_MAX_BYTES = 1024
    settings.RM6_CASE_ATTACHMENTS_MAX_TOTAL_BYTES = 2048
    settings.RM6_CASE_ATTACHMENTS_MAX_FILES = 3
    return settings


def stored_files(media_root) -> list:
    return (
        [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []
    )


def file_with(filer, *uploads):
    return file_case(member=filer, subject="Export", body="Fails.", uploads=uploads)


def test_accepted_files_stored_under_generated_names(filer, media_root):
    case = file_with(filer, png("my screen.png"), text("server.log"))

    attachments = list(case.attachments.order_by("id"))
    assert [a.original_name for a in attachments] == ["my screen.png", "server.log"]
    assert [a.content_type for a in attachments] == ["image/png", "text/plain"]
    assert all("my screen" not in a.file.name for a in attachments)
    assert attachments[0].file.name.startswith("cases/")
    assert len(stored_files(media_root)) == 2


def test_file_over_size_limit_rejected(filer, limits, media_root):
    with pytest.raises(DomainError) as error:
        file_with(filer, png("small.png"), png("huge.png", size=2000))

    assert error.value.message == (
        "huge.png is 2 KB, over the limit of 1 KB per file. Attach a smaller "
        "file, or compress it."
    )
    assert error.value.field == "attachments"
    assert Case.objects.count() == 0
    assert stored_files(media_root) == []


def test_file_just_over_limit_shows_bytes(filer, limits, media_root):
    with pytest.raises(DomainError) as error:
        file_with(filer, png("edge.png", size=1025))

    assert error.value.message == (
        "edge.png is 1,025 bytes, over the limit of 1,024 bytes per file. "
        "Attach a smaller file, or compress it."
    )


def test_files_over_case_total_rejected(filer, limits, media_root):
    with pytest.raises(DomainError) as error:
        file_with(filer, png("a.png", 1000), png("b.png", 1000), png("c.png", 1000))

    assert error.value.message == (
        "c.png takes the case's attachments to 2.9 KB, over the limit of 2 KB "
        "per case. Attach smaller files."
    )
    assert Case.objects.count() == 0


def test_too_many_files_rejected(filer, limits):
    with pytest.raises(DomainError) as error:
        file_with(filer, *[png(f"{n}.png") for n in range(4)])

    assert error.value.message == (
        "A case takes at most 3 attachments; it has 0 and 4 were added. Attach "
        "fewer files, or put them in one .zip file."
    )


def test_case_total_counts_existing_files(filer, limits, media_root):
    case = file_with(filer, png("a.png", 1000), png("b.png", 1000))

    with pytest.raises(DomainError) as error:
        add_case_attachments(
            case=case, uploaded_by=filer.user, uploads=[png("c.png", 100)]
        )

    assert "over the limit of 2 KB per case" in error.value.message
    assert case.attachments.count() == 2
    assert len(stored_files(media_root)) == 2


def test_executable_renamed_to_png_rejected(filer, media_root):
    upload = SimpleUploadedFile("photo.png", b"MZ\x90\x00" + b"\x00" * 200)

    with pytest.raises(DomainError) as error:
        file_with(filer, upload)

    assert error.value.message == (
        "photo.png: the name ends in .png but the content is a .exe file. "
        f"Attach the file with its real extension. Allowed types: {ALLOWED}."
    )
    assert stored_files(media_root) == []


def test_pdf_named_png_rejected(filer):
    with pytest.raises(DomainError) as error:
        file_with(filer, SimpleUploadedFile("scan.png", PDF_BYTES))

    assert "the name ends in .png but the content is a .pdf file" in error.value.message


def test_pdf_with_its_extension_accepted(filer):
    case = file_with(filer, SimpleUploadedFile("scan.PDF", PDF_BYTES))

    assert case.attachments.get().content_type == "application/pdf"


@pytest.mark.parametrize(
    ("name", "content"),
    [("run.sh", b"#!/bin/sh\necho hi\n"), ("run.exe", b"just text\n")],
)
def test_disallowed_extension_rejected(filer, name, content):
    with pytest.raises(DomainError) as error:
        file_with(filer, SimpleUploadedFile(name, content))

    extension = name.rsplit(".", 1)[1]
    assert error.value.message == (
        f"{name}: .{extension} files are not allowed. Allowed types: {ALLOWED}."
    )


def test_file_without_extension_rejected(filer):
    with pytest.raises(DomainError) as error:
        file_with(filer, SimpleUploadedFile("README", b"just text\n"))

    assert error.value.message == (
        f"README: files without an extension are not allowed. Allowed types: {ALLOWED}."
    )


def test_text_file_must_be_utf8(filer):
    with pytest.raises(DomainError) as error:
        file_with(filer, text("export.csv", "naïve;café\n".encode("latin-1")))

    assert error.value.message.startswith(
        "export.csv: a .csv file must be UTF-8 text, and this one is not."
    )


def test_text_file_with_nul_bytes_rejected(filer):
    with pytest.raises(DomainError):
        file_with(filer, text("dump.log", b"abc\x00def"))


def test_utf8_csv_accepted(filer):
    case = file_with(filer, text("export.csv", "naïve;café\n".encode()))

    assert case.attachments.get().content_type == "text/csv"


def test_empty_file_rejected(filer):
    with pytest.raises(DomainError) as error:
        file_with(filer, text("empty.txt", b""))

    assert error.value.message == "empty.txt is empty. Attach a file with content."


def test_failure_after_storing_removes_files(filer, media_root, monkeypatch):
    from apps.portal.services import cases as case_services

    def fail(**kwargs):
        raise RuntimeError("attempt link failed")

    monkeypatch.setattr(case_services, "attach_case", fail)

    with pytest.raises(RuntimeError):
        file_with(filer, png("a.png"), png("b.png"))

    assert stored_files(media_root) == []


def test_original_name_loses_folders_and_control_characters():
    assert clean_original_name("C:\\Users\\me\\re\x00port.pdf") == "report.pdf"
    assert clean_original_name("../../etc/passwd") == "passwd"
    assert clean_original_name("") == "attachment"


def test_form_shows_limit_error_and_saves_nothing(client, filer, limits, media_root):
    client.force_login(filer.user)

    response = client.post(
        reverse("portal:case_new"),
        {
            "subject": "Export",
            "body": "Fails.",
            "priority": "normal",
            "attachments": [png("huge.png", size=2000)],
        },
    )

    assert response.status_code == 200
    assert "huge.png is 2 KB, over the limit of 1 KB per file." in (
        response.content.decode()
    )
    assert Case.objects.count() == 0
    assert stored_files(media_root) == []


def test_form_names_empty_file(client, filer, media_root):
    client.force_login(filer.user)

    response = client.post(
        reverse("portal:case_new"),
        {
            "subject": "Export",
            "body": "Fails.",
            "priority": "normal",
            "attachments": [png("fine.png"), text("notes.txt", b"")],
        },
    )

    assert response.status_code == 200
    assert "notes.txt is empty. Attach a file with content." in response.text
    assert "The submitted file is empty." not in response.text
    assert Case.objects.count() == 0
    assert stored_files(media_root) == []


def test_download_is_attachment_with_nosniff(client, filer):
    case = file_with(filer, png("my screen.png"))
    attachment = case.attachments.get()
    client.force_login(filer.user)

    response = client.get(
        reverse(
            "portal:case_attachment",
            kwargs={"pk": case.pk, "attachment_pk": attachment.pk},
        )
    )

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="my screen.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_download_of_other_case_attachment_not_found(client, filer):
    case = file_with(filer, png())
    other = file_with(filer, png())
    attachment = other.attachments.get()
    client.force_login(filer.user)

    response = client.get(
        reverse(
            "portal:case_attachment",
            kwargs={"pk": case.pk, "attachment_pk": attachment.pk},
        )
    )

    assert response.status_code == 404


def test_api_upload_applies_same_limits(filer, limits, media_root):
    case = file_with(filer)
    api = APIClient()
    api.force_authenticate(filer.user)

    response = api.post(
        f"/api/v1/portal/cases/{case.pk}/attachments/",
        {"attachments": [png("huge.png", size=2000)]},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["attachments"] == [
        "huge.png is 2 KB, over the limit of 1 KB per file. Attach a smaller "
        "file, or compress it."
    ]
    assert CaseAttachment.objects.count() == 0


def test_api_upload_stores_files(filer, media_root):
    case = file_with(filer)
    api = APIClient()
    api.force_authenticate(filer.user)

    response = api.post(
        f"/api/v1/portal/cases/{case.pk}/attachments/",
        {"attachments": [png("a.png"), text("b.txt")]},
        format="multipart",
    )

    assert response.status_code == 201
    assert [row["name"] for row in response.json()] == ["a.png", "b.txt"]
    assert case.attachments.count() == 2
