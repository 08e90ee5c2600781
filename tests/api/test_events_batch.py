import gzip
import json
from datetime import UTC, datetime

import pytest
from allauth.account.models import EmailAddress
from rest_framework.test import APIClient

from apps.lifecycle.models import ActivityEvent
from rm6.api import STAFF_ONLY_MESSAGE
from tests import factories

URL = "/api/v1/events/batch/"
INVALID_ROWS = (
    "{count} row(s) are invalid; nothing was recorded. Fix the rows listed in "
    "row_errors and send the batch again."
)

UNKNOWN_KIND_FIX = (
    "; send a registered kind, or name product usage under product.*, for "
    "example product.report_exported"
)
MEMBER_NOT_FOUND_FIX = (
    "; check the value, or create the member first with "
    "PUT /api/v1/members/by-external-id/<external_id>/"
)
EMAIL_NOT_FOUND_FIX = (
    MEMBER_NOT_FOUND_FIX + ". A member who signed up on the site matches by "
    "email once they confirm the address"
)

pytestmark = pytest.mark.django_db


def make_row(member, **overrides) -> dict:
    row = {
        "member_id": member.pk,
        "kind": "product.report_exported",
        "occurred_at": "2025-06-02T14:00:00+02:00",
        "properties": {"format": "csv"},
    }
    row.update(overrides)
    return row


def post_batch(client, rows):
    return client.post(URL, {"events": rows}, format="json")


def test_batch_staff_creates_events(staff_api, member):
    response = post_batch(
        staff_api,
        [
            make_row(member, idempotency_key="export-1"),
            make_row(member, kind="product.dashboard_viewed", properties={}),
        ],
    )

    assert response.status_code == 201
    assert response.json() == {"created": 2, "duplicates": 0}
    assert ActivityEvent.objects.filter(member=member).count() == 2


def test_batch_stores_row_values(staff_api, member):
    row = make_row(
        member,
        campaign_id="spring-launch",
        play_id="play-9",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="june",
        utm_term="exports",
        utm_content="hero",
        idempotency_key="export-1",
    )

    post_batch(staff_api, [row])

    event = ActivityEvent.objects.get()
    assert event.member == member
    assert event.account_id == member.account_id
    assert event.kind == "product.report_exported"
    assert event.occurred_at == datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    assert event.properties == {"format": "csv"}
    assert event.campaign_id == "spring-launch"
    assert event.play_id == "play-9"
    assert event.utm_source == "newsletter"
    assert event.utm_medium == "email"
    assert event.utm_campaign == "june"
    assert event.utm_term == "exports"
    assert event.utm_content == "hero"
    assert event.idempotency_key == "export-1"


def test_batch_member_email_resolves(staff_api, member):
    row = make_row(member, member_email=member.user.email.upper())
    del row["member_id"]

    response = post_batch(staff_api, [row])

    assert response.status_code == 201
    assert ActivityEvent.objects.get().member == member


def test_batch_member_external_id_resolves(staff_api):
    member = factories.MemberFactory(external_id="usr-7")
    row = make_row(member, member_external_id="usr-7")
    del row["member_id"]

    response = post_batch(staff_api, [row])

    assert response.status_code == 201
    assert ActivityEvent.objects.get().member == member


def test_batch_retry_counts_duplicates(staff_api, member):
    rows = [
        make_row(member, idempotency_key="export-1"),
        make_row(member, idempotency_key="export-2"),
    ]
    post_batch(staff_api, rows)

    response = post_batch(staff_api, rows)

    assert response.status_code == 201
    assert response.json() == {"created": 0, "duplicates": 2}
    assert ActivityEvent.objects.count() == 2


def test_batch_partial_retry_creates_new_keys(staff_api, member):
    post_batch(staff_api, [make_row(member, idempotency_key="export-1")])

    response = post_batch(
        staff_api,
        [
            make_row(member, idempotency_key="export-1"),
            make_row(member, idempotency_key="export-2"),
        ],
    )

    assert response.json() == {"created": 1, "duplicates": 1}
    assert ActivityEvent.objects.count() == 2


def test_batch_token_auth_creates_events(staff_token_api, member):
    response = post_batch(staff_token_api, [make_row(member)])

    assert response.status_code == 201
    assert ActivityEvent.objects.count() == 1


def test_batch_member_forbidden_writes_nothing(member_api, member):
    response = post_batch(member_api, [make_row(member)])

    assert response.status_code == 403
    assert response.json() == {"detail": STAFF_ONLY_MESSAGE}
    assert not ActivityEvent.objects.filter(kind="product.report_exported").exists()


def test_batch_account_admin_forbidden(api_client, account_admin):
    api_client.force_login(account_admin.user)

    response = post_batch(api_client, [make_row(account_admin)])

    assert response.status_code == 403
    assert not ActivityEvent.objects.filter(kind="product.report_exported").exists()


def test_batch_anonymous_rejected_writes_nothing(api_client, member):
    response = post_batch(api_client, [make_row(member)])

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided."
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_missing_kind_reported_by_row(staff_api, member):
    rows = [make_row(member), make_row(member)]
    del rows[1]["kind"]

    response = post_batch(staff_api, rows)

    assert response.status_code == 400
    assert response.json() == {
        "detail": INVALID_ROWS.format(count=1),
        "row_errors": {"1": ["kind: This field is required."]},
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_several_rows_and_errors_reported(staff_api, member):
    rows = [
        make_row(member, kind=""),
        make_row(member),
        make_row(member, properties=["csv"], occurred_at="soon"),
    ]

    response = post_batch(staff_api, rows)

    assert response.json() == {
        "detail": INVALID_ROWS.format(count=2),
        "row_errors": {
            "0": ["kind: This field may not be blank."],
            "2": [
                "occurred_at: Datetime has wrong format. Use one of these formats "
                "instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
                'properties: Expected a dictionary of items but got type "list".',
            ],
        },
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_naive_datetime_rejected(staff_api, member):
    rows = [make_row(member, occurred_at="2025-06-02T12:00:00")]

    response = post_batch(staff_api, rows)

    assert response.status_code == 400
    assert response.json()["row_errors"] == {
        "0": [
            "occurred_at: Datetime '2025-06-02T12:00:00' has no UTC offset. Add "
            "one, for example 2025-03-01T09:30:00+01:00 or 2025-03-01T08:30:00Z."
        ]
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_utc_designator_accepted(staff_api, member):
    response = post_batch(
        staff_api, [make_row(member, occurred_at="2025-06-02T12:00:00Z")]
    )

    assert response.status_code == 201
    assert ActivityEvent.objects.get().occurred_at == datetime(
        2025, 6, 2, 12, 0, tzinfo=UTC
    )


def test_batch_unknown_kind_rejected(staff_api, member):
    rows = [make_row(member), make_row(member, kind="nope.thing")]

    response = post_batch(staff_api, rows)

    assert response.status_code == 400
    assert response.json() == {
        "detail": INVALID_ROWS.format(count=1),
        "row_errors": {"1": ["unknown event kind 'nope.thing'" + UNKNOWN_KIND_FIX]},
    }
    assert ActivityEvent.objects.count() == 0


@pytest.mark.parametrize(
    "kind",
    ["community.reply_posted", "lifecycle.health_band_changed", "membership.signed_in"],
)
def test_batch_hub_kind_rejected(staff_api, member, kind):
    rows = [make_row(member), make_row(member, kind=kind)]

    response = post_batch(staff_api, rows)

    assert response.status_code == 400
    assert response.json()["row_errors"] == {
        "1": [
            f"event kind {kind!r} is recorded by the hub itself, not by "
            "integrations; name product usage under product.*, for example "
            "product.report_exported"
        ]
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_unknown_member_email_rejected(staff_api, member):
    ghost = make_row(member, member_email="ghost@nowhere.test")
    del ghost["member_id"]

    response = post_batch(staff_api, [make_row(member), ghost])

    assert response.status_code == 400
    assert response.json()["row_errors"] == {
        "1": [
            "member not found: no confirmed member has member_email "
            "'ghost@nowhere.test'" + EMAIL_NOT_FOUND_FIX
        ]
    }
    assert ActivityEvent.objects.count() == 0


def _sign_up(email: str, *, confirmed: bool):
    """Return a member whose user signed up with a password, as the site does."""
    member = factories.MemberFactory(user__email=email, account=None)
    EmailAddress.objects.create(
        user=member.user, email=email, primary=True, verified=confirmed
    )
    return member


def test_batch_unconfirmed_sign_up_email_rejected(staff_api, member):
    claimant = _sign_up("victim@acme.test", confirmed=False)
    row = make_row(
        member, member_email="Victim@acme.test", properties={"report": "Q4 churn"}
    )
    del row["member_id"]

    response = post_batch(staff_api, [row])

    assert response.status_code == 400
    assert response.json()["row_errors"] == {
        "0": [
            "member not found: no confirmed member has member_email "
            "'victim@acme.test'" + EMAIL_NOT_FOUND_FIX
        ]
    }
    assert not ActivityEvent.objects.filter(member=claimant).exists()


def test_batch_unconfirmed_sign_up_events_not_readable(staff_api, member):
    claimant = _sign_up("victim@acme.test", confirmed=False)
    row = make_row(member, member_email="victim@acme.test")
    del row["member_id"]
    post_batch(staff_api, [row])
    session = APIClient()
    session.force_authenticate(claimant.user)

    response = session.get("/api/v1/events/")

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_batch_confirmed_sign_up_email_resolves(staff_api, member):
    claimant = _sign_up("victim@acme.test", confirmed=True)
    row = make_row(member, member_email="victim@acme.test")
    del row["member_id"]

    response = post_batch(staff_api, [row])

    assert response.status_code == 201
    assert ActivityEvent.objects.get().member == claimant


def test_batch_unconfirmed_sign_up_matches_by_id(staff_api):
    claimant = _sign_up("victim@acme.test", confirmed=False)

    response = post_batch(staff_api, [make_row(claimant)])

    assert response.status_code == 201
    assert ActivityEvent.objects.get().member == claimant


def test_batch_unknown_member_id_rejected(staff_api, member):
    response = post_batch(staff_api, [make_row(member, member_id=member.pk + 1000)])

    assert response.json()["row_errors"] == {
        "0": [
            f"member not found: no member has member_id '{member.pk + 1000}'"
            + MEMBER_NOT_FOUND_FIX
        ]
    }


def test_batch_missing_member_reference_rejected(staff_api, member):
    row = make_row(member)
    del row["member_id"]

    response = post_batch(staff_api, [row])

    assert response.status_code == 400
    assert response.json()["row_errors"] == {
        "0": [
            "The row names no member. Give member_id, member_email or "
            "member_external_id."
        ]
    }


def test_batch_two_member_references_rejected(staff_api, member):
    row = make_row(member, member_email=member.user.email)

    response = post_batch(staff_api, [row])

    assert response.json()["row_errors"] == {
        "0": [
            "Give only one of member_id, member_email or member_external_id. "
            "This row has member_id, member_email."
        ]
    }


def test_batch_unknown_field_rejected(staff_api, member):
    row = make_row(member, utm_campain="june")

    response = post_batch(staff_api, [row])

    assert response.status_code == 400
    assert response.json()["row_errors"] == {
        "0": ["Unknown field(s): utm_campain. Remove or rename them."]
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_unknown_field_with_field_errors(staff_api, member):
    row = make_row(member, utm_campain="june")
    del row["kind"]

    response = post_batch(staff_api, [row])

    assert response.json()["row_errors"] == {
        "0": [
            "kind: This field is required.",
            "Unknown field(s): utm_campain. Remove or rename them.",
        ]
    }


def test_batch_row_not_object_rejected(staff_api):
    response = post_batch(staff_api, ["product.report_exported"])

    assert response.json()["row_errors"] == {
        "0": ["Invalid data. Expected a dictionary, but got str."]
    }


def test_batch_future_time_rejected(staff_api, member):
    rows = [make_row(member, occurred_at="2999-01-01T00:00:00+00:00")]

    response = post_batch(staff_api, rows)

    assert response.status_code == 400
    assert response.json()["row_errors"] == {
        "0": [
            "occurred_at 2999-01-01T00:00:00+00:00 is in the future; send the "
            "time the action happened, in UTC or with an offset"
        ]
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_repeated_key_within_batch_rejected(staff_api, member):
    rows = [
        make_row(member, idempotency_key="export-1"),
        make_row(member, idempotency_key="export-1"),
    ]

    response = post_batch(staff_api, rows)

    assert response.json()["row_errors"] == {
        "1": ["idempotency_key 'export-1' repeats within the batch"]
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_over_limit_rejected(staff_api, member):
    rows = [make_row(member) for _ in range(1001)]

    response = post_batch(staff_api, rows)

    assert response.status_code == 400
    assert response.json() == {
        "detail": "events: A batch may contain at most 1000 events. Split the "
        "events into smaller batches."
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_at_limit_accepted(staff_api, member):
    rows = [make_row(member, idempotency_key=f"export-{i}") for i in range(1000)]

    response = post_batch(staff_api, rows)

    assert response.status_code == 201
    assert response.json() == {"created": 1000, "duplicates": 0}
    assert ActivityEvent.objects.count() == 1000


def test_batch_empty_rejected(staff_api):
    response = post_batch(staff_api, [])

    assert response.status_code == 400
    assert response.json() == {"detail": "events: This list may not be empty."}


def test_batch_missing_events_rejected(staff_api):
    response = staff_api.post(URL, {"rows": []}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "events: This field is required."}


def test_batch_form_encoded_rejected(staff_api, member):
    response = staff_api.post(URL, {"events": "[]"})

    assert response.status_code == 415
    assert ActivityEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "events=%5B%5D"),
        (
            "multipart/form-data; boundary=b",
            '--b\r\nContent-Disposition: form-data; name="events"\r\n\r\n[]\r\n'
            "--b--\r\n",
        ),
    ],
    ids=["urlencoded", "multipart"],
)
def test_batch_form_body_with_token_is_415(staff_token_api, content_type, body):
    response = staff_token_api.generic("POST", URL, body, content_type)

    assert response.status_code == 415
    assert response.json() == {
        "detail": f'Unsupported media type "{content_type}" in request. Send the '
        "body as one of these content types: application/json.",
        "code": "unsupported_media_type",
    }
    assert ActivityEvent.objects.count() == 0


def test_batch_get_not_allowed(staff_api):
    response = staff_api.get(URL)

    assert response.status_code == 405


@pytest.mark.parametrize(
    ("escaped_text", "message"),
    [
        ("a\\u0000b", "properties contains a NUL character"),
        ("\\ud800", "properties contains an unpaired UTF-16 surrogate"),
    ],
    ids=["nul", "surrogate"],
)
def test_batch_unstorable_text_is_row_error(staff_api, member, escaped_text, message):
    row = json.dumps(make_row(member, properties={"note": "PLACEHOLDER"}))
    body = '{"events": [' + row.replace("PLACEHOLDER", escaped_text) + "]}"

    response = staff_api.post(
        "/api/v1/events/batch/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["row_errors"]["0"][0].startswith(message)
    assert ActivityEvent.objects.count() == 0


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_batch_non_finite_number_is_row_error(staff_api, member, number):
    # DRF rejects the NaN and Infinity tokens, but reads 1e400 as infinity.
    row = json.dumps(make_row(member, properties={"ratio": "PLACEHOLDER"}))
    body = '{"events": [' + row.replace('"PLACEHOLDER"', number) + "]}"

    response = staff_api.post(
        "/api/v1/events/batch/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["row_errors"]["0"][0].startswith(
        "properties contains the non-finite number "
    )
    assert ActivityEvent.objects.count() == 0


def test_batch_overflowing_time_names_value(staff_api, member):
    row = make_row(member, occurred_at="0001-01-01T00:00:00+05:00")

    response = post_batch(staff_api, [row])

    assert response.status_code == 400
    assert response.json()["row_errors"] == {
        "0": [
            "occurred_at: Datetime '0001-01-01T00:00:00+05:00' is out of range. "
            "Send the time the action happened, for example 2025-03-01T08:30:00Z."
        ]
    }


def test_batch_time_before_2000_rejected(staff_api, member):
    row = make_row(member, occurred_at="0001-01-01T00:00:00Z")

    response = post_batch(staff_api, [row])

    assert response.status_code == 400
    assert response.json()["row_errors"]["0"] == [
        "occurred_at 0001-01-01T00:00:00+00:00 is before 2000-01-01; "
        "send the real time of the action"
    ]


def test_batch_deeply_nested_body_is_400(staff_api):
    body = '{"events": ' + '{"x": ' * 50000 + "1" + "}" * 50000 + "}"

    response = staff_api.post(
        "/api/v1/events/batch/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert ActivityEvent.objects.count() == 0


def test_batch_oversized_body_is_json_413(staff_api, member, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    rows = [make_row(member, properties={"pad": "x" * 2000})]

    response = post_batch(staff_api, rows)

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert ActivityEvent.objects.count() == 0


def test_batch_wrong_content_type_names_accepted_types(staff_api, member):
    response = staff_api.generic(
        "POST", URL, json.dumps({"events": [make_row(member)]}), "text/plain"
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert response.json()["detail"].startswith(
        'Unsupported media type "text/plain" in request. Send the body as one of '
        "these content types: application/json"
    )


def test_batch_compressed_body_says_to_send_json(staff_api):
    body = gzip.compress(json.dumps({"events": []}).encode())

    response = staff_api.generic("POST", URL, body, "application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["detail"].endswith(
        "Send the body as UTF-8 JSON; this endpoint does not read compressed bodies."
    )


def test_batch_huge_number_says_to_send_a_string(staff_api):
    body = '{"events": [{"count": ' + "9" * 5000 + "}]}"

    response = staff_api.generic("POST", URL, body, "application/json")

    assert response.status_code == 400
    assert "set_int_max_str_digits" not in response.json()["detail"]
    assert response.json()["detail"].endswith("Send it as a string.")
