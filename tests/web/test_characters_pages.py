"""Character pages: dashboard, create/edit with field errors and kept values, preview, actions, settings."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ainfluencer.characters.persona import DISCLOSURE_LINE
from ainfluencer.characters.templates import BUILTIN_TEMPLATES
from ainfluencer.db.models import AuditLog, Character, CharacterStatus, GeneratedText, TextBackendConfig
from ainfluencer.services import auth
from ainfluencer.services import characters as svc


def csrf(client: TestClient) -> str:
    if "ainf_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["ainf_csrf"]


def post_form(client: TestClient, url: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
    return client.post(url, data={**(data or {}), "csrf_token": csrf(client)}, **kwargs)


def count(runtime, model=Character) -> int:
    with runtime.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def owner(client, make_user, login):
    user = make_user("owner@example.com", owner=True)
    login(client)
    return user


def form_for(template: str | None = None, **overrides: str) -> dict[str, Any]:
    """The create form as the browser sends it (persona fields from a template or the defaults)."""
    from ainfluencer.characters.persona import Persona
    from ainfluencer.web.characters import persona_to_form

    persona = BUILTIN_TEMPLATES[template].persona if template else Persona()
    data: dict[str, Any] = {**persona_to_form(persona), "name": "Mira Vale", "handle": "mira.vale",
                            "timezone": "Europe/Lisbon", "disclosure_text": DISCLOSURE_LINE,
                            "template": template or ""}
    data.update(overrides)
    return data


def make(runtime, user, n: int = 1, **kw) -> list[int]:
    with runtime.db.session() as s:
        u = auth.get_user_by_email(s, user.email)
        assert u is not None
        return [svc.create_character(s, user=u, name=f"Char {i:03d}", handle=f"char_{i:03d}", **kw).id
                for i in range(n)]


def test_nav_leads_to_the_real_page(client, owner):
    html = client.get("/characters").text
    assert "No characters yet" in html and "coming soon" not in html
    assert 'href="/static/characters.css' in html and 'src="/static/characters.js' in html
    assert "<style" not in html and "style=" not in html and "<script>" not in html  # CSP: external files only


def test_requires_sign_in(client):
    r = client.get("/characters", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_create_from_template_page_prefills_and_creates(client, runtime, owner):
    page = client.get("/characters/new?template=home-chef").text
    assert 'type="range"' in page and 'name="trait_warmth"' in page
    assert BUILTIN_TEMPLATES["home-chef"].persona.tone_of_voice in page
    for template in BUILTIN_TEMPLATES.values():
        assert template.name in page
    r = post_form(client, "/characters/new", form_for("home-chef", trait_warmth="0.95"), follow_redirects=False)
    assert r.status_code == 303, r.text
    detail = client.get(r.headers["location"]).text
    assert "Character created" in detail and "@mira.vale" in detail and DISCLOSURE_LINE in detail
    with runtime.db.session() as s:
        c = s.scalars(select(Character)).one()
        p = svc.persona_of(c)
        assert p.traits.warmth == 0.95 and p.tone_of_voice == BUILTIN_TEMPLATES["home-chef"].persona.tone_of_voice
        assert c.timezone == "Europe/Lisbon"


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"name": ""}, "name", "Give the character a name"),
        ({"name": "x" * 81}, "name", "80 or fewer"),
        ({"handle": "bad handle!"}, "handle", "only letters"),
        ({"trait_humour": "1.7"}, "trait_humour", "between 0.0 and 1.0"),
        ({"trait_energy": "lots"}, "trait_energy", "energy"),
        ({"age": "12"}, "age", "18"),
        ({"languages": "klingon!!"}, "languages", "BCP-47"),
        ({"hashtag_min": "5", "hashtag_max": "2"}, "hashtag_max", "must not exceed"),
        ({"timezone": "Moon/Base"}, "timezone", "time zone"),
        ({"disclosure_text": ""}, "disclosure_text", "not emptied"),
    ],
)
def test_errors_show_next_to_fields_with_values_kept(client, runtime, owner, overrides, field, words):
    data = form_for("tech-reviewer", tone_of_voice="My very own tone.", **overrides)
    r = post_form(client, "/characters/new", data)
    assert r.status_code == 422
    html = r.text
    error = re.search(rf'<p class="field-error" id="{re.escape(field)}-error">([^<]*)</p>', html)
    assert error, html[:3000]
    assert words.lower() in error.group(1).lower()
    assert f'aria-describedby="{field}-error"' in html
    assert "My very own tone." in html  # everything typed is still there
    assert 'value="mira.vale"' in html or field == "handle"
    assert count(runtime) == 0


def test_duplicate_handle_shows_next_to_handle(client, runtime, owner):
    make(runtime, owner, 1)
    r = post_form(client, "/characters/new", form_for(handle="CHAR_000"))
    assert r.status_code == 422 and "@char_000 is taken" in r.text and count(runtime) == 1


def test_dashboard_filters_search_sort_pagination_and_views(client, runtime, owner):
    ids = make(runtime, owner, 30)
    with runtime.db.session() as s:
        for cid in ids[:5]:
            c = s.get(Character, cid)
            assert c is not None
            c.status = CharacterStatus.paused
    page1 = client.get("/characters?sort=name").text
    assert page1.count('class="card char-card"') == 24 and "page 1 of 2" in page1
    assert 'rel="next"' in page1 and "Char 000" in page1
    page2 = client.get("/characters?sort=name&page=2").text
    assert page2.count('class="card char-card"') == 6 and "Char 029" in page2
    paused = client.get("/characters?status=paused").text
    assert paused.count('class="card char-card"') == 5 and 'aria-current="page">Paused' in paused
    found = client.get("/characters?q=char_017").text
    assert found.count('class="card char-card"') == 1 and "Char 017" in found
    listed = client.get("/characters?view=list&sort=-name").text
    assert "<table" in listed and listed.index("Char 029") < listed.index("Char 000")
    assert "appear once Analytics lands" in listed
    none = client.get("/characters?q=zzz").text
    assert "No characters match" in none


def test_dashboard_stats_from_real_rows(client, runtime, owner):
    (cid,) = make(runtime, owner, 1)
    with runtime.db.session() as s:
        for _ in range(3):
            s.add(GeneratedText(character_id=cid, platform="x", kind="tweet", style="casual", text="t",
                                backend="offline"))
    html = client.get("/characters").text
    assert re.search(r"<dt>Texts</dt><dd>3", html)


def test_bulk_pause_resume_and_delete_with_confirmation(client, runtime, owner):
    ids = make(runtime, owner, 3)
    r = post_form(client, "/characters/bulk", {"action": "pause", "ids": [str(i) for i in ids[:2]],
                                                "back": "/characters?view=list"}, follow_redirects=False)
    assert r.status_code == 303 and "done=pause" in r.headers["location"] and "view=list" in r.headers["location"]
    assert "Paused 2 characters." in client.get(r.headers["location"]).text
    with runtime.db.session() as s:
        assert [s.get(Character, i).status for i in ids] == [CharacterStatus.paused] * 2 + [CharacterStatus.active]
    post_form(client, "/characters/bulk", {"action": "resume", "ids": [str(ids[0])]})
    confirm = post_form(client, "/characters/bulk", {"action": "delete", "ids": [str(i) for i in ids]})
    assert confirm.status_code == 200 and "Delete 3 characters?" in confirm.text and count(runtime) == 3
    r = post_form(client, "/characters/bulk", {"action": "delete", "confirm": "yes",
                                                "ids": [str(i) for i in ids]}, follow_redirects=False)
    assert r.status_code == 303 and count(runtime) == 0
    r = post_form(client, "/characters/bulk", {"action": "pause"}, follow_redirects=False)
    assert "error=none" in r.headers["location"]


def test_bulk_without_csrf_is_refused(client, runtime, owner):
    ids = make(runtime, owner, 1)
    r = client.post("/characters/bulk", data={"action": "delete", "confirm": "yes", "ids": str(ids[0])})
    assert r.status_code == 403 and count(runtime) == 1


def test_edit_sliders_preview_and_save(client, runtime, owner):
    (cid,) = make(runtime, owner, 1, template="fitness-coach")
    page = client.get(f"/characters/{cid}/edit").text
    assert 'id="trait-energy-value"' in page and "Save changes" in page
    with runtime.db.session() as s:
        c = s.get(Character, cid)
        assert c is not None
        from ainfluencer.web.characters import persona_to_form

        data = {**persona_to_form(svc.persona_of(c)), "name": c.name, "handle": c.handle, "timezone": "UTC",
                "disclosure_text": DISCLOSURE_LINE, "disclosure_enabled": "on"}
    data.update(trait_formality="1.0", trait_energy="0.0", seed="11")
    fragment = post_form(client, f"/characters/{cid}/preview", data, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "Instagram caption" in fragment.text and "X post" in fragment.text and "Reply on" in fragment.text
    assert "What the change does" in fragment.text and "Formality" in fragment.text
    assert 'name="seed" value="11"' in fragment.text
    regenerated = post_form(client, f"/characters/{cid}/preview", {**data, "regenerate": "1"},
                            headers={"HX-Request": "true"})
    assert 'name="seed" value="11"' not in regenerated.text
    # without JavaScript the same button renders the whole page with the preview filled in
    full = post_form(client, f"/characters/{cid}/preview", data)
    assert "<html" in full.text and "What the change does" in full.text and 'value="1.00"' in full.text
    bad = post_form(client, f"/characters/{cid}/preview", {**data, "trait_warmth": "9"},
                    headers={"HX-Request": "true"})
    assert "needs valid values" in bad.text
    r = post_form(client, f"/characters/{cid}/edit", data, follow_redirects=False)
    assert r.status_code == 303
    with runtime.db.session() as s:
        c = s.get(Character, cid)
        assert c is not None and svc.persona_of(c).traits.formality == 1.0


def test_new_character_preview_uses_the_template_as_baseline(client, owner):
    data = form_for("illustrator", trait_humour="0.0", seed="5")
    r = post_form(client, "/characters/preview", data, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "Humour" in r.text and "What the change does" in r.text


def test_disclosure_off_needs_confirmation_and_is_recorded(client, runtime, owner):
    (cid,) = make(runtime, owner, 1)
    with runtime.db.session() as s:
        c = s.get(Character, cid)
        assert c is not None
        from ainfluencer.web.characters import persona_to_form

        data = {**persona_to_form(svc.persona_of(c)), "name": c.name, "handle": c.handle, "timezone": "UTC",
                "disclosure_text": DISCLOSURE_LINE}
    r = post_form(client, f"/characters/{cid}/edit", data)
    assert r.status_code == 422 and 'id="disclosure_confirm-error"' in r.text
    r = post_form(client, f"/characters/{cid}/edit", {**data, "disclosure_confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    detail = client.get(f"/characters/{cid}").text
    assert "Disclosure turned off" in detail
    with runtime.db.session() as s:
        assert s.scalar(select(AuditLog).where(AuditLog.action == "character.disclosure_disabled")) is not None


def test_single_actions_duplicate_delete_export(client, runtime, owner):
    (cid,) = make(runtime, owner, 1, template="language-teacher")
    r = post_form(client, f"/characters/{cid}/status", {"action": "pause"}, follow_redirects=False)
    assert r.status_code == 303 and "Paused 1 character." in client.get(r.headers["location"]).text
    post_form(client, f"/characters/{cid}/status", {"action": "resume"})
    r = post_form(client, f"/characters/{cid}/duplicate", follow_redirects=False)
    assert r.status_code == 303 and count(runtime) == 2
    assert "starts paused" in client.get(r.headers["location"]).text
    exported = client.get(f"/characters/{cid}/export.json")
    assert exported.headers["content-type"].startswith("application/json")
    assert json.loads(exported.text)["schema_version"] == 1
    prompt = client.get(f"/characters/{cid}/prompt.txt")
    assert prompt.headers["content-type"].startswith("text/plain") and "@char_000" in prompt.text
    confirm = client.get(f"/characters/{cid}/delete").text
    assert "Delete Char 000" in confirm and "cannot be undone" in confirm
    assert post_form(client, f"/characters/{cid}/delete", follow_redirects=False).headers["location"].endswith(
        "/delete")
    assert count(runtime) == 2
    r = post_form(client, f"/characters/{cid}/delete", {"confirm": "yes"}, follow_redirects=False)
    assert r.headers["location"] == "/characters?done=delete&n=1" and count(runtime) == 1


def test_import_page_and_malformed_files(client, runtime, owner):
    (cid,) = make(runtime, owner, 1, template="indie-game-dev")
    exported = client.get(f"/characters/{cid}/export.json").text
    r = post_form(client, "/characters/import", {"name": "Imported", "handle": "imported"},
                  files={"file": ("p.json", exported.encode(), "application/json")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert count(runtime) == 2
    for bad, words in [("{nope", "malformed at line 1"), ('{"schema_version": 1, "traits": {"warmth": 5}}',
                                                          "between 0.0 and 1.0"), ("", "Choose a persona file")]:
        r = post_form(client, "/characters/import", {"name": "Bad", "persona_json": bad})
        assert r.status_code == 422 and words in r.text and 'id="json-error"' in r.text
        assert "Bad" in r.text  # the typed name is kept
    assert count(runtime) == 2
    r = post_form(client, f"/characters/{cid}/persona-import", files={"file": ("x.json", b"{oops", "application/json")})
    assert r.status_code == 422 and 'id="persona_file-error"' in r.text


def test_generate_on_the_detail_page(client, runtime, owner):
    (cid,) = make(runtime, owner, 1, template="home-chef")
    page = client.get(f"/characters/{cid}").text
    assert "Write it" in page and "appear once Analytics lands" in page
    # characters.js streams from the API; without it the same form posts to the page route below
    form = re.search(r'<form [^>]*id="generate-form"[^>]*>', page)
    assert form is not None
    assert f'action="/characters/{cid}/generate"' in form.group(0)
    assert f'data-stream-url="/api/v1/characters/{cid}/generate/stream"' in form.group(0)
    assert 'data-output="generated"' in form.group(0) and 'id="generated"' in page
    assert "/static/characters.js" in page and "<script>" not in page
    r = post_form(client, f"/characters/{cid}/generate", {"platform": "x", "kind": "thread", "brief": "pasta"},
                  headers={"HX-Request": "true"})
    assert r.status_code == 200 and '<ol class="thread-parts">' in r.text and "<html" not in r.text
    r = post_form(client, f"/characters/{cid}/generate", {"platform": "youtube", "kind": "title", "template": "tip"})
    assert r.status_code == 200 and "youtube title" in r.text.lower()
    r = post_form(client, f"/characters/{cid}/generate", {"platform": "x", "kind": "reply"})
    assert r.status_code == 422 and "Paste the comment" in r.text
    assert count(runtime, GeneratedText) == 2


def test_save_as_template_then_start_from_it(client, runtime, owner):
    (cid,) = make(runtime, owner, 1, template="illustrator")
    r = post_form(client, f"/characters/{cid}/template", {"name": "My illustrator"}, follow_redirects=False)
    assert r.status_code == 303
    r = post_form(client, f"/characters/{cid}/template", {"name": "my ILLUSTRATOR"})
    assert r.status_code == 409 and 'id="name-error"' in r.text
    page = client.get("/characters/new").text
    assert "Saved templates" in page and "My illustrator" in page


def test_model_settings_page(client, runtime, owner):
    (cid,) = make(runtime, owner, 1)
    page = client.get(f"/characters/{cid}/model").text
    assert "template writer (offline fallback)" in page and "Monthly cap" in page
    r = post_form(client, f"/characters/{cid}/model", {"text_backend": "offline", "monthly_usage_cap_usd": "-3"})
    assert r.status_code == 422 and 'id="monthly_usage_cap_usd-error"' in r.text
    r = post_form(client, f"/characters/{cid}/model", {"text_backend": "ghost"})
    assert r.status_code == 422 and "Settings" in r.text
    r = post_form(client, f"/characters/{cid}/model", {"text_backend": "offline", "monthly_usage_cap_usd": "12.5"},
                  follow_redirects=False)
    assert r.status_code == 303
    with runtime.db.session() as s:
        c = s.get(Character, cid)
        assert c is not None and c.monthly_usage_cap_usd == 12.5


class ModelsServer:
    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                raw = json.dumps({"models": [{"name": "llama3.2:latest"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def ollama_tags() -> Iterator[ModelsServer]:
    server = ModelsServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_settings_text_models_add_test_edit_prices(client, runtime, owner, ollama_tags):
    page = client.get("/settings/text-models").text
    assert "Add a backend" in page and "Price table" in page and "gpt-4o-mini" in page
    r = post_form(client, "/settings/text-models", {"kind": "ollama", "name": "local", "base_url": ollama_tags.base_url,
                                                    "intent": "test"})
    assert r.status_code == 200 and "Connection works." in r.text and "llama3.2:latest" in r.text
    assert count(runtime, TextBackendConfig) == 0
    r = post_form(client, "/settings/text-models", {"kind": "anthropic", "name": "claude", "intent": "save"})
    assert r.status_code == 422 and 'id="api_key-error"' in r.text
    # "local" is the built-in in-process model: a server entry needs another name
    r = post_form(client, "/settings/text-models", {"kind": "ollama", "name": "local", "base_url": ollama_tags.base_url,
                                                    "intent": "save"})
    assert r.status_code == 422 and "built-in" in r.text
    r = post_form(client, "/settings/text-models", {"kind": "ollama", "name": "home-ollama",
                                                    "base_url": ollama_tags.base_url,
                                                    "default_model": "llama3.2:latest", "api_key": "sk-hidden",
                                                    "intent": "save"}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/settings/text-models").text
    assert "home-ollama" in page and "key stored" in page and "sk-hidden" not in page
    with runtime.db.session() as s:
        backend_id = s.scalars(select(TextBackendConfig.id)).one()
    post_form(client, f"/settings/text-models/{backend_id}/test")
    assert "1 model available" in client.get("/settings/text-models").text
    r = post_form(client, f"/settings/text-models/{backend_id}/edit", {"base_url": "nope", "enabled": "on"})
    assert r.status_code == 422 and "http://" in r.text
    r = post_form(client, "/settings/text-models/prices",
                  {"price_kind": ["", ""], "price_model": ["my-model", "other"], "price_in": ["1", "x"],
                   "price_out": ["2", "1"]})
    assert r.status_code == 422
    r = post_form(client, "/settings/text-models/prices",
                  {"price_kind": ["ollama"], "price_model": ["my-model"], "price_in": ["1.5"], "price_out": ["2"]},
                  follow_redirects=False)
    assert r.status_code == 303
    assert "my-model" in client.get("/settings/text-models").text
    post_form(client, f"/settings/text-models/{backend_id}/delete")
    assert count(runtime, TextBackendConfig) == 0


def test_members_cannot_change_text_backends(client, make_user, login):
    make_user("owner@example.com", owner=True)
    make_user("member@example.com", owner=False)
    login(client, "member@example.com")
    page = client.get("/settings/text-models").text
    assert "Only the owner" in page and "Add a backend" not in page
    r = post_form(client, "/settings/text-models", {"kind": "ollama", "name": "x", "intent": "save"})
    assert r.status_code == 403
