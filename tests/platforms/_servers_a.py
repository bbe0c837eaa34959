"""A small threaded HTTP server for fake platform APIs: 127.0.0.1, free port, request log, faults.

The fakes (``fake_telegram``, ``fake_mastodon``, ``fake_bluesky``) are plain functions from a
:class:`Received` request to a :class:`Reply`; this module does the HTTP. It is ``http.server``
rather than an ASGI app because one of the faults must *drop the connection in the middle of an
upload* (read part of the body, then reset the socket), which an ASGI server cannot do.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Upload:
    """One file part of a multipart body."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Received:
    """What the fake server got, as tests assert on it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)
    dropped: bool = False

    @property
    def json(self) -> Any:
        """The body as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def field(self, name: str, default: str | None = None) -> str | None:
        """The last value of a form/multipart/query field."""
        values = self.form.get(name) or self.query.get(name)
        return values[-1] if values else default

    def q(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter."""
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Reply:
    """An HTTP answer; a dict/list body is sent as JSON."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, dict | list):
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(self.body, str):
            data = self.body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = self.body or b""
        return data, headers


class Drop:
    """Fault: read ``after_bytes`` of the request body, then reset the connection."""

    def __init__(self, after_bytes: int = 4096) -> None:
        self.after_bytes = after_bytes


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``path`` (regex) with ``effect``."""

    path: str
    effect: Reply | Drop | Callable[[], Reply]  # a callable builds the reply when it fires (fresh reset times)
    method: str | None = None
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and re.search(self.path, path) is not None


Handler = Callable[[Received], Reply]


def parse_body(headers: dict[str, str], body: bytes) -> tuple[dict[str, list[str]], dict[str, Upload]]:
    """Form fields and files of a urlencoded or multipart body."""
    ctype = headers.get("content-type", "")
    form: dict[str, list[str]] = {}
    files: dict[str, Upload] = {}
    if ctype.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode(), keep_blank_values=True)
    elif ctype.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                files[str(name)] = Upload(filename, part.get_content_type(), data)
            else:
                form.setdefault(str(name), []).append(data.decode())
    return form, files


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing or resetting a keep-alive connection is normal; anything else is printed.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class FakeServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 at a free port, stopped by ``stop()``/context exit."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.log: list[Received] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeServer:
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # idle keep-alive connections end on their own

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

            def do_GET(self) -> None:  # noqa: N802
                server._serve(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET  # noqa: N815

        httpd = _QuietServer(("127.0.0.1", 0), _RequestHandler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- faults and log ---------------------------------------------------------------------
    def fault(
        self, path: str, effect: Reply | Drop | Callable[[], Reply], *, method: str | None = None, times: int = 1
    ) -> None:
        """Queue a fault for the next matching request(s)."""
        with self._lock:
            self.faults.append(Fault(path=path, effect=effect, method=method, times=times))

    def requests(self, path_pattern: str = "", method: str | None = None) -> list[Received]:
        """Logged requests whose path matches ``path_pattern`` (regex)."""
        return [r for r in self.log if re.search(path_pattern, r.path) and (method is None or r.method == method)]

    def _take_fault(self, method: str, path: str) -> Reply | Drop | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    effect = fault.effect
                    return effect if isinstance(effect, Reply | Drop) else effect()
        return None

    # -- serving ------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        headers = {k.lower(): v for k, v in h.headers.items()}
        method = h.command
        effect = self._take_fault(method, parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if isinstance(effect, Drop):
            length = int(headers.get("content-length", "0") or 0)
            partial = h.rfile.read(min(effect.after_bytes, length)) if length else b""
            self.log.append(Received(method, parts.path, query, headers, partial, dropped=True))
            # SO_LINGER 0: close with a reset while the client is still sending
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()
            return
        body = _read_body(h, headers)
        form, files = parse_body(headers, body)
        received = Received(method, parts.path, query, headers, body, form, files)
        self.log.append(received)
        if isinstance(effect, Reply):
            reply = effect
        else:
            try:
                reply = self.handler(received)
            except Exception as exc:  # a bug in a fake must show up as a 500 with the reason
                reply = Reply(500, {"error": "FakeServerBug", "message": repr(exc)})
        data, reply_headers = reply.encoded()
        h.send_response(reply.status)
        for name, value in reply_headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)


def _read_body(h: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                h.rfile.readline()
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(headers.get("content-length", "0") or 0)
    return h.rfile.read(length) if length else b""


def write_image(path: Any, size: int, *, png: bool = False) -> Any:
    """A file of ``size`` bytes that starts like a JPEG (or PNG); content beyond the header is filler."""
    header = b"\x89PNG\r\n\x1a\n" if png else b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(max(size, len(header)))  # sparse: big files cost no disk writes
    return path
