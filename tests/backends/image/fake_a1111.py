"""A local server speaking Automatic1111/Forge's ``/sdapi/v1`` API.

``state.script`` sets the behaviour of the next generation calls (the last one repeats):
    ok          images for the batch (colour from each seed), ``info`` as a JSON string
    401         bad --api-auth credentials
    422         FastAPI validation error
    500         {"error": "OutOfMemoryError", ...}
    malformed   200 with HTML
    extra       one more image than the batch (as ControlNet's detected map)
    jpeg        images as JPEG (the server's samples_format is jpg)
While a generation runs (``state.gen_seconds``), ``/sdapi/v1/progress`` reports rising progress.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from backends.image.fake_comfyui import seed_colour, solid_png

MODELS = [
    {
        "title": "v1-5-pruned-emaonly.safetensors [6ce0161689]",
        "model_name": "v1-5-pruned-emaonly",
        "hash": "6ce0161689",
        "sha256": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
        "filename": "/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors",
        "config": None,
    },
    {
        "title": "realisticVision_v60.safetensors [15012c538f]",
        "model_name": "realisticVision_v60",
        "hash": "15012c538f",
        "sha256": "15012c538f503ce2ebfc2c8547b268c75ccdaff7a281db55399940ff1d70e21d",
        "filename": "/models/Stable-diffusion/realisticVision_v60.safetensors",
        "config": None,
    },
]


@dataclass
class A1111State:
    script: list[str] = field(default_factory=lambda: ["ok"])
    auth: str | None = None  # "user:pass" when the server runs with --api-auth
    checkpoint: str = MODELS[0]["title"]  # type: ignore[assignment]
    gen_seconds: float = 0.6
    started: float | None = None
    steps: int = 20
    requests: list[dict[str, Any]] = field(default_factory=list)
    option_posts: list[dict[str, Any]] = field(default_factory=list)
    progress_polls: int = 0

    def reset(self, *script: str) -> None:
        self.script = list(script) or ["ok"]
        self.auth = None
        self.checkpoint = MODELS[0]["title"]  # type: ignore[assignment]
        self.gen_seconds = 0.6
        self.started = None
        self.requests.clear()
        self.option_posts.clear()
        self.progress_polls = 0

    def next(self) -> str:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def encode(width: int, height: int, rgb: tuple[int, int, int], behaviour: str) -> bytes:
    if behaviour != "jpeg":
        return solid_png(width, height, rgb)
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def a1111_app(state: A1111State) -> Starlette:
    def authorized(request: Request) -> bool:
        if state.auth is None:
            return True
        expected = "Basic " + base64.b64encode(state.auth.encode()).decode()
        return request.headers.get("authorization") == expected

    def denied() -> Response:
        return JSONResponse({"detail": "Incorrect username or password"}, status_code=401)

    async def sd_models(request: Request) -> Response:
        if not authorized(request):
            return denied()
        return JSONResponse(MODELS)

    async def options(request: Request) -> Response:
        if not authorized(request):
            return denied()
        if request.method == "POST":
            body = await request.json()
            state.option_posts.append(body)
            if "sd_model_checkpoint" in body:
                await asyncio.sleep(0.05)  # loading a checkpoint takes a while
                state.checkpoint = body["sd_model_checkpoint"]
            return JSONResponse(None)
        return JSONResponse({"sd_model_checkpoint": state.checkpoint, "samples_format": "png"})

    async def progress(request: Request) -> Response:
        state.progress_polls += 1
        if state.started is None:
            return JSONResponse(
                {"progress": 0.0, "eta_relative": 0.0, "state": {"job_count": 0}, "current_image": None}
            )
        fraction = min(0.99, (time.monotonic() - state.started) / state.gen_seconds)
        step = int(fraction * state.steps)
        return JSONResponse(
            {
                "progress": fraction,
                "eta_relative": state.gen_seconds * (1 - fraction),
                "state": {"job": "job 1/1", "job_count": 1, "sampling_step": step, "sampling_steps": state.steps},
                "current_image": None,
                "textinfo": None,
            }
        )

    async def generate(request: Request) -> Response:
        if not authorized(request):
            return denied()
        body = await request.json()
        state.requests.append({"path": request.url.path, "json": body})
        behaviour = state.next()
        if behaviour == "401":
            return denied()
        if behaviour == "422":
            return JSONResponse(
                {"detail": [{"loc": ["body", "width"], "msg": "value is not a valid integer", "type": "type_error"}]},
                status_code=422,
            )
        if behaviour == "500":
            return JSONResponse(
                {
                    "error": "OutOfMemoryError",
                    "detail": "",
                    "body": "",
                    "errors": "CUDA out of memory. Tried to allocate 1.50 GiB",
                },
                status_code=500,
            )
        if behaviour == "malformed":
            return HTMLResponse("<html><body>Gradio</body></html>")
        state.started = time.monotonic()
        await asyncio.sleep(state.gen_seconds)
        state.started = None
        seed = body.get("seed", -1)
        seed = 4242 if seed in (-1, None) else seed
        batch = body.get("batch_size", 1)
        width, height = body.get("width", 512), body.get("height", 512)
        seeds = [seed + i for i in range(batch)]
        images = [base64.b64encode(encode(width, height, seed_colour(s), behaviour)).decode() for s in seeds]
        if behaviour == "extra":
            images.append(base64.b64encode(solid_png(width, height, (0, 0, 0))).decode())
        model = next(m for m in MODELS if m["title"] == state.checkpoint)
        info = {
            "prompt": body.get("prompt"),
            "all_prompts": [body.get("prompt")] * batch,
            "negative_prompt": body.get("negative_prompt"),
            "seed": seed,
            "all_seeds": seeds,
            "subseed": 1,
            "width": width,
            "height": height,
            "sampler_name": body.get("sampler_name", "DPM++ 2M"),
            "cfg_scale": body.get("cfg_scale"),
            "steps": body.get("steps"),
            "sd_model_name": model["model_name"],
            "sd_model_hash": model["hash"],
            "denoising_strength": body.get("denoising_strength"),
            "infotexts": [f"{body.get('prompt')}\nSteps: {body.get('steps')}, Seed: {s}" for s in seeds],
        }
        return JSONResponse({"images": images, "parameters": body, "info": json.dumps(info)})

    return Starlette(
        routes=[
            Route("/sdapi/v1/sd-models", sd_models),
            Route("/sdapi/v1/options", options, methods=["GET", "POST"]),
            Route("/sdapi/v1/progress", progress),
            Route("/sdapi/v1/txt2img", generate, methods=["POST"]),
            Route("/sdapi/v1/img2img", generate, methods=["POST"]),
        ]
    )
