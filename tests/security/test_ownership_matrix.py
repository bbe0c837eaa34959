"""Ownership matrix, generated from the app's route table.

User A (a member) owns one of everything; user B (another member) calls every route that takes an id
with A's ids. Each call must answer 404 (or 403 where a role check is the documented answer, e.g.
owner-only settings) and change nothing in the database.

A new route is covered without a new test: its path parameters are filled from ``FACTORIES`` (keyed
by parameter name) and its JSON body and required query values are generated from the OpenAPI
schema. A route with a path parameter the matrix cannot fill fails the test, asking for a factory.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import find
from hypothesis import strategies as st
from sqlalchemy import select

from ainfluencer.academy.models import TeamLesson
from ainfluencer.db.models import (
    ApiToken,
    Base,
    Character,
    GeneratedText,
    Job,
    PersonaTemplate,
    TextBackendConfig,
    User,
    utcnow,
)
from ainfluencer.db.models_automation import AutomationRule, AutomationRun, TriggerKind
from ainfluencer.db.models_calendar import PostingSlot
from ainfluencer.db.models_media import Appearance, Asset, AssetKind, ReferencePhoto, ReviewState
from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount, Webhook
from ainfluencer.posts.models import Post, PostStatus
from ainfluencer.runtime import Runtime
from ainfluencer.services import auth, oauth

PASSWORD = "correct horse battery"

# Rows that a refused request may legitimately touch: B's own sign-in bookkeeping.
VOLATILE_TABLES = {
    "web_sessions": "B's session row records when it was last seen",
    "api_tokens": "last_used_at of B's token (A's token is checked by the /tokens route itself)",
    "login_attempts": "sign-in bookkeeping",
    "heartbeats": "background liveness",
}

# Path parameters that are not ids: the value to send (None: the route is not an id route at all).
NOT_IDS: dict[str, str | None] = {
    "action": "cancel",  # /publications/{publication_id}/{action}
    "platform": "mastodon",
    "token": None,  # /m/{token}: a signed capability link, checked by its signature, not by owner
    "path": None,  # static files
    # Public catalogues, the same for everyone (the Academy's built-in courses, its docs, the voice list):
    "course": None,
    "name": None,
    "voice_id": None,
    # Installation-wide developer apps (Settings → Networks): owner-only, refused to members with 403
    # (publishing_ui/test_publishing_ui_network_apps.py), owned by no user.
    "app": None,
}

# Routes whose ``{action}`` takes other words than a publication's.
ACTIONS = {"/api/v1/posts": "approve", "/posts": "approve"}

# Installation-wide rows (no user owns them): members may read them (200, or 403 for an owner-only page
# such as an edit form); changing them is owner-only, so anything else a member sends must answer 403
# and change nothing.
SHARED = {
    "backend_id": "model servers the owner configures; members read them to pick a character's model chain",
    "lesson_id": "lessons the owner writes for the whole team; members read them, only the owner edits",
}
NO_SUCH_ID = 987_654_321


class World:
    """A's objects, built on first use; ``ids[param]`` is the id to send for that path parameter."""

    def __init__(self, runtime: Runtime, a: User) -> None:
        self.runtime, self.a = runtime, a
        self.ids: dict[str, int | str] = {}

    def get(self, name: str) -> int | str:
        """The id for a parameter name (KeyError: no factory)."""
        if name not in self.ids:
            factory = FACTORIES[name]
            with self.runtime.db.session() as s:
                self.ids[name] = factory(self, s)
        return self.ids[name]

    def add(self, s: Any, row: Any) -> int:
        s.add(row)
        s.flush()
        return int(row.id)


def _character(w: World, s: Any) -> int:
    return w.add(s, Character(user_id=w.a.id, name="Ava", handle="ava-matrix"))


def _account(w: World, s: Any) -> int:
    return w.add(s, SocialAccount(character_id=w.get("character_id"), platform="mastodon",
                                  platform_account_id="109", handle="@ava", created_by=w.a.id))


def _asset(w: World, s: Any) -> int:
    media = w.runtime.settings.media_dir
    media.mkdir(parents=True, exist_ok=True)
    (media / "ava.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 64)
    return w.add(s, Asset(character_id=w.get("character_id"), created_by=w.a.id, kind=AssetKind.image,
                          sha256="a" * 64, path="ava.jpg", mime="image/jpeg", size=67,
                          review_state=ReviewState.in_review))


def _publication(w: World, s: Any) -> int:
    at = utcnow() + timedelta(days=1)
    pub = Publication(group_key="g", character_id=w.get("character_id"), account_id=w.get("account_id"),
                      text="hello", scheduled_at=at, status=PublicationStatus.planned, created_by=w.a.id,
                      dispatch_seq=1)
    pid = w.add(s, pub)
    s.add(Job(kind="publish", payload={"publication_id": pid, "seq": 1}, idempotency_key=f"publish:{pid}:1",
              run_at=at, user_id=w.a.id))
    return pid


def _job(w: World, s: Any) -> int:
    return w.add(s, Job(kind="selftest", payload={"steps": 1}, run_at=utcnow() + timedelta(days=1), user_id=w.a.id))


def _token(w: World, s: Any) -> int:
    user = s.get(User, w.a.id)
    auth.create_api_token(s, user=user, name="a's", scopes="read,write")
    return int(s.scalar(select(ApiToken.id).where(ApiToken.user_id == w.a.id, ApiToken.name == "a's")))


def _pending(w: World, s: Any) -> str:
    grant = oauth._Grant(credentials=oauth.accounts.Credentials(), choices=[])  # noqa: SLF001 - no public maker
    user = s.get(User, w.a.id)
    return oauth._park(s, w.runtime, user=user, platform="facebook", character_id=int(w.get("character_id")),  # noqa: SLF001
                       account_id=None, grant=grant, now=None).id


def _rule(w: World, s: Any) -> int:
    return w.add(s, AutomationRule(character_id=w.get("character_id"), name="daily", enabled=True,
                                   trigger_kind=TriggerKind.daily, trigger_config={"time": "09:00"},
                                   steps=[], created_by=w.a.id))


FACTORIES: dict[str, Callable[[World, Any], int | str]] = {
    "character_id": _character,
    "account_id": _account,
    "asset_id": _asset,
    "publication_id": _publication,
    "job_id": _job,
    "token_id": _token,
    "pending_id": _pending,
    "rule_id": _rule,
    "template_id": lambda w, s: w.add(s, PersonaTemplate(user_id=w.a.id, name="A's template", persona={})),
    "backend_id": lambda w, s: w.add(s, TextBackendConfig(name="a-ollama", kind="ollama",
                                                          base_url="http://127.0.0.1:9", created_by=w.a.id)),
    "webhook_id": lambda w, s: w.add(s, Webhook(user_id=w.a.id, url="https://hooks.example.org/a", events=[])),
    "appearance_id": lambda w, s: w.add(s, Appearance(character_id=w.get("character_id"), name="summer")),
    "photo_id": lambda w, s: w.add(s, ReferencePhoto(character_id=w.get("character_id"),
                                                     asset_id=w.get("asset_id"),
                                                     consent_statement="I am this person and I consent.")),
    "slot_id": lambda w, s: w.add(s, PostingSlot(character_id=w.get("character_id"), weekdays=[0], hour=9)),
    "post_id": lambda w, s: w.add(s, Post(character_id=w.get("character_id"), status=PostStatus.in_review,
                                          text="A's draft", created_by=w.a.id)),
    "generated_text_id": lambda w, s: w.add(s, GeneratedText(character_id=w.get("character_id"), platform="mastodon",
                                                             kind="post", style="casual", text="A's words",
                                                             backend="offline", created_by=w.a.id)),
    "lesson_id": lambda w, s: w.add(s, TeamLesson(title="House style", body="Write like us.")),
    "run_id": lambda w, s: w.add(s, AutomationRun(rule_id=w.get("rule_id"), character_id=w.get("character_id"),
                                                  trigger="manual", created_by=w.a.id)),
}


# ---- minimal valid values from the OpenAPI schema -------------------------------------------------


def _example(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A small value that passes the schema (required properties only), so the handler itself runs."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _example(spec["components"]["schemas"][name], spec)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _example(options[0], spec)
    if "allOf" in schema:
        return _example(schema["allOf"][0], spec)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _example(props[k], spec) for k in schema.get("required", []) if k in props}
    if kind == "array":
        return [_example(schema.get("items", {}), spec) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        fmt = schema.get("format", "")
        if fmt == "date-time":
            return (utcnow() + timedelta(days=2)).isoformat()
        if fmt in ("uri", "url"):
            return "https://example.org/"
        if fmt == "email":
            return "b@example.org"
        if "pattern" in schema:  # the simplest string the pattern accepts (hypothesis shrinks to it)
            return find(st.from_regex(schema["pattern"], fullmatch=True), lambda _: True)
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    return None


def _request_parts(op: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
    """``json``/``files``/``data`` and ``params`` for TestClient from an OpenAPI operation."""
    if op is None:  # a page route: forms read by hand, every field optional
        return {}
    parts: dict[str, Any] = {}
    params = {p["name"]: _example(p.get("schema", {}), spec) for p in op.get("parameters", [])
              if p.get("in") == "query" and p.get("required")}
    if params:
        parts["params"] = params
    content = (op.get("requestBody") or {}).get("content", {})
    if "application/json" in content:
        parts["json"] = _example(content["application/json"]["schema"], spec)
    elif "multipart/form-data" in content:
        parts["files"] = {"file": ("x.png", b"\x89PNG\r\n\x1a\n", "image/png")}
    return parts


# ---- the database before and after -----------------------------------------------------------------


def _snapshot(runtime: Runtime) -> dict[str, str]:
    """A digest of every table's rows (the volatile ones left out)."""
    out: dict[str, str] = {}
    with runtime.db.engine.connect() as c:
        for table in Base.metadata.sorted_tables:
            if table.name in VOLATILE_TABLES:
                continue
            rows = c.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = hashlib.sha256(json.dumps([list(r) for r in rows], default=str).encode()).hexdigest()
    return out


def _answer(r: Any, values: dict[str, Any]) -> tuple[int, str]:
    """Status and words of a refusal, with the ids sent replaced by ``NO_SUCH_ID``."""
    words = r.headers.get("location", "")
    if "json" in r.headers.get("content-type", ""):
        words = str(r.json().get("error", {}).get("message", ""))
    for value in values.values():
        words = re.sub(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])", str(NO_SUCH_ID), words)
    return r.status_code, words


def _id_routes(app: Any) -> Iterator[tuple[str, str, list[str]]]:
    for route in iter_route_contexts(app.routes):
        params = list(getattr(route, "param_convertors", {}) or {})
        methods = sorted((route.methods or set()) - {"HEAD"})
        if not params or not methods:
            continue
        for method in methods:
            yield method, route.path, params


def fill(world: World, method: str, path: str, params: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """Path values for a route: (values, None); (None, None) for a route that takes no ids; or a problem."""
    if all(name in NOT_IDS for name in params):
        return None, None
    values: dict[str, Any] = {}
    for name in params:
        if name in NOT_IDS:
            if NOT_IDS[name] is None:
                return None, None
            values[name] = ACTIONS.get(path.split("/{")[0], NOT_IDS[name]) if name == "action" else NOT_IDS[name]
        elif name in FACTORIES:
            values[name] = world.get(name)
        else:
            return None, (f"{method} {path}: no factory for path parameter '{name}'; register one in FACTORIES "
                          f"(tests/security/test_ownership_matrix.py) keyed by '{name}'")
    return values, None


@pytest.fixture
def matrix(runtime: Runtime, app: Any, make_user: Callable[..., User]) -> Iterator[tuple[TestClient, World]]:
    """B signed in through the real form; A's world (A signs in too, so A's rows are realistic)."""
    make_user("owner@example.com", PASSWORD, owner=True)
    a = make_user("a@example.com", PASSWORD, owner=False)
    make_user("b@example.com", PASSWORD, owner=False)
    with TestClient(app, base_url="http://testserver") as b:
        csrf = b.get("/login").cookies.get("ainf_csrf") or b.cookies["ainf_csrf"]
        r = b.post("/login", data={"email": "b@example.com", "password": PASSWORD, "csrf_token": csrf},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        yield b, World(runtime, a)


def test_second_user_gets_404_for_every_id_route_and_changes_nothing(
    matrix: tuple[TestClient, World], runtime: Runtime, app: Any
) -> None:
    b, world = matrix
    spec = app.openapi()
    csrf = b.cookies["ainf_csrf"]
    missing: list[str] = []
    holes: list[str] = []
    checked = 0
    for method, path, params in _id_routes(app):
        values, problem = fill(world, method, path, params)
        if problem:
            missing.append(problem)
        if values is None:
            continue
        url = path.format(**values)
        op = spec["paths"].get(path, {}).get(method.lower())
        parts = _request_parts(op, spec)
        if method != "GET" and op is None and "files" not in parts:
            parts["data"] = {"csrf_token": csrf}
        before = _snapshot(runtime)
        r = b.request(method, url, headers={"X-CSRF-Token": csrf}, follow_redirects=False, **parts)
        after = _snapshot(runtime)
        checked += 1
        changed = sorted(t for t in before if before[t] != after[t])
        shared = [name for name in params if name in SHARED]
        if shared:
            # Reading is open to members; a page that only the owner may use (an edit form) may refuse.
            ok = r.status_code in (200, 403) if method == "GET" else (
                r.status_code == 403 and "sent from another site" not in r.text)
        else:
            # Refused, and in the very words an id that does not exist gets: B learns nothing about A's row
            # (not even which character it hangs on). Page form posts answer the web's way: a 303 back
            # to a page with ``error=``.
            probe = b.request(method, path.format(**{k: NO_SUCH_ID if k in FACTORIES else v
                                                     for k, v in values.items()}),
                              headers={"X-CSRF-Token": csrf}, follow_redirects=False, **parts)
            refused = r.status_code == 404 or (op is None and r.status_code == 303
                                               and "error=" in r.headers.get("location", ""))
            ok = refused and _answer(r, values) == _answer(probe, {})
        if not ok or changed:
            holes.append(f"{method} {url} -> {r.status_code} {r.headers.get('location', '')} {r.text[:160]!r}"
                         + (f"; changed tables: {changed}" if changed else ""))
    assert not missing, "\n".join(missing)
    assert not holes, f"{len(holes)} of {checked} id routes let user B at user A's objects:\n" + "\n".join(holes)
    assert checked > 100  # the route table really was walked


def test_an_unregistered_id_parameter_asks_for_a_factory(runtime: Runtime, make_user: Callable[..., User]) -> None:
    # The matrix's own guard: a new route whose id parameter nobody registered is reported by name.
    world = World(runtime, make_user("a@example.com", PASSWORD))
    values, problem = fill(world, "GET", "/api/v1/gadgets/{gadget_id}", ["gadget_id"])
    assert values is None and problem is not None
    assert "register one in FACTORIES" in problem and "'gadget_id'" in problem


def test_volatile_tables_exist() -> None:
    # A renamed table must not silently widen what "changed nothing" ignores.
    names = {t.name for t in Base.metadata.sorted_tables}
    assert set(VOLATILE_TABLES) <= names, set(VOLATILE_TABLES) - names
