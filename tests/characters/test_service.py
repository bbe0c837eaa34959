"""The characters service: CRUD, validation that saves nothing on refusal, status, bulk, stats, templates."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from ainfluencer.characters.persona import DISCLOSURE_LINE, Persona, export_persona_json
from ainfluencer.characters.templates import BUILTIN_TEMPLATES
from ainfluencer.db.models import (
    AuditLog,
    Character,
    CharacterStatus,
    GeneratedText,
    ModelPrice,
    PersonaTemplate,
    StoredSecret,
    TextBackendConfig,
    TextUsage,
    User,
    utcnow,
)
from ainfluencer.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ainfluencer.services import characters as svc
from ainfluencer.services import writing
from ainfluencer.services.characters import InvalidFields
from ainfluencer.writing.platform_rules import rules_for, text_length


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.com", owner=True)


@pytest.fixture
def member(make_user, owner):
    return make_user("member@example.com", owner=False)


def _count(runtime, model) -> int:
    with runtime.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _user(s, user: User) -> User:
    found = s.get(User, user.id)
    assert found is not None
    return found


def _create(runtime, user, **kw) -> Character:
    with runtime.db.session() as s:
        return svc.create_character(s, user=_user(s, user), **kw)


def test_create_from_template_and_read_back(runtime, owner):
    c = _create(runtime, owner, name="  Mira   Vale ", handle="@Mira.Travels", template="travel-photographer")
    assert c.name == "Mira Vale"
    assert c.handle == "mira.travels"
    assert c.status == CharacterStatus.active
    assert c.disclosure_enabled and c.disclosure_text == DISCLOSURE_LINE
    template = BUILTIN_TEMPLATES["travel-photographer"].persona
    assert Persona.model_validate(c.persona).traits == template.traits
    # the template's bio fills in when none is typed, and the public bio carries the disclosure
    assert c.bio == template.bio
    assert svc.public_bio(c).endswith(DISCLOSURE_LINE)
    with runtime.db.session() as s:
        assert s.scalar(select(AuditLog).where(AuditLog.action == "character.created")) is not None


def test_handle_is_made_from_the_name_when_empty(runtime, owner):
    c = _create(runtime, owner, name="Zoë Müller-Smith")
    assert c.handle == "zoe_muller_smith"


def test_template_with_partial_persona_overrides_only_given_keys(runtime, owner):
    c = _create(runtime, owner, name="Coach", template="fitness-coach", persona={"tone_of_voice": "Calm."})
    p = Persona.model_validate(c.persona)
    assert p.tone_of_voice == "Calm."
    assert p.traits == BUILTIN_TEMPLATES["fitness-coach"].persona.traits


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"name": ""}, "name", "name"),
        ({"name": "   "}, "name", "name"),
        ({"name": "x" * 81}, "name", "80"),
        ({"name": "Ok", "handle": "a"}, "handle", "2 to 30"),
        ({"name": "Ok", "handle": "has space"}, "handle", "letters"),
        ({"name": "Ok", "handle": "x" * 31}, "handle", "2 to 30"),
        ({"name": "Ok", "persona": {"traits": {"warmth": 1.5}}}, "persona.traits.warmth", "between 0.0 and 1.0"),
        ({"name": "Ok", "persona": {"traits": {"humour": "lots"}}}, "persona.traits.humour", "humour"),
        ({"name": "Ok", "persona": {"traits": {"warmth": -0.1}}}, "persona.traits.warmth", "0.0"),
        ({"name": "Ok", "persona": {"colour": "red"}}, "persona.colour", "unknown field"),
        ({"name": "Ok", "timezone": "Mars/Base"}, "timezone", "time zone"),
        ({"name": "Ok", "monthly_usage_cap_usd": -1}, "monthly_usage_cap_usd", "between"),
        ({"name": "Ok", "text_backend": "nope"}, "text_backend", "Settings"),
        ({"name": "Ok", "template": "no-such"}, "template", "template"),
        ({"name": "Ok", "disclosure_text": "   "}, "disclosure_text", "not emptied"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_saved(runtime, owner, kwargs, field, words):
    before = _count(runtime, Character), _count(runtime, AuditLog)
    with pytest.raises(InvalidInput) as info:
        _create(runtime, owner, **kwargs)
    assert info.value.field == field
    assert words.lower() in info.value.message.lower()
    assert (_count(runtime, Character), _count(runtime, AuditLog)) == before


def test_several_bad_fields_are_reported_together(runtime, owner):
    with pytest.raises(InvalidFields) as info:
        _create(runtime, owner, name="", handle="!!", persona={"traits": {"energy": 2}})
    assert set(info.value.errors) == {"name", "handle", "persona.traits.energy"}


def test_duplicate_handle_is_a_conflict_case_insensitively(runtime, owner, member):
    _create(runtime, owner, name="One", handle="same.handle")
    before = _count(runtime, Character)
    with pytest.raises(InvalidInput) as info:
        _create(runtime, member, name="Two", handle="SAME.Handle")
    assert info.value.field == "handle" and "taken" in info.value.message
    assert _count(runtime, Character) == before


def test_unique_constraint_backs_the_check(runtime, owner):
    _create(runtime, owner, name="One", handle="race")
    with pytest.raises(Conflict) as info, runtime.db.session() as s:
        c = Character(user_id=owner.id, name="Two", handle="race", persona={})
        s.add(c)
        svc._flush_or_conflict(s, "race")
    assert info.value.field == "handle"


def test_update_validates_everything_first(runtime, owner):
    c = _create(runtime, owner, name="Nia", handle="nia")
    _create(runtime, owner, name="Other", handle="other")
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        with pytest.raises(InvalidInput):
            svc.update_character(s, user=_user(s, owner), character=row,
                                 changes={"name": "Renamed", "handle": "other"})
        s.rollback()
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None and row.name == "Nia" and row.handle == "nia"
        p = svc.persona_of(row)
        p.traits.warmth = 0.9
        svc.update_character(s, user=_user(s, owner), character=row,
                             changes={"name": "Nia B", "persona": p, "bio": "Hello."})
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        assert row.name == "Nia B" and row.bio == "Hello." and svc.persona_of(row).traits.warmth == 0.9
        assert svc.persona_of(row).bio == "Hello."


def test_disclosure_can_be_reworded_and_turning_it_off_is_recorded(runtime, owner):
    c = _create(runtime, owner, name="Dee", handle="dee", bio="Bakes bread.")
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        with pytest.raises(InvalidInput):
            svc.update_character(s, user=_user(s, owner), character=row, changes={"disclosure_text": ""})
        svc.update_character(s, user=_user(s, owner), character=row,
                             changes={"disclosure_text": "Virtual baker · AI-made"})
        assert svc.public_bio(row) == "Bakes bread.\nVirtual baker · AI-made"
        svc.update_character(s, user=_user(s, owner), character=row, changes={"disclosure_enabled": False})
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        assert row.disclosure_enabled is False
        assert row.disclosure_disabled_by == owner.id and row.disclosure_disabled_at is not None
        assert svc.public_bio(row) == "Bakes bread."
        audit = s.scalar(select(AuditLog).where(AuditLog.action == "character.disclosure_disabled"))
        assert audit is not None and audit.user_id == owner.id


def test_status_actions(runtime, owner):
    c = _create(runtime, owner, name="Sam", handle="sam")
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        u = _user(s, owner)
        svc.change_status(s, user=u, character=row, action="pause")
        assert row.status == CharacterStatus.paused
        svc.change_status(s, user=u, character=row, action="resume")
        assert row.status == CharacterStatus.active
        svc.change_status(s, user=u, character=row, action="archive")
        with pytest.raises(Conflict):
            svc.change_status(s, user=u, character=row, action="pause")
        svc.change_status(s, user=u, character=row, action="resume")
        svc.mark_error(s, character=row, reason="backend down")
        assert row.status == CharacterStatus.error
        svc.change_status(s, user=u, character=row, action="resume")
        assert row.status == CharacterStatus.active and row.status_reason == ""


def test_duplicate_copies_persona_and_starts_paused(runtime, owner):
    c = _create(runtime, owner, name="Kai", handle="kai", template="home-chef")
    with runtime.db.session() as s:
        src = s.get(Character, c.id)
        assert src is not None
        first = svc.duplicate_character(s, user=_user(s, owner), character=src)
        second = svc.duplicate_character(s, user=_user(s, owner), character=src)
        assert (first.handle, second.handle) == ("kai_copy", "kai_copy2")
        assert first.name == "Kai (copy)" and first.status == CharacterStatus.paused
        assert first.persona == src.persona


def test_delete_removes_texts_but_keeps_usage_costs(runtime, owner):
    c = _create(runtime, owner, name="Del", handle="del")
    with runtime.db.session() as s:
        s.add(GeneratedText(character_id=c.id, platform="x", kind="tweet", style="casual", text="hi",
                            backend="offline"))
        s.add(TextUsage(character_id=c.id, backend="paid", model="m", cost_usd=0.5, paid=True))
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        svc.delete_character(s, user=_user(s, owner), character=row, settings=runtime.settings)
    assert _count(runtime, Character) == 0 and _count(runtime, GeneratedText) == 0
    with runtime.db.session() as s:
        usage = s.scalars(select(TextUsage)).one()
        assert usage.character_id is None and usage.cost_usd == 0.5


def test_members_see_only_their_own_and_owner_sees_all(runtime, owner, member):
    mine = _create(runtime, member, name="Mine", handle="mine")
    theirs = _create(runtime, owner, name="Theirs", handle="theirs")
    with runtime.db.session() as s:
        m = _user(s, member)
        assert [c.handle for c in svc.list_characters(s, user=m).items] == ["mine"]
        with pytest.raises(NotFound):
            svc.get_character(s, theirs.id, user=m)
        o = _user(s, owner)
        assert svc.get_character(s, mine.id, user=o).handle == "mine"
        assert svc.list_characters(s, user=o).total == 2


def test_list_filter_search_sort_paginate(runtime, owner):
    with runtime.db.session() as s:
        u = _user(s, owner)
        for i in range(30):
            c = svc.create_character(s, user=u, name=f"Char {i:02d}", handle=f"char_{i:02d}")
            if i % 3 == 0:
                c.status = CharacterStatus.paused
        svc.create_character(s, user=u, name="100% Real_Name", handle="odd.one")
    with runtime.db.session() as s:
        u = _user(s, owner)
        page = svc.list_characters(s, user=u, sort="name", limit=10, offset=0, with_counts=True)
        assert page.total == 31 and len(page.items) == 10 and page.pages == 4
        assert [c.name for c in page.items][:2] == ["100% Real_Name", "Char 00"]
        assert page.counts["paused"] == 10 and page.counts["active"] == 21 and page.counts["all"] == 31
        paused = svc.list_characters(s, user=u, status="paused", sort="-name", limit=50)
        assert paused.total == 10 and paused.items[0].name == "Char 27"
        assert svc.list_characters(s, user=u, q="CHAR_1").total == 10
        # LIKE wildcards in the search are literal
        assert [c.handle for c in svc.list_characters(s, user=u, q="100%").items] == ["odd.one"]
        assert svc.list_characters(s, user=u, q="r_l").total == 0
        assert svc.list_characters(s, user=u, q="@odd").total == 1
        with pytest.raises(InvalidInput):
            svc.list_characters(s, user=u, sort="bogus")
        with pytest.raises(InvalidInput):
            svc.list_characters(s, user=u, status="sleeping")


def test_bulk_actions_skip_what_does_not_apply(runtime, owner, member):
    a = _create(runtime, owner, name="A", handle="bulk_a")
    b = _create(runtime, owner, name="B", handle="bulk_b")
    other = _create(runtime, member, name="C", handle="bulk_c")
    with runtime.db.session() as s:
        m = _user(s, member)
        result = svc.bulk_action(s, user=m, ids=[a.id, other.id], action="pause", settings=runtime.settings)
        assert result.done == [other.id] and result.skipped == {a.id: "not found"}
    with runtime.db.session() as s:
        o = _user(s, owner)
        result = svc.bulk_action(s, user=o, ids=[a.id, b.id, other.id], action="pause", settings=runtime.settings)
        assert result.done == [a.id, b.id] and result.skipped == {other.id: "already paused"}
        result = svc.bulk_action(s, user=o, ids=[a.id, b.id], action="delete", settings=runtime.settings)
        assert result.done == [a.id, b.id]
    assert _count(runtime, Character) == 1
    with pytest.raises(InvalidInput), runtime.db.session() as s:
        svc.bulk_action(s, user=_user(s, owner), ids=[], action="pause", settings=runtime.settings)


def test_stats_come_from_real_rows(runtime, owner):
    c = _create(runtime, owner, name="Stat", handle="stat", monthly_usage_cap_usd=1)
    now = utcnow()
    with runtime.db.session() as s:
        for flagged in (False, True, False):
            s.add(GeneratedText(character_id=c.id, platform="x", kind="tweet", style="casual", text="t",
                                backend="offline", flagged=flagged))
        s.add(TextUsage(character_id=c.id, backend="paid", model="m", tokens_in=10, tokens_out=5, cost_usd=0.25,
                        paid=True, at=now))
        s.add(TextUsage(character_id=c.id, backend="paid", model="m", cost_usd=2.0, paid=True,
                        at=svc.month_start("UTC", now) - timedelta(days=2)))
        s.add(TextUsage(character_id=c.id, backend="offline", model="", tokens_out=9, at=now))
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        st = svc.character_stats(s, row)
        assert (st.texts_generated, st.texts_flagged, st.calls) == (3, 1, 3)
        assert st.cost_total_usd == pytest.approx(2.25)
        assert st.cost_month_usd == pytest.approx(0.25) and st.paid_cost_month_usd == pytest.approx(0.25)
        assert (st.assets, st.scheduled_posts, st.published_posts) == (0, 0, 0) and "Analytics" in st.not_yet_note
        assert svc.paid_cost_this_month(s, row) == pytest.approx(0.25)
        by_model = svc.usage_by_model(s, character=row)
        assert by_model[0]["backend"] == "paid" and by_model[0]["calls"] == 2


def test_templates_save_list_delete(runtime, owner):
    c = _create(runtime, owner, name="Tee", handle="tee", persona={"tone_of_voice": "Dry wit."})
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        saved = svc.save_as_template(s, user=_user(s, owner), character=row, name="Dry wit", description="d")
        with pytest.raises(Conflict):
            svc.save_as_template(s, user=_user(s, owner), character=row, name="DRY WIT")
        with pytest.raises(Conflict):
            svc.save_as_template(s, user=_user(s, owner), character=row, name="Fitness coach")
        with pytest.raises(InvalidInput):
            svc.save_as_template(s, user=_user(s, owner), character=row, name=" ")
    with runtime.db.session() as s:
        choices = svc.list_templates(s)
        assert len([t for t in choices if t.builtin]) >= 8
        mine = [t for t in choices if t.key == f"saved:{saved.id}"]
        assert mine and mine[0].persona.tone_of_voice == "Dry wit."
    new = _create(runtime, owner, name="From saved", template=f"saved:{saved.id}")
    assert Persona.model_validate(new.persona).tone_of_voice == "Dry wit."
    with runtime.db.session() as s:
        svc.delete_template(s, user=_user(s, owner), template_id=saved.id)
    assert _count(runtime, PersonaTemplate) == 0


def test_export_import_round_trip_and_malformed_files(runtime, owner):
    c = _create(runtime, owner, name="Exp", handle="exp", template="illustrator")
    text = svc.export_json(c)
    imported = _create(runtime, owner, name="Imp", handle="imp", persona=svc.import_persona(text))
    assert svc.persona_of(imported) == svc.persona_of(c)
    prompt = svc.export_prompt(c)
    assert "@exp" in prompt and "Exp" in prompt
    before = _count(runtime, Character)
    bad = [
        ("{not json", "json"),
        ("[1, 2]", "json"),
        ('{"traits": {}}', "schema_version"),
        ('{"schema_version": 99}', "schema_version"),
        (export_persona_json(Persona()).replace('"warmth": 0.5', '"warmth": 7'), "persona.traits.warmth"),
    ]
    for text_in, field in bad:
        with pytest.raises(InvalidInput) as info, runtime.db.session() as s:
            svc.import_character(s, user=_user(s, owner), text=text_in, name="Bad", handle="bad")
        assert info.value.field == field, (text_in, info.value.field)
        assert info.value.message
    assert _count(runtime, Character) == before


# ---- writing: a real local OpenAI-compatible server stands in for a model -------------------------------



class FakeOpenAI:
    """Speaks /v1/chat/completions and /v1/models like an OpenAI-compatible server."""

    def __init__(self, reply: str | Callable[[dict[str, Any]], str] = "A fresh thought about light. #sunrise",
                 status: int = 200, prompt_tokens: int = 1000, completion_tokens: int = 500) -> None:
        self.reply, self.status = reply, status
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802
                if fake.status != 200:
                    self._send(fake.status, {"error": {"message": "denied", "type": "auth"}})
                    return
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                payload = json.loads(self.rfile.read(int(self.headers["content-length"])))
                payload["_auth"] = self.headers.get("authorization", "")
                fake.requests.append(payload)
                if fake.status != 200:
                    self._send(fake.status, {"error": {"message": "Incorrect API key provided", "type": "auth"}})
                    return
                text = fake.reply(payload) if callable(fake.reply) else fake.reply
                self._send(200, {
                    "id": "cmpl-1", "object": "chat.completion", "model": payload["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": fake.prompt_tokens, "completion_tokens": fake.completion_tokens},
                })

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _backend(runtime, owner, **kw) -> TextBackendConfig:
    with runtime.db.session() as s:
        return writing.create_backend_config(s, runtime, user=_user(s, owner), **kw)


def _generate(runtime, character_id: int, **kw):
    with runtime.db.session() as s:
        c = s.get(Character, character_id)
        assert c is not None
        return writing.generate(s, runtime, character=c, **kw)


@pytest.mark.parametrize(
    ("platform", "kind", "stored_kind"),
    [
        ("instagram", None, "caption"),
        ("x", None, "tweet"),
        ("x", "thread", "thread"),
        ("youtube", "title", "youtube_title"),
        ("youtube", "description", "youtube_description"),
        ("telegram", None, "telegram_post"),
        ("telegram", "caption", "telegram_post"),
        ("facebook", None, "caption"),
        ("mastodon", None, "tweet"),
        ("bluesky", None, "tweet"),
        ("x", "reply", "reply"),
    ],
)
def test_offline_generation_fits_every_platform_and_is_recorded(runtime, owner, platform, kind, stored_kind):
    c = _create(runtime, owner, name="Mira", handle="mira", template="travel-photographer")
    row = _generate(runtime, c.id, platform=platform, kind=kind, brief="sunrise over Lisbon",
                    reply_to="What camera do you use?" if kind == "reply" else None)
    assert row.kind == stored_kind and row.backend == "offline" and row.cost_usd == 0
    assert row.text.strip() and not row.flagged
    if stored_kind == "thread":
        rules = rules_for("x", "thread")
        assert len(row.parts) > 1 and all(text_length(p, rules) <= rules.max_length for p in row.parts)
    else:
        _, platform_kind, rules = writing.resolve_kind(platform, kind)
        assert text_length(row.text, rules) <= rules.max_length
    tags = [t.casefold() for t in row.hashtags]
    assert len(tags) == len(set(tags))
    if stored_kind in ("reply", "youtube_title"):
        assert not tags
    with runtime.db.session() as s:
        usage = s.scalars(select(TextUsage)).all()
        assert [(u.backend, u.paid, u.cost_usd, u.purpose) for u in usage] == [("offline", False, 0.0, "generate")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"platform": "myspace"}, "platform"),
        ({"platform": "instagram", "kind": "thread"}, "kind"),
        ({"platform": "x", "kind": "title"}, "kind"),
        ({"platform": "x", "style": "shouty"}, "style"),
        ({"platform": "x", "kind": "reply"}, "reply_to"),
        ({"platform": "x", "template": "nope"}, "template"),
    ],
)
def test_generate_refuses_bad_requests_and_saves_nothing(runtime, owner, kwargs, field):
    c = _create(runtime, owner, name="Mira", handle="mira")
    with pytest.raises(InvalidInput) as info:
        _generate(runtime, c.id, **kwargs)
    assert info.value.field == field
    assert _count(runtime, GeneratedText) == 0 and _count(runtime, TextUsage) == 0


def test_content_template_fills_brief_and_style(runtime, owner):
    c = _create(runtime, owner, name="Chef", handle="chef", template="home-chef")
    row = _generate(runtime, c.id, platform="instagram", template="tip", style=None, brief="knife skills")
    assert row.brief == "Share one practical, specific tip about knife skills." and row.style == "professional"


def test_model_backend_is_used_with_persona_prompt_and_cost(runtime, owner, fake_model):
    _backend(runtime, owner, name="local-llm", kind="openai_compat", base_url=fake_model.base_url,
             default_model="fake-model", api_key="sk-test-123", paid=True)
    with runtime.db.session() as s:
        writing.set_price_table(s, user=_user(s, owner), rows=[
            {"backend_kind": "openai_compat", "model": "fake-model", "input_per_mtok_usd": 2.0,
             "output_per_mtok_usd": 10.0}])
    c = _create(runtime, owner, name="Mira", handle="mira", template="travel-photographer",
                text_backend="local-llm")
    row = _generate(runtime, c.id, platform="x", brief="sunrise")
    assert row.backend == "local-llm" and row.model == "fake-model"
    # 1000 in at $2/M + 500 out at $10/M
    assert row.cost_usd == pytest.approx(0.007)
    sent = fake_model.requests[0]
    system = sent["messages"][0]["content"]
    assert sent["messages"][0]["role"] == "system" and "You are Mira (@mira)" in system
    assert "X post; at most 280" in system and "never claim" in system.lower()
    assert sent["_auth"] == "Bearer sk-test-123"
    with runtime.db.session() as s:
        usage = s.scalars(select(TextUsage)).one()
        assert (usage.backend, usage.backend_kind, usage.paid, usage.tokens_in) == ("local-llm", "openai_compat",
                                                                                    True, 1000)


def test_near_duplicates_are_regenerated_then_flagged(runtime, owner, fake_model):
    _backend(runtime, owner, name="echo", kind="openai_compat", base_url=fake_model.base_url,
             default_model="fake-model")
    c = _create(runtime, owner, name="Echo", handle="echo", text_backend="echo")
    first = _generate(runtime, c.id, platform="instagram", max_attempts=3)
    assert not first.flagged and first.attempts == 1
    again = _generate(runtime, c.id, platform="instagram", max_attempts=3)
    assert again.flagged and again.attempts == 3 and again.near_dup_score >= 0.5
    assert "near-duplicate" in again.flag_reason
    # the retries told the model which earlier text to steer away from
    assert "too close" in fake_model.requests[-1]["messages"][1]["content"]
    assert _count(runtime, TextUsage) == 4


def test_offline_regeneration_escapes_a_duplicate(runtime, owner):
    c = _create(runtime, owner, name="Var", handle="var", template="fitness-coach")
    first = _generate(runtime, c.id, platform="x", seed=42)
    again = _generate(runtime, c.id, platform="x", seed=42)  # same seed would repeat the text
    assert again.text != first.text and not again.flagged and again.attempts >= 2


def test_monthly_cap_stops_paid_calls_and_falls_back(runtime, owner, fake_model):
    _backend(runtime, owner, name="paid-llm", kind="openai_compat", base_url=fake_model.base_url,
             default_model="fake-model", paid=True)
    with runtime.db.session() as s:
        writing.set_price_table(s, user=_user(s, owner), rows=[
            {"backend_kind": "", "model": "fake-model", "input_per_mtok_usd": 1000, "output_per_mtok_usd": 1000}])
    # the character names the template writer as its last step, so passing the cap falls back to it
    c = _create(runtime, owner, name="Cap", handle="cap", text_backend="paid-llm", monthly_usage_cap_usd=1.0,
                fallback_chain=[{"backend": "offline", "model": ""}])
    first = _generate(runtime, c.id, platform="x")
    assert first.backend == "paid-llm" and first.cost_usd == pytest.approx(1.5)
    second = _generate(runtime, c.id, platform="x")
    assert second.backend == "offline" and second.cost_usd == 0
    assert any("skipped_paid" in n for n in second.notes)
    assert len(fake_model.requests) == 1
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None and svc.paid_cost_this_month(s, row) == pytest.approx(1.5)


def test_failing_backend_is_reported_not_replaced(runtime, owner):
    """A configured model that fails is named with its reason; the template writer writes only when chosen."""
    with FakeOpenAI(status=401) as bad:
        _backend(runtime, owner, name="bad-key", kind="openai_compat", base_url=bad.base_url)
        c = _create(runtime, owner, name="Fall", handle="fall", text_backend="bad-key")
        with pytest.raises(writing.TextModelDown) as caught:
            _generate(runtime, c.id, platform="instagram")
        assert caught.value.status_code == 503 and caught.value.code == "text_backend_unavailable"
        assert "bad-key: HTTP 401" in caught.value.message and "template writer" in caught.value.message
        assert _count(runtime, GeneratedText) == 0  # nothing was written in the model's place
        row = _generate(runtime, c.id, platform="instagram", allow_template=True)  # the person's explicit choice
    assert row.backend == "offline"
    assert any("bad-key: auth" in n for n in row.notes)


def test_backend_configs_keep_keys_secret_and_follow_renames(runtime, owner, member, fake_model):
    cfg = _backend(runtime, owner, name="Local-LLM", kind="openai_compat", base_url=fake_model.base_url + "/",
                   api_key="sk-secret-value")
    assert cfg.name == "local-llm" and cfg.base_url == fake_model.base_url and cfg.paid is False
    with runtime.db.session() as s:
        blob = s.scalars(select(StoredSecret)).one()
        assert b"sk-secret-value" not in blob.ciphertext and blob.owner_kind == "text_backend"
        assert writing.has_api_key(s, runtime, s.get(TextBackendConfig, cfg.id))
    for kw, field in [({"name": "offline"}, "name"), ({"name": "x y"}, "name"),
                      ({"name": "ok", "base_url": "ftp://x"}, "base_url"),
                      ({"name": "anth", "kind": "anthropic"}, "api_key")]:
        with pytest.raises(InvalidInput) as info:
            _backend(runtime, owner, **{"kind": "openai_compat", **kw})
        assert info.value.field == field
    with pytest.raises(Conflict):
        _backend(runtime, owner, name="local-llm", kind="ollama")
    with pytest.raises(PermissionDenied):
        _backend(runtime, member, name="mine", kind="ollama")
    c = _create(runtime, owner, name="Ren", handle="ren", text_backend="local-llm",
                fallback_chain=[{"backend": "local-llm", "model": "m2"}])
    with runtime.db.session() as s:
        row = s.get(TextBackendConfig, cfg.id)
        assert row is not None
        writing.update_backend_config(s, runtime, user=_user(s, owner), config=row,
                                      changes={"name": "renamed", "api_key": ""})
        assert not writing.has_api_key(s, runtime, row)
    with runtime.db.session() as s:
        ch = s.get(Character, c.id)
        assert ch is not None and ch.text_backend == "renamed" and ch.fallback_chain[0]["backend"] == "renamed"
        report = writing.test_backend_config(s, runtime, config=s.get(TextBackendConfig, cfg.id))
        assert report.ok and report.models == ["fake-model"]
        writing.delete_backend_config(s, runtime, user=_user(s, owner), config=s.get(TextBackendConfig, cfg.id))
    with runtime.db.session() as s:
        ch = s.get(Character, c.id)
        assert ch is not None and ch.text_backend == "offline" and ch.fallback_chain == []


def test_connection_test_reports_a_dead_server_without_raising():
    report = writing.test_backend_values(kind="openai_compat", base_url="http://127.0.0.1:9/v1", timeout_s=2)
    assert not report.ok and "connect" in report.message.lower()


def test_price_table_defaults_edits_and_validation(runtime, owner, member):
    with runtime.db.session() as s:
        rows = writing.price_rows(s)
        assert any(r.model == "gpt-4o-mini" and r.source == "default" for r in rows)
        writing.set_price_table(s, user=_user(s, owner), rows=[
            {"backend_kind": "openai", "model": "gpt-4o-mini", "input_per_mtok_usd": 9, "output_per_mtok_usd": 9}])
        edited = [r for r in writing.price_rows(s) if r.model == "gpt-4o-mini"]
        assert [(r.source, r.input_per_mtok_usd) for r in edited] == [("edited", 9)]
        for bad in ([{"backend_kind": "", "model": "", "input_per_mtok_usd": 1, "output_per_mtok_usd": 1}],
                    [{"backend_kind": "", "model": "m", "input_per_mtok_usd": -1, "output_per_mtok_usd": 1}],
                    [{"backend_kind": "zzz", "model": "m", "input_per_mtok_usd": 1, "output_per_mtok_usd": 1}]):
            with pytest.raises(InvalidInput):
                writing.set_price_table(s, user=_user(s, owner), rows=bad)
        with pytest.raises(PermissionDenied):
            writing.set_price_table(s, user=_user(s, member), rows=[])
    assert _count(runtime, ModelPrice) == 1


def test_preview_two_platforms_reply_and_trait_shift(runtime, owner):
    c = _create(runtime, owner, name="Pre", handle="pre", template="tech-reviewer")
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        base = svc.persona_of(row)
        p1 = writing.preview(s, runtime, persona=base, name=row.name, handle=row.handle, seed=7)
        p2 = writing.preview(s, runtime, persona=base, name=row.name, handle=row.handle, seed=7)
        assert [x.text for x in p1.samples] == [x.text for x in p2.samples]  # same seed, same text
        assert [x.platform for x in p1.samples] == ["instagram", "x"] and p1.reply.text and p1.trait_shift is None
        other = writing.preview(s, runtime, persona=base, name=row.name, handle=row.handle, seed=8)
        assert other.samples[0].text != p1.samples[0].text  # regenerate = a new seed
        edited = base.model_copy(update={"traits": base.traits.model_copy(
            update={"formality": 1.0, "energy": 0.0, "warmth": 1.0})})
        p3 = writing.preview(s, runtime, persona=edited, baseline=base, name=row.name, handle=row.handle, seed=7)
        assert p3.trait_shift is not None
        assert {ch["trait"] for ch in p3.trait_shift.changes} == {"formality", "energy", "warmth"}
        assert p3.trait_shift.before == p1.samples[0].text and p3.trait_shift.after == p3.samples[0].text
        assert p3.trait_shift.guidance_before != p3.trait_shift.guidance_after
        p4 = writing.preview(s, runtime, persona=base, name=row.name, handle=row.handle, seed=7,
                             shift_trait="formality", shift_to=0.0)
        assert p4.trait_shift is not None and p4.trait_shift.changes[0]["after_value"] == 0.0
        with pytest.raises(InvalidInput):
            writing.preview(s, runtime, persona=base, name=row.name, handle=row.handle, shift_trait="height")
    assert _count(runtime, TextUsage) == 0  # an offline preview costs and records nothing


def test_traits_change_the_writing_across_seeds(runtime, owner):
    c = _create(runtime, owner, name="Tr", handle="tr")
    with runtime.db.session() as s:
        row = s.get(Character, c.id)
        assert row is not None
        base = svc.persona_of(row)
        formal = base.model_copy(update={"traits": base.traits.model_copy(update={"formality": 1.0})})
        casual = base.model_copy(update={"traits": base.traits.model_copy(update={"formality": 0.0})})
        differ = sum(
            writing.preview(s, runtime, persona=formal, name="Tr", handle="tr", seed=n).samples[0].text
            != writing.preview(s, runtime, persona=casual, name="Tr", handle="tr", seed=n).samples[0].text
            for n in range(10)
        )
        assert differ >= 8


class FakeOllamaPull:
    """Speaks Ollama's /api/pull (NDJSON progress lines) and /api/tags."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                lines = [{"status": "pulling manifest"}]
                lines += [{"status": "pulling abc", "digest": "sha256:abc", "total": 100, "completed": n}
                          for n in (10, 60, 100)]
                lines += [{"status": "verifying sha256 digest"}, {"status": "success"}]
                raw = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
                assert body["model"] == "tiny:1b"
                self.send_response(200)
                self.send_header("content-type", "application/x-ndjson")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_pulling_an_ollama_model_is_a_job_with_progress(runtime, owner):
    from ainfluencer.db.models import Job, JobStatus
    from ainfluencer.jobs import runner

    fake = FakeOllamaPull()
    try:
        cfg = _backend(runtime, owner, name="ollama", kind="ollama", base_url=fake.base_url)
        with runtime.db.session() as s:
            row = s.get(TextBackendConfig, cfg.id)
            with pytest.raises(InvalidInput):
                writing.enqueue_pull(s, user=_user(s, owner), config=row, model="two words")
            job_id = writing.enqueue_pull(s, user=_user(s, owner), config=row, model="tiny:1b").id
        assert runner.run_one(runtime, worker="test") == JobStatus.succeeded
        with runtime.db.session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            assert job.progress == 100 and job.result == {"model": "tiny:1b", "status": "success"}
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_stats_count_vault_assets_and_publications(runtime, owner):
    from ainfluencer.db.models_media import Asset, AssetKind, AssetSource, ReviewState
    from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount

    c = _create(runtime, owner, name="Counted", handle="counted")
    other = _create(runtime, owner, name="Other", handle="other_one")
    with runtime.db.session() as s:
        def asset(n: int, **kw: Any) -> Asset:
            return Asset(character_id=c.id, kind=AssetKind.image, sha256=f"{n:064x}", path=f"x/{n}.png",
                         mime="image/png", size=1, **kw)

        s.add_all([asset(1), asset(2), asset(3, review_state=ReviewState.archived),
                   asset(4, source=AssetSource.reference)])
        account = SocialAccount(character_id=c.id, platform="mastodon", platform_account_id="42")
        s.add(account)
        s.flush()
        for status in (PublicationStatus.planned, PublicationStatus.retry_wait, PublicationStatus.published,
                       PublicationStatus.cancelled, PublicationStatus.failed):
            s.add(Publication(character_id=c.id, account_id=account.id, text="hi", scheduled_at=utcnow(),
                              status=status))
    with runtime.db.session() as s:
        stats = svc.stats_for(s, [s.get(Character, c.id), s.get(Character, other.id)])
    # Archived assets and reference photos are not content; cancelled/failed posts are neither waiting nor out.
    assert (stats[c.id].assets, stats[c.id].scheduled_posts, stats[c.id].published_posts) == (2, 2, 1)
    assert (stats[other.id].assets, stats[other.id].scheduled_posts, stats[other.id].published_posts) == (0, 0, 0)
