"""The MCP server end to end over Streamable HTTP, driven by the SDK's own client against the real app
(uvicorn on 127.0.0.1): handshake, every tool, errors, scopes, ownership, review, rate limit, audit."""

from __future__ import annotations

import json
from typing import Any

import httpx
from mcp_helpers import McpWorld, call, err, ok, run
from sqlalchemy import select

from ainfluencer.db.models import AuditLog, User
from ainfluencer.posts import service as posts
from ainfluencer.services import auth

TOOLS = {"list_characters", "get_character", "list_accounts", "write_text", "generate_image", "generate_voice_clip",
         "generate_video", "get_job", "search_vault", "create_draft_post", "list_review_queue", "get_post",
         "schedule_post", "read_calendar", "list_publications"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _audit(world: McpWorld) -> list[dict[str, Any]]:
    with world.runtime.db.session() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == "mcp.tool_call").order_by(AuditLog.id))
        return [dict(r.detail) for r in rows]


def test_initialize_lists_tools_resources_and_prompts(world: McpWorld) -> None:
    async def body(client: Any) -> tuple[Any, ...]:
        tools = (await client.list_tools()).tools
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        prompts = (await client.list_prompts()).prompts
        guide = await client.read_resource("ainfluencer://docs/guide")
        persona = await client.read_resource(f"ainfluencer://characters/{world.character_id}/persona")
        prompt = await client.get_prompt("plan_next_week", {"character_id": str(world.character_id)})
        return client.server_info, client.instructions, tools, resources, templates, prompts, guide, persona, prompt

    info, instructions, tools, resources, templates, prompts, guide, persona, prompt = run(world.url, world.writer,
                                                                                          body)
    assert info.name == "ainfluencer" and info.version
    assert "Review" in instructions and "never claim to be human" in instructions
    assert {t.name for t in tools} == TOOLS
    for tool in tools:  # typed schemas with descriptions, structured output
        assert tool.description and tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema is not None, tool.name
    draft = next(t for t in tools if t.name == "create_draft_post")
    assert {"character_id", "account_ids", "asset_ids", "scheduled_at"} <= set(draft.input_schema["properties"])
    assert draft.input_schema["required"] == ["character_id"]
    assert next(t for t in tools if t.name == "list_characters").annotations.read_only_hint is True
    assert {str(r.uri) for r in resources} == {"ainfluencer://docs/guide", "ainfluencer://docs/writing-options"}
    assert [t.uri_template for t in templates] == ["ainfluencer://characters/{character_id}/persona"]
    assert {p.name for p in prompts} == {"plan_next_week", "draft_one_post", "status_report"}
    assert "in review" in guide.contents[0].text
    data = json.loads(persona.contents[0].text)
    assert data["name"] == "Nova" and "AI-generated" in data["public_bio"] and data["system_prompt"]
    assert f"characters/{world.character_id}/persona" in prompt.messages[0].content.text

    # The probing client of the newer protocol works too.
    names = run(world.url, world.writer, lambda c: c.list_tools(), mode="auto")
    assert {t.name for t in names.tools} == TOOLS


def test_401_without_a_valid_token(world: McpWorld, client: Any, login: Any) -> None:
    r = httpx.post(world.url, json=INIT, headers=HEADERS, timeout=10)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "unauthorized"
    r = httpx.post(world.url, json=INIT, headers={**HEADERS, "Authorization": "Bearer ainf_nope"}, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_token"
    with world.runtime.db.session() as s:
        token = auth.resolve_api_token(s, world.reader)
        auth.revoke_api_token(s, user=token.user, token_id=token.id)
    r = httpx.post(world.url, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {world.reader}"}, timeout=10)
    assert r.status_code == 401
    # A signed-in browser's cookie is not a credential here.
    login(client)
    cookies = {"ainf_session": client.cookies["ainf_session"]}
    r = httpx.post(world.url, json=INIT, headers=HEADERS, cookies=cookies, timeout=10)
    assert r.status_code == 401
    # A valid token: initialize answers with the server's info.
    r = httpx.post(world.url, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {world.writer}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["serverInfo"]["name"] == "ainfluencer"


def test_every_tool_and_a_draft_waits_in_review_until_a_person_approves(world: McpWorld, client: Any,
                                                                        login: Any) -> None:
    url, tok, cid = world.url, world.writer, world.character_id
    chars = ok(call(url, tok, "list_characters", {"q": "nov"}))
    assert [c["name"] for c in chars["data"]] == ["Nova"]
    assert ok(call(url, tok, "get_character", {"character_id": cid}))["public_bio"]
    accounts = ok(call(url, tok, "list_accounts", {"character_id": cid}))
    assert [a["id"] for a in accounts["data"]] == [world.account_id]

    written = ok(call(url, tok, "write_text", {"character_id": cid, "platform": "mastodon",
                                                "brief": "a sunrise swim"}))
    assert written["text"] and written["fits_platform_rules"] and written["length"] <= written["max_length"] == 500

    job = ok(call(url, tok, "generate_image", {"character_id": cid, "brief": "beach at dawn"}))
    assert job["kind"].startswith("studio.") and job["status"] == "queued"
    assert ok(call(url, tok, "get_job", {"job_id": job["id"]}))["id"] == job["id"]
    voice = call(url, tok, "generate_voice_clip", {"character_id": cid, "text": "Hello there"})
    if voice.is_error:  # no voice engine on this machine: the refusal names what to install
        assert err(voice)["code"] in ("feature_unavailable", "invalid", "unavailable"), voice.structured_content
    else:
        assert ok(voice)["status"] == "queued"
    video = err(call(url, tok, "generate_video", {"character_id": cid, "script": "One. Two.", "preset": "nope"}))
    assert video["field"] == "preset"

    found = ok(call(url, tok, "search_vault", {"q": "beach", "review_state": ["approved"]}))
    assert [a["id"] for a in found["data"]] == [world.asset_id]

    draft = ok(call(url, tok, "create_draft_post", {
        "character_id": cid, "text": written["text"], "account_ids": [world.account_id],
        "asset_ids": [world.asset_id], "alt_texts": {str(world.asset_id): "a beach at dawn"},
        "generated_text_id": written["id"]}))
    post = draft["post"]
    assert post["status"] == "in_review" and post["source"] == "assistant" and "Waiting in Review" in draft["next_step"]
    assert post["events"][0]["actor"] == "assistant:claude-desktop"
    queue = ok(call(url, tok, "list_review_queue", {"character_id": cid}))
    assert [p["id"] for p in queue["data"]] == [post["id"]]

    # Not schedulable while in review.
    refused = err(call(url, tok, "schedule_post", {"post_id": post["id"]}))
    assert refused["code"] == "conflict" and refused["field"] == "action" and "approved" in refused["message"]
    assert ok(call(url, tok, "get_post", {"post_id": post["id"]}))["status"] == "in_review"

    # A person sees it in Review and approves it there.
    login(client)
    page = client.get("/review")
    assert page.status_code == 200 and f"/posts/{post['id']}" in page.text
    r = client.post(f"/posts/{post['id']}/do/approve", data={"csrf_token": client.cookies["ainf_csrf"]},
                    follow_redirects=False)
    assert r.status_code == 303, r.text

    scheduled = ok(call(url, tok, "schedule_post", {"post_id": post["id"]}))
    assert scheduled["status"] == "scheduled" and len(scheduled["publication_ids"]) == 1
    pubs = ok(call(url, tok, "list_publications", {"character_id": cid}))
    assert [p["id"] for p in pubs["data"]] == scheduled["publication_ids"]
    assert pubs["data"][0]["status"] in ("planned", "due")  # due once its time has come; no worker runs here
    cal = ok(call(url, tok, "read_calendar", {"view": "week", "character_id": cid}))
    items = [i["publication"]["id"] for d in cal["days"] for i in d["items"]]
    assert items == scheduled["publication_ids"]

    audited = _audit(world)
    assert {a["tool"] for a in audited} >= TOOLS
    assert all(a["token"] == "claude-desktop" for a in audited)
    assert any(a["tool"] == "schedule_post" and a["ok"] is False and a["code"] == "conflict" for a in audited)


def test_errors_name_the_field_like_the_rest_api(world: McpWorld) -> None:
    url, tok, cid = world.url, world.writer, world.character_id
    e = err(call(url, tok, "write_text", {"character_id": cid, "platform": "myspace"}))
    assert (e["code"], e["field"]) == ("invalid", "platform")
    e = err(call(url, tok, "create_draft_post", {"character_id": cid, "variants": {"myspace": {"text": "x"}}}))
    assert (e["code"], e["field"]) == ("invalid", "variants.myspace")
    e = err(call(url, tok, "create_draft_post", {"character_id": cid, "asset_ids": [999999]}))
    assert (e["code"], e["field"]) == ("invalid", "asset_ids")
    e = err(call(url, tok, "get_post", {"post_id": 424242}))
    assert e["code"] == "not_found" and "424242" in e["message"]
    # Arguments that fail the schema are refused by the SDK before any service runs.
    bad = call(url, tok, "generate_image", {"character_id": cid, "count": 0})
    assert bad.is_error and "count" in bad.content[0].text  # type: ignore[union-attr]


def test_a_read_only_token_is_refused_on_writes(world: McpWorld) -> None:
    url, tok, cid = world.url, world.reader, world.character_id
    assert ok(call(url, tok, "list_characters"))["count"] >= 1
    for tool, args in (("create_draft_post", {"character_id": cid, "text": "hi"}),
                       ("write_text", {"character_id": cid, "platform": "x"}),
                       ("generate_image", {"character_id": cid}),
                       ("schedule_post", {"post_id": 1})):
        e = err(call(url, tok, tool, args))
        assert e["code"] == "insufficient_scope", (tool, e)
    with world.runtime.db.session() as s:
        assert s.scalars(select(posts.Post)).first() is None
    assert any(a["tool"] == "create_draft_post" and a["ok"] is False and a["token"] == "read-only agent"
               for a in _audit(world))


def test_another_users_ids_are_refused(world: McpWorld) -> None:
    url, cid = world.url, world.character_id
    with world.runtime.db.session() as s:
        owner = s.get(User, world.owner.id)
        assert owner is not None
        post = posts.create_post(s, user=owner, character_id=cid, data=posts.PostInput(text="mine"), submit=True)
        post_id = post.id
    tok, mine = world.member_writer, world.member_character_id
    assert [c["id"] for c in ok(call(url, tok, "list_characters"))["data"]] == [mine]
    for tool, args, field in (
        ("get_character", {"character_id": cid}, None),
        ("list_accounts", {"character_id": cid}, "character_id"),
        ("search_vault", {"character_id": cid}, "character_id"),
        ("write_text", {"character_id": cid, "platform": "x"}, None),
        ("generate_image", {"character_id": cid}, None),
        ("create_draft_post", {"character_id": cid, "text": "x"}, "character_id"),
        ("get_post", {"post_id": post_id}, None),
        ("schedule_post", {"post_id": post_id}, None),
        ("read_calendar", {"character_id": cid}, "character_id"),
        ("list_publications", {"character_id": cid}, "character_id"),
    ):
        e = err(call(url, tok, tool, args))
        assert e["code"] == "not_found", (tool, e)
        if field:
            assert e.get("field") == field, (tool, e)
    # Their own character with the owner's asset or account: refused, naming the field.
    e = err(call(url, tok, "create_draft_post", {"character_id": mine, "asset_ids": [world.asset_id]}))
    assert (e["code"], e["field"]) == ("invalid", "asset_ids")
    e = err(call(url, tok, "create_draft_post", {"character_id": mine, "account_ids": [world.account_id]}))
    assert (e["code"], e["field"]) == ("invalid", "account_ids")
    assert ok(call(url, tok, "search_vault", {"q": "beach"}))["count"] == 0
    assert ok(call(url, tok, "list_review_queue"))["count"] == 0

    async def persona(client: Any) -> Exception | None:
        try:
            await client.read_resource(f"ainfluencer://characters/{cid}/persona")
        except Exception as exc:  # the SDK raises the server's resource error
            return exc
        return None

    refused = run(url, tok, persona)
    assert refused is not None and "not_found" in str(refused)


def test_auto_approval_granted_by_the_owner(world: McpWorld) -> None:
    url, tok, cid = world.url, world.writer, world.character_id
    with world.runtime.db.session() as s:
        token = auth.resolve_api_token(s, tok)
        owner = s.get(User, world.owner.id)
        assert owner is not None
        auth.set_token_auto_approve(s, by=owner, token_id=token.id, enabled=True, with_token=False)
    draft = ok(call(url, tok, "create_draft_post", {"character_id": cid, "text": "Tide's out 🌊",
                                                     "account_ids": [world.account_id]}))
    post = draft["post"]
    assert post["status"] == "approved" and "auto-approval" in draft["next_step"]
    assert [e["action"] for e in post["events"]] == ["create", "submit", "approve"]
    assert "Auto-approved" in post["events"][-1]["note"]
    assert ok(call(url, tok, "schedule_post", {"post_id": post["id"]}))["status"] == "scheduled"


def test_rate_limit_per_token(world: McpWorld) -> None:
    world.runtime.settings.mcp_burst = 3
    world.runtime.settings.mcp_calls_per_minute = 1
    results = [call(world.url, world.writer, "list_characters") for _ in range(4)]
    assert [r.is_error for r in results] == [False, False, False, True]
    e = err(results[-1])
    assert e["code"] == "rate_limited" and e["retry_after"] >= 1
    # Another token has its own bucket.
    assert not call(world.url, world.reader, "list_characters").is_error
    assert any(a.get("code") == "rate_limited" for a in _audit(world))
