import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.membership.models import Member
from apps.membership.services.roles import sync_role_groups
from tests import factories

# The smallest valid files of each kind that the checks recognise.
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png(name: str = "screen.png", size: int | None = None) -> SimpleUploadedFile:
    content = PNG_BYTES if size is None else PNG_BYTES + b"\0" * (size - len(PNG_BYTES))
    return SimpleUploadedFile(name, content, content_type="image/png")


def text(name: str = "error.log", content: bytes = b"line one\n") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/plain")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Store case files in a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def account(db):
    return factories.AccountFactory(name="Globex")


@pytest.fixture
def filer(account):
    return factories.MemberFactory(account=account, display_name="Filer")


@pytest.fixture
def colleague(account):
    """Another plain member of the filer's account."""
    return factories.MemberFactory(account=account, display_name="Colleague")


@pytest.fixture
def account_admin(account):
    member = factories.MemberFactory(
        account=account, role=Member.Role.ADMIN, display_name="Admin"
    )
    sync_role_groups(member)
    return member


@pytest.fixture
def outsider(db):
    """A member of another account, an admin of it even."""
    member = factories.MemberFactory(role=Member.Role.ADMIN, display_name="Outsider")
    sync_role_groups(member)
    return member


@pytest.fixture
def staff(db):
    return factories.StaffFactory()
