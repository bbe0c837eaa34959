"""Text backends against local servers speaking each wire format, and the fallback chain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest

from ainfluencer.backends.text.anthropic import AnthropicBackend
from ainfluencer.backends.text.base import ChatMessage, ChatResult, HttpTextBackend, TextBackend, as_messages
from ainfluencer.backends.text.errors import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    ChainExhausted,
    ModelMissing,
    parse_retry_after,
)
from ainfluencer.backends.text.offline import OfflineTextBackend
from ainfluencer.backends.text.ollama import OllamaBackend
from ainfluencer.backends.text.openai_compat import OpenAIBackend, OpenAICompatBackend
from ainfluencer.backends.text.registry import (
    TEXT_BACKENDS,
    ChainEntry,
    FallbackChain,
    PriceTable,
    cost_of,
    create_backend,
)
from ainfluencer.characters.templates import persona_from_template
from ainfluencer.errors import InvalidInput
from ainfluencer.jobs.errors import PermanentJobError, TransientJobError
from ainfluencer.writing.offline import WritingRequest
from backends.text.servers import APPS, REPLY, FakeState, LocalServer

pytestmark = pytest.mark.anyio

KINDS = ["ollama", "openai", "anthropic"]
MESSAGES = as_messages("You are a test persona.", "Say hello.")
API_KEY = "sk-test-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[LocalServer, FakeState]]]:
    running: dict[str, tuple[LocalServer, FakeState]] = {}
    try:
        for kind, app in APPS.items():
            state = FakeState()
            running[kind] = (LocalServer(app(state)).start(), state)
        yield running
    finally:
        for server, _ in running.values():
            server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def make(
    kind: str, servers: dict, client: httpx.AsyncClient, *, script: tuple[str, ...] = ("ok",), timeout: float = 3.0
) -> tuple[HttpTextBackend, FakeState]:
    server, state = servers[kind]
    state.reset(*script)
    state.api_key = API_KEY if kind == "anthropic" else None
    backend: HttpTextBackend
    if kind == "ollama":
        backend = OllamaBackend(base_url=server.url, client=client, timeout=timeout, model="fake-small")
    elif kind == "openai":
        backend = OpenAICompatBackend(base_url=server.url + "/v1", client=client, timeout=timeout, model="fake-small")
    else:
        backend = AnthropicBackend(
            base_url=server.url, api_key=API_KEY, client=client, timeout=timeout, model="fake-small"
        )
    return backend, state


async def run(backend: HttpTextBackend, mode: str) -> tuple[str, ChatResult, int]:
    if mode == "chat":
        result = await backend.chat(MESSAGES, max_tokens=64)
        return result.text, result, 1
    stream = backend.stream(MESSAGES, max_tokens=64)
    deltas = [d async for d in stream]
    return "".join(deltas), stream.result, len(deltas)


# (behaviour, expected error class or None); every row runs for every backend, plain and streaming
ROWS = [
    ("ok", None),
    ("slow", BackendTransientError),
    ("429", BackendTransientError),
    ("500", BackendTransientError),
    ("401", BackendAuthError),
    ("malformed", BackendProtocolError),
    ("disconnect", BackendTransientError),
    ("model_missing", ModelMissing),
]


@pytest.mark.parametrize("mode", ["chat", "stream"])
@pytest.mark.parametrize("behaviour,expected", ROWS, ids=[r[0] for r in ROWS])
@pytest.mark.parametrize("kind", KINDS)
async def test_wire_format_table(kind, behaviour, expected, mode, servers, client):
    timeout = 0.25 if behaviour == "slow" else 3.0
    backend, state = make(kind, servers, client, script=(behaviour,), timeout=timeout)
    if expected is None:
        text, result, n_deltas = await run(backend, mode)
        assert text == REPLY
        assert result.model == "fake-small"
        assert result.input_tokens > 0 and result.output_tokens == 6
        assert result.backend == backend.name and result.latency_s >= 0
        if mode == "stream":
            assert n_deltas > 1  # really streamed, not one blob
        return
    with pytest.raises(expected) as info:
        await run(backend, mode)
    err = info.value
    assert err.backend == backend.name
    if behaviour == "429":
        assert err.retry_after == 2.0
        assert err.status == 429
    if behaviour == "model_missing":
        assert err.model == "fake-small"
    if behaviour == "401":
        assert API_KEY not in str(err)
    # every failure maps to exactly one job outcome
    job_error = err.as_job_error()
    assert isinstance(job_error, TransientJobError if isinstance(err, BackendTransientError) else PermanentJobError)


@pytest.mark.parametrize(
    "kind,expected",
    [("ollama", BackendPermanentError), ("openai", BackendTransientError), ("anthropic", BackendTransientError)],
)
async def test_error_reported_inside_stream(kind, expected, servers, client):
    backend, _ = make(kind, servers, client, script=("stream_error",))
    stream = backend.stream(MESSAGES)
    got: list[str] = []
    with pytest.raises(expected):
        async for delta in stream:
            got.append(delta)
    assert got  # some text arrived before the error


async def test_retry_after_http_date(servers, client):
    backend, state = make("openai", servers, client, script=("429",))
    state.retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with pytest.raises(BackendTransientError) as info:
        await backend.chat(MESSAGES)
    assert info.value.retry_after is not None and 25 <= info.value.retry_after <= 31


def test_parse_retry_after():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:10 GMT", now=now) == 10.0
    assert parse_retry_after("Tue, 31 Dec 2024 00:00:00 GMT", now=now) == 0.0  # in the past: no wait
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("999999999") == 24 * 3600.0  # bounded


async def test_connection_refused_is_transient(client):
    backend = OllamaBackend(base_url="http://127.0.0.1:9", client=client, timeout=1.0)
    with pytest.raises(BackendTransientError):
        await backend.chat(MESSAGES)
    report = await backend.test_connection()
    assert not report.ok and "transient" in report.message


async def test_unusable_base_url_is_unavailable(client):
    backend = OpenAICompatBackend(base_url="ftp://example.invalid/v1", client=client)
    with pytest.raises(BackendUnavailable):
        await backend.list_models()


async def test_paid_backend_without_key_is_unavailable(client):
    backend = OpenAIBackend(client=client)
    with pytest.raises(BackendUnavailable, match="API key"):
        await backend.chat(MESSAGES)
    assert "sk-" not in repr(OpenAIBackend(api_key="sk-secret-value"))


@pytest.mark.parametrize("kind", KINDS)
async def test_model_listing_and_connection_test(kind, servers, client):
    backend, state = make(kind, servers, client)
    models = await backend.list_models()
    assert len(models) == 2 and all("fake" in m for m in models)
    report = await backend.test_connection()
    assert report.ok and report.models == models and "2 models" in report.message
    state.reset("401")
    report = await backend.test_connection()
    assert not report.ok and report.message.startswith("auth")
    state.reset("malformed")
    report = await backend.test_connection()
    assert not report.ok and "permanent" in report.message


async def test_request_shapes(servers, client):
    backend, state = make("anthropic", servers, client)
    await backend.chat([ChatMessage("system", "Persona A."), ChatMessage("user", "Hi"), ChatMessage("user", "there")])
    sent = state.requests[-1]
    assert sent["headers"]["x-api-key"] == API_KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["json"]["system"] == "Persona A."
    assert sent["json"]["messages"] == [{"role": "user", "content": "Hi\n\nthere"}]
    with pytest.raises(BackendPermanentError):
        await backend.chat([ChatMessage("system", "only a system prompt")])

    backend, state = make("openai", servers, client)
    await backend.stream(MESSAGES).collect()
    assert state.requests[-1]["json"]["stream_options"] == {"include_usage": True}
    assert state.requests[-1]["json"]["messages"][0] == {"role": "system", "content": "You are a test persona."}

    backend, state = make("ollama", servers, client)
    await backend.chat(MESSAGES, temperature=0.3, max_tokens=42)
    assert state.requests[-1]["json"]["stream"] is False
    assert state.requests[-1]["json"]["options"] == {"temperature": 0.3, "num_predict": 42}


async def test_openai_bearer_key(servers, client):
    server, state = servers["openai"]
    state.reset("ok")
    state.api_key = "sk-right"
    good = OpenAICompatBackend(base_url=server.url + "/v1", api_key="sk-right", client=client)
    assert (await good.chat(MESSAGES)).text == REPLY
    bad = OpenAICompatBackend(base_url=server.url + "/v1", api_key="sk-wrong", client=client)
    with pytest.raises(BackendAuthError) as info:
        await bad.chat(MESSAGES)
    assert "sk-wrong" not in str(info.value)
    state.api_key = None


async def test_stream_can_stop_early(servers, client):
    backend, _ = make("openai", servers, client)
    stream = backend.stream(MESSAGES)
    first = await anext(stream)
    await stream.aclose()
    assert first == "" or isinstance(first, str)
    with pytest.raises(RuntimeError):
        _ = stream.result


async def test_ollama_pull_progress(servers, client):
    backend, state = make("ollama", servers, client, script=("model_missing", "ok", "ok"))
    with pytest.raises(ModelMissing) as info:
        await backend.chat(MESSAGES, model="newmodel")
    events = [p async for p in backend.pull(info.value.model)]
    assert events[0].status == "pulling manifest" and events[-1].done
    fractions = [p.fraction for p in events if p.fraction is not None]
    assert fractions == [0.0, 0.4, 0.8, 1.0]
    assert state.requests[-1]["json"] == {"model": "newmodel", "stream": True}
    assert "newmodel:latest" in await backend.list_models()


async def test_ollama_pull_failures(servers, client):
    backend, _ = make("ollama", servers, client, script=("model_missing",))
    with pytest.raises(BackendPermanentError, match="file does not exist"):
        [p async for p in backend.pull("nope")]
    backend, _ = make("ollama", servers, client, script=("disconnect",))
    with pytest.raises(BackendTransientError):
        [p async for p in backend.pull("half")]


# --- offline backend, registry, chain, prices --------------------------------------------------------------


async def test_offline_backend_reads_the_request():
    persona = persona_from_template("home-chef")
    backend = OfflineTextBackend(persona, character_name="Nonna Bot", seed=5)
    prompt = WritingRequest(kind="youtube_title", style="casual", brief="lemon risotto").to_prompt()
    result = await backend.chat(as_messages("system", prompt))
    assert 0 < len(result.text) <= 100 and result.paid is False and result.output_tokens > 0
    again = await backend.chat(as_messages("system", prompt))
    assert again.text == result.text  # seeded: reproducible
    assert (await backend.test_connection()).ok
    free_text = await backend.chat([ChatMessage("user", "weeknight pasta")])
    assert free_text.text


def test_registry():
    assert set(TEXT_BACKENDS) >= {"ollama", "openai_compat", "openai", "openrouter", "anthropic", "offline"}
    assert isinstance(create_backend("ollama", base_url="http://127.0.0.1:1"), OllamaBackend)
    with pytest.raises(InvalidInput):
        create_backend("nope")
    assert TEXT_BACKENDS["anthropic"].paid and not TEXT_BACKENDS["ollama"].paid


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def test_chain_retries_honouring_retry_after(servers, client):
    backend, state = make("ollama", servers, client, script=("429", "ok"))
    state.retry_after = "3"
    sleep = SleepRecorder()
    chain = FallbackChain([backend], sleep=sleep)
    out = await chain.chat(MESSAGES)
    assert out.backend == "ollama" and out.text == REPLY
    assert sleep.calls == [3.0]  # Retry-After is a floor on the backoff
    assert [a.outcome for a in out.attempts] == ["transient", "ok"]
    assert out.attempts[1].waited_s == 3.0 and not out.fell_back


async def test_chain_falls_back_on_auth_and_permanent(servers, client):
    ollama, _ = make("ollama", servers, client, script=("model_missing",))
    openai, _ = make("openai", servers, client, script=("401",))
    anthropic, _ = make("anthropic", servers, client, script=("ok",))
    sleep = SleepRecorder()
    out = await FallbackChain([ollama, ChainEntry(openai, "fake-large"), anthropic], sleep=sleep).chat(MESSAGES)
    assert out.backend == "anthropic" and out.fell_back
    assert [(a.backend, a.outcome) for a in out.attempts] == [
        ("ollama", "permanent"),
        ("openai_compat", "auth"),
        ("anthropic", "ok"),
    ]
    assert out.attempts[1].model == "fake-large"
    assert sleep.calls == []  # nothing worth waiting for


async def test_chain_bounded_retries_then_offline(servers, client):
    ollama, _ = make("ollama", servers, client, script=("500",))
    openai, _ = make("openai", servers, client, script=("malformed",))
    sleep = SleepRecorder()
    persona = persona_from_template("illustrator")
    chain = FallbackChain([ollama, openai], offline=OfflineTextBackend(persona), max_retries=2, sleep=sleep)
    prompt = WritingRequest(kind="tweet", brief="moss creatures").to_prompt()
    out = await chain.chat(as_messages("persona prompt", prompt))
    assert out.backend == "offline" and out.text
    assert [(a.backend, a.outcome) for a in out.attempts] == [
        ("ollama", "transient"),
        ("ollama", "transient"),
        ("ollama", "transient"),
        ("openai_compat", "permanent"),
        ("offline", "ok"),
    ]
    assert len(sleep.calls) == 2 and sleep.calls[0] < sleep.calls[1] <= 8.0 * 1.25  # exponential, bounded
    assert len(out.errors) == 4


async def test_chain_moves_on_when_retry_after_is_too_long(servers, client):
    ollama, state = make("ollama", servers, client, script=("429",))
    state.retry_after = "3600"
    sleep = SleepRecorder()
    with pytest.raises(ChainExhausted) as caught:
        await FallbackChain([ollama], sleep=sleep, max_wait_s=20).chat(MESSAGES)
    assert sleep.calls == [] and "ollama: HTTP 429" in caught.value.message


async def test_chain_total_wait_is_bounded(servers, client):
    ollama, state = make("ollama", servers, client, script=("429",))
    openai, state2 = make("openai", servers, client, script=("429",))
    state.retry_after = state2.retry_after = "4"
    sleep = SleepRecorder()
    chain = FallbackChain([ollama, openai], offline=OfflineTextBackend(), sleep=sleep, max_retries=5,
                          max_total_wait_s=10)
    out = await chain.chat(MESSAGES)
    assert out.backend == "offline"  # given explicitly: the chain may end with the template writer
    assert sum(sleep.calls) <= 10


async def test_chain_skips_paid_backends_past_the_cap(servers, client):
    anthropic, state = make("anthropic", servers, client)
    ollama, _ = make("ollama", servers, client)
    capped = {"value": False}
    chain = FallbackChain([anthropic, ollama], allow_paid=lambda: capped["value"])
    out = await chain.chat(MESSAGES)
    assert out.backend == "ollama"
    assert out.attempts[0].outcome == "skipped_paid"
    assert not any(r["path"] == "/v1/messages" for r in state.requests)  # the paid API was never called
    capped["value"] = True
    assert (await chain.chat(MESSAGES)).backend == "anthropic"


async def test_chain_stream_restarts_on_the_next_backend(servers, client):
    ollama, _ = make("ollama", servers, client, script=("disconnect",))
    openai, _ = make("openai", servers, client)
    sleep = SleepRecorder()
    stream = FallbackChain([ollama, openai], max_retries=0, sleep=sleep).stream(MESSAGES)
    deltas = [d async for d in stream]
    restart_at = next(i for i, d in enumerate(deltas) if d.restart)
    assert {d.backend for d in deltas[:restart_at]} == {"ollama"}
    assert "".join(d.text for d in deltas[restart_at:]) == REPLY
    assert stream.result is not None and stream.result.backend == "openai_compat"


async def test_chain_survives_a_buggy_backend():
    class Broken(TextBackend):
        name = "broken"

        async def chat(self, messages, **kw):
            raise ZeroDivisionError("bug")

        async def list_models(self):
            return []

    out = await FallbackChain([Broken()], offline=OfflineTextBackend(), sleep=SleepRecorder()).chat(MESSAGES)
    assert out.backend == "offline"
    assert out.attempts[0].outcome == "error" and "ZeroDivisionError" in out.attempts[0].message


async def test_chain_without_the_template_writer_reports_every_backend(servers, client):
    """A dead model is never silently replaced: with no offline writer given, the chain raises and names each one."""
    ollama, _ = make("ollama", servers, client, script=("500",))
    openai, _ = make("openai", servers, client, script=("401",))
    chain = FallbackChain([ollama, openai], max_retries=0, sleep=SleepRecorder())
    assert chain.offline is None
    with pytest.raises(ChainExhausted) as caught:
        await chain.chat(MESSAGES)
    assert "ollama: HTTP 500" in caught.value.message and "openai_compat: HTTP 401" in caught.value.message
    assert [a.outcome for a in caught.value.attempts] == ["transient", "auth"]
    stream = FallbackChain([ollama], max_retries=0, sleep=SleepRecorder()).stream(MESSAGES)
    with pytest.raises(ChainExhausted):
        async for _ in stream:
            pass


def test_prices_and_cost():
    table = PriceTable()
    res = ChatResult("x", "gpt-4o-mini-2024-07-18", 1_000_000, 500_000, 1.0, backend="openai", paid=True)
    assert cost_of(res, table) == Decimal("0.15") + Decimal("0.30")
    assert table.lookup("openai/gpt-4o")  # OpenRouter's vendor prefix
    assert table.lookup("claude-opus-4-5-20251101").input_per_mtok == Decimal("5.00")  # longest prefix wins
    assert table.lookup("claude-opus-4-1").input_per_mtok == Decimal("15.00")
    local = ChatResult("x", "llama3.2", 10_000, 10_000, 1.0, backend="ollama", paid=False)
    assert cost_of(local, table) == 0
    unknown = ChatResult("x", "mystery-model", 10, 10, 1.0, backend="openrouter", paid=True)
    assert cost_of(unknown, table) is None
    table.set("mystery-model", "1", "2")
    assert cost_of(unknown, table) == Decimal("0.00003")
    assert PriceTable.from_dict(table.to_dict()) == table
    with pytest.raises(InvalidInput):
        table.set("x", -1, 0)


def test_errors_render_backend_and_message():
    err = BackendTransientError("HTTP 503", backend="ollama", retry_after=1.0)
    assert str(err) == "ollama: HTTP 503" and isinstance(err, BackendError)
