"""Any server speaking OpenAI's ``/v1/chat/completions``: OpenAI, OpenRouter, vLLM, LM Studio, llama.cpp.

``base_url`` includes the version segment (``http://127.0.0.1:1234/v1``), as every one of these
servers documents it; paths here are relative to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from ainfluencer.backends.text.base import ChatMessage, ChatResult, HttpTextBackend, StreamUsage
from ainfluencer.backends.text.errors import BackendError, ModelMissing


class OpenAICompatBackend(HttpTextBackend):
    """A self-hosted OpenAI-compatible server (free to call; key optional)."""

    name: ClassVar[str] = "openai_compat"
    label: ClassVar[str] = "OpenAI-compatible server"
    streams: ClassVar[bool] = True
    paid: ClassVar[bool] = False
    default_timeout: ClassVar[float] = 120.0
    default_model: ClassVar[str] = "local-model"
    default_base_url: ClassVar[str] = "http://127.0.0.1:1234/v1"
    max_tokens_field: ClassVar[str] = "max_tokens"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout | None = None,
        model: str | None = None,
        include_usage: bool = True,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(base_url=base_url, api_key=api_key, client=client, timeout=timeout, model=model)
        self.include_usage = include_usage  # some older servers reject stream_options; turn it off for them
        self.extra_headers = dict(extra_headers or {})

    def _headers(self) -> dict[str, str]:
        headers = {**super()._headers(), **self.extra_headers}
        if self._key():
            headers["authorization"] = f"Bearer {self._key()}"
        return headers

    def _payload(
        self, messages: Sequence[ChatMessage], *, model: str, temperature: float, max_tokens: int, stream: bool
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": temperature,
            self.max_tokens_field: max_tokens,
            "stream": stream,
        }
        if stream and self.include_usage:
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _not_found(self, exc: BackendError, model: str) -> BackendError:
        if exc.status == 404 and "model" in exc.message.lower():
            return ModelMissing(model, backend=self.name, message=f"model {model!r} is not served here ({exc.message})")
        return exc

    def _body_error(self, data: dict[str, Any]) -> BackendError:
        err = data.get("error")
        if isinstance(err, dict):
            kind = err.get("code") or err.get("type")
            return self._payload_error(kind, str(err.get("message") or ""))
        return self._payload_error(None, str(err))

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        temperature: float = 0.8,
        max_tokens: int = 512,
    ) -> ChatResult:
        """Complete the conversation in one call."""
        model = model or self.model
        started = time.perf_counter()
        payload = self._payload(messages, model=model, temperature=temperature, max_tokens=max_tokens, stream=False)
        with self._model_errors(model):
            data = await self._request_json("POST", "chat/completions", payload=payload)
        if data.get("error"):
            raise self._body_error(data)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise self._protocol("the response has no choices[0].message.content") from exc
        if not isinstance(text, str):
            raise self._protocol("choices[0].message.content is not text")
        usage = data.get("usage") or {}
        return ChatResult(
            text=text,
            model=str(data.get("model") or model),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=time.perf_counter() - started,
            backend=self.name,
            paid=self.paid,
            finish_reason=choice.get("finish_reason"),
        )

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
        done = False
        with self._model_errors(model):
            async with aclosing(self._sse("chat/completions", payload)) as events:
                async for event in events:
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    if not event.data.strip():
                        continue
                    try:
                        chunk = json.loads(event.data)
                    except json.JSONDecodeError as exc:
                        raise self._protocol(f"stream chunk is not valid JSON ({exc.msg})") from exc
                    if not isinstance(chunk, dict):
                        raise self._protocol("stream chunk is not a JSON object")
                    if chunk.get("error"):
                        raise self._body_error(chunk)
                    usage.model = str(chunk.get("model") or usage.model)
                    if isinstance(chunk.get("usage"), dict):
                        usage.input_tokens = int(chunk["usage"].get("prompt_tokens") or 0)
                        usage.output_tokens = int(chunk["usage"].get("completion_tokens") or 0)
                    for choice in chunk.get("choices") or []:
                        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                            continue
                        delta = (choice.get("delta") or {}).get("content")
                        if isinstance(delta, str) and delta:
                            yield delta
                        if choice.get("finish_reason"):
                            usage.finish_reason = choice["finish_reason"]
        # servers that close right after the finishing chunk without "[DONE]" still gave a whole answer
        if not done and usage.finish_reason is None:
            raise self._cut_off()

    async def list_models(self) -> list[str]:
        """Model ids the server lists at ``/models``."""
        data = await self._request_json("GET", "models")
        items = data.get("data")
        if not isinstance(items, list):
            raise self._protocol("/models has no data list")
        return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]


class OpenAIBackend(OpenAICompatBackend):
    """OpenAI's hosted API (paid; needs a key)."""

    name: ClassVar[str] = "openai"
    label: ClassVar[str] = "OpenAI"
    paid: ClassVar[bool] = True
    needs_api_key: ClassVar[bool] = True
    default_timeout: ClassVar[float] = 60.0
    default_model: ClassVar[str] = "gpt-4o-mini"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    max_tokens_field: ClassVar[str] = "max_completion_tokens"


class OpenRouterBackend(OpenAICompatBackend):
    """OpenRouter's OpenAI-compatible gateway to many hosted models (paid; needs a key)."""

    name: ClassVar[str] = "openrouter"
    label: ClassVar[str] = "OpenRouter"
    paid: ClassVar[bool] = True
    needs_api_key: ClassVar[bool] = True
    default_timeout: ClassVar[float] = 90.0
    default_model: ClassVar[str] = "openai/gpt-4o-mini"
    default_base_url: ClassVar[str] = "https://openrouter.ai/api/v1"
