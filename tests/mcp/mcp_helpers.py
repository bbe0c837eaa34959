"""Drive the MCP server with the SDK's own client over Streamable HTTP (imported by name)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult

from ainfluencer.db.models import User
from ainfluencer.runtime import Runtime
from mcp import Client

T = TypeVar("T")


@dataclass
class McpWorld:
    """The served app, an owner's character with an account and an image, a member, and tokens."""

    runtime: Runtime
    url: str
    owner: User
    character_id: int
    account_id: int
    asset_id: int
    member: User
    member_character_id: int
    writer: str
    reader: str
    member_writer: str


def run(url: str, token: str | None, body: Callable[[Client], Awaitable[T]], *, mode: str = "legacy") -> T:
    """Open a client session with ``token`` as bearer, run ``body``, close."""

    async def main() -> T:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with create_mcp_http_client(headers=headers) as http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:  # type: ignore[arg-type]
                return await body(client)

    return anyio.run(main)


def call(url: str, token: str, tool: str, args: dict[str, Any] | None = None) -> CallToolResult:
    """One tool call in its own session."""

    async def body(client: Client) -> CallToolResult:
        return await client.call_tool(tool, args or {})

    return run(url, token, body)


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful call (fails the test with the error otherwise)."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    text = result.content[0].text  # type: ignore[union-attr]
    assert json.loads(text) == result.structured_content
    return result.structured_content


def err(result: CallToolResult) -> dict[str, Any]:
    """The ``error`` object of a refused call."""
    assert result.is_error, result.structured_content
    body = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert "error" in body, body
    return body["error"]
