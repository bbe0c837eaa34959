"""A tiny threaded HTTP server for platform fakes: route by handler, log every request, inject faults.

Built on ``http.server`` rather than an ASGI app because the fakes must be able to *drop* a
connection mid-upload (close the socket without answering), which is what a network failure
looks like to the SDKs under test. Binds 127.0.0.1 on a free port; stopped by the context manager.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)  # name -> (filename, data, type)

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def param(self, name: str, default: str = "") -> str:
        """A value from the form, then the query string (Graph accepts both)."""
        return self.form.get(name, self.query.get(name, default))

    def bearer(self) -> str:
        auth = self.headers.get("authorization", "")
        return auth.split(" ", 1)[1] if " " in auth else ""


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes/str -> as is
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Drop:
    """Close the connection without answering (a network drop)."""


Reply = Response | Drop
Handler = Callable[[Request], Reply]


@dataclass
class Fault:
    method: str
    path_re: str
    reply: Reply | Callable[[Request], Reply]
    times: int = 1
    when: Callable[[Request], bool] | None = None

    def matches(self, req: Request) -> bool:
        if self.times <= 0 or req.method != self.method or not re.fullmatch(self.path_re, req.path):
            return False
        return self.when is None or self.when(req)


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    """Split a multipart/form-data body into fields and files."""
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes, str]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = (filename, payload, part.get_content_type())
        else:
            form[str(name)] = payload.decode()
    return form, files


class FakeServer:
    """Serve ``handler`` on 127.0.0.1:<free port>; ``log`` keeps every request, ``faults`` pre-empt routes."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.log: list[Request] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fault(self, method: str, path_re: str, reply: Reply | Callable[[Request], Reply], *, times: int = 1,
              when: Callable[[Request], bool] | None = None) -> None:
        """Answer the next ``times`` matching requests with ``reply`` instead of the route."""
        self.faults.append(Fault(method, path_re, reply, times, when))

    def requests(self, method: str | None = None, path_re: str | None = None) -> list[Request]:
        """Logged requests, optionally filtered."""
        return [r for r in self.log
                if (method is None or r.method == method) and (path_re is None or re.fullmatch(path_re, r.path))]

    def _dispatch(self, req: Request) -> Reply:
        with self._lock:
            self.log.append(req)
            for f in self.faults:
                if f.matches(req):
                    f.times -= 1
                    return f.reply(req) if callable(f.reply) else f.reply
        return self.handler(req)

    def __enter__(self) -> FakeServer:
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's signature
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("content-length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                body = self._read_body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = Request(self.command, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                              headers, body)
                ctype = headers.get("content-type", "")
                if ctype.startswith("multipart/form-data"):
                    req.form, req.files = parse_multipart(ctype, body)
                elif ctype.startswith("application/x-www-form-urlencoded"):
                    req.form = dict(parse_qsl(body.decode(), keep_blank_values=True))
                try:
                    reply = server._dispatch(req)
                except Exception as exc:  # a bug in a fake must show up as a 500 the test can read
                    reply = Response(500, {"fake_error": repr(exc)})
                if isinstance(reply, Drop):
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                payload = reply.body
                if isinstance(payload, dict | list):
                    data = json.dumps(payload).encode()
                    ctype_out = "application/json; charset=UTF-8"
                elif isinstance(payload, str):
                    data, ctype_out = payload.encode(), "text/plain"
                else:
                    data, ctype_out = payload or b"", "application/octet-stream"
                self.send_response(reply.status)
                hdrs = {"Content-Type": ctype_out, **reply.headers}
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class Router:
    """(method, path regex) -> handler(request, **groups); unknown routes answer 404 JSON."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = []

    def route(self, method: str, pattern: str) -> Callable[[Callable[..., Reply]], Callable[..., Reply]]:
        def deco(fn: Callable[..., Reply]) -> Callable[..., Reply]:
            self.routes.append((method, re.compile(pattern), fn))
            return fn

        return deco

    def __call__(self, req: Request) -> Reply:
        for method, pat, fn in self.routes:
            m = pat.fullmatch(req.path)
            if m and method == req.method:
                return fn(req, **m.groupdict())
        return Response(404, {"error": f"no route {req.method} {req.path}"})
