"""Automatic1111 / Forge web UI through its ``/sdapi/v1`` API (the server must run with ``--api``).

    GET  /sdapi/v1/sd-models      checkpoints: title "name.safetensors [hash]", model_name, filename
    GET  /sdapi/v1/options        the loaded checkpoint is ``sd_model_checkpoint``
    POST /sdapi/v1/options        {"sd_model_checkpoint": title} switches (and loads) it
    POST /sdapi/v1/txt2img        blocks until done: {"images": [base64...], "info": "<JSON string>"}
    POST /sdapi/v1/img2img        the same with "init_images" and "denoising_strength"
    GET  /sdapi/v1/progress       polled while a generation call is in flight

The checkpoint is switched through ``/options`` (and stays loaded) rather than per-request
``override_settings``, which reloads the old model after every image.
"""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

import anyio
import httpx
from pydantic import SecretStr

from ainfluencer.backends.image.base import (
    GeneratedImage,
    HttpImageBackend,
    ImageRequest,
    Progress,
    as_png,
    decode_b64_image,
    read_reference,
    run_with_poller,
)
from ainfluencer.backends.image.errors import (
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendUnavailable,
    ModelMissing,
)


class Automatic1111Backend(HttpImageBackend):
    """An Automatic1111 or Forge server started with ``--api`` (optionally ``--api-auth user:pass``)."""

    name: ClassVar[str] = "automatic1111"
    label: ClassVar[str] = "Automatic1111 / Forge"
    paid: ClassVar[bool] = False
    local: ClassVar[bool] = True
    supports_face_reference: ClassVar[bool] = False
    supports_img2img: ClassVar[bool] = True
    supports_negative_prompt: ClassVar[bool] = True
    supports_seed: ClassVar[bool] = True
    max_size: ClassVar[tuple[int, int]] = (2048, 2048)
    max_batch: ClassVar[int] = 8
    default_base_url: ClassVar[str] = "http://127.0.0.1:7860"
    default_timeout: ClassVar[float] = 30.0
    default_generation_timeout: ClassVar[float] = 900.0

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_auth: SecretStr | str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
        generation_timeout: float | None = None,
        model: str | None = None,
        sampler: str | None = None,
        default_steps: int = 25,
        default_guidance: float = 6.5,
        poll_interval: float = 0.5,
        model_switch_timeout: float = 600.0,
    ) -> None:
        super().__init__(
            base_url=base_url,
            api_key=api_auth,
            client=client,
            timeout=timeout,
            generation_timeout=generation_timeout,
            model=model,
        )
        self.sampler = sampler
        self.default_steps = default_steps
        self.default_guidance = default_guidance
        self.poll_interval = poll_interval
        self.model_switch_timeout = model_switch_timeout

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        if self._key():  # --api-auth user:password is HTTP basic auth
            headers["authorization"] = "Basic " + base64.b64encode(self._key().encode()).decode()
        return headers

    def _error_detail(self, body: Any) -> str:
        if isinstance(body, dict):
            # A1111 errors: {"error": "OutOfMemoryError", "detail": "...", "errors": "..."}; 422: {"detail": [...]}
            name, detail, errors = body.get("error"), body.get("detail"), body.get("errors")
            if isinstance(name, str) and isinstance(detail, str | type(None)):
                return ": ".join(str(x) for x in (name, detail or errors) if x)
        return super()._error_detail(body)

    def _status_error(self, response: httpx.Response, body: Any, body_text: str) -> BackendError:
        # 404 on /sdapi is the web UI running without --api: a setup problem, not a bad request
        if response.status_code == 404 and "/sdapi/" in str(response.request.url):
            return BackendUnavailable(
                f"{self.base_url} has no /sdapi API: start the web UI with --api", backend=self.name
            )
        return super()._status_error(response, body, body_text)

    async def sd_models(self) -> list[dict[str, Any]]:
        """The checkpoint records the server lists."""
        data = await self._json("GET", "/sdapi/v1/sd-models")
        if not isinstance(data, list):
            raise BackendProtocolError("/sdapi/v1/sd-models is not a list", backend=self.name)
        return [m for m in data if isinstance(m, dict) and m.get("title")]

    async def list_models(self) -> list[str]:
        """Checkpoint titles as the web UI shows them ("name.safetensors [hash]")."""
        return [str(m["title"]) for m in await self.sd_models()]

    async def available(self) -> tuple[bool, str]:
        """Whether the API answers and lists a checkpoint; never raises."""
        try:
            models = await self.sd_models()
        except BackendError as exc:
            fix = "check --api-auth in Settings" if exc.kind == "auth" else "start it with --api or fix the URL"
            return False, f"Automatic1111/Forge at {self.base_url}: {exc.message}; {fix}"
        if not models:
            return False, "Automatic1111/Forge has no checkpoints: put one into models/Stable-diffusion"
        return True, f"Automatic1111/Forge at {self.base_url}; {len(models)} checkpoints"

    async def _resolve_model(self, wanted: str) -> str:
        models = await self.sd_models()
        low = wanted.lower()
        for m in models:
            names = {
                str(m.get("title", "")),
                str(m.get("model_name", "")),
                str(m.get("hash", "")),
                str(m.get("sha256", "")),
                str(m.get("filename", "")).replace("\\", "/").rsplit("/", 1)[-1],
            }
            if low in {n.lower() for n in names if n}:
                return str(m["title"])
            stem = str(m.get("title", "")).split(" [", 1)[0]
            if stem.lower() == low or stem.rsplit(".", 1)[0].lower() == low:
                return str(m["title"])
        raise ModelMissing(
            wanted, backend=self.name, message=f"checkpoint {wanted!r} is not in models/Stable-diffusion on the server"
        )

    async def current_model(self) -> str:
        """The checkpoint the server has loaded now."""
        options = await self._json_object("GET", "/sdapi/v1/options")
        return str(options.get("sd_model_checkpoint") or "")

    async def ensure_model(self, wanted: str, progress: Progress | None = None) -> str:
        """Switch the server to ``wanted`` unless it is loaded already; returns the checkpoint title."""
        title = await self._resolve_model(wanted)
        if await self.current_model() != title:
            if progress is not None:
                progress(0.02, f"loading {title.split(' [', 1)[0]}")
            await self._send(
                "POST",
                "/sdapi/v1/options",
                json_body={"sd_model_checkpoint": title},
                read_timeout=self.model_switch_timeout,
            )
        return title

    async def _generate(self, req: ImageRequest, progress: Progress) -> list[GeneratedImage]:
        wanted = req.model or self.model
        model = await self.ensure_model(wanted, progress) if wanted else await self.current_model()
        payload: dict[str, Any] = {
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt,
            "seed": req.seed if req.seed is not None else -1,
            "subseed": -1,
            "subseed_strength": 0,
            "steps": req.steps or self.default_steps,
            "cfg_scale": req.guidance if req.guidance is not None else self.default_guidance,
            "width": req.width - req.width % 8,
            "height": req.height - req.height % 8,
            "batch_size": req.batch,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }
        if self.sampler:
            payload["sampler_name"] = self.sampler
        endpoint = "/sdapi/v1/txt2img"
        if req.init_image is not None:
            data = await read_reference(req.init_image, backend=self.name, what="init image")
            payload.update(
                init_images=[base64.b64encode(data).decode()], denoising_strength=req.strength, resize_mode=0
            )
            endpoint = "/sdapi/v1/img2img"
        progress(0.05, "generating")

        async def call() -> dict[str, Any]:
            return await self._json_object("POST", endpoint, json_body=payload, read_timeout=self.generation_timeout)

        body = await run_with_poller(call, lambda: self._poll_progress(progress))
        return self._parse_result(body, req, model, endpoint)

    async def _poll_progress(self, progress: Progress) -> None:
        """Poll /progress while the generation call runs; a failed poll is skipped, never fatal."""
        while True:
            await anyio.sleep(self.poll_interval)
            try:
                data = await self._json_object("GET", "/sdapi/v1/progress", params={"skip_current_image": "true"})
            except BackendError:
                continue
            value = data.get("progress")
            state = data.get("state") or {}
            if isinstance(value, int | float) and value > 0:
                step, steps = state.get("sampling_step"), state.get("sampling_steps")
                note = f"step {step}/{steps}" if isinstance(step, int) and isinstance(steps, int) and steps else ""
                progress(0.05 + 0.9 * float(value), f"generating {note}".strip())

    def _parse_result(self, body: dict[str, Any], req: ImageRequest, model: str, endpoint: str) -> list[GeneratedImage]:
        raw_images = body.get("images")
        if not isinstance(raw_images, list) or not raw_images:
            raise BackendProtocolError(f"{endpoint} answered without images", backend=self.name)
        info: dict[str, Any] = {}
        raw_info = body.get("info")
        if isinstance(raw_info, str) and raw_info:
            try:
                parsed = json.loads(raw_info)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                info = parsed
        elif isinstance(raw_info, dict):
            info = raw_info
        seeds = info.get("all_seeds") if isinstance(info.get("all_seeds"), list) else None
        first_seed = info.get("seed", req.seed)
        model_name = str(info.get("sd_model_name") or model.split(" [", 1)[0] or "unknown")
        if info.get("sd_model_hash"):
            model_name = f"{model_name} [{info['sd_model_hash']}]"
        infotexts = info.get("infotexts") if isinstance(info.get("infotexts"), list) else []
        out: list[GeneratedImage] = []
        # extensions (ControlNet) append extra images such as detected maps after the batch: keep the batch
        for i, raw in enumerate(raw_images[: req.batch]):
            png, w, h = as_png(decode_b64_image(raw, backend=self.name), backend=self.name)
            if seeds and i < len(seeds):
                seed = int(seeds[i])
            elif isinstance(first_seed, int):
                seed = first_seed + i
            else:
                raise BackendPermanentError("the server did not report the seed it used", backend=self.name)
            meta: dict[str, Any] = {
                "steps": info.get("steps"),
                "cfg": info.get("cfg_scale"),
                "sampler": info.get("sampler_name"),
                "endpoint": endpoint.rsplit("/", 1)[-1],
            }
            if infotexts and i < len(infotexts):
                meta["infotext"] = infotexts[i]
            if req.init_image is not None:
                meta["strength"] = req.strength
            out.append(
                GeneratedImage(
                    png_bytes=png, seed=seed, width=w, height=h, model=model_name, backend=self.name, meta=meta
                )
            )
        return out
