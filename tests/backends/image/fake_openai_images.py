"""A local server speaking OpenAI's Images API (``/v1/images/generations``, ``/v1/models``).

``state.script`` sets the behaviour of the next generation calls (the last one repeats):
    ok         b64_json images (gpt-image-1 also returns ``usage``)
    url        DALL-E style: a ``url`` to fetch instead of b64_json
    401        invalid_api_key
    429        rate_limit_exceeded with ``Retry-After: state.retry_after``
    quota      429 insufficient_quota
    500        server_error
    policy     400 content_policy_violation (DALL-E's safety system message)
    moderation 400 moderation_blocked (gpt-image-1's)
    malformed  200 with a body that has no data
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backends.image.fake_comfyui import solid_png

API_KEY = "sk-test-images-0123456789"
POLICY_MESSAGE = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
    "allowed by our safety system."
)


@dataclass
class OpenAIState:
    script: list[str] = field(default_factory=lambda: ["ok"])
    retry_after: str = "7"
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reset(self, *script: str) -> None:
        self.script = list(script) or ["ok"]
        self.retry_after = "7"
        self.requests.clear()

    def next(self) -> str:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def error(status: int, message: str, code: str | None, kind: str) -> Response:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


def openai_images_app(state: OpenAIState) -> Starlette:
    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {API_KEY}"

    async def generations(request: Request) -> Response:
        body = await request.json()
        state.requests.append({"headers": dict(request.headers), "json": body})
        behaviour = state.next()
        if behaviour == "401" or not authorized(request):
            return error(401, "Incorrect API key provided: sk-test-***.", "invalid_api_key", "invalid_request_error")
        if behaviour == "429":
            resp = error(429, "Rate limit reached for images per minute.", "rate_limit_exceeded", "requests")
            resp.headers["retry-after"] = state.retry_after
            return resp
        if behaviour == "quota":
            return error(429, "You exceeded your current quota.", "insufficient_quota", "insufficient_quota")
        if behaviour == "500":
            return error(500, "The server had an error while processing your request.", None, "server_error")
        if behaviour == "policy":
            return error(400, POLICY_MESSAGE, "content_policy_violation", "invalid_request_error")
        if behaviour == "moderation":
            return error(
                400,
                "Your request was rejected by the safety system.",
                "moderation_blocked",
                "image_generation_user_error",
            )
        if behaviour == "malformed":
            return JSONResponse({"created": 1})
        width, height = (int(x) for x in body["size"].split("x"))
        n = body.get("n", 1)
        data = []
        for i in range(n):
            png = solid_png(width, height, (10 * i, 20, 30))
            if behaviour == "url":
                data.append({"url": f"{request.base_url}files/img{i}.png", "revised_prompt": "a revised prompt"})
            else:
                data.append({"b64_json": base64.b64encode(png).decode()})
        out: dict[str, Any] = {"created": 1_700_000_000, "data": data}
        if body["model"].startswith("gpt-image"):
            out["usage"] = {
                "input_tokens": 50,
                "output_tokens": 1056 * n,
                "total_tokens": 50 + 1056 * n,
                "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
            }
        return JSONResponse(out)

    async def files(request: Request) -> Response:
        assert "authorization" not in request.headers  # the key is never sent to a download URL
        return Response(solid_png(1024, 1024, (1, 2, 3)), media_type="image/png")

    async def models(request: Request) -> Response:
        if not authorized(request):
            return error(401, "Incorrect API key provided.", "invalid_api_key", "invalid_request_error")
        ids = ["gpt-4o-mini", "gpt-image-1", "dall-e-3", "dall-e-2", "whisper-1"]
        return JSONResponse({"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})

    return Starlette(
        routes=[
            Route("/v1/images/generations", generations, methods=["POST"]),
            Route("/v1/models", models),
            Route("/files/{name}", files),
        ]
    )
