"""Text backends by name, the per-character fallback chain, and what calls cost.

Fallback chain, in order for each backend:
    paid backend while ``allow_paid()`` says no (usage cap reached)  -> skipped
    auth / permanent / unavailable error                             -> next backend at once
    transient error                                                   -> retry the same backend after
        delay(n) = min(8 s, 0.5 s * 2 ** (n - 1)) * (1 + U(0, 0.25)), floored by the server's
        Retry-After; at most ``max_retries`` retries per backend; a single wait above ``max_wait_s``
        or a total above ``max_total_wait_s`` moves on instead of waiting
    the offline template writer ends the chain only when it is given (the character names it, or the
    person asked for it for this text); otherwise a chain where nothing answered raises ChainExhausted,
    naming each backend and its reason, so a dead model is never silently replaced
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import anyio

from ainfluencer.backends.text.anthropic import AnthropicBackend
from ainfluencer.backends.text.base import ChatMessage, ChatResult, TextBackend
from ainfluencer.backends.text.errors import BackendError, BackendTransientError, ChainExhausted
from ainfluencer.backends.text.local import LocalTextBackend
from ainfluencer.backends.text.offline import OfflineTextBackend
from ainfluencer.backends.text.ollama import OllamaBackend
from ainfluencer.backends.text.openai_compat import OpenAIBackend, OpenAICompatBackend, OpenRouterBackend
from ainfluencer.errors import InvalidInput
from ainfluencer.jobs.retry import RetryPolicy

TEXT_BACKENDS: dict[str, type[TextBackend]] = {
    cls.name: cls
    for cls in (
        OllamaBackend,
        OpenAICompatBackend,
        OpenAIBackend,
        OpenRouterBackend,
        AnthropicBackend,
        LocalTextBackend,
        OfflineTextBackend,
    )
}

CHAIN_POLICY = RetryPolicy(base_seconds=0.5, max_seconds=8.0, jitter=0.25)

Outcome = Literal["ok", "auth", "transient", "permanent", "unavailable", "error", "skipped_paid"]


def backend_class(name: str) -> type[TextBackend]:
    """The backend class registered under ``name``."""
    try:
        return TEXT_BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(TEXT_BACKENDS))
        raise InvalidInput(f"unknown text backend {name!r}; known: {known}", field="backend") from None


def create_backend(name: str, **options: Any) -> TextBackend:
    """A backend instance by registry name (options go to its constructor)."""
    return backend_class(name)(**options)


# --- the fallback chain --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainEntry:
    """One backend in a chain and the model to ask it for (None: the backend's own default)."""

    backend: TextBackend
    model: str | None = None


@dataclass(frozen=True)
class Attempt:
    """What happened on one call (or skip) of one backend."""

    backend: str
    model: str
    outcome: Outcome
    message: str = ""
    waited_s: float = 0.0


@dataclass(frozen=True)
class ChainResult:
    """The answer, who gave it, and everything that went wrong before."""

    result: ChatResult
    backend: str
    attempts: list[Attempt]

    @property
    def text(self) -> str:
        """The answer text."""
        return self.result.text

    @property
    def errors(self) -> list[Attempt]:
        """The failed and skipped attempts, in order."""
        return [a for a in self.attempts if a.outcome != "ok"]

    @property
    def fell_back(self) -> bool:
        """Whether a backend other than the first one answered."""
        return bool(self.attempts) and self.attempts[0].backend != self.backend


@dataclass(frozen=True)
class ChainDelta:
    """A streamed piece of text; ``restart`` says to drop what came before (a later backend took over)."""

    text: str
    backend: str
    restart: bool = False


def _always() -> bool:
    return True


class FallbackChain:
    """Tries backends in order with bounded retries, skipping paid ones past the cap; offline only when given."""

    def __init__(
        self,
        entries: Sequence[TextBackend | ChainEntry],
        *,
        offline: OfflineTextBackend | None = None,
        allow_paid: Callable[[], bool] = _always,
        max_retries: int = 2,
        max_wait_s: float = 20.0,
        max_total_wait_s: float = 45.0,
        policy: RetryPolicy = CHAIN_POLICY,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        wrapped = [e if isinstance(e, ChainEntry) else ChainEntry(e) for e in entries]
        given_offline = [e.backend for e in wrapped if isinstance(e.backend, OfflineTextBackend)]
        self.entries = [e for e in wrapped if not isinstance(e.backend, OfflineTextBackend)]
        # the offline writer, when given, always comes last, whatever position it was given
        self.offline: OfflineTextBackend | None = offline or (given_offline[0] if given_offline else None)
        if self.offline is not None:
            self.entries.append(ChainEntry(self.offline))
        self.allow_paid = allow_paid
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.max_total_wait_s = max_total_wait_s
        self.policy = policy
        self.sleep = sleep
        self.rng = rng

    def _model(self, entry: ChainEntry) -> str:
        return entry.model or getattr(entry.backend, "model", "") or entry.backend.default_model

    def _wait_for(self, exc: BackendTransientError, retries: int, waited: float) -> float | None:
        """Seconds to wait before retrying, or None to move on."""
        decision = self.policy.decide(
            attempt=retries + 1, max_attempts=self.max_retries + 1, retry_after=exc.retry_after, rng=self.rng
        )
        delay = decision.delay.total_seconds()
        if not decision.retry or delay > self.max_wait_s or waited + delay > self.max_total_wait_s:
            return None
        return delay

    async def chat(
        self, messages: Sequence[ChatMessage], *, temperature: float = 0.8, max_tokens: int = 512
    ) -> ChainResult:
        """Ask each backend in turn until one answers; ChainExhausted when none does."""
        attempts: list[Attempt] = []
        waited = 0.0
        last_error: BaseException | None = None
        for entry in self.entries:
            backend, model = entry.backend, self._model(entry)
            retries = 0
            pause = 0.0
            while True:
                if backend.paid and not self.allow_paid():
                    attempts.append(Attempt(backend.name, model, "skipped_paid", "monthly usage cap reached"))
                    break
                try:
                    result = await backend.chat(messages, model=model, temperature=temperature, max_tokens=max_tokens)
                except BackendTransientError as exc:
                    last_error = exc
                    delay = self._wait_for(exc, retries, waited)
                    attempts.append(Attempt(backend.name, model, "transient", exc.message, pause))
                    if delay is None:
                        break
                    await self.sleep(delay)
                    waited += delay
                    pause = delay
                    retries += 1
                    continue
                except BackendError as exc:
                    last_error = exc
                    attempts.append(Attempt(backend.name, model, exc.kind, exc.message, pause))  # type: ignore[arg-type]
                    break
                except Exception as exc:  # a bug in one backend must not silence the others
                    last_error = exc
                    attempts.append(Attempt(backend.name, model, "error", f"{type(exc).__name__}: {exc}", pause))
                    break
                attempts.append(Attempt(backend.name, model, "ok", "", pause))
                return ChainResult(result=result, backend=backend.name, attempts=attempts)
        raise ChainExhausted(attempts) from last_error

    def stream(
        self, messages: Sequence[ChatMessage], *, temperature: float = 0.8, max_tokens: int = 512
    ) -> ChainStream:
        """Stream from the first backend that answers; a failure mid-answer restarts on the next try."""
        holder = ChainStream()
        holder._deltas = self._stream(messages, temperature=temperature, max_tokens=max_tokens, holder=holder)
        return holder

    async def _stream(
        self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int, holder: ChainStream
    ) -> AsyncGenerator[ChainDelta]:
        attempts: list[Attempt] = []
        waited = 0.0
        emitted_before = False
        for entry in self.entries:
            backend, model = entry.backend, self._model(entry)
            retries = 0
            pause = 0.0
            while True:
                if backend.paid and not self.allow_paid():
                    attempts.append(Attempt(backend.name, model, "skipped_paid", "monthly usage cap reached"))
                    break
                first = True
                chat_stream = backend.stream(messages, model=model, temperature=temperature, max_tokens=max_tokens)
                try:
                    async for delta in chat_stream:
                        yield ChainDelta(delta, backend.name, restart=first and emitted_before)
                        first = False
                        emitted_before = True
                except BackendTransientError as exc:
                    await chat_stream.aclose()
                    delay = self._wait_for(exc, retries, waited)
                    attempts.append(Attempt(backend.name, model, "transient", exc.message, pause))
                    if delay is None:
                        break
                    await self.sleep(delay)
                    waited += delay
                    pause = delay
                    retries += 1
                    continue
                except BackendError as exc:
                    await chat_stream.aclose()
                    attempts.append(Attempt(backend.name, model, exc.kind, exc.message, pause))  # type: ignore[arg-type]
                    break
                except Exception as exc:  # a bug in one backend must not silence the others
                    await chat_stream.aclose()
                    attempts.append(Attempt(backend.name, model, "error", f"{type(exc).__name__}: {exc}", pause))
                    break
                attempts.append(Attempt(backend.name, model, "ok", "", pause))
                holder.result = ChainResult(result=chat_stream.result, backend=backend.name, attempts=attempts)
                return
        raise ChainExhausted(attempts)


class ChainStream(AsyncIterator[ChainDelta]):
    """Deltas from a fallback chain; ``result`` is set once the stream has ended."""

    def __init__(self) -> None:
        self._deltas: AsyncGenerator[ChainDelta] | None = None
        self.result: ChainResult | None = None

    def __aiter__(self) -> ChainStream:
        return self

    async def __anext__(self) -> ChainDelta:
        assert self._deltas is not None
        return await anext(self._deltas)

    async def aclose(self) -> None:
        """Stop early and release the connection."""
        if self._deltas is not None:
            await self._deltas.aclose()


# --- prices --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPrice:
    """US dollars per million tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal


def _p(inp: str, out: str) -> ModelPrice:
    return ModelPrice(Decimal(inp), Decimal(out))


# List prices as published by the vendors (USD per 1M tokens); a starting point, edited in Settings.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": _p("2.50", "10.00"),
    "gpt-4o-mini": _p("0.15", "0.60"),
    "gpt-4.1": _p("2.00", "8.00"),
    "gpt-4.1-mini": _p("0.40", "1.60"),
    "gpt-4.1-nano": _p("0.10", "0.40"),
    "claude-3-haiku": _p("0.25", "1.25"),
    "claude-3-5-haiku": _p("0.80", "4.00"),
    "claude-haiku-4-5": _p("1.00", "5.00"),
    "claude-3-7-sonnet": _p("3.00", "15.00"),
    "claude-sonnet-4": _p("3.00", "15.00"),
    "claude-opus-4": _p("15.00", "75.00"),
    "claude-opus-4-5": _p("5.00", "25.00"),
}


@dataclass
class PriceTable:
    """Editable per-model prices; a model matches its exact name, then the longest listed prefix."""

    prices: dict[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def set(self, model: str, input_per_mtok: Decimal | float | str, output_per_mtok: Decimal | float | str) -> None:
        """Add or change the price of a model."""
        inp, out = Decimal(str(input_per_mtok)), Decimal(str(output_per_mtok))
        if inp < 0 or out < 0:
            raise InvalidInput("prices cannot be negative", field="price")
        self.prices[model] = ModelPrice(inp, out)

    def lookup(self, model: str) -> ModelPrice | None:
        """The price for a model name (vendor prefixes like ``openai/`` are ignored), or None if unknown."""
        for name in (model, model.rsplit("/", 1)[-1]):
            if name in self.prices:
                return self.prices[name]
            matches = [key for key in self.prices if name.startswith(key)]
            if matches:
                return self.prices[max(matches, key=len)]
        return None

    def to_dict(self) -> dict[str, dict[str, str]]:
        """JSON-friendly form for storing the table."""
        return {
            m: {"input_per_mtok": str(p.input_per_mtok), "output_per_mtok": str(p.output_per_mtok)}
            for m, p in sorted(self.prices.items())
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> PriceTable:
        """Read a stored table back."""
        table = cls(prices={})
        for model, p in data.items():
            table.set(model, p["input_per_mtok"], p["output_per_mtok"])
        return table


def cost_of(result: ChatResult, price_table: PriceTable) -> Decimal | None:
    """US dollars a call cost: 0 for free backends, None when a paid model has no price in the table."""
    if not result.paid:
        return Decimal(0)
    price = price_table.lookup(result.model)
    if price is None:
        return None
    total = result.input_tokens * price.input_per_mtok + result.output_tokens * price.output_per_mtok
    return total / Decimal(1_000_000)
