import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.contrib.sites.models import Site

from apps.membership.models import Account, AccountIdentityProvider

OIDC_SERVER_SCRIPT = Path(__file__).parent / "oidc_provider" / "server.mjs"
OIDC_PACKAGE = Path(settings.BASE_DIR) / "node_modules" / "oidc-provider"
OIDC_START_TIMEOUT_SECONDS = 20
OIDC_CLIENT_ID = "loyalty-hub"
OIDC_CLIENT_SECRET = "test-only-client-secret"


def get_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class OidcServer:
    issuer: str
    process: subprocess.Popen
    log_path: Path

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_for_discovery(server: OidcServer) -> None:
    url = f"{server.issuer}/.well-known/openid-configuration"
    deadline = time.monotonic() + OIDC_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"The OIDC test server exited with code {server.process.returncode}:"
                f"\n{server.read_log()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    pytest.fail(
        f"The OIDC test server did not serve {url} within "
        f"{OIDC_START_TIMEOUT_SECONDS} s:\n{server.read_log()}"
    )


@pytest.fixture
def add_social_app(db):
    """Return a function that creates an allauth social app on the site.

    The app is linked to `account` when one is given, as staff do in the
    account's "SSO providers" section in admin.
    """

    def add(*, account: Account | None = None, **fields) -> SocialApp:
        social_app = SocialApp.objects.create(**fields)
        social_app.sites.add(Site.objects.get_current())
        if account is not None:
            AccountIdentityProvider.objects.create(
                account=account, social_app=social_app
            )
        return social_app

    return add


@pytest.fixture
def live_server_url(live_server) -> str:
    """Return the live server's URL with 127.0.0.1 as the host.

    pytest-django names the host "localhost"; the browser and the identity
    provider's redirect URIs use the address itself, so that nothing depends
    on how "localhost" resolves.
    """
    return f"http://127.0.0.1:{live_server.thread.port}"


@pytest.fixture
def start_oidc_server(live_server_url, celery_tasks_in_process, tmp_path):
    """Return a function that starts oidc-provider with the given accounts.

    Each account maps the login typed on the provider's sign-in page to the
    claims it releases, for example
    {"alice": {"email": "alice@acme.test", "email_verified": True}}.
    The provider accepts one client, whose redirect URIs are the live server's
    allauth callbacks for `provider_ids`. Every server started is stopped at
    teardown.
    """
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on the PATH; the OIDC tests need Node.js 20 or later")
    if not OIDC_PACKAGE.is_dir():
        pytest.fail(f"{OIDC_PACKAGE} is missing; run `npm install` in the project")
    servers: list[OidcServer] = []

    def start(*, accounts: dict, provider_ids: list[str]) -> OidcServer:
        port = get_free_port()
        redirect_uris = [
            f"{live_server_url}/accounts/oidc/{provider_id}/login/callback/"
            for provider_id in provider_ids
        ]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "OIDC_PORT": str(port),
            "OIDC_CLIENT": json.dumps(
                {
                    "client_id": OIDC_CLIENT_ID,
                    "client_secret": OIDC_CLIENT_SECRET,
                    "redirect_uris": redirect_uris,
                }
            ),
            "OIDC_ACCOUNTS": json.dumps(accounts),
        }
        log_path = tmp_path / f"oidc-provider-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [node, str(OIDC_SERVER_SCRIPT)],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = OidcServer(
            issuer=f"http://127.0.0.1:{port}", process=process, log_path=log_path
        )
        servers.append(server)
        wait_for_discovery(server)
        return server

    yield start

    for server in servers:
        server.process.terminate()
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


@pytest.fixture
def add_oidc_app(add_social_app):
    """Return a function that creates an OpenID Connect app for a test server."""

    def add(*, server: OidcServer, provider_id: str, account: Account | None = None):
        return add_social_app(
            account=account,
            provider="openid_connect",
            provider_id=provider_id,
            name=f"{provider_id} SSO",
            client_id=OIDC_CLIENT_ID,
            secret=OIDC_CLIENT_SECRET,
            settings={"server_url": server.issuer, "oauth_pkce_enabled": True},
        )

    return add
