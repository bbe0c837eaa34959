"""REST API for characters, persona templates and text backends: happy paths, errors, nothing half-saved."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from ainfluencer.characters.persona import DISCLOSURE_LINE, Persona, import_persona_json
from ainfluencer.db.models import (
    Character,
    GeneratedText,
    PersonaTemplate,
    StoredSecret,
    TextBackendConfig,
    TextUsage,
)
from backends.text.servers import APPS, REPLY, FakeState, LocalServer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def owner_token(make_user, make_token) -> str:
    return make_token(make_user("owner@example.com", owner=True))


@pytest.fixture
def member_token(make_user, make_token, owner_token) -> str:
    return make_token(make_user("member@example.com", owner=False))


def count(runtime, model=Character) -> int:
    with runtime.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def create(client, token, **body) -> dict[str, Any]:
    r = client.post("/api/v1/characters", json={"name": "Mira", **body}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()


class ModelsServer:
    """A tiny OpenAI-compatible /v1/models endpoint for the connection test."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                raw = json.dumps({"object": "list", "data": [{"id": "tiny-model"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def models_server() -> Iterator[ModelsServer]:
    server = ModelsServer()
    yield server
    server.close()


def test_create_from_template_read_list_update_delete(client, owner_token):
    body = create(client, owner_token, handle="@Mira.Travels", template="travel-photographer")
    assert body["handle"] == "mira.travels" and body["status"] == "active"
    assert body["public_bio"].endswith(DISCLOSURE_LINE) and body["disclosure_enabled"] is True
    assert body["stats"]["assets"] == 0 and body["stats"]["published_posts"] == 0
    cid = body["id"]
    got = client.get(f"/api/v1/characters/{cid}", headers=bearer(owner_token)).json()
    assert got["persona"]["traits"] == body["persona"]["traits"]
    listed = client.get("/api/v1/characters?q=mira", headers=bearer(owner_token)).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == cid and listed["counts"]["active"] == 1
    persona = got["persona"]
    persona["traits"]["warmth"] = 0.05
    r = client.patch(f"/api/v1/characters/{cid}", json={"persona": persona, "bio": "New bio."},
                     headers=bearer(owner_token))
    assert r.status_code == 200, r.text
    assert r.json()["persona"]["traits"]["warmth"] == 0.05 and r.json()["persona"]["bio"] == "New bio."
    assert client.delete(f"/api/v1/characters/{cid}", headers=bearer(owner_token)).status_code == 204
    assert client.get(f"/api/v1/characters/{cid}", headers=bearer(owner_token)).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": ""}, 422, "name"),
        ({"name": "x" * 81}, 422, "name"),
        ({"name": "Ok", "handle": "no spaces"}, 422, "handle"),
        ({"name": "Ok", "persona": {"traits": {"warmth": 3}}}, 422, "persona.traits.warmth"),
        ({"name": "Ok", "persona": {"traits": {"warmth": "high"}}}, 422, "persona.traits.warmth"),
        ({"name": "Ok", "persona": {"traits": {"warmth": None}}}, 422, "persona.traits.warmth"),
        ({"name": "Ok", "template": "unknown"}, 422, "template"),
        ({"name": "Ok", "surprise": 1}, 422, "surprise"),
        ({"handle": "ok"}, 422, "name"),
    ],
)
def test_create_bad_input_names_the_field_and_saves_nothing(client, runtime, owner_token, body, status, field):
    r = client.post("/api/v1/characters", json=body, headers=bearer(owner_token))
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["message"]
    assert count(runtime) == 0


def test_duplicate_handle_is_refused(client, runtime, owner_token, member_token):
    create(client, owner_token, handle="taken")
    r = client.post("/api/v1/characters", json={"name": "Two", "handle": "TAKEN"}, headers=bearer(member_token))
    assert r.status_code == 422 and r.json()["error"]["field"] == "handle"
    assert "taken" in r.json()["error"]["message"]
    assert count(runtime) == 1
    other = create(client, owner_token, handle="other")
    r = client.patch(f"/api/v1/characters/{other['id']}", json={"handle": "taken", "name": "Changed"},
                     headers=bearer(owner_token))
    assert r.status_code == 422
    assert client.get(f"/api/v1/characters/{other['id']}", headers=bearer(owner_token)).json()["name"] == "Mira"


def test_members_cannot_see_others_characters(client, owner_token, member_token):
    theirs = create(client, owner_token, handle="owners")
    assert client.get(f"/api/v1/characters/{theirs['id']}", headers=bearer(member_token)).status_code == 404
    assert client.get("/api/v1/characters", headers=bearer(member_token)).json()["count"] == 0
    r = client.post(f"/api/v1/characters/{theirs['id']}/pause", headers=bearer(member_token))
    assert r.status_code == 404


def test_read_token_cannot_write(client, make_user, make_token):
    token = make_token(make_user("r@example.com"), scopes="read")
    r = client.post("/api/v1/characters", json={"name": "X"}, headers=bearer(token))
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"


def test_status_actions_duplicate_and_bulk(client, runtime, owner_token):
    a = create(client, owner_token, handle="aa")
    b = create(client, owner_token, handle="bb")
    h = bearer(owner_token)
    assert client.post(f"/api/v1/characters/{a['id']}/pause", headers=h).json()["status"] == "paused"
    assert client.post(f"/api/v1/characters/{a['id']}/resume", headers=h).json()["status"] == "active"
    assert client.post(f"/api/v1/characters/{a['id']}/archive", headers=h).json()["status"] == "archived"
    r = client.post(f"/api/v1/characters/{a['id']}/pause", headers=h)
    assert r.status_code == 409 and "archived" in r.json()["error"]["message"]
    copy = client.post(f"/api/v1/characters/{b['id']}/duplicate", headers=h)
    assert copy.status_code == 201 and copy.json()["handle"] == "bb_copy" and copy.json()["status"] == "paused"
    r = client.post("/api/v1/characters/bulk", json={"action": "pause", "ids": [b["id"], 999999]}, headers=h)
    assert r.json() == {"action": "pause", "done": [b["id"]], "skipped": [{"id": 999999, "reason": "not found"}]}
    paused = client.get("/api/v1/characters?status=paused&sort=handle", headers=h).json()
    assert [c["handle"] for c in paused["data"]] == ["bb", "bb_copy"]
    r = client.post("/api/v1/characters/bulk", json={"action": "delete", "ids": [b["id"], copy.json()["id"]]},
                    headers=h)
    assert len(r.json()["done"]) == 2 and count(runtime) == 1
    r = client.post("/api/v1/characters/bulk", json={"action": "explode", "ids": [1]}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "action"


def test_list_pagination_and_bad_params(client, owner_token):
    for i in range(7):
        create(client, owner_token, name=f"P{i}", handle=f"page_{i}")
    h = bearer(owner_token)
    first = client.get("/api/v1/characters?limit=3&sort=name", headers=h).json()
    second = client.get("/api/v1/characters?limit=3&offset=3&sort=name", headers=h).json()
    assert first["count"] == 7 and [c["name"] for c in first["data"]] == ["P0", "P1", "P2"]
    assert [c["name"] for c in second["data"]] == ["P3", "P4", "P5"]
    assert client.get("/api/v1/characters?sort=height", headers=h).json()["error"]["field"] == "sort"
    assert client.get("/api/v1/characters?status=asleep", headers=h).status_code == 422
    assert client.get("/api/v1/characters?limit=0", headers=h).status_code == 422


def test_export_import_and_prompt(client, runtime, owner_token):
    src = create(client, owner_token, handle="src", template="indie-game-dev")
    h = bearer(owner_token)
    exported = client.get(f"/api/v1/characters/{src['id']}/export", headers=h)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    assert "src.persona.json" in exported.headers["content-disposition"]
    assert import_persona_json(exported.text) == Persona.model_validate(src["persona"])
    r = client.post("/api/v1/characters/import", json={"name": "Copy", "handle": "imported",
                                                       "persona_json": exported.text}, headers=h)
    assert r.status_code == 201 and r.json()["persona"] == src["persona"]
    prompt = client.get(f"/api/v1/characters/{src['id']}/prompt", headers=h).json()["prompt"]
    assert "@src" in prompt and "TABOO" in prompt
    before = count(runtime)
    for bad, field in [("{oops", "json"), ('{"schema_version": 1, "traits": {"energy": 9}}', "persona.traits.energy"),
                       ('{"schema_version": 1, "mood": "x"}', "persona.mood"), ("[]", "json")]:
        r = client.post("/api/v1/characters/import", json={"name": "Bad", "persona_json": bad}, headers=h)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
        r = client.put(f"/api/v1/characters/{src['id']}/persona", json={"persona_json": bad}, headers=h)
        assert r.status_code == 422
    assert count(runtime) == before
    assert client.get(f"/api/v1/characters/{src['id']}", headers=h).json()["persona"] == src["persona"]


def test_disclosure_off_is_recorded(client, owner_token):
    c = create(client, owner_token, handle="disc", bio="Hi.")
    h = bearer(owner_token)
    r = client.patch(f"/api/v1/characters/{c['id']}", json={"disclosure_text": "  "}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "disclosure_text"
    r = client.patch(f"/api/v1/characters/{c['id']}", json={"disclosure_enabled": False}, headers=h).json()
    assert r["disclosure_enabled"] is False and r["disclosure_disabled_by"] and r["disclosure_disabled_at"]
    assert r["public_bio"] == "Hi."


def test_preview_generate_texts_usage(client, owner_token):
    c = create(client, owner_token, handle="writer", template="home-chef")
    h = bearer(owner_token)
    r = client.post(f"/api/v1/characters/{c['id']}/preview", json={"seed": 3, "shift_trait": "humour"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["platform"] for s in body["samples"]] == ["instagram", "x"] and body["reply"]["text"]
    assert body["trait_shift"]["changes"][0]["trait"] == "humour"
    persona = dict(c["persona"])
    persona["traits"] = {**persona["traits"], "formality": 1.0}
    edited = client.post(f"/api/v1/characters/{c['id']}/preview", json={"seed": 3, "persona": persona},
                         headers=h).json()
    assert edited["trait_shift"]["changes"][0]["trait"] == "formality"
    bad = client.post(f"/api/v1/characters/{c['id']}/preview", json={"persona": {"traits": {"warmth": 2}}},
                      headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "persona.traits.warmth"
    r = client.post(f"/api/v1/characters/{c['id']}/generate",
                    json={"platform": "x", "kind": "thread", "brief": "weeknight pasta"}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "thread" and len(r.json()["parts"]) > 1 and r.json()["backend"] == "offline"
    r = client.post(f"/api/v1/characters/{c['id']}/generate", json={"platform": "tiktok"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "platform"
    texts = client.get(f"/api/v1/characters/{c['id']}/texts", headers=h).json()
    assert texts["count"] == 1
    usage = client.get(f"/api/v1/characters/{c['id']}/usage", headers=h).json()
    assert usage["by_model"][0]["backend"] == "offline" and usage["cap_reached"] is False
    options = client.get("/api/v1/characters/writing-options", headers=h).json()
    assert {"x", "instagram", "youtube"} <= {p["platform"] for p in options["platforms"]}
    assert len(options["templates"]) >= 5


def test_persona_templates(client, runtime, owner_token):
    c = create(client, owner_token, handle="tpl", persona={"tone_of_voice": "Gentle."})
    h = bearer(owner_token)
    listed = client.get("/api/v1/persona-templates", headers=h).json()
    assert listed["count"] >= 8 and all(t["builtin"] for t in listed["data"])
    r = client.post("/api/v1/persona-templates", json={"character_id": c["id"], "name": "Gentle one"}, headers=h)
    assert r.status_code == 201 and r.json()["key"].startswith("saved:")
    key = r.json()["key"]
    again = client.post("/api/v1/persona-templates", json={"character_id": c["id"], "name": "gentle ONE"}, headers=h)
    assert again.status_code == 409 and again.json()["error"]["field"] == "name"
    new = create(client, owner_token, name="From tpl", handle="from_tpl", template=key)
    assert new["persona"]["tone_of_voice"] == "Gentle."
    assert client.delete(f"/api/v1/persona-templates/{r.json()['template_id']}", headers=h).status_code == 204
    assert count(runtime, PersonaTemplate) == 0


def test_text_backends_keys_are_write_only(client, runtime, owner_token, member_token, models_server):
    h = bearer(owner_token)
    r = client.post("/api/v1/text-backends", json={"name": "lm-studio", "kind": "openai_compat",
                                                   "base_url": models_server.base_url, "api_key": "sk-never-shown"},
                    headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["has_api_key"] is True and "sk-never-shown" not in r.text
    listed = client.get("/api/v1/text-backends", headers=h)
    assert "sk-never-shown" not in listed.text and listed.json()["count"] == 1
    with runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(StoredSecret)) == 1
    test = client.post(f"/api/v1/text-backends/{body['id']}/test", headers=h).json()
    assert test["ok"] is True and test["models"] == ["tiny-model"]
    unsaved = client.post("/api/v1/text-backends/test", json={"kind": "openai_compat",
                                                              "base_url": models_server.base_url}, headers=h).json()
    assert unsaved["ok"] is True
    r = client.post("/api/v1/text-backends", json={"name": "nope", "kind": "ollama"}, headers=bearer(member_token))
    assert r.status_code == 403
    r = client.post("/api/v1/text-backends", json={"name": "claude", "kind": "anthropic"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "api_key"
    assert count(runtime, TextBackendConfig) == 1
    char = create(client, owner_token, handle="uses_lm", text_backend="lm-studio",
                  fallback_chain=[{"backend": "offline", "model": ""}])
    assert char["text_backend"] == "lm-studio"
    r = client.post(f"/api/v1/text-backends/{body['id']}/pull", json={"model": "llama3.2"}, headers=h)
    assert r.status_code == 422 and "Ollama" in r.json()["error"]["message"]
    r = client.patch(f"/api/v1/text-backends/{body['id']}", json={"api_key": ""}, headers=h)
    assert r.json()["has_api_key"] is False
    assert client.delete(f"/api/v1/text-backends/{body['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/characters/{char['id']}", headers=h).json()["text_backend"] == "offline"


def test_price_table_api(client, owner_token, member_token):
    h = bearer(owner_token)
    table = client.get("/api/v1/text-backends/prices", headers=h).json()
    assert any(r["source"] == "default" for r in table["data"])
    row = {"backend_kind": "anthropic", "model": "claude-haiku-4-5", "input_per_mtok_usd": 1.5,
           "output_per_mtok_usd": 6}
    r = client.put("/api/v1/text-backends/prices", json={"data": [row]}, headers=h)
    assert r.status_code == 200
    assert {"source": "edited", **row} in r.json()["data"]
    r = client.put("/api/v1/text-backends/prices", json={"data": [{**row, "input_per_mtok_usd": -1}]}, headers=h)
    assert r.status_code == 422
    r = client.put("/api/v1/text-backends/prices", json={"data": []}, headers=bearer(member_token))
    assert r.status_code == 403


def test_browser_session_calls_need_csrf(client, make_user, login):
    make_user("owner@example.com", owner=True)
    login(client)
    r = client.post("/api/v1/characters", json={"name": "No CSRF"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = client.post("/api/v1/characters", json={"name": "With CSRF"},
                    headers={"X-CSRF-Token": client.cookies["ainf_csrf"]})
    assert r.status_code == 201


# ---- streamed writing ---------------------------------------------------------------------------------


def read_events(response) -> list[tuple[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """Parse a text/event-stream body as it arrives: (event, JSON data) pairs."""
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return events


def test_generate_stream_sends_deltas_then_the_same_result_as_generate(client, owner_token):
    c = create(client, owner_token, handle="streamer", template="home-chef")
    h = bearer(owner_token)
    url = f"/api/v1/characters/{c['id']}/generate/stream"
    with client.stream("POST", url, json={"platform": "x", "kind": "thread", "brief": "weeknight pasta"},
                       headers=h) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        events = read_events(r)
    names = [n for n, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"} and len(names) >= 2
    assert all(d["backend"] == "offline" and d["text"] for n, d in events if n == "delta")
    done = events[-1][1]
    assert done["kind"] == "thread" and len(done["parts"]) > 1 and done["flagged"] is False
    plain = client.post(f"/api/v1/characters/{c['id']}/generate", json={"platform": "x"}, headers=h)
    assert set(done) == set(plain.json())
    texts = client.get(f"/api/v1/characters/{c['id']}/texts", headers=h).json()
    assert texts["count"] == 2 and texts["data"][1]["id"] == done["id"] and texts["data"][1]["text"] == done["text"]
    usage = client.get(f"/api/v1/characters/{c['id']}/usage", headers=h).json()
    assert usage["by_model"][0]["calls"] == 2


def test_generate_stream_refuses_bad_input_with_json_before_streaming(client, runtime, make_user, make_token,
                                                                      owner_token):
    c = create(client, owner_token, handle="strict")
    h = bearer(owner_token)
    url = f"/api/v1/characters/{c['id']}/generate/stream"
    for body, status, field in [({"platform": "tiktok"}, 422, "platform"),
                                ({"platform": "x", "kind": "reply"}, 422, "reply_to"),
                                ({"platform": "x", "style": "shouty"}, 422, "style"),
                                ({"platform": "x", "colour": "red"}, 422, "colour"),
                                ({}, 422, "platform")]:
        r = client.post(url, json=body, headers=h)
        assert r.status_code == status and r.headers["content-type"] == "application/json", (body, r.text)
        assert r.json()["error"]["field"] == field
    assert client.post("/api/v1/characters/999/generate/stream", json={"platform": "x"}, headers=h).status_code == 404
    assert client.post(url, json={"platform": "x"}, headers=bearer("not-a-token")).status_code == 401
    reader = make_token(make_user("reader@example.com", owner=False), scopes="read")
    r = client.post(url, json={"platform": "x"}, headers=bearer(reader))
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    assert count(runtime, GeneratedText) == 0 and count(runtime, TextUsage) == 0


def test_generate_stream_from_the_browser_needs_the_csrf_header(client, make_user, login):
    make_user("owner@example.com", owner=True)
    login(client)
    cid = client.post("/api/v1/characters", json={"name": "Web Writer"},
                      headers={"X-CSRF-Token": client.cookies["ainf_csrf"]}).json()["id"]
    url = f"/api/v1/characters/{cid}/generate/stream"
    r = client.post(url, json={"platform": "instagram"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    with client.stream("POST", url, json={"platform": "instagram", "brief": "rainy walk"},
                       headers={"X-CSRF-Token": client.cookies["ainf_csrf"]}) as r:
        events = read_events(r)
    assert r.status_code == 200 and events[-1][0] == "done" and events[-1][1]["text"]


@pytest.fixture
def model_servers() -> Iterator[dict[str, tuple[LocalServer, FakeState]]]:
    running: dict[str, tuple[LocalServer, FakeState]] = {}
    try:
        for kind in ("openai", "ollama"):
            state = FakeState()
            running[kind] = (LocalServer(APPS[kind](state)).start(), state)
        yield running
    finally:
        for server, _ in running.values():
            server.stop()


def test_generate_stream_restarts_when_a_backend_fails_mid_answer(client, runtime, owner_token, model_servers):
    h = bearer(owner_token)
    (openai, openai_state), (ollama, _) = model_servers["openai"], model_servers["ollama"]
    openai_state.reset("malformed")
    for body in ({"name": "flaky", "kind": "openai_compat", "base_url": openai.url + "/v1"},
                 {"name": "backup", "kind": "ollama", "base_url": ollama.url}):
        r = client.post("/api/v1/text-backends", json={**body, "default_model": "fake-small"}, headers=h)
        assert r.status_code == 201, r.text
    c = create(client, owner_token, handle="fallback", text_backend="flaky",
               fallback_chain=[{"backend": "backup", "model": ""}])
    with client.stream("POST", f"/api/v1/characters/{c['id']}/generate/stream",
                       json={"platform": "youtube", "kind": "title"}, headers=h) as r:
        events = read_events(r)
    deltas = [d for n, d in events if n == "delta"]
    assert [(d["backend"], d["restart"]) for d in deltas[:3]] == [("flaky", False), ("flaky", False),
                                                                  ("backup", True)]
    restart = next(i for i, d in enumerate(deltas) if d["restart"])
    done = events[-1][1]
    assert events[-1][0] == "done" and done["backend"] == "backup"
    assert done["text"] == "".join(d["text"] for d in deltas[restart:]) == REPLY
    assert any(n.startswith("flaky: permanent") for n in done["notes"])
