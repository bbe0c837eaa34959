"""``/mcp``: the MCP server over Streamable HTTP inside the app, authenticated by the app's API tokens.

Stateless JSON mode: every request carries its bearer token and is served on its own, so any number
of ``serve`` replicas can answer one assistant (no in-memory session to lose). Only
``Authorization: Bearer`` is accepted — never the browser's session cookie, so a web page cannot make
a signed-in person's browser call tools.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ainfluencer.errors import AppError, AuthRequired
from ainfluencer.mcp.calls import SCOPE_IP_KEY, SCOPE_TOKEN_KEY
from ainfluencer.mcp.server import build_server
from ainfluencer.runtime import Runtime
from ainfluencer.services import auth

PATH = "/mcp"


class McpEndpoint:
    """The ASGI app at ``/mcp``: checks the bearer token, then hands the request to the SDK's transport."""

    def __init__(self, runtime: Runtime, server: MCPServer) -> None:
        self.runtime, self.server = runtime, server
        self.manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the SDK's transport for the app's lifetime (a fresh one per lifespan)."""
        # Tokens travel in a header a rebinding page cannot read, so the SDK's Host/Origin allow-list
        # (which would refuse every real host name behind a proxy) adds nothing here.
        self.server.streamable_http_app(
            stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self.server.session_manager
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None

    def _resolve(self, raw: str) -> tuple[int, list[str]]:
        with self.runtime.db.session() as session:
            token = auth.resolve_api_token(session, raw)
            return token.id, token.scope_list

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then serve one MCP message exchange."""
        header = Headers(scope=scope).get("authorization", "")
        kind, _, raw = header.partition(" ")
        try:
            if kind.lower() != "bearer" or not raw.strip():
                raise AuthRequired("Send an API token from Settings → API tokens as 'Authorization: Bearer <token>'.")
            token_id, scopes = await anyio.to_thread.run_sync(self._resolve, raw.strip())
        except AppError as exc:
            await _error(send, exc)
            return
        if self.manager is None:
            await _error(send, AppError("The MCP server is starting or stopping; try again.", code="unavailable"),
                         status=503)
            return
        client = scope.get("client")
        inner: dict[str, Any] = dict(scope)
        inner[SCOPE_TOKEN_KEY] = raw.strip()
        inner[SCOPE_IP_KEY] = client[0] if client else ""
        # What the SDK reads to tell callers apart (session ownership, request-state binding).
        inner["user"] = AuthenticatedUser(AccessToken(token="", client_id=f"ainf-token-{token_id}", scopes=scopes))
        inner["auth"] = AuthCredentials(scopes)
        await self.manager.handle_request(inner, receive, send)


async def _error(send: Send, exc: AppError, *, status: int | None = None) -> None:
    body = {"code": exc.code, "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    payload = json.dumps({"error": body}).encode()
    code = status or exc.status_code
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if code == 401:
        headers.append((b"www-authenticate", b'Bearer realm="ainfluencer"'))
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def install(app: FastAPI, runtime: Runtime) -> McpEndpoint:
    """Serve MCP at ``/mcp`` in ``app`` and run its transport inside the app's lifespan."""
    endpoint = McpEndpoint(runtime, build_server(runtime))
    app.router.routes.append(Route(PATH, endpoint=endpoint, name="mcp"))
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with outer(a) as state, endpoint.running():
            yield state

    app.router.lifespan_context = lifespan
    return endpoint
