import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.lifecycle.models import CsmTask, WebhookDelivery, WebhookEndpoint
from tests import factories
from tests.plays.factories import PlayFactory, PlayStepFactory

ENDPOINTS_URL = reverse("admin:lifecycle_webhookendpoint_changelist")
DELIVERIES_URL = reverse("admin:lifecycle_webhookdelivery_changelist")
TASKS_URL = reverse("admin:lifecycle_csmtask_changelist")


@pytest.fixture
def saved_endpoint(db):
    return WebhookEndpoint.objects.create(
        name="CRM", url="https://crm.example.com/hooks", secret="whsec_saved-secret"
    )


def make_delivery(endpoint, key: str, status=WebhookDelivery.Status.PENDING):
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        delivery_key=key,
        event_kind="play.step",
        payload={"play_id": "welcome-2025"},
        status=status,
    )


def test_endpoint_add_shows_secret_once(admin_client):
    response = admin_client.post(
        reverse("admin:lifecycle_webhookendpoint_add"),
        {"name": "CRM", "url": "https://crm.example.com/hooks", "is_active": "on"},
        follow=True,
    )
    reloaded = admin_client.get(reverse("admin:lifecycle_webhookendpoint_secrets"))

    endpoint = WebhookEndpoint.objects.get()
    assert response.redirect_chain == [
        (reverse("admin:lifecycle_webhookendpoint_secrets"), 302)
    ]
    assert endpoint.secret.startswith("whsec_")
    assert len(endpoint.secret) > 40
    assert f"<code>{endpoint.secret}</code>" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    # Reloading the page adds no endpoint and no longer shows the secret.
    assert reloaded.status_code == 200
    assert endpoint.secret not in reloaded.content.decode()
    assert "No new secret is waiting to be shown" in reloaded.content.decode()
    add_url = reverse("admin:lifecycle_webhookendpoint_add")
    assert f'href="{add_url}">Add another endpoint</a>' in response.content.decode()
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://crm.example.com/hooks",
            "The URL 'ftp://crm.example.com/hooks' uses the scheme 'ftp', but "
            "webhooks are sent as HTTP POST requests: use an https:// URL.",
        ),
        (
            "https://crm.example.com:99999/hooks",
            "The URL 'https://crm.example.com:99999/hooks' has an invalid port: use "
            "a port from 1 to 65535, or leave it out.",
        ),
        (
            "https://crm.example.com:0/hooks",
            "The URL 'https://crm.example.com:0/hooks' has an invalid port: use "
            "a port from 1 to 65535, or leave it out.",
        ),
    ],
    ids=["ftp", "port-too-high", "port-zero"],
)
def test_endpoint_add_rejects_unusable_url(admin_client, url, message):
    response = admin_client.post(
        reverse("admin:lifecycle_webhookendpoint_add"),
        {"name": "CRM", "url": url, "is_active": "on"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"] == [message]
    assert not WebhookEndpoint.objects.exists()


def test_endpoint_add_reads_bare_host_as_https(admin_client):
    admin_client.post(
        reverse("admin:lifecycle_webhookendpoint_add"),
        {"name": "CRM", "url": "crm.example.com/hooks", "is_active": "on"},
    )

    assert WebhookEndpoint.objects.get().url == "https://crm.example.com/hooks"


def test_endpoint_secret_hidden_after_add(admin_client, saved_endpoint):
    changelist = admin_client.get(ENDPOINTS_URL)
    change = admin_client.get(
        reverse("admin:lifecycle_webhookendpoint_change", args=[saved_endpoint.pk])
    )

    assert changelist.status_code == 200
    assert change.status_code == 200
    assert b"whsec_saved-secret" not in changelist.content
    assert b"whsec_saved-secret" not in change.content


def test_endpoint_change_keeps_secret(admin_client, saved_endpoint):
    admin_client.post(
        reverse("admin:lifecycle_webhookendpoint_change", args=[saved_endpoint.pk]),
        {"name": "CRM renamed", "url": "https://crm.example.com/hooks"},
    )

    saved_endpoint.refresh_from_db()
    assert saved_endpoint.name == "CRM renamed"
    assert saved_endpoint.secret == "whsec_saved-secret"


def test_endpoint_rotate_secret_shows_new_one(admin_client, saved_endpoint):
    response = admin_client.post(
        ENDPOINTS_URL,
        {"action": "rotate_secrets", ACTION_CHECKBOX_NAME: [saved_endpoint.pk]},
        follow=True,
    )

    saved_endpoint.refresh_from_db()
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].endswith("/secrets/")
    assert saved_endpoint.secret != "whsec_saved-secret"
    assert f"<code>{saved_endpoint.secret}</code>" in response.content.decode()


def test_secrets_page_needs_change_permission(client, saved_endpoint):
    viewer = get_user_model().objects.create_user(
        "viewer", "viewer@example.com", "secret-password", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
    client.force_login(viewer)

    response = client.get(reverse("admin:lifecycle_webhookendpoint_secrets"))

    assert response.status_code == 403


def test_endpoint_in_use_delete_page_explains(admin_client, saved_endpoint):
    make_delivery(saved_endpoint, "test:one")
    PlayStepFactory(
        play=PlayFactory(play_id="renewal", name="Renewal nudge"),
        position=2,
        action="webhook",
        config={"endpoint_id": saved_endpoint.pk},
    )
    url = reverse("admin:lifecycle_webhookendpoint_delete", args=[saved_endpoint.pk])

    response = admin_client.get(url)

    assert response.context["protected"] == [
        "CRM: it has 1 logged delivery, the record of what was sent. Untick "
        "“Is active” to stop sending to it. And step 2 of the active play "
        "Renewal nudge sends webhooks to it. Point that step at another "
        "endpoint first."
    ]
    assert not response.context["perms_lacking"]
    admin_client.post(url, {"post": "yes"})
    assert WebhookEndpoint.objects.filter(pk=saved_endpoint.pk).exists()


def test_unused_endpoint_can_be_deleted(admin_client, saved_endpoint):
    url = reverse("admin:lifecycle_webhookendpoint_delete", args=[saved_endpoint.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_delivery_log_lists_and_filters(admin_client, saved_endpoint):
    make_delivery(saved_endpoint, "test:pending")
    make_delivery(saved_endpoint, "test:failed", WebhookDelivery.Status.FAILED)

    response = admin_client.get(DELIVERIES_URL, {"status__exact": "failed"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert b"whsec_saved-secret" not in response.content


def test_delivery_log_view_page_shows_payload(admin_client, saved_endpoint):
    delivery = make_delivery(saved_endpoint, "test:one")

    response = admin_client.get(
        reverse("admin:lifecycle_webhookdelivery_change", args=[delivery.pk])
    )

    assert response.status_code == 200
    assert b"&quot;play_id&quot;: &quot;welcome-2025&quot;" in response.content


def test_delivery_log_is_read_only(admin_client, saved_endpoint):
    delivery = make_delivery(saved_endpoint, "test:one")

    response = admin_client.post(
        reverse("admin:lifecycle_webhookdelivery_change", args=[delivery.pk]),
        {"status": "delivered"},
    )

    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING


def test_delivery_retry_now_action(admin_client, saved_endpoint, queued_deliveries):
    failed = make_delivery(saved_endpoint, "test:failed", WebhookDelivery.Status.FAILED)

    response = admin_client.post(
        DELIVERIES_URL,
        {"action": "retry_now", ACTION_CHECKBOX_NAME: [failed.pk]},
        follow=True,
    )

    failed.refresh_from_db()
    assert response.status_code == 200
    assert failed.status == WebhookDelivery.Status.PENDING
    assert b"Queued 1 delivery to retry." in response.content


def test_csm_task_admin_mark_done(admin_client, admin_user):
    task = CsmTask.objects.create(account=factories.AccountFactory(), title="Call")

    admin_client.post(
        TASKS_URL, {"action": "mark_done", ACTION_CHECKBOX_NAME: [task.pk]}
    )

    task.refresh_from_db()
    assert task.status == CsmTask.Status.DONE


def test_csm_task_admin_pages(admin_client):
    task = CsmTask.objects.create(account=factories.AccountFactory(), title="Call")

    changelist = admin_client.get(TASKS_URL)
    change = admin_client.get(reverse("admin:lifecycle_csmtask_change", args=[task.pk]))

    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.parametrize(
    ("button", "label", "url_name"),
    [
        ("_addanother", "Continue: add another endpoint", "add"),
        ("_continue", "Continue: edit CRM", "change"),
    ],
)
def test_endpoint_add_secrets_page_leads_on(admin_client, button, label, url_name):
    response = admin_client.post(
        reverse("admin:lifecycle_webhookendpoint_add"),
        {"name": "CRM", "url": "https://crm.example.com/hooks", button: "1"},
        follow=True,
    )

    endpoint = WebhookEndpoint.objects.get()
    args = [endpoint.pk] if url_name == "change" else []
    url = reverse(f"admin:lifecycle_webhookendpoint_{url_name}", args=args)
    page = response.content.decode()
    assert f"<code>{endpoint.secret}</code>" in page
    assert f'<a class="button" href="{url}">{label}</a>' in page


def test_endpoint_form_labels_url(admin_client):
    response = admin_client.get(reverse("admin:lifecycle_webhookendpoint_add"))

    assert '<label class="required" for="id_url">URL:</label>' in (
        response.content.decode()
    )


def test_endpoint_list_column_named_url(admin_client, saved_endpoint):
    response = admin_client.get(ENDPOINTS_URL)

    # The link sorts by URL, then by name, the order the list has now.
    assert '<a href="?o=2.1">URL</a>' in response.content.decode()
