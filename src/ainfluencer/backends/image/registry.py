"""Image backends by name, what each can do and whether it runs here, and the per-character fallback chain.

Fallback chain, in order for each backend:
    paid backend while ``allow_paid()`` says no (usage cap reached)          -> skipped
    the request needs a capability it lacks (face reference, init image)     -> skipped
    ContentRejected (a safety system refused the prompt or the images)       -> the chain stops and
        raises it: a refused prompt is not sent on to a backend with a weaker filter
    auth / other permanent / unavailable error                               -> next backend at once
    transient error                                                           -> retry the same backend after
        delay(n) = min(30 s, 2 s * 2 ** (n - 1)) * (1 + U(0, 0.25)), floored by the server's
        Retry-After; at most ``max_retries`` retries per backend; a single wait above ``max_wait_s``
        moves on instead of waiting
When every backend failed, the chain raises one error that lists each attempt: transient when any
backend failed transiently (the job is worth retrying later), else unavailable / permanent.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import anyio

from ainfluencer.backends.image.automatic1111 import Automatic1111Backend
from ainfluencer.backends.image.base import GeneratedImage, ImageBackend, ImageRequest, ProgressCallback
from ainfluencer.backends.image.comfyui import ComfyUIBackend
from ainfluencer.backends.image.diffusers_local import DiffusersBackend
from ainfluencer.backends.image.errors import (
    BackendError,
    BackendPermanentError,
    BackendTransientError,
    BackendUnavailable,
    ContentRejected,
)
from ainfluencer.backends.image.openai_images import OpenAIImagesBackend
from ainfluencer.errors import InvalidInput
from ainfluencer.jobs.retry import RetryPolicy

IMAGE_BACKENDS: dict[str, type[ImageBackend]] = {
    cls.name: cls for cls in (ComfyUIBackend, Automatic1111Backend, DiffusersBackend, OpenAIImagesBackend)
}
CHAIN_POLICY = RetryPolicy(base_seconds=2.0, max_seconds=30.0, jitter=0.25)
STATUS_TIMEOUT_S = 20.0

Outcome = Literal["ok", "auth", "transient", "permanent", "unavailable", "error", "skipped_paid", "skipped_capability"]


def backend_class(name: str) -> type[ImageBackend]:
    """The backend class registered under ``name``."""
    try:
        return IMAGE_BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(IMAGE_BACKENDS))
        raise InvalidInput(f"unknown image backend {name!r}; known: {known}", field="image_backend") from None


def create_image_backend(name: str, **options: Any) -> ImageBackend:
    """A backend instance by registry name (options go to its constructor)."""
    return backend_class(name)(**options)


def capabilities(cls: type[ImageBackend]) -> dict[str, Any]:
    """A backend class's capability data as a JSON-friendly dict (for Settings and the API)."""
    return {
        "name": cls.name,
        "label": cls.label,
        "paid": cls.paid,
        "local": cls.local,
        "supports_face_reference": cls.supports_face_reference,
        "supports_img2img": cls.supports_img2img,
        "supports_negative_prompt": cls.supports_negative_prompt,
        "supports_seed": cls.supports_seed,
        "max_size": list(cls.max_size),
        "max_batch": cls.max_batch,
        "cost_per_image": str(cls.cost_per_image),
    }


@dataclass(frozen=True)
class BackendStatus:
    """What Settings shows for one backend."""

    name: str
    label: str
    available: bool
    message: str
    capabilities: dict[str, Any]


async def image_backend_status(backends: Iterable[ImageBackend]) -> list[BackendStatus]:
    """Ask each backend whether it runs here (concurrently, each bounded in time); never raises."""
    items = list(backends)
    results: list[BackendStatus | None] = [None] * len(items)

    async def one(i: int, backend: ImageBackend) -> None:
        ok, message = False, f"no answer within {STATUS_TIMEOUT_S:g}s"
        with anyio.move_on_after(STATUS_TIMEOUT_S):
            try:
                ok, message = await backend.available()
            except Exception as exc:  # available() must not raise; a bug still only marks this one
                ok, message = False, f"check failed: {type(exc).__name__}"
        results[i] = BackendStatus(backend.name, backend.label, ok, message, capabilities(type(backend)))

    async with anyio.create_task_group() as tg:
        for i, backend in enumerate(items):
            tg.start_soon(one, i, backend)
    return [r for r in results if r is not None]


# --- the fallback chain --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What happened on one call (or skip) of one backend."""

    backend: str
    outcome: Outcome
    message: str = ""
    waited_s: float = 0.0


@dataclass(frozen=True)
class ChainImages:
    """The images, which backend made them, and everything that went wrong before."""

    images: list[GeneratedImage]
    backend: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        """Whether a backend other than the first one answered."""
        return bool(self.attempts) and self.attempts[0].backend != self.backend


def _always() -> bool:
    return True


def _lacks(backend: ImageBackend, req: ImageRequest) -> str | None:
    if req.face_reference is not None and not backend.supports_face_reference:
        return "takes no face reference"
    if req.init_image is not None and not backend.supports_img2img:
        return "cannot start from an image"
    return None


class ImageFallbackChain:
    """Tries image backends in order with bounded retries, skipping paid ones past the cap."""

    def __init__(
        self,
        backends: Sequence[ImageBackend],
        *,
        allow_paid: Callable[[], bool] = _always,
        max_retries: int = 2,
        max_wait_s: float = 60.0,
        policy: RetryPolicy = CHAIN_POLICY,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.backends = list(backends)
        self.allow_paid = allow_paid
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.policy = policy
        self.sleep = sleep
        self.rng = rng

    def estimate_cost(self, req: ImageRequest) -> Decimal:
        """The cost if the first usable backend answers."""
        for backend in self.backends:
            if _lacks(backend, req) is None and (not backend.paid or self.allow_paid()):
                return backend.estimate_cost(req)
        return Decimal(0)

    async def generate(self, req: ImageRequest, *, progress: ProgressCallback | None = None) -> ChainImages:
        """Ask each backend in turn until one returns images."""
        attempts: list[Attempt] = []
        last: BackendError | None = None
        for backend in self.backends:
            if backend.paid and not self.allow_paid():
                attempts.append(Attempt(backend.name, "skipped_paid", "monthly usage cap reached"))
                continue
            reason = _lacks(backend, req)
            if reason is not None:
                attempts.append(Attempt(backend.name, "skipped_capability", f"{backend.label} {reason}"))
                continue
            retries, pause = 0, 0.0
            while True:
                try:
                    images = await backend.generate(req, progress=progress)
                except ContentRejected as exc:
                    attempts.append(Attempt(backend.name, "permanent", exc.message, pause))
                    raise
                except BackendTransientError as exc:
                    last = exc
                    attempts.append(Attempt(backend.name, "transient", exc.message, pause))
                    decision = self.policy.decide(
                        attempt=retries + 1,
                        max_attempts=self.max_retries + 1,
                        retry_after=exc.retry_after,
                        rng=self.rng,
                    )
                    delay = decision.delay.total_seconds()
                    if not decision.retry or delay > self.max_wait_s:
                        break
                    await self.sleep(delay)
                    retries, pause = retries + 1, delay
                    continue
                except BackendError as exc:
                    last = exc
                    attempts.append(Attempt(backend.name, exc.kind, exc.message, pause))  # type: ignore[arg-type]
                    break
                except Exception as exc:  # a bug in one backend must not silence the others
                    attempts.append(Attempt(backend.name, "error", f"{type(exc).__name__}: {exc}", pause))
                    break
                attempts.append(Attempt(backend.name, "ok", "", pause))
                return ChainImages(images=images, backend=backend.name, attempts=attempts)
        raise self._exhausted(attempts, last)

    def _exhausted(self, attempts: list[Attempt], last: BackendError | None) -> BackendError:
        summary = "; ".join(f"{a.backend}: {a.outcome}{' - ' + a.message if a.message else ''}" for a in attempts)
        message = f"no image backend could generate this ({summary or 'no backend configured'})"
        error: BackendError
        if any(a.outcome == "transient" for a in attempts):
            retry_after = last.retry_after if isinstance(last, BackendTransientError) else None
            error = BackendTransientError(message, backend="chain", retry_after=retry_after)
        elif attempts and all(a.outcome in ("unavailable", "skipped_paid", "skipped_capability") for a in attempts):
            error = BackendUnavailable(message, backend="chain")
        else:
            error = BackendPermanentError(message, backend="chain")
        error.attempts = attempts  # type: ignore[union-attr]
        return error


__all__ = [
    "IMAGE_BACKENDS",
    "Attempt",
    "BackendStatus",
    "ChainImages",
    "ImageFallbackChain",
    "backend_class",
    "capabilities",
    "create_image_backend",
    "image_backend_status",
]
