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
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

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


# ---- the adapter lives in its platform package (fakenet/), registered like any network -----------------

from fakenet.adapter import FakeNetAdapter, FakeNetBlindAdapter, FakeNetLimitedAdapter  # noqa: E402

__all__ = ["ACCOUNT_ID", "HANDLE", "REFRESH", "TOKEN", "FakeNet", "FakeNetAdapter", "FakeNetBlindAdapter",
           "FakeNetLimitedAdapter", "Reply", "running"]


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
