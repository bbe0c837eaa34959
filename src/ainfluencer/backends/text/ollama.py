"""Ollama's native API: ``/api/chat`` (NDJSON streaming), ``/api/tags`` and ``/api/pull`` with progress."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from ainfluencer.backends.text.base import ChatMessage, ChatResult, HttpTextBackend, StreamUsage
from ainfluencer.backends.text.errors import BackendError, BackendPermanentError, ModelMissing


@dataclass(frozen=True)
class PullProgress:
    """One progress line of ``/api/pull`` (what the UI shows while a model downloads)."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None

    @property
    def fraction(self) -> float | None:
        """Share of the current layer downloaded, 0.0–1.0, when the server says."""
        if self.total and self.completed is not None:
            return min(1.0, self.completed / self.total)
        return None

    @property
    def done(self) -> bool:
        """Whether this is the final "success" line."""
        return self.status == "success"


class OllamaBackend(HttpTextBackend):
    """A local or remote Ollama server, spoken to through its native API."""

    name: ClassVar[str] = "ollama"
    label: ClassVar[str] = "Ollama"
    streams: ClassVar[bool] = True
    paid: ClassVar[bool] = False
    default_timeout: ClassVar[float] = 120.0  # loading a model into memory delays the first token
    default_model: ClassVar[str] = "llama3.2"
    default_base_url: ClassVar[str] = "http://127.0.0.1:11434"

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        if self._key():  # Ollama itself has no keys; a reverse proxy in front of it may want one
            headers["authorization"] = f"Bearer {self._key()}"
        return headers

    def _payload(
        self, messages: Sequence[ChatMessage], *, model: str, temperature: float, max_tokens: int, stream: bool
    ) -> dict[str, Any]:
        return {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": stream,
            "options": {"temperature": temperature, "num_predict": max_tokens},
        }

    def _not_found(self, exc: BackendError, model: str) -> BackendError:
        if isinstance(exc, BackendPermanentError) and exc.status == 404 and "not found" in exc.message.lower():
            return ModelMissing(
                model, backend=self.name, message=f"model {model!r} is not pulled on this Ollama server; pull it first"
            )
        return exc

    def _line_error(self, message: Any) -> BackendError:
        text = str(message)[:300]
        if "not found" in text.lower() and "model" in text.lower():
            return BackendPermanentError(text, backend=self.name, status=404)
        return BackendPermanentError(f"Ollama reported: {text}", backend=self.name)

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        temperature: float = 0.8,
        max_tokens: int = 512,
    ) -> ChatResult:
        """Complete the conversation in one call (``stream: false``)."""
        model = model or self.model
        started = time.perf_counter()
        payload = self._payload(messages, model=model, temperature=temperature, max_tokens=max_tokens, stream=False)
        with self._model_errors(model):
            data = await self._request_json("POST", "/api/chat", payload=payload)
        if "error" in data:
            raise self._not_found(self._line_error(data["error"]), model)
        message = data.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise self._protocol("the chat response has no message.content")
        return ChatResult(
            text=message["content"],
            model=str(data.get("model") or model),
            input_tokens=int(data.get("prompt_eval_count") or 0),
            output_tokens=int(data.get("eval_count") or 0),
            latency_s=time.perf_counter() - started,
            backend=self.name,
            paid=self.paid,
            finish_reason=data.get("done_reason"),
        )

    async def _ndjson(self, path: str, payload: dict[str, Any]) -> AsyncGenerator[dict[str, Any]]:
        """Decoded NDJSON objects from a streaming endpoint."""
        async with self._open_stream("POST", path, payload=payload) as response:
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                obj = self._parse_json(line, what="stream line")
                if not isinstance(obj, dict):
                    raise self._protocol("a stream line is not a JSON object")
                yield obj

    async def _stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float,
        max_tokens: int,
        usage: StreamUsage,
    ) -> AsyncIterator[str]:
        model = model or self.model
        usage.model = model
        payload = self._payload(messages, model=model, temperature=temperature, max_tokens=max_tokens, stream=True)
        finished = False
        with self._model_errors(model):
            async with aclosing(self._ndjson("/api/chat", payload)) as lines:
                async for obj in lines:
                    if "error" in obj:
                        raise self._line_error(obj["error"])
                    message = obj.get("message") or {}
                    delta = message.get("content") if isinstance(message, dict) else None
                    if isinstance(delta, str) and delta:
                        yield delta
                    if obj.get("done"):
                        usage.model = str(obj.get("model") or model)
                        usage.input_tokens = int(obj.get("prompt_eval_count") or 0)
                        usage.output_tokens = int(obj.get("eval_count") or 0)
                        usage.finish_reason = obj.get("done_reason")
                        finished = True
                        break
        if not finished:
            raise self._cut_off()

    async def list_models(self) -> list[str]:
        """Models pulled on the server (``/api/tags``)."""
        data = await self._request_json("GET", "/api/tags")
        models = data.get("models")
        if not isinstance(models, list):
            raise self._protocol("/api/tags has no models list")
        return [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]

    async def pull(self, model: str) -> AsyncIterator[PullProgress]:
        """Download a model, yielding progress lines until "success"."""
        payload = {"model": model, "stream": True}
        finished = False
        async with aclosing(self._ndjson("/api/pull", payload)) as lines:
            async for obj in lines:
                if "error" in obj:
                    message = f"pull of {model!r} failed: {str(obj['error'])[:300]}"
                    raise BackendPermanentError(message, backend=self.name)
                progress = PullProgress(
                    status=str(obj.get("status", "")),
                    digest=obj.get("digest"),
                    total=obj.get("total"),
                    completed=obj.get("completed"),
                )
                yield progress
                if progress.done:
                    finished = True
                    break
        if not finished:
            raise self._cut_off()


@dataclass(frozen=True)
class OllamaDetection:
    """What a probe of a local Ollama found: whether it answered, its version and its pulled models."""

    base_url: str
    found: bool
    version: str = ""
    models: tuple[str, ...] = ()
    message: str = ""


async def detect_ollama(
    base_url: str = OllamaBackend.default_base_url, *, wait_s: float = 2.0, client: httpx.AsyncClient | None = None
) -> OllamaDetection:
    """Probe an Ollama server (``/api/version``, then ``/api/tags``); never raises, reports what it found.

    The address is a parameter so tests probe a fake on a free port; the app probes 127.0.0.1:11434.
    """
    own = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(wait_s))
    url = base_url.rstrip("/")
    try:
        try:
            response = await http.get(f"{url}/api/version", timeout=wait_s)
        except httpx.HTTPError as exc:
            return OllamaDetection(url, False, message=f"nothing answered at {url} ({type(exc).__name__})")
        try:
            data = response.json() if response.is_success else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or "version" not in data:
            status = response.status_code
            return OllamaDetection(url, False, message=f"{url} answered, but not as Ollama (HTTP {status})")
        version = str(data["version"])
        backend = OllamaBackend(base_url=url, client=http, timeout=wait_s)
        try:
            models = tuple(await backend.list_models())
        except BackendError as exc:
            return OllamaDetection(url, True, version, (), f"Ollama {version}; listing models failed: {exc.message}")
        count = f"{len(models)} model{'s' if len(models) != 1 else ''} pulled"
        return OllamaDetection(url, True, version, models, f"Ollama {version} at {url}, {count}")
    finally:
        if own:
            await http.aclose()
