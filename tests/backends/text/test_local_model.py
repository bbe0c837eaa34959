"""The in-process local model on a tiny random-weight GGUF built here, through the backend and the writing service,
and the detection of a local Ollama (a fake one on a free port)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ainfluencer.backends.text import local as local_module
from ainfluencer.backends.text.base import ChatMessage
from ainfluencer.backends.text.errors import BackendPermanentError, BackendUnavailable
from ainfluencer.backends.text.local import LocalTextBackend
from ainfluencer.backends.text.ollama import detect_ollama
from ainfluencer.backends.text.registry import TEXT_BACKENDS
from ainfluencer.backends.text.tiny_model import write_tiny_gguf
from ainfluencer.db.models import Character, GeneratedText, User
from ainfluencer.services import characters as svc
from ainfluencer.services import writing
from ainfluencer.services.model_files import text_models_dir
from ainfluencer.writing.disclosure import DISCLOSURE_SENTENCES, discloses
from backends.text.servers import FakeState, LocalServer, ollama_app

MESSAGES = [ChatMessage("system", "You are a virtual character."), ChatMessage("user", "Write a caption.")]
TINY = "tiny-test.gguf"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = write_tiny_gguf(tmp_path_factory.mktemp("models") / TINY)
    yield path
    local_module.unload()


async def test_local_backend_generates_with_the_real_engine(tiny_model: Path) -> None:
    backend = LocalTextBackend(model_path=tiny_model, seed=7)
    assert "local" in TEXT_BACKENDS and not backend.paid
    result = await backend.chat(MESSAGES, max_tokens=12, temperature=0.0)
    assert result.backend == "local" and result.model == TINY and result.text.strip()
    assert result.input_tokens > 0 and 0 < result.output_tokens <= 12
    assert result.finish_reason == "length"
    again = await backend.chat(MESSAGES, max_tokens=12, temperature=0.0)
    assert again.text == result.text  # greedy decoding on the same loaded model is deterministic


async def test_local_backend_streams_token_by_token(tiny_model: Path) -> None:
    backend = LocalTextBackend(model_path=tiny_model, seed=7)
    stream = backend.stream(MESSAGES, max_tokens=10, temperature=0.0)
    deltas = [d async for d in stream]
    assert len(deltas) > 1
    assert stream.result.text == "".join(deltas)
    assert stream.result.output_tokens == 10 and stream.result.model == TINY
    whole = await backend.chat(MESSAGES, max_tokens=10, temperature=0.0)
    assert whole.text == stream.result.text


async def test_local_backend_resolves_files_in_the_models_folder(tiny_model: Path) -> None:
    backend = LocalTextBackend(models_dir=tiny_model.parent, model=TINY)
    assert backend.resolve() == tiny_model
    assert await backend.list_models() == [TINY]
    report = await backend.test_connection()
    assert report.ok and TINY in report.message


async def test_local_backend_reports_a_missing_file_a_bad_file_and_a_missing_engine(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = LocalTextBackend(models_dir=tmp_path)  # the catalogue default, not downloaded
    with pytest.raises(BackendUnavailable, match="models pull text"):
        await missing.chat(MESSAGES)
    report = await missing.test_connection()
    assert not report.ok and "not downloaded" in report.message
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really")
    with pytest.raises(BackendPermanentError, match="cannot load broken.gguf"):
        await LocalTextBackend(model_path=broken).chat(MESSAGES)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if llama-cpp-python were not installed
    local_module.unload()
    with pytest.raises(BackendUnavailable, match="install llama-cpp-python"):
        await LocalTextBackend(model_path=tiny_model).chat(MESSAGES)
    report = await LocalTextBackend(model_path=tiny_model).test_connection()
    assert not report.ok and report.message.startswith("unavailable: install llama-cpp-python")


# ---- through the writing service --------------------------------------------------------------------------


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.com", owner=True)


def _character(runtime, owner, **kw) -> int:
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        return svc.create_character(s, user=user, name="Lia", handle="lia", **kw).id


def _generate(runtime, character_id: int, **kw) -> GeneratedText:
    with runtime.db.session() as s:
        character = s.get(Character, character_id)
        assert character is not None
        return writing.generate(s, runtime, character=character, seed=3, **kw)


def test_a_character_writes_with_the_local_model_and_replies_disclose(runtime, owner, tiny_model: Path) -> None:
    models = text_models_dir(runtime.settings.resolved_data_dir)
    models.mkdir(parents=True, exist_ok=True)
    (models / TINY).write_bytes(tiny_model.read_bytes())
    cid = _character(runtime, owner, text_backend="local", text_model=TINY)
    caption = _generate(runtime, cid, platform="instagram", brief="a rainy morning market in Porto")
    assert caption.backend == "local" and caption.model == TINY and caption.text.strip()
    # a random-weight model never discloses on its own: the post-check does it, in the language asked
    reply = _generate(runtime, cid, platform="instagram", kind="reply",
                      reply_to="Are you even real? Your photos look fake lol")
    assert reply.backend == "local" and discloses(reply.text)
    assert reply.text.startswith(DISCLOSURE_SENTENCES["en"])
    spanish = _generate(runtime, cid, platform="x", kind="reply", reply_to="¿Eres un bot?")
    assert spanish.text.startswith(DISCLOSURE_SENTENCES["es"])


def test_a_missing_local_model_is_reported_and_the_template_writer_waits_for_a_choice(runtime, owner) -> None:
    cid = _character(runtime, owner, text_backend="local")
    with pytest.raises(writing.TextModelDown) as caught:
        _generate(runtime, cid, platform="instagram", brief="coffee")
    message = caught.value.message
    assert "local: the model file" in message and "ainfluencer models pull text" in message
    with runtime.db.session() as s:
        assert s.scalars(select(GeneratedText)).first() is None
    row = _generate(runtime, cid, platform="instagram", brief="coffee", allow_template=True)
    assert row.backend == "offline" and any("local: unavailable" in n for n in row.notes)


def test_the_local_model_and_the_template_writer_are_built_in_names(runtime, owner) -> None:
    with runtime.db.session() as s:
        assert svc.backend_names(s)[:2] == ["local", "offline"]
        with pytest.raises(Exception, match="built-in"):
            writing.create_backend_config(s, runtime, user=s.get(User, owner.id), name="local", kind="ollama")
    assert "local" not in writing.BACKEND_KINDS


# ---- Ollama detection ---------------------------------------------------------------------------------------


@pytest.fixture
def fake_ollama() -> Iterator[tuple[LocalServer, FakeState]]:
    state = FakeState()
    server = LocalServer(ollama_app(state)).start()
    try:
        yield server, state
    finally:
        server.stop()


async def test_a_running_ollama_is_detected_with_its_models(fake_ollama) -> None:
    server, _ = fake_ollama
    found = await detect_ollama(server.url)
    assert found.found and found.version == "0.12.6"
    assert found.models == ("fake-small:latest", "fake-large:latest")
    assert found.message == f"Ollama 0.12.6 at {server.url}, 2 models pulled"


async def test_no_ollama_is_reported_without_raising(fake_ollama, tmp_path: Path) -> None:
    server, _ = fake_ollama
    free = LocalServer(ollama_app(FakeState()))  # a bound port that nothing answers on yet
    try:
        nothing = await detect_ollama(free.url, wait_s=1.0)
    finally:
        free.sock.close()
    assert not nothing.found and "nothing answered" in nothing.message
    other = await detect_ollama(server.url + "/api/tags")  # something that is not Ollama's API root
    assert not other.found and "not as Ollama" in other.message


def test_the_api_answers_503_naming_the_backend_until_the_template_writer_is_allowed(
    runtime, owner, client, make_token
) -> None:
    cid = _character(runtime, owner, text_backend="local")
    headers = {"Authorization": f"Bearer {make_token(owner)}"}
    body = {"platform": "instagram", "brief": "coffee"}
    r = client.post(f"/api/v1/characters/{cid}/generate", json=body, headers=headers)
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "text_backend_unavailable" and error["field"] == "allow_template"
    assert "local: the model file" in error["message"]
    r = client.post(f"/api/v1/characters/{cid}/generate", json={**body, "allow_template": True}, headers=headers)
    assert r.status_code == 201 and r.json()["backend"] == "offline"


def test_cli_models_status_and_an_unknown_text_model(runtime, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ainfluencer.cli import app

    runner = CliRunner()
    data = str(runtime.settings.resolved_data_dir)
    status = runner.invoke(app, ["models", "status", "--data-dir", data])
    assert status.exit_code == 0, status.output
    assert "qwen2.5-0.5b-instruct-q4_k_m" in status.output and "Ollama:" in status.output
    unknown = runner.invoke(app, ["models", "pull", "text:no-such-model", "--data-dir", data])
    assert unknown.exit_code == 1 and "unknown local text model" in unknown.output
