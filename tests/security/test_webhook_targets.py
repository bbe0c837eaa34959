"""Webhooks reach public addresses only (unless allowed), checked when saved and again when sent."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ainfluencer.db.models import User
from ainfluencer.db.models_publishing import Webhook, WebhookDelivery
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime
from ainfluencer.services import publishing

INTERNAL_BODY = b"root:x:0:0 internal-service-banner"


class Receiver:
    """A real HTTP server on 127.0.0.1 answering ``status`` with a body that must never be stored."""

    def __init__(self) -> None:
        self.hits: list[dict[str, str]] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.hits.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(INTERNAL_BODY)))
                self.end_headers()
                self.wfile.write(INTERNAL_BODY)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def api(client: TestClient, make_user: Callable[..., User], make_token: Callable[..., str]) -> TestClient:
    client.headers["Authorization"] = f"Bearer {make_token(make_user())}"
    return client


def _drain(runtime: Runtime) -> None:
    """Run the deliveries due now (a retry is due later and is left alone)."""
    while (job_id := runner.claim_next(runtime, worker="test-worker", kinds=["webhook.deliver"])) is not None:
        runner.execute(runtime, job_id, worker="test-worker")


INTERNAL = [
    "http://127.0.0.1/x", "http://localhost:8080/", "http://[::1]/", "http://10.0.0.5/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://100.100.100.200/",
    "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f.1/", "http://metadata.google.internal/",
    "http://printer.local/", "http://0.0.0.0/",
]
MALFORMED = ["http://exa\x00mple.com/", "http://example.com/\r\nX: y", "http://[::1/"]


def test_internal_and_malformed_destinations_are_a_422_on_url(api: TestClient) -> None:
    for url in INTERNAL + MALFORMED:
        r = api.post("/api/v1/webhooks", json={"url": url})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["error"]["field"] == "url"
    assert api.get("/api/v1/webhooks").json()["data"] == []


def test_patch_checks_the_url_too(api: TestClient) -> None:
    hook = api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/ainf"}).json()
    r = api.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": "http://127.0.0.1:22/"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "url"


def test_loopback_server_is_refused_by_default_and_reached_when_allowed(
    api: TestClient, runtime: Runtime, receiver: Receiver
) -> None:
    assert api.post("/api/v1/webhooks", json={"url": receiver.url()}).status_code == 422
    runtime.settings.webhook_allow_private_targets = True
    hook = api.post("/api/v1/webhooks", json={"url": receiver.url()}).json()
    api.post(f"/api/v1/webhooks/{hook['id']}/ping")
    _drain(runtime)
    assert len(receiver.hits) == 1
    # The setting turned off again: the address is checked at send time, and nothing goes out.
    runtime.settings.webhook_allow_private_targets = False
    api.post(f"/api/v1/webhooks/{hook['id']}/ping")
    _drain(runtime)
    assert len(receiver.hits) == 1
    latest = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["data"][0]
    assert latest["status"] == "failed" and latest["last_error"].startswith("refused")


def test_dns_rebinding_is_refused_at_send_time(runtime: Runtime, make_user: Callable[..., User],
                                               receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    # The name passed the check when saved (it looked public then); at send time it resolves to loopback.
    user = make_user()
    with runtime.db.session() as s:
        u = s.get(User, user.id)
        assert u is not None
        hook, _ = publishing.create_webhook(s, runtime=runtime, user=u, url=receiver.url("hooks.rebind.test"))
        delivery = publishing.ping_webhook(s, hook=hook)
    real = socket.getaddrinfo

    def rebinding_dns(host: str, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1", *args, **kwargs) if host == "hooks.rebind.test" else real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    _drain(runtime)
    assert receiver.hits == []
    with runtime.db.session() as s:
        row = s.get(WebhookDelivery, delivery.id)
        assert row is not None and row.status == "failed" and row.last_error.startswith("refused")


def test_the_connection_goes_to_the_address_that_was_checked(runtime: Runtime, make_user: Callable[..., User],
                                                             receiver: Receiver,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Allowed private targets; the name resolves once, and the request is sent to that address with
    # the original Host header (httpx never resolves the name a second time).
    runtime.settings.webhook_allow_private_targets = True
    lookups: list[str] = []
    real = socket.getaddrinfo

    def dns(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return real("127.0.0.1", *args, **kwargs) if host == "hooks.lan.test" else real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    user = make_user()
    with runtime.db.session() as s:
        u = s.get(User, user.id)
        assert u is not None
        hook, _ = publishing.create_webhook(s, runtime=runtime, user=u, url=receiver.url("hooks.lan.test"))
        publishing.ping_webhook(s, hook=hook)
    _drain(runtime)
    assert lookups.count("hooks.lan.test") == 1
    assert receiver.hits and receiver.hits[0]["host"] == f"hooks.lan.test:{receiver.port}"


def test_delivery_log_keeps_status_and_timing_only(api: TestClient, runtime: Runtime, receiver: Receiver) -> None:
    runtime.settings.webhook_allow_private_targets = True
    receiver.status = 500
    hook = api.post("/api/v1/webhooks", json={"url": receiver.url()}).json()
    api.post(f"/api/v1/webhooks/{hook['id']}/ping")
    _drain(runtime)
    r = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
    latest = r.json()["data"][0]
    assert latest["response_status"] == 500 and latest["last_error"] == "HTTP 500"
    assert isinstance(latest["duration_ms"], int)
    assert b"internal-service-banner" not in r.content
    with runtime.db.session() as s:
        assert s.query(Webhook).count() == 1
        assert all("banner" not in d.last_error for d in s.query(WebhookDelivery))


def test_the_setting_is_shown_in_settings(client: TestClient, make_user: Callable[..., User],
                                          login: Callable[..., None]) -> None:
    make_user(owner=True)
    login(client)
    page = client.get("/settings")
    assert page.status_code == 200 and "AINF_WEBHOOK_ALLOW_PRIVATE_TARGETS" in page.text
