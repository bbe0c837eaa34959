"""Local HTTP servers that speak each text backend's documented wire format.

Each server is a Starlette app under uvicorn on 127.0.0.1 (a free port), in a background thread.
A test sets ``state.script`` to the behaviours of the next requests (the last one repeats):

    ok             the documented success answer (JSON, NDJSON stream or event stream)
    slow           wait ``state.slow_s`` before answering (longer than the client's timeout)
    429            rate limited, with ``Retry-After: state.retry_after``
    500            server error
    401            bad credentials
    malformed      200 with a body that is not the documented format
    disconnect     start the answer, then drop the connection mid-body
    model_missing  the server's own "model not found" answer
    stream_error   start streaming, then report an error inside the stream (overload)

Everything the client sent is kept in ``state.requests`` for assertions.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

REPLY_PARTS = ["Hello", " from", " the", " fake", " model", "."]
REPLY = "".join(REPLY_PARTS)


class Dropped(Exception):
    """Raised inside a response body to make uvicorn cut the connection."""


@dataclass
class FakeState:
    script: list[str] = field(default_factory=lambda: ["ok"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    retry_after: str = "2"
    slow_s: float = 1.0
    models: list[str] = field(default_factory=lambda: ["fake-small", "fake-large"])
    api_key: str | None = None

    def reset(self, *script: str) -> None:
        self.script = list(script) or ["ok"]
        self.requests.clear()
        self.retry_after = "2"

    def next(self) -> str:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def record(self, request: Request) -> dict[str, Any]:
        body = await request.body()
        entry = {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": dict(request.headers),
            "json": json.loads(body) if body else None,
        }
        self.requests.append(entry)
        return entry


async def _drip(chunks: list[bytes], *, drop: bool) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(0.005)
    if drop:
        raise Dropped("connection dropped on purpose")


def _cut_json_body() -> Response:
    """Headers promising more body than is ever sent: the client sees the connection close mid-body."""

    async def body() -> AsyncIterator[bytes]:
        yield b'{"partial": '
        await asyncio.sleep(0.005)
        raise Dropped("connection dropped on purpose")

    return StreamingResponse(body(), media_type="application/json")


def _common(state: FakeState, behaviour: str, error: Callable[[int, str], Response]) -> Response | None:
    if behaviour == "429":
        resp = error(429, "rate limited")
        resp.headers["retry-after"] = state.retry_after
        return resp
    if behaviour == "500":
        return error(500, "internal error")
    if behaviour == "401":
        return error(401, "invalid api key")
    return None


# --- Ollama ---------------------------------------------------------------------------------------------


def ollama_app(state: FakeState) -> Starlette:
    def error(status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    async def chat(request: Request) -> Response:
        entry = await state.record(request)
        behaviour = state.next()
        if behaviour == "slow":
            await asyncio.sleep(state.slow_s)
        if (resp := _common(state, behaviour, error)) is not None:
            return resp
        body = entry["json"] or {}
        model = body.get("model", "")
        if behaviour == "model_missing":
            return error(404, f'model "{model}" not found, try pulling it first')
        stream = body.get("stream", True)  # Ollama streams unless told not to
        if not stream:
            if behaviour == "malformed":
                return PlainTextResponse("<html>proxy login</html>", media_type="application/json")
            if behaviour == "disconnect":
                return _cut_json_body()
            return JSONResponse(
                {
                    "model": model,
                    "created_at": "2024-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": REPLY},
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": 26,
                    "eval_count": 6,
                }
            )
        lines = [
            {"model": model, "message": {"role": "assistant", "content": part}, "done": False} for part in REPLY_PARTS
        ]
        final = {
            "model": model,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 26,
            "eval_count": 6,
        }
        chunks = [json.dumps(line).encode() + b"\n" for line in lines]
        if behaviour == "malformed":
            chunks = chunks[:2] + [b"{this is not json\n"]
        elif behaviour == "disconnect":
            return StreamingResponse(_drip(chunks[:3], drop=True), media_type="application/x-ndjson")
        elif behaviour == "stream_error":
            chunks = chunks[:2] + [
                json.dumps({"error": "an error was encountered while running the model"}).encode() + b"\n"
            ]
        else:
            chunks.append(json.dumps(final).encode() + b"\n")
        return StreamingResponse(_drip(chunks, drop=False), media_type="application/x-ndjson")

    async def tags(request: Request) -> Response:
        await state.record(request)
        behaviour = state.next()
        if (resp := _common(state, behaviour, error)) is not None:
            return resp
        if behaviour == "malformed":
            return PlainTextResponse("not json", media_type="application/json")
        return JSONResponse(
            {"models": [{"name": f"{m}:latest", "model": f"{m}:latest", "size": 1000} for m in state.models]}
        )

    async def pull(request: Request) -> Response:
        entry = await state.record(request)
        behaviour = state.next()
        if (resp := _common(state, behaviour, error)) is not None:
            return resp
        name = (entry["json"] or {}).get("model", "")
        if behaviour == "model_missing":
            chunks = [b'{"status":"pulling manifest"}\n', b'{"error":"pull model manifest: file does not exist"}\n']
            return StreamingResponse(_drip(chunks, drop=False), media_type="application/x-ndjson")
        progress = [{"status": "pulling manifest"}]
        for done in (0, 400, 800, 1000):
            progress.append(
                {"status": "downloading sha256:abc", "digest": "sha256:abc", "total": 1000, "completed": done}
            )
        progress += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
        chunks = [json.dumps(p).encode() + b"\n" for p in progress]
        if behaviour == "disconnect":
            return StreamingResponse(_drip(chunks[:3], drop=True), media_type="application/x-ndjson")
        state.models.append(name.split(":")[0])
        return StreamingResponse(_drip(chunks, drop=False), media_type="application/x-ndjson")

    async def version(request: Request) -> Response:
        return JSONResponse({"version": "0.12.6"})

    return Starlette(
        routes=[
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/tags", tags, methods=["GET"]),
            Route("/api/pull", pull, methods=["POST"]),
            Route("/api/version", version, methods=["GET"]),
        ]
    )


# --- OpenAI-compatible ----------------------------------------------------------------------------------


def openai_app(state: FakeState) -> Starlette:
    def error(status: int, message: str) -> Response:
        kind = {401: "invalid_request_error", 429: "rate_limit_error", 500: "server_error"}.get(status, "error")
        return JSONResponse({"error": {"message": message, "type": kind, "code": None}}, status_code=status)

    def authorised(entry: dict[str, Any]) -> bool:
        return state.api_key is None or entry["headers"].get("authorization") == f"Bearer {state.api_key}"

    async def completions(request: Request) -> Response:
        entry = await state.record(request)
        behaviour = state.next()
        if behaviour == "slow":
            await asyncio.sleep(state.slow_s)
        if not authorised(entry):
            return error(401, "Incorrect API key provided")
        if (resp := _common(state, behaviour, error)) is not None:
            return resp
        body = entry["json"] or {}
        model = body.get("model", "")
        if behaviour == "model_missing":
            return JSONResponse(
                {
                    "error": {
                        "message": f"The model `{model}` does not exist",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
                status_code=404,
            )
        if not body.get("stream"):
            if behaviour == "malformed":
                return PlainTextResponse("<html>bad gateway page</html>", media_type="application/json")
            if behaviour == "disconnect":
                return _cut_json_body()
            return JSONResponse(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 21, "completion_tokens": 6, "total_tokens": 27},
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def sse(obj: Any) -> bytes:
            return f"data: {json.dumps(obj)}\n\n".encode()

        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model}
        chunks = [
            sse(
                {
                    **base,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                }
            )
        ]
        chunks += [
            sse({**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
            for p in REPLY_PARTS
        ]
        if behaviour == "malformed":
            chunks = chunks[:3] + [b"data: {not json\n\n"]
        elif behaviour == "disconnect":
            return StreamingResponse(_drip(chunks[:3], drop=True), media_type="text/event-stream")
        elif behaviour == "stream_error":
            chunks = chunks[:3] + [sse({"error": {"message": "The server is overloaded", "type": "server_error"}})]
        else:
            chunks.append(sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
            if include_usage:
                chunks.append(
                    sse(
                        {
                            **base,
                            "choices": [],
                            "usage": {"prompt_tokens": 21, "completion_tokens": 6, "total_tokens": 27},
                        }
                    )
                )
            chunks.append(b"data: [DONE]\n\n")
        return StreamingResponse(_drip(chunks, drop=False), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        entry = await state.record(request)
        behaviour = state.next()
        if not authorised(entry):
            return error(401, "Incorrect API key provided")
        if (resp := _common(state, behaviour, error)) is not None:
            return resp
        if behaviour == "malformed":
            return PlainTextResponse("nope", media_type="application/json")
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model"} for m in state.models]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


# --- Anthropic ------------------------------------------------------------------------------------------


def anthropic_app(state: FakeState) -> Starlette:
    def error(status: int, message: str) -> Response:
        kind = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error", 500: "api_error"}.get(
            status, "invalid_request_error"
        )
        return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status)

    def check(entry: dict[str, Any]) -> Response | None:
        headers = entry["headers"]
        if state.api_key is not None and headers.get("x-api-key") != state.api_key:
            return error(401, "invalid x-api-key")
        if headers.get("anthropic-version") != "2023-06-01":
            return error(400, "anthropic-version header is required")
        return None

    async def messages(request: Request) -> Response:
        entry = await state.record(request)
        behaviour = state.next()
        if behaviour == "slow":
            await asyncio.sleep(state.slow_s)
        if (resp := check(entry)) is not None:
            return resp
        if (resp := _common(state, behaviour, error)) is not None:
            return resp
        body = entry["json"] or {}
        model = body.get("model", "")
        roles = [m["role"] for m in body.get("messages", [])]
        if "system" in roles or not roles or roles[0] != "user" or "max_tokens" not in body:
            return error(400, "messages: roles must alternate starting with user; system is top-level")
        if behaviour == "model_missing":
            return error(404, f"model: {model}")
        if not body.get("stream"):
            if behaviour == "malformed":
                return PlainTextResponse("<html>", media_type="application/json")
            if behaviour == "disconnect":
                return _cut_json_body()
            return JSONResponse(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": REPLY}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 25, "output_tokens": 6},
                }
            )

        def ev(name: str, obj: Any) -> bytes:
            return f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode()

        chunks = [
            ev(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": model,
                        "stop_reason": None,
                        "usage": {"input_tokens": 25, "output_tokens": 1},
                    },
                },
            ),
            ev(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ev("ping", {"type": "ping"}),
        ]
        chunks += [
            ev(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
            )
            for p in REPLY_PARTS
        ]
        if behaviour == "malformed":
            chunks = chunks[:4] + [b"event: content_block_delta\ndata: {oops\n\n"]
        elif behaviour == "disconnect":
            return StreamingResponse(_drip(chunks[:5], drop=True), media_type="text/event-stream")
        elif behaviour == "stream_error":
            chunks = chunks[:5] + [
                ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            ]
        else:
            chunks += [
                ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ev(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": 6},
                    },
                ),
                ev("message_stop", {"type": "message_stop"}),
            ]
        return StreamingResponse(_drip(chunks, drop=False), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        entry = await state.record(request)
        behaviour = state.next()
        if (resp := check(entry)) is not None:
            return resp
        if (resp := _common(state, behaviour, error)) is not None:
            return resp
        if behaviour == "malformed":
            return PlainTextResponse("nope", media_type="application/json")
        # two pages, to exercise after_id paging
        after = request.query_params.get("after_id")
        names = state.models
        page = names[1:] if after else names[:1]
        return JSONResponse(
            {
                "data": [
                    {"id": m, "type": "model", "display_name": m.title(), "created_at": "2025-01-01T00:00:00Z"}
                    for m in page
                ],
                "has_more": not after and len(names) > 1,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


# --- running ---------------------------------------------------------------------------------------------


class LocalServer:
    """A Starlette app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: Starlette) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="critical", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> LocalServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()


APPS: dict[str, Callable[[FakeState], Starlette]] = {
    "ollama": ollama_app,
    "openai": openai_app,
    "anthropic": anthropic_app,
}
