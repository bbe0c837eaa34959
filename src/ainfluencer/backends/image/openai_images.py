"""OpenAI Images (``POST /v1/images/generations``): gpt-image-1 and DALL-E, paid, no seeds.

``base_url`` includes the version segment (``https://api.openai.com/v1``) so a compatible server
(LocalAI, a gateway) can stand in. Sizes are fixed per model: the request's size is mapped to the
allowed size with the closest aspect ratio and the image reports its real size. The negative
prompt has no field here; it is appended as an "Avoid:" sentence and recorded in ``meta``.

Errors: 401/403 auth; 429 transient with Retry-After, except ``insufficient_quota`` (permanent:
add credit); 5xx transient; 400 ``content_policy_violation`` / ``moderation_blocked`` is
``ContentRejected`` carrying OpenAI's own message; other 4xx permanent.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

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
    run_with_poller,
)
from ainfluencer.backends.image.errors import (
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    ContentRejected,
)

SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "gpt-image": ((1024, 1024), (1536, 1024), (1024, 1536)),
    "dall-e-3": ((1024, 1024), (1792, 1024), (1024, 1792)),
    "dall-e-2": ((1024, 1024), (512, 512), (256, 256)),
}
MAX_N = {"gpt-image": 10, "dall-e-3": 1, "dall-e-2": 10}
# List prices in USD per image by (model family, quality, size); a starting point, edited in Settings.
PRICES: dict[tuple[str, str, str], Decimal] = {
    ("gpt-image-1", "low", "1024x1024"): Decimal("0.011"),
    ("gpt-image-1", "low", "wide"): Decimal("0.016"),
    ("gpt-image-1", "medium", "1024x1024"): Decimal("0.042"),
    ("gpt-image-1", "medium", "wide"): Decimal("0.063"),
    ("gpt-image-1", "high", "1024x1024"): Decimal("0.167"),
    ("gpt-image-1", "high", "wide"): Decimal("0.25"),
    ("dall-e-3", "standard", "1024x1024"): Decimal("0.04"),
    ("dall-e-3", "standard", "wide"): Decimal("0.08"),
    ("dall-e-3", "hd", "1024x1024"): Decimal("0.08"),
    ("dall-e-3", "hd", "wide"): Decimal("0.12"),
    ("dall-e-2", "standard", "1024x1024"): Decimal("0.02"),
    ("dall-e-2", "standard", "512x512"): Decimal("0.018"),
    ("dall-e-2", "standard", "256x256"): Decimal("0.016"),
}
# gpt-image-1 bills tokens; USD per token (text in, image in, image out) when the response has ``usage``
TOKEN_PRICES: dict[str, tuple[Decimal, Decimal, Decimal]] = {
    "gpt-image-1": (Decimal("5") / 10**6, Decimal("10") / 10**6, Decimal("40") / 10**6),
}
POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked", "image_generation_user_error"})
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


def family(model: str) -> str:
    """The size/price family of a model name (``gpt-image``, ``dall-e-3`` or ``dall-e-2``)."""
    low = model.lower()
    if low.startswith("dall-e-3"):
        return "dall-e-3"
    if low.startswith("dall-e-2"):
        return "dall-e-2"
    return "gpt-image"


def closest_size(model: str, width: int, height: int) -> tuple[int, int]:
    """The model's allowed size closest in aspect ratio (then in area) to ``width`` x ``height``."""
    want = width / height
    return min(SIZES[family(model)], key=lambda s: (abs(s[0] / s[1] - want), abs(s[0] * s[1] - width * height)))


class OpenAIImagesBackend(HttpImageBackend):
    """OpenAI's hosted image models (paid; needs a key) or a server speaking the same API."""

    name: ClassVar[str] = "openai_images"
    label: ClassVar[str] = "OpenAI Images"
    paid: ClassVar[bool] = True
    local: ClassVar[bool] = False
    supports_face_reference: ClassVar[bool] = False
    supports_img2img: ClassVar[bool] = False
    supports_negative_prompt: ClassVar[bool] = False
    supports_seed: ClassVar[bool] = False
    max_size: ClassVar[tuple[int, int]] = (4096, 4096)  # any request size maps to an allowed one
    max_batch: ClassVar[int] = 10
    cost_per_image: ClassVar[Decimal] = Decimal("0.042")
    needs_api_key: ClassVar[bool] = True
    default_model: ClassVar[str] = "gpt-image-1"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    default_timeout: ClassVar[float] = 30.0
    default_generation_timeout: ClassVar[float] = 180.0

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
        generation_timeout: float | None = None,
        model: str | None = None,
        quality: str | None = None,
        organization: str | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            api_key=api_key,
            client=client,
            timeout=timeout,
            generation_timeout=generation_timeout,
            model=model,
        )
        self.quality = quality
        self.organization = organization

    def _requires_key(self) -> bool:
        """OpenAI itself needs a key; a self-hosted compatible server may not."""
        return (urlsplit(self.base_url).hostname or "").endswith("openai.com")

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        if self._key():
            headers["authorization"] = f"Bearer {self._key()}"
        if self.organization:
            headers["openai-organization"] = self.organization
        return headers

    def _status_error(self, response: httpx.Response, body: Any, body_text: str) -> BackendError:
        err = body.get("error") if isinstance(body, dict) else None
        code = str((err or {}).get("code") or (err or {}).get("type") or "") if isinstance(err, dict) else ""
        message = str(err.get("message") or "") if isinstance(err, dict) else ""
        status = response.status_code
        if status == 400 and (code in POLICY_CODES or "safety system" in message.lower()):
            return ContentRejected(
                f"OpenAI refused the prompt: {self._redact(message) or code}"[:400], backend=self.name, status=status
            )
        if code in QUOTA_CODES:
            return BackendPermanentError(
                f"OpenAI account has no quota left ({code}): add credit or raise the limit; {message}"[:400],
                backend=self.name,
                status=status,
            )
        return super()._status_error(response, body, body_text)

    def _quality(self, fam: str) -> str | None:
        if self.quality:
            return self.quality
        return {"dall-e-3": "standard", "gpt-image": None}.get(fam)

    def estimate_cost(self, req: ImageRequest) -> Decimal:
        """US dollars the request is expected to cost, from the list prices."""
        model = self.model_for(req)
        fam = family(model)
        w, h = closest_size(model, req.width, req.height)
        key_size = f"{w}x{h}" if w == h else "wide"
        quality = self._quality(fam) or "medium"
        price_model = "gpt-image-1" if fam == "gpt-image" else fam
        price = PRICES.get((price_model, quality, key_size)) or PRICES.get((price_model, "standard", key_size))
        return (price if price is not None else self.cost_per_image) * req.batch

    async def list_models(self) -> list[str]:
        """Image model ids the account can use (from ``/models``)."""
        data = await self._json_object("GET", "models")
        items = data.get("data")
        if not isinstance(items, list):
            raise BackendProtocolError("/models has no data list", backend=self.name)
        ids = [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]
        return sorted(i for i in ids if i.startswith(("gpt-image", "dall-e")))

    async def available(self) -> tuple[bool, str]:
        """Whether a key is set and accepted; never raises."""
        if self._requires_key() and not self._key():
            return False, "OpenAI Images needs an API key: add one in Settings"
        try:
            models = await self.list_models()
        except BackendError as exc:
            if exc.kind == "auth":
                return False, f"OpenAI refused the API key ({exc.message}); paste a valid key in Settings"
            return False, f"OpenAI Images at {self.base_url}: {exc.message}"
        return True, f"OpenAI Images; {len(models)} image models"

    async def _generate(self, req: ImageRequest, progress: Progress) -> list[GeneratedImage]:
        model = self.model_for(req)
        fam = family(model)
        width, height = closest_size(model, req.width, req.height)
        prompt = req.prompt
        if req.negative_prompt.strip():
            prompt = f"{prompt}\n\nAvoid: {req.negative_prompt.strip()}"
        payload: dict[str, Any] = {"model": model, "prompt": prompt, "size": f"{width}x{height}"}
        quality = self._quality(fam)
        if quality:
            payload["quality"] = quality
        if fam == "gpt-image":
            payload["output_format"] = "png"
        else:
            payload["response_format"] = "b64_json"  # DALL-E defaults to short-lived URLs
        per_call = MAX_N[fam]
        calls = [min(per_call, req.batch - done) for done in range(0, req.batch, per_call)]
        images: list[GeneratedImage] = []
        for index, n in enumerate(calls):
            part = progress.span(index / len(calls), (index + 1) / len(calls))
            call = functools.partial(
                self._json_object,
                "POST",
                "images/generations",
                json_body={**payload, "n": n},
                read_timeout=self.generation_timeout,
            )
            body = await run_with_poller(call, functools.partial(self._tick, part))
            images.extend(await self._parse(body, req, model, width, height, n))
            part(1.0, f"{len(images)}/{req.batch} images")
        return images

    async def _tick(self, part: Progress) -> None:
        """OpenAI reports nothing while it works: show time passing on a curve that never reaches 1."""
        elapsed = 0.0
        while True:
            await anyio.sleep(1.0)
            elapsed += 1.0
            part(0.9 * elapsed / (elapsed + 20.0), f"waiting for OpenAI ({int(elapsed)}s)")

    async def _parse(
        self, body: dict[str, Any], req: ImageRequest, model: str, width: int, height: int, n: int
    ) -> list[GeneratedImage]:
        items = body.get("data")
        if not isinstance(items, list) or not items:
            raise BackendProtocolError("images/generations answered without data", backend=self.name)
        cost_each = self._cost_each(body, model, req, n)
        out: list[GeneratedImage] = []
        for item in items[:n]:
            if not isinstance(item, dict):
                raise BackendProtocolError("an item of data is not an object", backend=self.name)
            if item.get("b64_json"):
                raw = decode_b64_image(item["b64_json"], backend=self.name)
            elif isinstance(item.get("url"), str):
                raw = (await self._send("GET", item["url"], auth=False)).content
            else:
                raise BackendProtocolError("an image has neither b64_json nor url", backend=self.name)
            png, w, h = as_png(raw, backend=self.name)
            meta: dict[str, Any] = {"requested_size": f"{req.width}x{req.height}", "size": f"{width}x{height}"}
            if item.get("revised_prompt"):
                meta["revised_prompt"] = item["revised_prompt"]
            if req.negative_prompt.strip():
                meta["negative_prompt_folded"] = True
            if payload_quality := self._quality(family(model)):
                meta["quality"] = payload_quality
            out.append(
                GeneratedImage(
                    png_bytes=png,
                    seed=None,
                    width=w,
                    height=h,
                    model=model,
                    backend=self.name,
                    meta=meta,
                    cost_usd=cost_each,
                )
            )
        return out

    def _cost_each(self, body: dict[str, Any], model: str, req: ImageRequest, n: int) -> Decimal:
        usage = body.get("usage")
        prices = TOKEN_PRICES.get(model)
        if isinstance(usage, dict) and prices is not None:
            details = usage.get("input_tokens_details") or {}
            text_in = int(details.get("text_tokens", usage.get("input_tokens", 0)) or 0)
            image_in = int(details.get("image_tokens", 0) or 0)
            out_tokens = int(usage.get("output_tokens", 0) or 0)
            total = text_in * prices[0] + image_in * prices[1] + out_tokens * prices[2]
            return (total / max(1, n)).quantize(Decimal("0.000001"))
        return self.estimate_cost(ImageRequest(prompt="x", width=req.width, height=req.height, model=model, batch=1))
