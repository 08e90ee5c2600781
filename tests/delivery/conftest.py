import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from apps.lifecycle.actions import ActionContext
from apps.lifecycle.models import Enrolment, Play, PlayStep, StepRun, WebhookEndpoint
from apps.membership.models import ConsentPurpose
from apps.membership.services.consent import grant_consent
from tests import factories
from tests.delivery.receiver import is_authentic

MARKETING = "marketing_email"
WEBHOOK_SECRET = "whsec_test-secret"

_positions = itertools.count(1)


@pytest.fixture
def purposes(db):
    """Ensure the purposes seeded by migration exist, even after a flush."""
    seeded = [
        (MARKETING, "Marketing email"),
        ("product_research", "Product research"),
    ]
    for position, (key, name) in enumerate(seeded):
        ConsentPurpose.objects.get_or_create(
            key=key,
            defaults={"name": name, "description": name, "position": position},
        )


@pytest.fixture
def play(db):
    return Play.objects.create(
        name="Welcome",
        play_id="welcome-2025",
        campaign_id="q3-onboarding",
        trigger=Play.Trigger.FIRST_SIGN_IN,
        status=Play.Status.ACTIVE,
    )


@pytest.fixture
def csm(db):
    return factories.StaffFactory(email="casey@vendor.test")


@pytest.fixture
def enrolled_member(db, csm):
    account = factories.AccountFactory(name="Acme Corp", owner=csm)
    return factories.MemberFactory(account=account, display_name="Robin")


@pytest.fixture
def consenting_member(purposes, enrolled_member):
    grant_consent(
        member=enrolled_member,
        purpose_key=MARKETING,
        source="privacy_page",
        evidence="Ticked the marketing box in a test.",
    )
    return enrolled_member


@pytest.fixture
def make_context(play, enrolled_member):
    """Return a function that builds an ActionContext from real rows.

    Each call makes a new step, enrolment and step run, so calls never share
    a step run unless the test reuses the returned context.
    """

    def make(
        action: str,
        config: dict | None = None,
        *,
        member=enrolled_member,
        account=None,
        consent_purpose: str = "",
    ) -> ActionContext:
        now = timezone.now()
        step = PlayStep.objects.create(
            play=play,
            position=next(_positions),
            action=action,
            config=config or {},
            consent_purpose=consent_purpose,
        )
        subject_key = f"member:{member.pk}" if member else f"account:{account.pk}"
        enrolment = Enrolment.objects.create(
            play=play,
            member=member,
            account=account,
            subject_key=subject_key,
            occurrence_key=f"test-{step.pk}",
            enrolled_at=now,
        )
        step_run = StepRun.objects.create(
            enrolment=enrolment,
            step=step,
            status=StepRun.Status.RUNNING,
            started_at=now,
        )
        return ActionContext(
            play=play,
            step=step,
            enrolment=enrolment,
            step_run=step_run,
            member=member,
            account=account,
        )

    return make


@dataclass
class WebhookReceiver:
    """The requests the local receiver recorded, and the response it sends."""

    secret: str
    url: str = ""
    status: int = 200
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b"ok"
    requests: list = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def webhook_receiver():
    """Start an HTTP server on 127.0.0.1 that checks webhook signatures."""
    receiver = WebhookReceiver(secret=WEBHOOK_SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                    "payload": json.loads(body),
                    "is_signature_valid": is_authentic(
                        receiver.secret, self.headers, body
                    ),
                }
            )
            self.send_response(receiver.status)
            for name, value in receiver.response_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(receiver.response_body)))
            self.end_headers()
            self.wfile.write(receiver.response_body)
            receiver.received.set()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/rm6"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def endpoint(db, webhook_receiver):
    return WebhookEndpoint.objects.create(
        name="CRM", url=webhook_receiver.url, secret=WEBHOOK_SECRET
    )


@pytest.fixture
def queued_deliveries(monkeypatch):
    """Record deliver_webhook_task.delay calls instead of sending to the broker."""
    from apps.lifecycle.tasks import deliver_webhook_task

    calls = []
    monkeypatch.setattr(
        deliver_webhook_task, "delay", lambda **kwargs: calls.append(kwargs)
    )
    return calls
