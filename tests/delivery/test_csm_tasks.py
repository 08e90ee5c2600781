from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.lifecycle.actions import ActionSkipped
from apps.lifecycle.delivery.csm_tasks import close_csm_task, create_play_csm_task
from apps.lifecycle.models import CsmTask
from apps.membership.models import AuditEntry
from rm6.errors import DomainError
from tests import factories

LIST_URL = reverse("delivery:csm_tasks")
CONFIG = {
    "title": "Call {{ member_name }} at {{ account_name }}",
    "description": "They signed in for the first time.",
    "due_in_days": 3,
}


def close_url(task) -> str:
    return reverse("delivery:csm_task_close", args=[task.pk])


def make_task(*, owner=None, account=None, status=CsmTask.Status.OPEN, title="Task"):
    return CsmTask.objects.create(
        account=account or factories.AccountFactory(),
        owner=owner,
        title=title,
        status=status,
    )


def test_csm_task_created_for_account_owner(make_context, enrolled_member, csm, play):
    ctx = make_context("csm_task", CONFIG)

    result = create_play_csm_task(ctx)

    task = CsmTask.objects.get()
    assert result.outcome == "CSM task created"
    assert result.details == {"csm_task_id": task.pk}
    assert task.owner == csm
    assert task.account == enrolled_member.account
    assert task.member == enrolled_member
    assert task.title == "Call Robin at Acme Corp"
    assert task.description == "They signed in for the first time."
    assert task.due_on == timezone.localdate() + timedelta(days=3)
    assert task.play == play
    assert task.step_run == ctx.step_run


def test_csm_task_twice_creates_one(make_context):
    ctx = make_context("csm_task", CONFIG)

    create_play_csm_task(ctx)
    second = create_play_csm_task(ctx)

    assert CsmTask.objects.count() == 1
    assert second.outcome == "CSM task already created"


def test_csm_task_for_account_subject(make_context, enrolled_member):
    account = enrolled_member.account
    ctx = make_context(
        "csm_task",
        {"title": "Renewal at {{ account_name }}"},
        member=None,
        account=account,
    )

    create_play_csm_task(ctx)

    task = CsmTask.objects.get()
    assert task.account == account
    assert task.member is None
    assert task.title == "Renewal at Acme Corp"
    assert task.due_on is None


def test_csm_task_unassigned_without_owner(make_context, enrolled_member):
    enrolled_member.account.owner = None
    enrolled_member.account.save(update_fields=["owner"])
    ctx = make_context("csm_task", CONFIG)

    result = create_play_csm_task(ctx)

    assert result.outcome == "CSM task created unassigned: the account has no owner"
    assert CsmTask.objects.get().owner is None


def test_csm_task_skipped_without_account(make_context):
    member = factories.MemberFactory(account=None)
    ctx = make_context("csm_task", CONFIG, member=member)

    with pytest.raises(ActionSkipped) as skipped:
        create_play_csm_task(ctx)

    assert str(skipped.value) == "member has no account yet, so no CSM owns them"


@pytest.mark.parametrize("days", [-1, "3", 1.5, True, 3651, 99999999999])
def test_csm_task_invalid_due_in_days(make_context, days):
    ctx = make_context("csm_task", {"title": "T", "due_in_days": days})

    with pytest.raises(DomainError) as error:
        create_play_csm_task(ctx)

    assert error.value.field == "due_in_days"
    assert CsmTask.objects.count() == 0


def test_close_csm_task_audits(staff_user):
    task = make_task(owner=staff_user)

    close_csm_task(task=task, status=CsmTask.Status.DONE, closed_by=staff_user)

    task.refresh_from_db()
    assert task.status == CsmTask.Status.DONE
    assert task.completed_at is not None
    entry = AuditEntry.objects.get(action="csm_task_closed")
    assert entry.actor == staff_user
    assert entry.details == {"csm_task_id": task.pk, "status": "done"}


def test_close_csm_task_other_way_raises(staff_user):
    task = make_task(status=CsmTask.Status.DISMISSED)

    with pytest.raises(DomainError) as error:
        close_csm_task(task=task, status=CsmTask.Status.DONE, closed_by=staff_user)

    assert error.value.message == (
        f"CSM task {task.pk} is already dismissed, so it cannot be marked done."
    )


def test_csm_task_list_member_403(member_client):
    response = member_client.get(LIST_URL)

    assert response.status_code == 403


def test_csm_task_list_anonymous_redirects(client):
    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_csm_task_list_default_mine_open(staff_client, staff_user):
    mine = make_task(owner=staff_user, title="Mine")
    make_task(owner=staff_user, title="Mine done", status=CsmTask.Status.DONE)
    make_task(owner=factories.StaffFactory(), title="Colleague's")
    make_task(title="Unassigned")

    response = staff_client.get(LIST_URL)

    assert response.status_code == 200
    assert list(response.context["page_obj"].object_list) == [mine]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"owner": "anyone"}, ["Colleague's", "Mine", "Unassigned"]),
        ({"owner": "unassigned"}, ["Unassigned"]),
        ({"owner": "mine", "status": "done"}, ["Mine done"]),
        ({"owner": "mine", "status": "any"}, ["Mine", "Mine done"]),
    ],
)
def test_csm_task_list_filters(staff_client, staff_user, params, expected):
    make_task(owner=staff_user, title="Mine")
    make_task(owner=staff_user, title="Mine done", status=CsmTask.Status.DONE)
    make_task(owner=factories.StaffFactory(), title="Colleague's")
    make_task(title="Unassigned")

    response = staff_client.get(LIST_URL, params)

    titles = sorted(task.title for task in response.context["page_obj"].object_list)
    assert titles == expected


def test_csm_task_list_filters_by_owner_id(staff_client):
    colleague = factories.StaffFactory()
    theirs = make_task(owner=colleague)

    response = staff_client.get(LIST_URL, {"owner": colleague.pk})

    assert list(response.context["page_obj"].object_list) == [theirs]


def test_csm_task_list_filters_by_account(staff_client, staff_user):
    account = factories.AccountFactory(name="Globex")
    theirs = make_task(owner=staff_user, account=account)
    make_task(owner=staff_user)

    response = staff_client.get(LIST_URL, {"account": account.pk})

    assert list(response.context["page_obj"].object_list) == [theirs]
    assert b"Showing tasks for Globex." in response.content


def test_csm_task_list_invalid_filter(staff_client, staff_user):
    mine = make_task(owner=staff_user)

    response = staff_client.get(LIST_URL, {"owner": "nobody", "status": "open"})

    assert response.status_code == 200
    assert list(response.context["page_obj"].object_list) == [mine]
    assert b"Some filters were invalid" in response.content


def test_csm_task_list_invalid_owner_names_values(staff_client):
    response = staff_client.get(LIST_URL, {"owner": "nobody"})

    assert response.context["form"].errors["owner"] == [
        "Invalid owner 'nobody': use mine, anyone, unassigned or the ID of an "
        "active staff user."
    ]


def test_csm_task_list_invalid_status_names_values(staff_client):
    response = staff_client.get(LIST_URL, {"status": "closed"})

    assert response.context["form"].errors["status"] == [
        "Invalid status 'closed': use open, done, dismissed or any."
    ]


@pytest.mark.parametrize("alias", ["all", "any", "ALL", "Any", " all "])
def test_csm_task_list_owner_alias_means_anyone(staff_client, staff_user, alias):
    make_task(owner=staff_user, title="Mine")
    make_task(owner=factories.StaffFactory(), title="Colleague's")
    make_task(title="Unassigned")

    response = staff_client.get(LIST_URL, {"owner": alias})

    titles = sorted(task.title for task in response.context["page_obj"].object_list)
    assert titles == ["Colleague's", "Mine", "Unassigned"]
    assert response.context["form"].errors == {}
    assert response.context["form"]["owner"].value() == "anyone"


def test_csm_task_list_empty_mine_counts_others(staff_client):
    colleague = factories.StaffFactory()
    make_task(owner=colleague)
    make_task(owner=colleague)
    make_task(owner=colleague, status=CsmTask.Status.DONE)
    make_task()

    response = staff_client.get(LIST_URL)

    content = response.content.decode()
    assert list(response.context["page_obj"].object_list) == []
    assert (
        "No tasks assigned to you match these filters. They match 2 tasks "
        "assigned to other staff and 1 unassigned task." in content
    )
    assert '<a href="?owner=anyone">Show anyone\'s tasks</a>' in content
    assert "No tasks match these filters." not in content


def test_csm_task_list_empty_mine_one_other(staff_client):
    make_task(owner=factories.StaffFactory())

    response = staff_client.get(LIST_URL)

    assert b"They match 1 task assigned to other staff." in response.content


def test_csm_task_list_empty_mine_only_unassigned(staff_client):
    make_task()
    make_task()

    response = staff_client.get(LIST_URL)

    assert b"They match 2 unassigned tasks." in response.content


def test_csm_task_list_empty_mine_keeps_filters(staff_client, staff_user):
    account = factories.AccountFactory()
    colleague = factories.StaffFactory()
    make_task(owner=colleague, account=account, status=CsmTask.Status.DONE)
    make_task(owner=colleague, status=CsmTask.Status.DONE)
    make_task(owner=colleague, account=account)
    make_task(owner=staff_user, account=account)

    params = {"owner": "mine", "status": "done", "account": account.pk}
    response = staff_client.get(LIST_URL, params)

    content = response.content.decode()
    assert "They match 1 task assigned to other staff." in content
    link = f"?owner=anyone&amp;status=done&amp;account={account.pk}"
    assert f'<a href="{link}">Show anyone\'s tasks</a>' in content


def test_csm_task_list_empty_without_others(staff_client, staff_user):
    make_task(owner=staff_user, status=CsmTask.Status.DONE)

    response = staff_client.get(LIST_URL)

    assert b"No tasks match these filters." in response.content
    assert b"Show anyone's tasks" not in response.content


def test_csm_task_list_empty_anyone_no_counts(staff_client):
    make_task(status=CsmTask.Status.DONE)

    response = staff_client.get(LIST_URL, {"owner": "anyone"})

    assert response.context["other_counts"] is None
    assert b"No tasks match these filters." in response.content


def test_csm_task_list_due_first(staff_client, staff_user):
    today = timezone.localdate()
    undated = make_task(owner=staff_user)
    later = make_task(owner=staff_user)
    sooner = make_task(owner=staff_user)
    CsmTask.objects.filter(pk=later.pk).update(due_on=today + timedelta(days=5))
    CsmTask.objects.filter(pk=sooner.pk).update(due_on=today)

    response = staff_client.get(LIST_URL)

    assert list(response.context["page_obj"].object_list) == [sooner, later, undated]


def test_csm_task_list_query_count_fixed(staff_client, staff_user):
    def add_tasks(count: int) -> None:
        for _ in range(count):
            member = factories.MemberFactory()
            CsmTask.objects.create(
                account=member.account, member=member, owner=staff_user, title="T"
            )

    add_tasks(2)
    staff_client.get(LIST_URL)
    with CaptureQueriesContext(connection) as few:
        staff_client.get(LIST_URL)

    add_tasks(10)
    with CaptureQueriesContext(connection) as many:
        staff_client.get(LIST_URL)

    assert len(many) == len(few)


def test_csm_task_list_empty_state_query_count_fixed(staff_client):
    def add_other_tasks(count: int) -> None:
        for _ in range(count):
            member = factories.MemberFactory()
            owner = factories.StaffFactory()
            CsmTask.objects.create(
                account=member.account, member=member, owner=owner, title="T"
            )
            make_task()

    add_other_tasks(1)
    staff_client.get(LIST_URL)
    with CaptureQueriesContext(connection) as few:
        staff_client.get(LIST_URL)

    add_other_tasks(10)
    with CaptureQueriesContext(connection) as many:
        response = staff_client.get(LIST_URL)

    assert response.context["other_counts"] == {"assigned": 11, "unassigned": 11}
    assert len(many) == len(few)


def test_csm_task_list_empty_state_costs_as_listed(staff_client, staff_user):
    # Django reads no rows for an empty page, so the query that counts the
    # other tasks keeps the page at the cost of a page that lists one task.
    make_task(owner=factories.StaffFactory())
    staff_client.get(LIST_URL)
    with CaptureQueriesContext(connection) as empty:
        staff_client.get(LIST_URL)

    make_task(owner=staff_user)
    with CaptureQueriesContext(connection) as listed:
        staff_client.get(LIST_URL)

    assert len(empty) == len(listed)


def test_csm_task_list_paginates_with_filters(staff_client, staff_user):
    for _ in range(30):
        make_task(owner=staff_user)

    response = staff_client.get(LIST_URL, {"owner": "mine", "status": "open"})

    assert len(response.context["page_obj"].object_list) == 25
    assert b'href="?owner=mine&amp;status=open&amp;page=2"' in response.content


def test_csm_task_close_marks_done(staff_client, staff_user):
    task = make_task(owner=staff_user)

    response = staff_client.post(
        close_url(task), {"status": "done", "next": f"{LIST_URL}?owner=anyone"}
    )

    assert response.status_code == 302
    assert response.url == f"{LIST_URL}?owner=anyone"
    task.refresh_from_db()
    assert task.status == CsmTask.Status.DONE


def test_csm_task_close_ignores_outside_next(staff_client):
    task = make_task()

    response = staff_client.post(
        close_url(task), {"status": "dismissed", "next": "https://evil.example.com/"}
    )

    assert response.url == LIST_URL
    task.refresh_from_db()
    assert task.status == CsmTask.Status.DISMISSED


def test_csm_task_close_htmx_returns_row(staff_client):
    task = make_task(title="Call Robin")

    response = staff_client.post(
        close_url(task), {"status": "done"}, HTTP_HX_REQUEST="true"
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert f'id="csm-task-{task.pk}"' in content
    assert "Mark done" not in content
    assert '<span class="badge badge--done">Done</span>' in content


def test_csm_task_close_closed_task_shows_error(staff_client):
    task = make_task(status=CsmTask.Status.DISMISSED)

    response = staff_client.post(
        close_url(task), {"status": "done"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert b"is already dismissed, so it cannot be marked done." in response.content
    task.refresh_from_db()
    assert task.status == CsmTask.Status.DISMISSED


def test_csm_task_close_invalid_status_400(staff_client):
    task = make_task()

    response = staff_client.post(close_url(task), {"status": "open"})

    assert response.status_code == 400
    task.refresh_from_db()
    assert task.status == CsmTask.Status.OPEN


def test_csm_task_close_member_403(member_client):
    task = make_task()

    response = member_client.post(close_url(task), {"status": "done"})

    assert response.status_code == 403
    task.refresh_from_db()
    assert task.status == CsmTask.Status.OPEN
    assert task.completed_at is None
    assert not AuditEntry.objects.filter(action="csm_task_closed").exists()


def test_csm_task_close_anonymous_changes_nothing(client, db):
    task = make_task()

    response = client.post(close_url(task), {"status": "done"})

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == CsmTask.Status.OPEN


def test_csm_task_close_unknown_404(staff_client):
    response = staff_client.post(
        reverse("delivery:csm_task_close", args=[999999]), {"status": "done"}
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("owner", "expected_titles", "expected_value"),
    [
        ("MINE", ["Mine"], "mine"),
        ("Anyone", ["Colleague's", "Mine", "Unassigned"], "anyone"),
        ("UNASSIGNED", ["Unassigned"], "unassigned"),
    ],
)
def test_csm_task_list_owner_ignores_case(
    staff_client, staff_user, owner, expected_titles, expected_value
):
    make_task(owner=staff_user, title="Mine")
    make_task(owner=factories.StaffFactory(), title="Colleague's")
    make_task(title="Unassigned")

    response = staff_client.get(LIST_URL, {"owner": owner})

    titles = sorted(task.title for task in response.context["page_obj"].object_list)
    assert titles == expected_titles
    assert response.context["form"].errors == {}
    assert response.context["form"]["owner"].value() == expected_value
