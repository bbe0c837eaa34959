"""Anthropic's Messages API (``POST /v1/messages``), plain and as an event stream, and ``/v1/models``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, ClassVar
from urllib.parse import quote

from ainfluencer.backends.text.base import (
    ChatMessage,
    ChatResult,
    HttpTextBackend,
    StreamUsage,
    system_and_turns,
)
from ainfluencer.backends.text.errors import BackendError, BackendPermanentError, ModelMissing

API_VERSION = "2023-06-01"
MAX_MODEL_PAGES = 10


class AnthropicBackend(HttpTextBackend):
    """Claude models through Anthropic's Messages API (paid; needs a key)."""

    name: ClassVar[str] = "anthropic"
    label: ClassVar[str] = "Anthropic"
    streams: ClassVar[bool] = True
    paid: ClassVar[bool] = True
    needs_api_key: ClassVar[bool] = True
    default_timeout: ClassVar[float] = 60.0
    default_model: ClassVar[str] = "claude-haiku-4-5"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), "x-api-key": self._key(), "anthropic-version": API_VERSION}

    def _payload(
        self, messages: Sequence[ChatMessage], *, model: str, temperature: float, max_tokens: int, stream: bool
    ) -> dict[str, Any]:
        system, turns = system_and_turns(messages)
        merged: list[dict[str, str]] = []
        for m in turns:  # the API wants alternating turns that start with the user
            if merged and merged[-1]["role"] == m.role:
                merged[-1]["content"] += "\n\n" + m.content
            else:
                merged.append({"role": m.role, "content": m.content})
        if not merged or merged[0]["role"] != "user":
            raise BackendPermanentError("the conversation must start with a user message", backend=self.name)
        payload: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": merged,
            "temperature": min(1.0, max(0.0, temperature)),
        }
        if system:
            payload["system"] = system
        if stream:
            payload["stream"] = True
        return payload

    def _not_found(self, exc: BackendError, model: str) -> BackendError:
        if exc.status == 404:
            return ModelMissing(model, backend=self.name, message=f"model {model!r} is not available ({exc.message})")
        return exc

    def _event_error(self, data: dict[str, Any]) -> BackendError:
        err = data.get("error") or {}
        if not isinstance(err, dict):
            return self._payload_error(None, str(err))
        return self._payload_error(str(err.get("type") or "error"), str(err.get("message") or ""))

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
            data = await self._request_json("POST", "/v1/messages", payload=payload)
        if data.get("type") == "error":
            raise self._event_error(data)
        content = data.get("content")
        if not isinstance(content, list):
            raise self._protocol("the response has no content list")
        text = "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
        usage = data.get("usage") or {}
        return ChatResult(
            text=text,
            model=str(data.get("model") or model),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            latency_s=time.perf_counter() - started,
            backend=self.name,
            paid=self.paid,
            finish_reason=data.get("stop_reason"),
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
        stopped = False
        with self._model_errors(model):
            async with aclosing(self._sse("/v1/messages", payload)) as events:
                async for event in events:
                    if not event.data.strip():
                        continue
                    try:
                        data = json.loads(event.data)
                    except json.JSONDecodeError as exc:
                        raise self._protocol(f"event {event.event!r} is not valid JSON ({exc.msg})") from exc
                    if not isinstance(data, dict):
                        raise self._protocol(f"event {event.event!r} is not a JSON object")
                    kind = data.get("type") or event.event
                    if kind == "message_start":
                        message = data.get("message") or {}
                        usage.model = str(message.get("model") or model)
                        usage.input_tokens = int((message.get("usage") or {}).get("input_tokens") or 0)
                    elif kind == "content_block_delta":
                        delta = data.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            yield str(delta["text"])
                    elif kind == "message_delta":
                        out = (data.get("usage") or {}).get("output_tokens")
                        if out is not None:
                            usage.output_tokens = int(out)
                        usage.finish_reason = (data.get("delta") or {}).get("stop_reason") or usage.finish_reason
                    elif kind == "message_stop":
                        stopped = True
                        break
                    elif kind == "error":
                        raise self._event_error(data)
                    # ping, content_block_start/stop and future event types carry nothing we need
        if not stopped:
            raise self._cut_off()

    async def list_models(self) -> list[str]:
        """Model ids from ``/v1/models`` (following pages)."""
        names: list[str] = []
        after: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            path = "/v1/models?limit=100" + (f"&after_id={quote(after)}" if after else "")
            data = await self._request_json("GET", path)
            items = data.get("data")
            if not isinstance(items, list):
                raise self._protocol("/v1/models has no data list")
            names += [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]
            after = data.get("last_id")
            if not data.get("has_more") or not after:
                break
        return names
