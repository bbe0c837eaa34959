"""One gate for every MCP tool call: who is calling, may they, how often, what happened.

A call resolves its API token afresh (a token revoked mid-session stops working at once), checks the
scope the tool needs, spends one unit from the token's persisted call bucket, runs the tool and writes
an ``mcp.tool_call`` audit row naming the token — all in one transaction; a refused call is audited,
and charged, in a second one. Failures an agent can act on
come back as tool errors carrying the REST API's ``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ainfluencer.db.models import ApiToken, User, utcnow
from ainfluencer.errors import AppError, AuthRequired, PermissionDenied, RateLimited
from ainfluencer.runtime import Runtime
from ainfluencer.services import auth

log = logging.getLogger(__name__)

# Where the HTTP layer leaves the bearer value for the tools (the ASGI scope of each request).
SCOPE_TOKEN_KEY = "ainfluencer.mcp_token"  # noqa: S105 - a dict key, not a secret
SCOPE_IP_KEY = "ainfluencer.mcp_ip"


@dataclass
class Caller:
    """The person behind a call and the token they lent the assistant."""

    user: User
    token: ApiToken

    @property
    def actor(self) -> str:
        """How post events and audit rows name the assistant: the token's name."""
        return f"assistant:{self.token.name}"[:80]


def error_body(exc: AppError) -> dict[str, Any]:
    """The REST API's error object for ``exc``, plus any per-item details the error carries."""
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    if isinstance(exc, RateLimited):
        body["retry_after"] = exc.retry_after
    preview = getattr(exc, "preview", None)  # compose: every target's problems at once
    if preview is not None and hasattr(preview, "all_problems"):
        body["problems"] = list(preview.all_problems())
    for name in ("conflicts", "problems"):
        items = getattr(exc, name, None)
        if isinstance(items, list) and name not in body:
            body[name] = [i.as_dict() if hasattr(i, "as_dict") else str(i) for i in items]
    return json.loads(json.dumps(body, default=str))


def tool_error(exc: AppError) -> CallToolResult:
    """A tool result the model reads as a failure, with the same code/message/field as a REST 4xx."""
    body = {"error": error_body(exc)}
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(body, ensure_ascii=False))],
                          structured_content=body, is_error=True)


def tool_ok(value: BaseModel) -> CallToolResult:
    """A successful result: the JSON both as structured content and as text for models that read text."""
    data = value.model_dump(mode="json")
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(data, ensure_ascii=False))],
                          structured_content=data)


def bucket_level(tokens: float | None, at: datetime | None, *, now: datetime, capacity: float, rate: float) -> float:
    """Calls available now: ``min(capacity, tokens + elapsed_seconds * rate)``; a fresh bucket is full."""
    if tokens is None or at is None:
        return capacity
    return min(capacity, tokens + max(0.0, (now - at).total_seconds()) * rate)


def take_call(session: Session, runtime: Runtime, token: ApiToken, *, now: datetime | None = None) -> None:
    """Spend one call from the token's bucket, or raise RateLimited with the seconds until one is back.

    The row is locked (PostgreSQL; SQLite serialises writers already) and re-read, so replicas share
    one bucket. Kept next to the token instead of in ``rate_buckets``, whose rows belong to social accounts.
    """
    settings = runtime.settings
    now = now or utcnow()
    capacity, rate = float(settings.mcp_burst), settings.mcp_calls_per_minute / 60.0
    row = session.scalars(select(ApiToken).where(ApiToken.id == token.id).with_for_update()
                          .execution_options(populate_existing=True)).one()
    level = bucket_level(row.mcp_tokens, row.mcp_tokens_at, now=now, capacity=capacity, rate=rate)
    if level < 1.0:
        wait = max(1, math.ceil((1.0 - level) / rate))
        raise RateLimited(f"This token made too many MCP calls; wait {wait} s and try again "
                          f"(limit {settings.mcp_calls_per_minute} per minute, bursts of {settings.mcp_burst}).",
                          retry_after=wait)
    row.mcp_tokens, row.mcp_tokens_at = level - 1.0, now


class Gate:
    """Runs tool bodies for one server; ``fixed_token`` is the stdio server's token (HTTP reads each request's)."""

    def __init__(self, runtime: Runtime, *, fixed_token: str | None = None) -> None:
        self.runtime, self.fixed_token = runtime, fixed_token

    def _bearer(self, ctx: Context | None) -> tuple[str, str]:
        request = None
        if ctx is not None:
            try:
                request = ctx.request_context.request
            except ValueError:  # no request: called outside a transport (stdio has none either)
                request = None
        scope = getattr(request, "scope", None) or {}
        raw = scope.get(SCOPE_TOKEN_KEY) or self.fixed_token or ""
        return str(raw), str(scope.get(SCOPE_IP_KEY) or ("stdio" if self.fixed_token else ""))

    def caller(self, session: Session, ctx: Context | None) -> Caller:
        """The live token behind this call (AuthRequired when it is missing, unknown, revoked or expired)."""
        raw, _ = self._bearer(ctx)
        if not raw:
            raise AuthRequired("Send an API token as 'Authorization: Bearer <token>'.")
        token = auth.resolve_api_token(session, raw)
        return Caller(user=token.user, token=token)

    @staticmethod
    def require(caller: Caller, scope: str) -> None:
        """Refuse when the token lacks ``scope`` (write implies read, as in the REST API)."""
        if scope not in caller.token.scope_list:
            raise PermissionDenied(f"This API token lacks the '{scope}' scope; create one with that scope in "
                                   "Settings → API tokens.", code="insufficient_scope")

    def run(self, ctx: Context | None, tool: str, body: Callable[[Session, Caller], BaseModel], *,
            write: bool = False, refs: dict[str, Any] | None = None) -> CallToolResult:
        """Authenticate, rate-limit, run ``body`` in one transaction, audit; AppError becomes a tool error."""
        _, ip = self._bearer(ctx)
        who: tuple[int | None, int | None, str] = (None, None, "")
        detail = {k: v for k, v in (refs or {}).items() if v not in (None, [], "")}
        try:
            with self.runtime.db.session() as session:
                caller = self.caller(session, ctx)
                who = (caller.user.id, caller.token.id, caller.token.name)
                self.require(caller, "write" if write else "read")
                take_call(session, self.runtime, caller.token)
                result = body(session, caller)
                auth.audit(session, "mcp.tool_call", user_id=who[0], ip=ip, tool=tool, token_id=who[1],
                           token=who[2], ok=True, **detail)
            return tool_ok(result)
        except ModuleNotFoundError as missing:
            # An optional extra is not installed: say which, as the REST API's 503 does.
            exc = AppError(f"This tool needs the optional package {missing.name!r}, which is not installed. "
                           "Install it with: pip install -e '.[media]'.", code="feature_unavailable")
            if who[0] is not None:
                self._audit_refusal(tool, who, ip, exc, detail)
            return tool_error(exc)
        except AppError as exc:
            if who[0] is not None:
                self._audit_refusal(tool, who, ip, exc, detail)
            return tool_error(exc)

    def _audit_refusal(self, tool: str, who: tuple[int | None, int | None, str], ip: str, exc: AppError,
                       detail: dict[str, Any]) -> None:
        try:
            with self.runtime.db.session() as session:
                if not isinstance(exc, RateLimited) and exc.code != "insufficient_scope":
                    # The failed call's transaction was rolled back with its spend; a refused call still counts.
                    token = session.get(ApiToken, who[1])
                    if token is not None:
                        try:
                            with session.begin_nested():
                                take_call(session, self.runtime, token)
                        except RateLimited:
                            pass
                auth.audit(session, "mcp.tool_call", user_id=who[0], ip=ip, tool=tool, token_id=who[1],
                           token=who[2], ok=False, code=exc.code, field=exc.field, **detail)
        except Exception:  # the refusal itself is what the agent must see; the audit failure goes to the log
            log.exception("could not audit a refused MCP call to %s", tool)
