"""FakeNet: a small social network for publishing tests and benchmarks, and the adapter that speaks it.

The server's own log (``posts``) is the truth the crash tests count duplicates and losses against.

API (JSON over HTTP, ``Authorization: Bearer <token>``)
  GET    /v1/me                  200 {"id", "handle", "name"}
  POST   /v1/posts               {"text", "media": [{"name", "size", "alt"}]} + header ``Idempotency-Key``
                                 201 {"id", "url", "created_at", "marker", "state"}; 422 {"error"}
  GET    /v1/posts?marker=<m>    200 {"data": [posts carrying the marker]}
  GET    /v1/posts/<id>          200 post (``state`` processing -> published after ``processing_polls`` reads) | 404
  DELETE /v1/posts/<id>          204
  POST   /v1/oauth/token         {"refresh_token"} 200 {"access_token", "refresh_token", "expires_in"} | 401
  GET    /_fake/markers          200 {"markers": {marker: number of posts}, "posts": n} (test control, no auth)
  A bearer that is not current gets 401 {"error": "invalid_token"}.

``latency`` (seconds) makes each post take up to that long, half before the post is created and
half after, so a worker killed at a random moment often dies mid-request.

Run it on its own (benchmarks): ``python tests/publishing/fake_network.py [--latency 0.01]`` prints
its URL and serves until stdin closes.

The server does **not** deduplicate by ``Idempotency-Key`` unless ``dedupe=True``: a double send
shows up as two posts.

Faults, queued per route with ``fault(method, path, effect, times=1)``:
  ``Reply(status, body, headers)``  answer with this instead of creating anything
  ``"drop_before"``                 close the connection without creating the post
  ``"drop_after"``                  create the post, then close the connection without answering
  ``"hold"``                        block until ``release()``, then create the post (even if the
                                    client has gone: the server keeps processing) and answer
  ``"hold_after"``                  create the post, block until ``release()``, then answer
"""

from __future__ import annotations

import itertools
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import SecretStr

from ainfluencer.platforms.base import (
    AccountInfo,
    Capabilities,
    Credentials,
    MediaKind,
    PlatformAdapter,
    PlatformAuthError,
    PlatformError,
    PlatformPermanentError,
    PlatformTransientError,
    PostRequest,
    PublishResult,
    PublishState,
    RateLimit,
)

TOKEN = "fakenet-token-0001"
REFRESH = "fakenet-refresh-0001"
ACCOUNT_ID = "fn-1001"
HANDLE = "@nova"


@dataclass
class Reply:
    """A canned answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Logged:
    """One request as the server saw it."""

    method: str
    path: str
    marker: str
    at: float
    outcome: str = ""


class FakeNet:
    """The server: start with ``with FakeNet() as net:``; ``net.url`` is its base URL."""

    def __init__(self, *, dedupe: bool = False, processing_polls: int = 0, account_id: str = ACCOUNT_ID,
                 handle: str = HANDLE, max_text: int = 280, latency: float = 0.0) -> None:
        self.dedupe = dedupe
        self.latency = latency
        self.processing_polls = processing_polls
        self.account = {"id": account_id, "handle": handle, "name": "Nova (virtual)"}
        self.max_text = max_text
        self.tokens = {TOKEN}
        self.refresh_tokens = {REFRESH}
        self.posts: list[dict[str, Any]] = []
        self.requests: list[Logged] = []
        self.faults: list[tuple[str, str, Any, list[int]]] = []
        self.lock = threading.Lock()
        self.held = threading.Event()  # set while a request is blocked in a hold fault
        self._release = threading.Event()
        self._ids = itertools.count(1)
        self._polls: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeNet:
        """Bind 127.0.0.1 on a free port and serve in a thread."""
        net = self

        class Handler(_Handler):
            fake = net

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakenet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeNet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:43121."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- test controls -------------------------------------------------------------------------
    def fault(self, method: str, path: str, effect: Any, *, times: int = 1) -> None:
        """Queue a fault for the next ``times`` requests to ``method path``."""
        with self.lock:
            self.faults.append((method, path, effect, [times]))

    def release(self) -> None:
        """Let held requests continue."""
        self._release.set()

    def rearm(self) -> None:
        """Make the next hold fault block again (after a ``release``)."""
        self.held.clear()
        self._release.clear()

    def expire_token(self) -> None:
        """Invalidate every access token (the refresh token keeps working)."""
        with self.lock:
            self.tokens.clear()

    def markers(self) -> dict[str, int]:
        """How many posts carry each marker."""
        counts: dict[str, int] = {}
        with self.lock:
            for post in self.posts:
                counts[post["marker"]] = counts.get(post["marker"], 0) + 1
        return counts

    def posts_for(self, marker: str) -> list[dict[str, Any]]:
        """Posts carrying one marker."""
        with self.lock:
            return [p for p in self.posts if p["marker"] == marker]

    # -- behaviour -----------------------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Any:
        with self.lock:
            for i, (m, p, effect, left) in enumerate(self.faults):
                if m == method and (p == path or (p.endswith("*") and path.startswith(p[:-1]))):
                    left[0] -= 1
                    if left[0] <= 0:
                        del self.faults[i]
                    return effect
        return None

    def hold(self) -> None:
        self.held.set()
        self._release.wait(timeout=60)

    def create_post(self, body: dict[str, Any], marker: str) -> dict[str, Any]:
        with self.lock:
            if self.dedupe and marker:
                for post in self.posts:
                    if post["marker"] == marker:
                        return post
            n = next(self._ids)
            post = {
                "id": f"p{n}", "url": f"https://fakenet.test/{self.account['handle'].lstrip('@')}/p{n}",
                "text": body.get("text", ""), "media": body.get("media", []), "marker": marker,
                "created_at": datetime.now(UTC).isoformat(),
                "state": "processing" if self.processing_polls else "published",
            }
            self.posts.append(post)
            return post

    def read_post(self, post_id: str) -> dict[str, Any] | None:
        with self.lock:
            for post in self.posts:
                if post["id"] == post_id:
                    if post["state"] == "processing":
                        seen = self._polls.get(post_id, 0) + 1
                        self._polls[post_id] = seen
                        if seen >= self.processing_polls:
                            post["state"] = "published"
                    return dict(post)
        return None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that die mid-request (the point of the crash tests) are not errors here


class _Handler(BaseHTTPRequestHandler):
    fake: FakeNet
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        return

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()
        self.close_connection = True

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.fake.tokens

    def _handle(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        body = self._body() if method in ("POST", "PUT") else {}
        marker = self.headers.get("Idempotency-Key", "")
        entry = Logged(method, path, marker, time.time())
        with fake.lock:
            fake.requests.append(entry)
        if path == "/_fake/markers":
            return self._send(200, {"markers": fake.markers(), "posts": len(fake.posts)})
        if path == "/v1/oauth/token" and method == "POST":
            if body.get("refresh_token") not in fake.refresh_tokens:
                return self._send(401, {"error": "invalid_grant"})
            new_access, new_refresh = f"fakenet-token-{time.time_ns()}", f"fakenet-refresh-{time.time_ns()}"
            with fake.lock:
                fake.tokens.add(new_access)
                fake.refresh_tokens = {new_refresh}
            return self._send(200, {"access_token": new_access, "refresh_token": new_refresh, "expires_in": 3600})
        effect = fake.take_fault(method, path)
        if isinstance(effect, Reply):
            entry.outcome = f"fault {effect.status}"
            return self._send(effect.status, effect.body, effect.headers)
        if effect == "drop_before":
            entry.outcome = "dropped before create"
            return self._drop()
        if not self._authorized():
            entry.outcome = "401"
            return self._send(401, {"error": "invalid_token"})
        if path == "/v1/me" and method == "GET":
            return self._send(200, fake.account)
        if path == "/v1/posts" and method == "POST":
            text = str(body.get("text", ""))
            if len(text) > fake.max_text:
                entry.outcome = "422"
                return self._send(422, {"error": f"text is longer than {fake.max_text} characters"})
            if effect == "hold":
                fake.hold()
            if fake.latency:
                time.sleep(random.uniform(0, fake.latency / 2))  # noqa: S311 - test jitter
            post = fake.create_post(body, marker)
            entry.outcome = f"created {post['id']}"
            if effect == "drop_after":
                return self._drop()
            if effect == "hold_after":
                fake.hold()
            if fake.latency:
                time.sleep(random.uniform(0, fake.latency / 2))  # noqa: S311
            return self._send(201, post)
        if path == "/v1/posts" and method == "GET":
            wanted = (query.get("marker") or [""])[0]
            return self._send(200, {"data": fake.posts_for(wanted)})
        if path.startswith("/v1/posts/"):
            post_id = path.rsplit("/", 1)[1]
            if method == "GET":
                found = fake.read_post(post_id)
                return self._send(200, found) if found else self._send(404, {"error": "not found"})
            if method == "DELETE":
                with fake.lock:
                    fake.posts = [p for p in fake.posts if p["id"] != post_id]
                return self._send(204)
        return self._send(404, {"error": f"no route {method} {path}"})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")


@contextmanager
def running(**options: Any) -> Iterator[FakeNet]:
    """A started FakeNet, stopped afterwards."""
    net = FakeNet(**options).start()
    try:
        yield net
    finally:
        net.stop()


# ---- the adapter -------------------------------------------------------------------------------


class FakeNetAdapter(PlatformAdapter):
    """Speaks FakeNet; ``credentials.extra['base_url']`` points it at a server (test-only adapter)."""

    name = "fakenet"
    display_name = "FakeNet"
    capabilities = Capabilities(
        max_text_chars=280,
        media_kinds=frozenset({MediaKind.image, MediaKind.video}),
        max_media=2,
        max_image_bytes=64 * 1024,
        max_video_bytes=256 * 1024,
        supports_alt_text=True,
        max_alt_text_chars=100,
        connect_method="token",
        rate_limits=(),
    )
    reconcile_proves_absence = True
    timeout = 5.0

    def validate(self, post: PostRequest) -> None:
        """FakeNet's own rules beyond the capability data: length, and JPEG-only images."""
        if len(post.text) > self.capabilities.max_text_chars:
            raise PlatformPermanentError(
                f"Text is {len(post.text)} characters; FakeNet allows {self.capabilities.max_text_chars}.")
        for item in post.media:
            if item.kind == MediaKind.image and item.mime_type not in ("image/jpeg", "image/jpg"):
                raise PlatformPermanentError(f"{item.path.name}: FakeNet takes JPEG images only.")

    async def _request(self, method: str, path: str, *, json_body: Any = None, marker: str = "",
                       auth: bool = True) -> httpx.Response:
        base = self.credentials.extra.get("base_url", "").rstrip("/")
        headers = {}
        if auth and self.credentials.access_token is not None:
            headers["Authorization"] = f"Bearer {self.credentials.access_token.get_secret_value()}"
        if marker:
            headers["Idempotency-Key"] = marker
        try:
            async with httpx.AsyncClient(timeout=self.transport.get("timeout", self.timeout), verify=False) as c:
                resp = await c.request(method, base + path, json=json_body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise PlatformTransientError("FakeNet cannot be reached.") from exc
        except httpx.HTTPError as exc:  # timeouts after sending, dropped connections
            raise PlatformTransientError(f"FakeNet connection failed: {type(exc).__name__}.") from exc
        if resp.status_code < 400:
            return resp
        try:
            message = str(resp.json().get("error", ""))
        except ValueError:
            message = resp.text[:200]
        if resp.status_code == 401:
            raise PlatformAuthError("FakeNet rejected the token.", platform_message=message, status=401)
        if resp.status_code == 429:
            header = resp.headers.get("Retry-After")
            raise PlatformTransientError("FakeNet rate limit reached.", platform_message=message, status=429,
                                         retry_after=float(header) if header else None)
        if resp.status_code >= 500:
            raise PlatformTransientError("FakeNet had an error.", platform_message=message, status=resp.status_code)
        raise PlatformPermanentError("FakeNet refused the request.", platform_message=message,
                                     status=resp.status_code)

    async def connect(self) -> AccountInfo:
        """GET /v1/me."""
        me = (await self._request("GET", "/v1/me")).json()
        return AccountInfo(platform_account_id=me["id"], handle=me["handle"], display_name=me["name"],
                           profile_url=f"https://fakenet.test/{me['handle'].lstrip('@')}", credentials=self.credentials)

    async def publish(self, post: PostRequest) -> PublishResult:
        """POST /v1/posts with the marker as Idempotency-Key."""
        self.validate(post)
        media = [{"name": m.path.name, "size": m.path.stat().st_size, "alt": m.alt_text} for m in post.media]
        body = (await self._request("POST", "/v1/posts", json_body={"text": post.text, "media": media},
                                    marker=post.marker)).json()
        return _result(body)

    async def check_status(self, platform_post_id: str) -> PublishResult:
        """GET /v1/posts/<id>."""
        return _result((await self._request("GET", f"/v1/posts/{platform_post_id}")).json())

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """GET /v1/posts?marker=...: the marker makes absence certain."""
        found = (await self._request("GET", f"/v1/posts?marker={post.marker}")).json()["data"]
        return _result(found[0], detail="found by marker") if found else None

    async def delete(self, platform_post_id: str) -> None:
        """DELETE /v1/posts/<id>."""
        await self._request("DELETE", f"/v1/posts/{platform_post_id}")

    async def refresh(self) -> Credentials:
        """Trade the refresh token for new tokens (stored by the core)."""
        if self.credentials.refresh_token is None:
            raise PlatformAuthError("No FakeNet refresh token; reconnect.")
        try:
            body = (await self._request("POST", "/v1/oauth/token", auth=False, json_body={
                "refresh_token": self.credentials.refresh_token.get_secret_value()})).json()
        except PlatformError as exc:
            if exc.status == 401:
                raise PlatformAuthError("FakeNet refused the refresh token.", status=401) from exc
            raise
        self.credentials = Credentials(
            access_token=SecretStr(body["access_token"]), refresh_token=SecretStr(body["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
            extra=dict(self.credentials.extra), secret_extra=dict(self.credentials.secret_extra),
        )
        return self.credentials


class FakeNetLimitedAdapter(FakeNetAdapter):
    """FakeNet with a documented limit of 2 posts an hour."""

    name = "fakenet_limited"
    capabilities = Capabilities(
        max_text_chars=280, media_kinds=frozenset({MediaKind.image}), max_media=2, max_image_bytes=64 * 1024,
        rate_limits=(RateLimit("post", 2, 3600), RateLimit("delete", 1, 3600)),
    )


class FakeNetBlindAdapter(FakeNetAdapter):
    """FakeNet whose API cannot look posts up (like the Telegram Bot API): None means "cannot tell"."""

    name = "fakenet_blind"
    reconcile_proves_absence = False

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Cannot search: always None."""
        return None


def _result(post: dict[str, Any], detail: str = "") -> PublishResult:
    state = PublishState.processing if post.get("state") == "processing" else PublishState.published
    return PublishResult(state=state, platform_post_id=post["id"], url=post["url"], detail=detail, raw=post)


ADAPTER_PATHS = {
    "fakenet": "fake_network:FakeNetAdapter",
    "fakenet_limited": "fake_network:FakeNetLimitedAdapter",
    "fakenet_blind": "fake_network:FakeNetBlindAdapter",
}


def register() -> dict[str, str | None]:
    """Add the FakeNet adapters to the registry of this process; returns the previous entries."""
    from ainfluencer.platforms.registry import ADAPTERS

    previous = {name: ADAPTERS.get(name) for name in ADAPTER_PATHS}
    ADAPTERS.update(ADAPTER_PATHS)
    return previous


def unregister(previous: dict[str, str | None]) -> None:
    """Undo :func:`register`."""
    from ainfluencer.platforms.registry import ADAPTERS

    for name, value in previous.items():
        if value is None:
            ADAPTERS.pop(name, None)
        else:
            ADAPTERS[name] = value


def main() -> None:
    """Serve FakeNet on 127.0.0.1 until stdin closes; prints the base URL first."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    with FakeNet(latency=args.latency) as net:
        print(net.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
