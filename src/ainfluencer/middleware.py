"""ASGI middleware: security headers, request-size limit, request metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# Swagger UI (/docs) loads its bundle from our own static folder; it needs inline bootstrapping.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'"
)

REQUESTS = Counter("ainf_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("ainf_http_request_seconds", "HTTP request latency", ["method", "route"])


class SecurityHeaders:
    """Adds CSP, framing, referrer and content-type headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = DOCS_CSP if path in ("/docs", "/redoc") else CSP
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A page may widen its own policy (Accounts: forms that redirect to a network's consent screen).
                own = any(k.lower() == b"content-security-policy" for k, _ in headers)
                extra = [] if own else [(b"content-security-policy", csp.encode())]
                extra += [
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"strict-origin-when-cross-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if secure:
                    extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Media uploads may be larger than other bodies (``upload_max_bytes``); only these paths get that limit.
UPLOAD_PATH_PREFIXES = (
    "/api/v1/assets", "/vault/upload", "/api/v1/studio/reference-photos", "/studio/reference-photos",
)


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` (media upload paths: ``upload_max_bytes``) with a 413."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_max_bytes: int | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.upload_max_bytes = upload_max_bytes or max_bytes

    def _limit(self, scope: Scope) -> int:
        return self.upload_max_bytes if scope.get("path", "").startswith(UPLOAD_PATH_PREFIXES) else self.max_bytes

    async def _reject(self, scope: Scope, send: Send) -> None:
        body = json.dumps(
            {"error": {"code": "payload_too_large",
                       "message": f"The request body is larger than {self._limit(scope)} bytes."}}
        ).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(scope, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send)


class _TooLarge(Exception):
    pass


class Metrics:
    """Counts requests and latency per route template (not per raw path, to bound cardinality)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("static" if scope["path"].startswith("/static") else "other")
            method = scope.get("method", "GET")
            REQUESTS.labels(method, template, str(status["code"])).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - start)
