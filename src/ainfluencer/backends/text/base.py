"""The text backend extension point and the one HTTP choke point the network backends share."""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError
from pydantic import SecretStr

from ainfluencer.backends.text.errors import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    parse_retry_after,
)

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
AUTH_STATUSES = frozenset({401, 403})
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class ChatResult:
    """A finished completion and what it cost in tokens and time."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    backend: str = ""
    paid: bool = False
    finish_reason: str | None = None


@dataclass(frozen=True)
class ConnectionReport:
    """What the Settings page shows after "Test connection"."""

    ok: bool
    message: str
    models: list[str] = field(default_factory=list)


@dataclass
class StreamUsage:
    """Filled in by a backend while it streams; read by ``ChatStream`` when the stream ends."""

    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None


def approx_tokens(text: str) -> int:
    """A rough token count (about four characters a token) for backends that report none."""
    return max(1, round(len(text) / 4)) if text else 0


def system_and_turns(messages: Sequence[ChatMessage]) -> tuple[str, list[ChatMessage]]:
    """Split messages into one joined system prompt and the remaining turns."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    return system, [m for m in messages if m.role != "system"]


class ChatStream(AsyncIterator[str]):
    """Text deltas as they arrive; after the last one, ``result`` holds the whole answer and its usage."""

    def __init__(self, deltas: AsyncIterator[str], usage: StreamUsage, *, backend: str, paid: bool) -> None:
        self._deltas = deltas
        self._usage = usage
        self._backend = backend
        self._paid = paid
        self._parts: list[str] = []
        self._started: float | None = None
        self._result: ChatResult | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        if self._started is None:
            self._started = time.perf_counter()
        try:
            delta = await anext(self._deltas)
        except StopAsyncIteration:
            self._finish()
            raise
        self._parts.append(delta)
        return delta

    def _finish(self) -> None:
        if self._result is not None:
            return
        text = "".join(self._parts)
        u = self._usage
        self._result = ChatResult(
            text=text,
            model=u.model,
            input_tokens=u.input_tokens if u.input_tokens is not None else 0,
            output_tokens=u.output_tokens if u.output_tokens is not None else approx_tokens(text),
            latency_s=time.perf_counter() - (self._started or time.perf_counter()),
            backend=self._backend,
            paid=self._paid,
            finish_reason=u.finish_reason,
        )

    @property
    def done(self) -> bool:
        """Whether the stream has ended normally."""
        return self._result is not None

    @property
    def result(self) -> ChatResult:
        """The whole answer with usage; only after the stream is exhausted."""
        if self._result is None:
            raise RuntimeError("the stream has not finished yet")
        return self._result

    async def collect(self) -> ChatResult:
        """Read the stream to the end and return the result."""
        async for _ in self:
            pass
        return self.result

    async def aclose(self) -> None:
        """Stop early and release the connection."""
        close = getattr(self._deltas, "aclose", None)
        if close is not None:
            await close()


class TextBackend(ABC):
    """Extension point: one chat-capable text model server (or the offline writer).

    To add a backend, subclass this (or ``HttpTextBackend`` for an HTTP API), set the capability
    class attributes, implement ``chat``, ``_stream`` and ``list_models``, and add one line to
    ``backends/text/registry.py``. Services never import a concrete backend; they get one from the
    registry and read the class attributes generically.

    Capabilities (class attributes, read by the core):
        name             registry key, also recorded on every ``ChatResult``
        label            what a person sees in Settings
        streams          True when ``stream`` yields deltas as they are produced (False: one delta)
        paid             True when calls cost money; a usage cap skips such backends
        needs_api_key    True when the backend cannot work without a key
        default_timeout  seconds a single read may take before the call counts as transient failure
        default_model    the model used when a character names none

    Contract:
        ``chat`` returns a ``ChatResult`` or raises exactly one of the ``backends.text.errors``
        classes: auth, transient (with ``retry_after`` when the server gave one), permanent or
        unavailable. No other exception escapes: transport and parsing failures are mapped at the
        backend's one HTTP choke point. ``stream`` returns a ``ChatStream`` that raises the same
        classes while iterating; a stream that ends before the backend's final event is transient.
        ``test_connection`` never raises; it reports. Backends never log keys, prompts or replies.
    """

    name: ClassVar[str] = "base"
    label: ClassVar[str] = "Text backend"
    streams: ClassVar[bool] = False
    paid: ClassVar[bool] = False
    needs_api_key: ClassVar[bool] = False
    default_timeout: ClassVar[float] = 60.0
    default_model: ClassVar[str] = ""

    @abstractmethod
    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        temperature: float = 0.8,
        max_tokens: int = 512,
    ) -> ChatResult:
        """Complete the conversation in one call."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        temperature: float = 0.8,
        max_tokens: int = 512,
    ) -> ChatStream:
        """Complete the conversation as a stream of text deltas (usage on ``.result`` afterwards)."""
        chosen = model or getattr(self, "model", "") or self.default_model
        usage = StreamUsage(model=chosen)
        deltas = self._stream(messages, model=chosen, temperature=temperature, max_tokens=max_tokens, usage=usage)
        return ChatStream(deltas, usage, backend=self.name, paid=self.paid)

    async def _stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float,
        max_tokens: int,
        usage: StreamUsage,
    ) -> AsyncIterator[str]:
        """Yield deltas and fill ``usage``; the default answers in one piece through ``chat``."""
        result = await self.chat(messages, model=model, temperature=temperature, max_tokens=max_tokens)
        usage.model = result.model
        usage.input_tokens = result.input_tokens
        usage.output_tokens = result.output_tokens
        usage.finish_reason = result.finish_reason
        yield result.text

    @abstractmethod
    async def list_models(self) -> list[str]:
        """Names of the models this backend can use now."""

    async def test_connection(self) -> ConnectionReport:
        """Check that the backend answers and the credentials work; never raises."""
        try:
            models = await self.list_models()
        except BackendError as exc:
            return ConnectionReport(ok=False, message=f"{exc.kind}: {exc.message}")
        count = f"{len(models)} model{'s' if len(models) != 1 else ''}"
        return ConnectionReport(ok=True, message=f"{self.label} answered; {count} available", models=models)

    async def aclose(self) -> None:
        """Release what the backend holds (connections it opened itself)."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class HttpTextBackend(TextBackend):
    """A text backend behind an HTTP API; ``_send`` is its one network choke point."""

    default_base_url: ClassVar[str] = ""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout | None = None,
        model: str | None = None,
    ) -> None:
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        if isinstance(timeout, httpx.Timeout):
            self.timeout = timeout
        else:
            read = float(timeout) if timeout is not None else self.default_timeout
            # connect fails fast; a read may wait for a slow first token; write and pool are short
            self.timeout = httpx.Timeout(
                connect=min(10.0, read), read=read, write=min(30.0, read), pool=min(10.0, read)
            )
        self._client = client
        self._owns_client = client is None
        if model:
            self.model = model
        else:
            self.model = self.default_model

    def __repr__(self) -> str:
        key = "set" if self._key() else "none"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    def _key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key is not None else ""

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client (created on first use unless one was injected)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client if this backend created it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    def _headers(self) -> dict[str, str]:
        return {"accept": "application/json"}

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _error_detail(self, body: Any) -> str:
        """Pull the server's own message out of an error body (backends override for their shape)."""
        if isinstance(body, dict):
            err = body.get("error", body.get("message"))
            if isinstance(err, dict):
                err = err.get("message") or err.get("type")
            if isinstance(err, str):
                return err
        return ""

    def _redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def _status_error(self, response: httpx.Response, body_text: str) -> BackendError:
        """Map a non-success response to one error class."""
        status = response.status_code
        try:
            detail = self._error_detail(json.loads(body_text)) if body_text else ""
        except ValueError:
            detail = ""
        detail = self._redact((detail or body_text or response.reason_phrase).strip())[:MAX_DETAIL_CHARS]
        message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
        if status in AUTH_STATUSES:
            return BackendAuthError(message, backend=self.name, status=status)
        if status in TRANSIENT_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return BackendTransientError(message, backend=self.name, status=status, retry_after=retry_after)
        return BackendPermanentError(message, backend=self.name, status=status)

    def _transport_error(self, exc: Exception) -> BackendError:
        """Map an httpx exception to one error class."""
        if isinstance(exc, httpx.TimeoutException):
            read = self.timeout.read
            return BackendTransientError(f"timed out ({type(exc).__name__}, read limit {read}s)", backend=self.name)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return BackendUnavailable(f"base URL {self.base_url!r} is not usable: {exc}", backend=self.name)
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return BackendTransientError(f"connection dropped: {exc}", backend=self.name)
        if isinstance(exc, httpx.ConnectError):
            return BackendTransientError(f"cannot connect to {self.base_url}: {exc}", backend=self.name)
        if isinstance(exc, httpx.HTTPError):
            return BackendTransientError(f"network error: {type(exc).__name__}: {exc}", backend=self.name)
        return BackendTransientError(f"unexpected failure: {type(exc).__name__}", backend=self.name)

    async def _send(
        self, method: str, path: str, *, payload: Any = None, stream: bool = False, accept: str | None = None
    ) -> httpx.Response:
        """The choke point: every request of this backend goes through here."""
        if self.needs_api_key and not self._key():
            raise BackendUnavailable(f"{self.label} needs an API key; add one in Settings", backend=self.name)
        headers = self._headers()
        if accept:
            headers["accept"] = accept
        request = self.client.build_request(
            method, self._url(path), json=payload, headers=headers, timeout=self.timeout
        )
        started = time.perf_counter()
        try:
            response = await self.client.send(request, stream=stream)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.info("%s %s %s failed: %s", self.name, method, path, type(exc).__name__)
            raise self._transport_error(exc) from exc
        log.debug(
            "%s %s %s -> %s in %.3fs", self.name, method, path, response.status_code, time.perf_counter() - started
        )
        if response.is_success:
            return response
        try:
            body = (await response.aread()).decode("utf-8", "replace")
        except httpx.HTTPError:
            body = ""
        finally:
            await response.aclose()
        raise self._status_error(response, body)

    def _parse_json(self, text: str, *, what: str = "response") -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise BackendProtocolError(
                f"{what} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", backend=self.name
            ) from exc

    def _not_found(self, exc: BackendError, model: str) -> BackendError:
        """Turn a server's "no such model" answer into ModelMissing; other errors pass through."""
        return exc

    @contextmanager
    def _model_errors(self, model: str) -> Iterator[None]:
        """Re-raise errors inside the block, with "no such model" mapped by :meth:`_not_found`."""
        try:
            yield
        except BackendError as exc:
            mapped = self._not_found(exc, model)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _request_json(self, method: str, path: str, *, payload: Any = None) -> Any:
        """Send a request and return the decoded JSON body."""
        response = await self._send(method, path, payload=payload)
        try:
            text = response.text
        except (httpx.HTTPError, UnicodeDecodeError) as exc:
            raise BackendProtocolError(f"unreadable response body: {exc}", backend=self.name) from exc
        data = self._parse_json(text)
        if not isinstance(data, dict):
            raise BackendProtocolError("response is not a JSON object", backend=self.name)
        return data

    @asynccontextmanager
    async def _open_stream(
        self, method: str, path: str, *, payload: Any = None, accept: str | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Open a streaming response; transport failures while reading become transient errors."""
        response = await self._send(method, path, payload=payload, stream=True, accept=accept)
        try:
            yield response
        except SSEError as exc:  # a 200 that is not an event stream: the server speaks something else
            raise self._protocol(f"expected an event stream: {exc}") from exc
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        finally:
            await response.aclose()

    async def _sse(self, path: str, payload: Any) -> AsyncGenerator[ServerSentEvent]:
        """Server-sent events of a streaming POST (decoded by httpx-sse)."""
        async with self._open_stream("POST", path, payload=payload, accept="text/event-stream") as response:
            async with aclosing(EventSource(response).aiter_sse()) as events:
                async for event in events:
                    yield event

    def _payload_error(self, kind: str | int | None, message: str) -> BackendError:
        """Map an error reported inside a 200 response or a stream (type name or status code) to one class."""
        text = f"{kind}: {message}" if kind else message
        text = self._redact(text)[:MAX_DETAIL_CHARS]
        code = kind if isinstance(kind, int) else int(kind) if isinstance(kind, str) and kind.isdigit() else None
        name = str(kind or "").lower()
        if code in AUTH_STATUSES or any(w in name for w in ("auth", "permission", "api_key")):
            return BackendAuthError(text, backend=self.name, status=code)
        if (code is not None and (code in TRANSIENT_STATUSES or code >= 500)) or any(
            w in name for w in ("rate_limit", "overload", "server_error", "api_error", "timeout", "unavailable")
        ):
            return BackendTransientError(text, backend=self.name, status=code)
        return BackendPermanentError(text, backend=self.name, status=code)

    def _protocol(self, message: str) -> BackendProtocolError:
        return BackendProtocolError(message, backend=self.name)

    def _cut_off(self) -> BackendTransientError:
        return BackendTransientError("the stream ended before its final event (connection cut off)", backend=self.name)


def as_messages(system: str | None, user: str) -> list[ChatMessage]:
    """The common two-message conversation: a system prompt and one user turn."""
    out = [ChatMessage("system", system)] if system else []
    out.append(ChatMessage("user", user))
    return out


__all__ = [
    "ChatMessage",
    "ChatResult",
    "ChatStream",
    "ConnectionReport",
    "HttpTextBackend",
    "StreamUsage",
    "TextBackend",
    "approx_tokens",
    "as_messages",
    "system_and_turns",
]
