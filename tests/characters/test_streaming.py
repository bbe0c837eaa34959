"""Streamed writing: deltas in order from real local model servers, then the same saved result as generate()."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from ainfluencer.db.models import Character, GeneratedText, TextUsage, User
from ainfluencer.services import characters as svc
from ainfluencer.services import writing
from backends.text.servers import APPS, REPLY, REPLY_PARTS, FakeState, LocalServer

# base URL of each backend kind on its fake server
URLS = {"openai_compat": "{url}/v1", "ollama": "{url}"}
SERVER_FOR = {"openai_compat": "openai", "ollama": "ollama"}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[LocalServer, FakeState]]]:
    running: dict[str, tuple[LocalServer, FakeState]] = {}
    try:
        for kind in ("openai", "ollama"):
            state = FakeState()
            running[kind] = (LocalServer(APPS[kind](state)).start(), state)
        yield running
    finally:
        for server, _ in running.values():
            server.stop()


@pytest.fixture
def owner(make_user) -> User:
    return make_user("owner@example.com", owner=True)


def _user(s, user: User) -> User:
    found = s.get(User, user.id)
    assert found is not None
    return found


def _backend(runtime, owner, servers, kind: str, name: str, *script: str) -> str:
    server, state = servers[SERVER_FOR[kind]]
    state.reset(*script)
    with runtime.db.session() as s:
        writing.create_backend_config(s, runtime, user=_user(s, owner), name=name, kind=kind,
                                      base_url=URLS[kind].format(url=server.url), default_model="fake-small")
    return name


def _character(runtime, owner, **kw) -> int:
    with runtime.db.session() as s:
        return svc.create_character(s, user=_user(s, owner), name="Mira", handle="mira",
                                    template="travel-photographer", **kw).id


def _count(runtime, model) -> int:
    with runtime.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _prepare(runtime, owner, character_id: int, **kw) -> writing.Generation:
    with runtime.db.session() as s:
        character = s.get(Character, character_id)
        assert character is not None
        return writing.prepare_generation(s, runtime, character=character, user=_user(s, owner), **kw)


def stream(runtime, owner, character_id: int, *, stop_after: int | None = None, **kw) -> list[dict[str, Any]]:
    """Every event of one streamed generation (or the first ``stop_after``, then the reader goes away)."""
    generation = _prepare(runtime, owner, character_id, **kw)

    async def read() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        stream = writing.stream_generate(runtime, generation=generation)
        try:
            async for event in stream:
                events.append(event)
                if stop_after is not None and len(events) >= stop_after:
                    break
        finally:
            await stream.aclose()
        return events

    return asyncio.run(read())


def shown_text(events: list[dict[str, Any]]) -> str:
    """What a reader shows from the deltas: appended, cleared on restart."""
    text = ""
    for event in events:
        if event["type"] == "delta":
            text = (event["text"] if event["restart"] else text + event["text"])
    return text


@pytest.mark.parametrize("kind", ["openai_compat", "ollama"])
@pytest.mark.parametrize(("platform", "writer_kind"), [("youtube", "title"), ("instagram", None)])
def test_deltas_arrive_in_order_then_the_fitted_text_is_saved_once(runtime, owner, servers, kind, platform,
                                                                  writer_kind):
    name = _backend(runtime, owner, servers, kind, "local-llm")
    cid = _character(runtime, owner, text_backend=name)
    events = stream(runtime, owner, cid, platform=platform, kind=writer_kind, brief="sunrise over Lisbon")

    deltas = [e for e in events if e["type"] == "delta"]
    assert [d["text"] for d in deltas] == REPLY_PARTS
    assert all(d["backend"] == "local-llm" and not d["restart"] for d in deltas)
    assert [e["type"] for e in events[len(deltas):]] == ["done"]
    done = events[-1]
    # the saved text is the streamed text after fitting (titles take no hashtags; captions get the persona's)
    if platform == "youtube":
        assert done["text"] == shown_text(events) == REPLY and done["hashtags"] == []
    else:
        body, _, tags = done["text"].partition("#")
        assert body.strip() == shown_text(events) == REPLY and len(done["hashtags"]) >= 1 and tags
    assert (done["backend"], done["model"], done["attempts"], done["flagged"]) == ("local-llm", "fake-small", 1, False)
    assert done["near_dup_score"] < 0.5 and done["flag_reason"] == ""
    sent = servers[SERVER_FOR[kind]][1].requests[-1]["json"]
    assert sent["stream"] is True
    with runtime.db.session() as s:
        row = s.get(GeneratedText, done["generated_text_id"])
        assert row is not None and row.text == done["text"] and row.id == done["id"]
        usage = s.scalars(select(TextUsage)).all()
        assert len(usage) == 1
        assert (usage[0].backend, usage[0].backend_kind, usage[0].purpose) == ("local-llm", kind, "generate")
        assert (usage[0].tokens_in, usage[0].tokens_out) == (done["tokens_in"], done["tokens_out"])
        assert usage[0].tokens_in == (21 if kind == "openai_compat" else 26) and usage[0].tokens_out == 6


def test_a_near_duplicate_is_rewritten_live_then_flagged(runtime, owner, servers):
    name = _backend(runtime, owner, servers, "ollama", "echo")
    cid = _character(runtime, owner, text_backend=name)
    first = stream(runtime, owner, cid, platform="instagram", max_attempts=2)
    assert first[-1]["type"] == "done" and not first[-1]["flagged"]

    again = stream(runtime, owner, cid, platform="instagram", max_attempts=2)
    deltas = [e for e in again if e["type"] == "delta"]
    # the second attempt starts over in the reader's box
    assert [d["restart"] for d in deltas] == [False] * 6 + [True] + [False] * 5
    assert shown_text(again) == REPLY
    done = again[-1]
    assert done["type"] == "done" and done["flagged"] and done["attempts"] == 2
    assert done["near_dup_score"] >= 0.5 and "near-duplicate" in done["flag_reason"]
    assert "too close" in servers["ollama"][1].requests[-1]["json"]["messages"][1]["content"]
    # one usage row per model call, each recorded once: 1 + 2
    assert _count(runtime, TextUsage) == 3 and _count(runtime, GeneratedText) == 2


def test_a_backend_failing_mid_answer_restarts_on_the_next_one(runtime, owner, servers):
    broken = _backend(runtime, owner, servers, "openai_compat", "flaky", "malformed")
    backup = _backend(runtime, owner, servers, "ollama", "backup")
    cid = _character(runtime, owner, text_backend=broken, fallback_chain=[{"backend": backup, "model": ""}])
    events = stream(runtime, owner, cid, platform="youtube", kind="title")

    deltas = [e for e in events if e["type"] == "delta"]
    assert [(d["backend"], d["text"], d["restart"]) for d in deltas[:3]] == [
        ("flaky", "Hello", False), ("flaky", " from", False), ("backup", "Hello", True)]
    assert all(d["backend"] == "backup" and not d["restart"] for d in deltas[3:])
    done = events[-1]
    assert done["type"] == "done" and done["backend"] == "backup" and done["text"] == shown_text(events) == REPLY
    assert any(n.startswith("flaky: permanent") for n in done["notes"])
    with runtime.db.session() as s:
        assert [u.backend for u in s.scalars(select(TextUsage))] == ["backup"]


def test_offline_writer_streams_without_any_model(runtime, owner):
    cid = _character(runtime, owner)
    events = stream(runtime, owner, cid, platform="x", brief="sunrise over Lisbon", seed=5)
    deltas = [e for e in events if e["type"] == "delta"]
    assert 1 <= len(deltas) <= 3 and all(d["backend"] == "offline" for d in deltas)
    done = events[-1]
    assert done["type"] == "done" and done["backend"] == "offline" and done["text"].strip()
    assert shown_text(events).strip()
    assert _count(runtime, TextUsage) == 1


def test_a_reader_leaving_early_still_counts_the_calls_already_made(runtime, owner, servers):
    name = _backend(runtime, owner, servers, "ollama", "echo")
    cid = _character(runtime, owner, text_backend=name)
    stream(runtime, owner, cid, platform="instagram")
    assert _count(runtime, TextUsage) == 1
    # the second generation repeats the first, so a second attempt starts; the reader leaves during it
    events = stream(runtime, owner, cid, platform="instagram", max_attempts=3, stop_after=7)
    assert events[-1]["type"] == "delta" and events[-1]["restart"]
    assert _count(runtime, GeneratedText) == 1  # nothing half-saved
    assert _count(runtime, TextUsage) == 2  # but the finished first attempt is counted


def test_a_failure_after_the_stream_began_is_an_error_event(runtime, owner):
    cid = _character(runtime, owner)
    generation = _prepare(runtime, owner, cid, platform="x")
    with runtime.db.session() as s:
        s.delete(s.get(Character, cid))  # gone before the text could be saved

    async def read() -> list[dict[str, Any]]:
        return [e async for e in writing.stream_generate(runtime, generation=generation)]

    events = asyncio.run(read())
    assert [e["type"] for e in events][-1] == "error" and events[0]["type"] == "delta"
    assert events[-1]["message"] == "unexpected failure; see the server log"
    assert _count(runtime, GeneratedText) == 0


def test_bad_requests_are_refused_before_anything_streams(runtime, owner):
    cid = _character(runtime, owner)
    for kw, field in [({"platform": "myspace"}, "platform"), ({"platform": "x", "kind": "reply"}, "reply_to"),
                      ({"platform": "x", "max_attempts": 9}, "max_attempts")]:
        with pytest.raises(writing.InvalidInput) as info:
            _prepare(runtime, owner, cid, **kw)
        assert info.value.field == field


def test_a_dead_model_is_reported_in_the_stream_and_the_template_writer_needs_a_choice(runtime, owner, servers):
    dead = _backend(runtime, owner, servers, "ollama", "dead-llm", "401")
    cid = _character(runtime, owner, text_backend=dead)
    events = stream(runtime, owner, cid, platform="x", brief="sunrise over Lisbon")
    assert [e["type"] for e in events] == ["error"]  # no template text slipped in
    error = events[0]
    assert error["code"] == "text_backend_unavailable" and error["can_use_template"] is True
    assert "dead-llm: HTTP 401" in error["message"] and "template writer" in error["message"]
    assert error["backends"] == [{"backend": "dead-llm", "outcome": "auth", "message": error["backends"][0]["message"]}]
    assert _count(runtime, GeneratedText) == 0
    servers["ollama"][1].reset("401")
    chosen = stream(runtime, owner, cid, platform="x", brief="sunrise over Lisbon", allow_template=True)
    done = chosen[-1]
    assert done["type"] == "done" and done["backend"] == "offline"
    assert any(n.startswith("dead-llm: auth") for n in done["notes"])
