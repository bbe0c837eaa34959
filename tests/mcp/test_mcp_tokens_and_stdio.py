"""Auto-approval is the owner's to grant (signed in, never with a token); ``ainfluencer mcp`` over stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import anyio
from fastapi.testclient import TestClient

from ainfluencer.db.models import User
from ainfluencer.runtime import Runtime
from mcp import Client, StdioServerParameters


def _token_id(client: TestClient, headers: dict[str, str] | None = None) -> int:
    return int(client.get("/api/v1/tokens", headers=headers or {}).json()["data"][0]["id"])


def test_only_the_signed_in_owner_grants_auto_approval(client: TestClient, login: Any, make_user: Callable[..., User],
                                                       make_token: Callable[..., str]) -> None:
    owner = make_user(owner=True)
    raw = make_token(owner, "read,write", name="agent")
    bearer = {"Authorization": f"Bearer {raw}"}
    listed = client.get("/api/v1/tokens", headers=bearer).json()["data"][0]
    assert listed["auto_approve"] is False
    # The token cannot grant itself the right to skip review.
    r = client.patch(f"/api/v1/tokens/{listed['id']}", json={"auto_approve": True}, headers=bearer)
    assert r.status_code == 403 and r.json()["error"] == {
        "code": "session_required", "field": "auto_approve",
        "message": "Auto-approval is granted by the owner signed in to the web app, not with an API token."}
    # The owner, signed in: through the API (CSRF applies) and through Settings → API tokens.
    login(client)
    csrf = {"X-CSRF-Token": client.cookies["ainf_csrf"]}
    r = client.patch(f"/api/v1/tokens/{listed['id']}", json={"auto_approve": True}, headers=csrf)
    assert r.status_code == 200, r.text
    assert r.json()["auto_approve"] is True
    page = client.get("/settings")
    assert "auto-approved" in page.text and "Require review" in page.text
    r = client.post(f"/settings/tokens/{listed['id']}/auto-approve",
                    data={"enabled": "off", "csrf_token": client.cookies["ainf_csrf"]}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/tokens", headers=bearer).json()["data"][0]["auto_approve"] is False
    audit = client.get("/settings").text
    assert "token.auto_approve_granted" in audit and "token.auto_approve_withdrawn" in audit


def test_a_member_cannot_grant_auto_approval(client: TestClient, login: Any, make_user: Callable[..., User],
                                             make_token: Callable[..., str]) -> None:
    make_user(owner=True)
    member = make_user("member@example.com", owner=False)
    make_token(member, "read,write", name="member agent")
    login(client, "member@example.com")
    token_id = _token_id(client)
    r = client.patch(f"/api/v1/tokens/{token_id}", json={"auto_approve": True},
                     headers={"X-CSRF-Token": client.cookies["ainf_csrf"]})
    assert r.status_code == 403 and r.json()["error"]["field"] == "auto_approve"
    assert "Allow auto-approval" not in client.get("/settings").text


def test_stdio_server_from_the_cli(runtime: Runtime, make_user: Callable[..., User],
                                   make_token: Callable[..., str]) -> None:
    owner = make_user(owner=True)
    raw = make_token(owner, "read", name="desktop")
    settings = runtime.settings
    env = {**os.environ, "AINF_DATA_DIR": str(settings.data_dir), "AINF_DATABASE_URL": settings.database_url,
           "AINF_MCP_TOKEN": raw, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "ainfluencer", "mcp"], env=env)

    async def main() -> tuple[Any, Any, Any]:
        async with Client(params, mode="legacy") as client:
            tools = await client.list_tools()
            listed = await client.call_tool("list_characters", {})
            refused = await client.call_tool("create_draft_post", {"character_id": 1})
            return client.server_info, tools, (listed, refused)

    info, tools, (listed, refused) = anyio.run(main)
    assert info.name == "ainfluencer" and len(tools.tools) == 15
    assert not listed.is_error and listed.structured_content["count"] == 0
    assert refused.is_error and refused.structured_content["error"]["code"] == "insufficient_scope"
