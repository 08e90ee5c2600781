import io
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.membership.models import Account, AccountArr, AuditEntry, Member
from apps.membership.services import imports
from apps.membership.services.imports import RowError, import_accounts, import_members
from tests import factories

pytestmark = pytest.mark.django_db

User = get_user_model()

ACCOUNTS_HEADER = (
    "external_id,name,email_domains,segment,cs_tier,arr,contract_start,"
    "renewal_date,owner_email,time_zone,parent_external_id\n"
)


def csv_file(text: str, *, encoding: str = "utf-8") -> io.BytesIO:
    return io.BytesIO(text.encode(encoding))


def test_import_accounts_creates_rows(staff_user):
    text = ACCOUNTS_HEADER + (
        "crm-1,Globex,globex.test;Globex-EU.test,enterprise,high_touch,120000.50,"
        f"2024-01-01,2025-01-01,{staff_user.email},Europe/Paris,\n"
        "crm-2,Globex Labs,labs.test,SMB,Tech touch,,,,,,crm-1\n"
    )

    result = import_accounts(
        file=csv_file(text), actor=staff_user, file_name="accounts.csv"
    )

    assert result.errors == []
    assert (result.rows, result.created, result.updated) == (2, 2, 0)
    globex = Account.objects.get(external_id="crm-1")
    labs = Account.objects.get(external_id="crm-2")
    assert globex.email_domains == ["globex.test", "globex-eu.test"]
    assert globex.arr == Decimal("120000.50")
    assert globex.owner == staff_user
    assert globex.time_zone == "Europe/Paris"
    assert labs.parent == globex
    assert labs.segment == "smb"
    assert labs.cs_tier == "tech_touch"
    assert AccountArr.objects.get(account=globex).source == "import"
    audit = AuditEntry.objects.get(action="accounts.imported")
    assert audit.actor == staff_user
    assert audit.details == {
        "file_name": "accounts.csv",
        "rows": 2,
        "created": 2,
        "updated": 0,
    }


def test_import_accounts_child_before_parent(staff_user):
    text = (
        "external_id,name,segment,cs_tier,parent_external_id\n"
        "crm-child,Child,smb,pooled,crm-parent\n"
        "crm-parent,Parent,smb,pooled,\n"
    )

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert result.errors == []
    child = Account.objects.get(external_id="crm-child")
    assert child.parent.external_id == "crm-parent"


def test_import_accounts_bad_row_writes_nothing(staff_user):
    text = ACCOUNTS_HEADER + (
        "crm-1,Globex,globex.test,enterprise,high_touch,100,,,,,\n"
        "crm-2,Initech,initech.test,galactic,pooled,200,,,,,\n"
        "crm-3,Hooli,hooli.test,smb,pooled,300,,,,,\n"
    )

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert result.errors == [
        RowError(
            row=3,
            column="segment",
            value="galactic",
            message="'galactic' is not a valid segment. Use one of: smb, "
            "mid_market, enterprise.",
        )
    ]
    assert (result.created, result.updated) == (0, 0)
    assert not Account.objects.exists()
    assert not AccountArr.objects.exists()
    assert not AuditEntry.objects.exists()


def test_import_accounts_service_error_reported_with_row(staff_user):
    factories.AccountFactory(name="Initech", email_domains=["initech.test"])
    text = ACCOUNTS_HEADER + (
        "crm-1,Globex,globex.test,enterprise,high_touch,,,,,,\n"
        "crm-2,Copycat,initech.test,smb,pooled,,,,,,\n"
    )

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column, e.value) for e in result.errors] == [
        (3, "email_domains", "initech.test")
    ]
    assert result.errors[0].message.startswith(
        "The email domain initech.test already belongs to account Initech"
    )
    assert not Account.objects.filter(external_id="crm-1").exists()


def test_import_accounts_reports_every_bad_row(staff_user):
    text = ACCOUNTS_HEADER + (
        "crm-1,Globex,globex.test,enterprise,high_touch,-5,,,,,\n"
        "crm-2,Initech,initech.test,smb,pooled,,2024-13-01,,,,\n"
        ",Nameless,,smb,pooled,,,,,,\n"
        "crm-4,Hooli,hooli.test,smb,pooled,,,,,Mars/Olympus,\n"
        "crm-5,Pied Piper,,smb,pooled,,,,nobody@vendor.test,,\n"
    )

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column, e.value) for e in result.errors] == [
        (2, "arr", "-5"),
        (3, "contract_start", "2024-13-01"),
        (4, "external_id", ""),
        (5, "time_zone", "Mars/Olympus"),
        (6, "owner_email", "nobody@vendor.test"),
    ]
    assert not Account.objects.exists()


def test_import_accounts_new_account_without_name_rejected(staff_user):
    text = "external_id,segment,cs_tier\ncrm-1,smb,pooled\n"

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert result.errors == [
        RowError(row=2, column="name", value="", message="The account name is missing.")
    ]


def test_import_accounts_repeated_external_id_rejected(staff_user):
    text = (
        "external_id,name,segment,cs_tier\n"
        "crm-1,Globex,smb,pooled\n"
        "crm-1,Globex again,smb,pooled\n"
    )

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert result.errors == [
        RowError(
            row=3,
            column="external_id",
            value="crm-1",
            message="This external_id is also on row 2; each account may appear "
            "once per file.",
        )
    ]
    assert not Account.objects.exists()


def test_import_accounts_parent_loop_rejected(staff_user):
    text = (
        "external_id,name,segment,cs_tier,parent_external_id\n"
        "crm-a,A,smb,pooled,crm-b\n"
        "crm-b,B,smb,pooled,crm-a\n"
    )

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column) for e in result.errors] == [
        (2, "parent_external_id"),
        (3, "parent_external_id"),
    ]
    assert "form a loop (crm-a → crm-b → crm-a)" in result.errors[0].message
    assert "form a loop (crm-b → crm-a → crm-b)" in result.errors[1].message
    assert not Account.objects.exists()


def test_import_accounts_reimport_updates(staff_user):
    text = ACCOUNTS_HEADER + "crm-1,Globex,globex.test,smb,pooled,100,,,,,\n"
    import_accounts(file=csv_file(text), actor=staff_user)
    changed = ACCOUNTS_HEADER + "crm-1,Globex Corp,,enterprise,,150,,,,,\n"

    result = import_accounts(file=csv_file(changed), actor=staff_user)

    account = Account.objects.get()
    assert (result.created, result.updated) == (0, 1)
    assert account.name == "Globex Corp"
    assert account.segment == "enterprise"
    assert account.cs_tier == "pooled"
    assert account.email_domains == ["globex.test"]
    assert account.arr == Decimal("150")
    assert AuditEntry.objects.filter(action="accounts.imported").count() == 2


def test_import_accounts_byte_order_mark_accepted(staff_user):
    text = "\ufeffexternal_id,name,segment,cs_tier\ncrm-1,Zürich AG,smb,pooled\n"

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert result.errors == []
    assert Account.objects.get().name == "Zürich AG"


def test_import_accounts_not_utf8_rejected(staff_user):
    text = "external_id,name,segment,cs_tier\ncrm-1,Zürich AG,smb,pooled\n"

    result = import_accounts(file=csv_file(text, encoding="latin-1"), actor=staff_user)

    assert result.errors == [
        RowError(
            row=None,
            column="",
            value="",
            message="The file is not UTF-8 text: byte 41 cannot be read. Save it "
            "as “CSV UTF-8” and import it again.",
        )
    ]


def test_import_accounts_unknown_column_rejected(staff_user):
    text = "external_id,name,segment,cs_tier,colour\ncrm-1,Globex,smb,pooled,blue\n"

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column, e.value) for e in result.errors] == [
        (1, "colour", "colour")
    ]
    assert result.errors[0].message.startswith("Unknown column 'colour'.")
    assert not Account.objects.exists()


def test_import_accounts_missing_key_column_rejected(staff_user):
    text = "name,segment,cs_tier\nGlobex,smb,pooled\n"

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert result.errors == [
        RowError(
            row=1,
            column="external_id",
            value="",
            message="The required column 'external_id' is missing; add it.",
        )
    ]


def test_import_accounts_empty_file_rejected(staff_user):
    result = import_accounts(file=csv_file(""), actor=staff_user)

    assert result.errors[0].message == (
        "The file is empty; the first row must name the columns."
    )


def test_import_accounts_extra_cells_rejected(staff_user):
    text = "external_id,name,segment,cs_tier\ncrm-1,Globex,smb,pooled,surplus\n"

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.value) for e in result.errors] == [(2, "surplus")]


def test_import_accounts_blank_rows_keep_numbering(staff_user):
    text = "external_id,name,segment,cs_tier\n\ncrm-1,Globex,smb,galactic\n"

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column) for e in result.errors] == [(3, "cs_tier")]


def test_import_accounts_file_too_large_rejected(staff_user, monkeypatch):
    monkeypatch.setattr(imports, "MAX_FILE_BYTES", 100)
    text = "external_id,name,segment,cs_tier\n" + "crm-1,Globex,smb,pooled\n" * 5

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert result.errors[0].row is None
    assert result.errors[0].message.startswith("The file is larger than")
    assert not Account.objects.exists()


def test_import_accounts_too_many_rows_rejected(staff_user, monkeypatch):
    monkeypatch.setattr(imports, "MAX_ROWS", 2)
    text = "external_id,name,segment,cs_tier\n" + "".join(
        f"crm-{n},Account {n},smb,pooled\n" for n in range(3)
    )

    result = import_accounts(file=csv_file(text), actor=staff_user)

    assert result.errors == [
        RowError(
            row=None,
            column="",
            value="",
            message="The file has more than 2 rows. Split it into smaller files "
            "and import each one.",
        )
    ]
    assert not Account.objects.exists()


MEMBERS_HEADER = (
    "email,display_name,account_external_id,role,lifecycle_stage,time_zone,"
    "external_id\n"
)


def test_import_members_creates_users_and_members(staff_user):
    account = factories.AccountFactory(external_id="crm-1")
    by_domain = factories.AccountFactory(email_domains=["initech.test"])
    text = MEMBERS_HEADER + (
        "Ada@Globex.test,Ada Lovelace,crm-1,champion,adopting,Europe/London,usr-1\n"
        "peter@initech.test,,,,,,\n"
    )

    result = import_members(file=csv_file(text), actor=staff_user)

    assert result.errors == []
    assert (result.created, result.updated) == (2, 0)
    ada = Member.objects.get(user__email="ada@globex.test")
    assert ada.account == account
    assert ada.display_name == "Ada Lovelace"
    assert ada.role == "champion"
    assert ada.lifecycle_stage == "adopting"
    assert ada.time_zone == "Europe/London"
    assert ada.external_id == "usr-1"
    assert ada.user.has_usable_password() is False
    assert set(ada.user.groups.values_list("name", flat=True)) == {"role: champion"}
    assert EmailAddress.objects.get(user=ada.user).verified is False
    peter = Member.objects.get(user__email="peter@initech.test")
    assert peter.account == by_domain
    assert AuditEntry.objects.get(action="members.imported").details["created"] == 2


def test_import_members_updates_existing_by_email(staff_user):
    member = factories.MemberFactory(user__email="ada@acme.test", display_name="Ada")
    text = MEMBERS_HEADER + "ADA@acme.test,Ada L.,,,established,,\n"

    result = import_members(file=csv_file(text), actor=staff_user)

    member.refresh_from_db()
    assert (result.created, result.updated) == (0, 1)
    assert member.display_name == "Ada L."
    assert member.lifecycle_stage == "established"
    assert User.objects.filter(email__iexact="ada@acme.test").count() == 1


def test_import_members_reimport_updates_instead_of_duplicating(staff_user):
    text = MEMBERS_HEADER + "ada@globex.test,Ada,,,,,usr-1\n"
    import_members(file=csv_file(text), actor=staff_user)

    result = import_members(file=csv_file(text), actor=staff_user)

    assert (result.created, result.updated) == (0, 1)
    assert Member.objects.count() == 1


def test_import_members_bad_row_writes_nothing(staff_user):
    text = MEMBERS_HEADER + (
        "ada@globex.test,Ada,,,,,\n"
        "not-an-email,Bob,,,,,\n"
        "cy@globex.test,Cy,crm-missing,,,,\n"
    )

    result = import_members(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column, e.value) for e in result.errors] == [
        (3, "email", "not-an-email"),
        (4, "account_external_id", "crm-missing"),
    ]
    assert result.errors[0].message == "'not-an-email' is not a valid email address."
    assert not Member.objects.exists()
    assert not User.objects.filter(email="ada@globex.test").exists()


def test_import_members_external_id_conflict_reported(staff_user):
    factories.MemberFactory(user__email="ada@acme.test", external_id="usr-1")
    text = MEMBERS_HEADER + "ada@acme.test,,,,,,usr-2\n"

    result = import_members(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column, e.value) for e in result.errors] == [
        (2, "external_id", "usr-2")
    ]


def test_import_members_admin_without_account_rejected(staff_user):
    text = MEMBERS_HEADER + "ada@nowhere.test,,,admin,,,\n"

    result = import_members(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column) for e in result.errors] == [(2, "role")]
    assert not Member.objects.exists()


def test_import_members_merged_email_updates_survivor(staff_user):
    survivor = factories.MemberFactory()
    merged = factories.MemberFactory(
        user__email="old@acme.test",
        merged_into=survivor,
        deactivated_at=timezone.now(),
    )
    text = MEMBERS_HEADER + "old@acme.test,New name,,,,,\n"

    result = import_members(file=csv_file(text), actor=staff_user)

    survivor.refresh_from_db()
    merged.refresh_from_db()
    assert result.errors == []
    assert survivor.display_name == "New name"
    assert merged.display_name == ""


def test_import_members_staff_email_rejected(staff_user):
    text = MEMBERS_HEADER + f"{staff_user.email},,,,,,\n"

    result = import_members(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column) for e in result.errors] == [(2, "email")]
    assert "belongs to a staff user" in result.errors[0].message


def test_import_members_repeated_email_rejected(staff_user):
    text = MEMBERS_HEADER + "ada@acme.test,,,,,,\nADA@acme.test,,,,,,\n"

    result = import_members(file=csv_file(text), actor=staff_user)

    assert [(e.row, e.column) for e in result.errors] == [(3, "email")]
