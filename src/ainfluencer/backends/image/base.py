"""The image backend extension point, the request and result types, and the HTTP choke point."""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import secrets
import struct
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import anyio
import httpx
from pydantic import SecretStr

from ainfluencer.backends.image.errors import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    parse_retry_after,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]
T = TypeVar("T")

MAX_SEED = 2**32 - 1  # the range every backend accepts (A1111 and torch take at least this much)
MIN_SIDE = 64
MAX_STEPS = 150
MAX_REFERENCE_BYTES = 25 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
AUTH_STATUSES = frozenset({401, 403})
MAX_DETAIL_CHARS = 400


@dataclass(frozen=True)
class ImageRequest:
    """What to generate; ``None`` fields mean "the backend's or model's default".

    ``seed`` None picks a random seed (reported on each result); image ``i`` of a batch uses
    ``seed + i`` so every image can be regenerated alone. ``face_reference`` is the character's
    canonical face (or a consented reference photo) used for identity consistency; ``init_image``
    with ``strength`` (0 keeps the image, 1 ignores it) makes the call image-to-image.
    """

    prompt: str
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    model: str | None = None
    batch: int = 1
    face_reference: Path | None = None
    init_image: Path | None = None
    strength: float = 0.6
    face_weight: float = 0.8


@dataclass(frozen=True)
class GeneratedImage:
    """One finished image as PNG bytes, with what made it."""

    png_bytes: bytes
    seed: int | None
    width: int
    height: int
    model: str
    backend: str
    meta: dict[str, Any] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)


class Progress:
    """Forwards ``(fraction, message)`` to a callback: clamped to 0..1, never going backwards, never raising.

    ``span(start, end)`` gives a child that maps its own 0..1 onto that part of the parent, so a
    batch of images or the stages of one call each report on their own scale.
    """

    def __init__(
        self, callback: ProgressCallback | None, *, start: float = 0.0, end: float = 1.0, parent: Progress | None = None
    ) -> None:
        self._callback = callback
        self._start = start
        self._end = end
        self._parent = parent
        self.last = -1.0
        self.last_message = ""

    def __call__(self, fraction: float, message: str = "") -> None:
        """Report progress within this span."""
        if not math.isfinite(fraction):
            return
        local = min(1.0, max(0.0, fraction))
        value = self._start + (self._end - self._start) * local
        if self._parent is not None:
            self._parent._emit(value, message)
        else:
            self._emit(value, message)

    def _emit(self, value: float, message: str) -> None:
        if value < self.last:
            return
        if value == self.last and (not message or message == self.last_message):
            return
        self.last = value
        self.last_message = message
        if self._callback is None:
            return
        try:
            self._callback(value, message)
        except Exception:  # a broken progress display must not fail the generation
            log.exception("image progress callback failed")

    def span(self, start: float, end: float) -> Progress:
        """A child reporter covering ``start..end`` of this one."""
        lo = self._start + (self._end - self._start) * start
        hi = self._start + (self._end - self._start) * end
        return Progress(None, start=lo, end=hi, parent=self._parent or self)


def random_seed() -> int:
    """A fresh seed in the range every backend accepts."""
    return secrets.randbelow(MAX_SEED + 1)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (raises ValueError when it is not a PNG)."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def as_png(data: bytes, *, backend: str) -> tuple[bytes, int, int]:
    """The image as PNG bytes with its size; other formats are re-encoded (needs Pillow)."""
    try:
        width, height = png_size(data)
        return data, width, height
    except ValueError:
        pass
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise BackendProtocolError(
            "the server sent a non-PNG image; install ainfluencer[media] (Pillow) to convert it", backend=backend
        ) from exc
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            out = io.BytesIO()
            img.save(out, format="PNG")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BackendProtocolError(f"the server sent image data that does not decode: {exc}", backend=backend) from exc
    png = out.getvalue()
    width, height = png_size(png)
    return png, width, height


def decode_b64_image(value: Any, *, backend: str) -> bytes:
    """Bytes of a base64 image field (a ``data:`` URL prefix is allowed)."""
    if not isinstance(value, str) or not value:
        raise BackendProtocolError("an image field is not base64 text", backend=backend)
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BackendProtocolError(f"an image field is not valid base64: {exc}", backend=backend) from exc


async def read_reference(path: Path, *, backend: str, what: str) -> bytes:
    """Read a face/init image from disk without blocking the event loop; refuse missing, empty or huge files."""
    apath = anyio.Path(path)
    try:
        stat = await apath.stat()
    except OSError as exc:
        raise BackendPermanentError(
            f"the {what} {path.name!r} cannot be read: {exc.strerror}", backend=backend
        ) from exc
    if not stat.st_size:
        raise BackendPermanentError(f"the {what} {path.name!r} is empty", backend=backend)
    if stat.st_size > MAX_REFERENCE_BYTES:
        raise BackendPermanentError(
            f"the {what} {path.name!r} is {stat.st_size // (1024 * 1024)} MB; at most "
            f"{MAX_REFERENCE_BYTES // (1024 * 1024)} MB is sent",
            backend=backend,
        )
    return await apath.read_bytes()


async def run_with_poller(main: Callable[[], Awaitable[T]], poller: Callable[[], Awaitable[None]]) -> T:
    """Await ``main`` while ``poller`` runs beside it; the poller is stopped when main ends.

    ``main``'s own exception is raised as is (not wrapped in an exception group); the poller must
    not raise (it is a progress display).
    """
    box: list[T] = []
    error: list[Exception] = []

    async def guarded_poller() -> None:
        try:
            await poller()
        except Exception:
            log.exception("progress poller failed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(guarded_poller)
        try:
            box.append(await main())
        except Exception as exc:
            error.append(exc)
        finally:
            tg.cancel_scope.cancel()
    if error:
        raise error[0]
    return box[0]


class ImageBackend(ABC):
    """Extension point: one image generator (a local server, an in-process pipeline or a paid API).

    To add a backend, subclass this (or ``HttpImageBackend`` for an HTTP API), set the capability
    class attributes, implement ``_generate``, ``available`` and ``list_models``, and add one line to
    ``backends/image/registry.py``. Services never import a concrete backend; they get one from the
    registry and plan around the class attributes (drop the face reference for a backend that takes
    none, skip paid ones past the usage cap, keep sizes within ``max_size``).

    Capabilities (class attributes, read by the core):
        name                      registry key, recorded on every ``GeneratedImage``
        label                     what a person sees in Settings
        paid                      True when images cost money; ``cost_per_image`` / ``estimate_cost``
        local                     True when nothing leaves this machine (or the user's own server)
        supports_face_reference   ``ImageRequest.face_reference`` is used (IP-Adapter, InstantID, ...)
        supports_img2img          ``ImageRequest.init_image`` / ``strength`` are used
        supports_negative_prompt  the negative prompt is honoured natively
        supports_seed             the same seed gives the same image; False: ``GeneratedImage.seed`` is None
        max_size                  largest (width, height); the smallest side is ``MIN_SIDE``
        max_batch                 most images one ``generate`` call returns
        cost_per_image            US dollars per image (0 for local backends)
        default_model             used when neither the request nor the instance names one

    Contract:
        ``generate`` validates the request (``check``), fills in a random seed when none was given,
        reports progress as increasing fractions 0..1 with a short stage message, and returns
        ``req.batch`` images (PNG bytes with their real size and seed) or raises exactly one of the
        ``backends.image.errors`` classes: auth, transient (``retry_after`` when the server gave
        one), permanent (``ContentRejected`` for safety refusals, ``ModelMissing``) or unavailable
        (``MissingNodes`` when a ComfyUI extension is missing). No other exception escapes. Nothing
        blocks the event loop: CPU work and sync SDKs run in a worker thread. ``available`` never
        raises; it answers ``(ok, fix_message)``. Backends never log keys, prompts or images.
    """

    name: ClassVar[str] = "base"
    label: ClassVar[str] = "Image backend"
    paid: ClassVar[bool] = False
    local: ClassVar[bool] = True
    supports_face_reference: ClassVar[bool] = False
    supports_img2img: ClassVar[bool] = False
    supports_negative_prompt: ClassVar[bool] = True
    supports_seed: ClassVar[bool] = True
    max_size: ClassVar[tuple[int, int]] = (2048, 2048)
    max_batch: ClassVar[int] = 8
    cost_per_image: ClassVar[Decimal] = Decimal(0)
    default_model: ClassVar[str] = ""

    model: str = ""

    def check(self, req: ImageRequest) -> None:
        """Refuse a request this backend cannot honour, before any work is done."""

        def bad(message: str) -> BackendPermanentError:
            return BackendPermanentError(message, backend=self.name)

        if not req.prompt or not req.prompt.strip():
            raise bad("the prompt is empty")
        max_w, max_h = self.max_size
        if not (MIN_SIDE <= req.width <= max_w and MIN_SIDE <= req.height <= max_h):
            raise bad(f"size {req.width}x{req.height} is outside {MIN_SIDE}..{max_w} x {MIN_SIDE}..{max_h}")
        if not 1 <= req.batch <= self.max_batch:
            raise bad(f"batch must be between 1 and {self.max_batch} for {self.label}")
        if req.seed is not None and not 0 <= req.seed <= MAX_SEED - (req.batch - 1):
            raise bad(f"seed must be between 0 and {MAX_SEED - (req.batch - 1)}")
        if req.steps is not None and not 1 <= req.steps <= MAX_STEPS:
            raise bad(f"steps must be between 1 and {MAX_STEPS}")
        if req.guidance is not None and not (math.isfinite(req.guidance) and 0.0 <= req.guidance <= 30.0):
            raise bad("guidance must be between 0 and 30")
        if not (math.isfinite(req.strength) and 0.0 < req.strength <= 1.0):
            raise bad("strength must be above 0 and at most 1")
        if not (math.isfinite(req.face_weight) and 0.0 <= req.face_weight <= 2.0):
            raise bad("face weight must be between 0 and 2")
        if req.face_reference is not None and not self.supports_face_reference:
            raise bad(f"{self.label} cannot use a face reference; use ComfyUI or leave it out")
        if req.init_image is not None and not self.supports_img2img:
            raise bad(f"{self.label} cannot start from an image")

    def estimate_cost(self, req: ImageRequest) -> Decimal:
        """US dollars the request is expected to cost (before it runs)."""
        return self.cost_per_image * req.batch

    def model_for(self, req: ImageRequest) -> str:
        """The model this request will use."""
        return req.model or self.model or self.default_model

    async def generate(self, req: ImageRequest, *, progress: ProgressCallback | None = None) -> list[GeneratedImage]:
        """Generate ``req.batch`` images, reporting progress as ``(fraction 0..1, stage message)``."""
        self.check(req)
        if req.seed is None and self.supports_seed:
            req = replace(req, seed=random_seed())
        reporter = Progress(progress)
        reporter(0.0, "starting")
        images = await self._generate(req, reporter)
        reporter(1.0, "done")
        return images

    @abstractmethod
    async def _generate(self, req: ImageRequest, progress: Progress) -> list[GeneratedImage]:
        """Do the work for a checked request (``req.seed`` is set when the backend supports seeds)."""

    @abstractmethod
    async def available(self) -> tuple[bool, str]:
        """Whether the backend can generate here now, and if not, what to do about it; never raises."""

    @abstractmethod
    async def list_models(self) -> list[str]:
        """Names of the models (checkpoints) this backend can use now."""

    async def aclose(self) -> None:
        """Release what the backend holds (connections it opened itself)."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class HttpImageBackend(ImageBackend):
    """An image backend behind an HTTP API; ``_send`` is its one HTTP choke point.

    Two timeouts: ``timeout`` for ordinary calls (status, model lists, uploads, downloads) and
    ``generation_timeout`` for a call that blocks while the image is made (A1111's txt2img, OpenAI)
    or for following a queued job to its end (ComfyUI).
    """

    default_base_url: ClassVar[str] = ""
    default_timeout: ClassVar[float] = 30.0
    default_generation_timeout: ClassVar[float] = 600.0
    needs_api_key: ClassVar[bool] = False

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
        generation_timeout: float | None = None,
        model: str | None = None,
    ) -> None:
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        read = float(timeout) if timeout is not None else self.default_timeout
        # connect fails fast; every other phase has an explicit limit too (no httpx default of "forever")
        self.timeout = httpx.Timeout(connect=min(10.0, read), read=read, write=max(30.0, read), pool=min(10.0, read))
        gen = float(generation_timeout) if generation_timeout is not None else self.default_generation_timeout
        self.generation_timeout = gen
        self._client = client
        self._owns_client = client is None
        self.model = model or self.default_model

    def __repr__(self) -> str:
        key = "set" if self._key() else "none"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    def _key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key is not None else ""

    def _requires_key(self) -> bool:
        """Whether a call without a key is pointless (checked before any request is sent)."""
        return self.needs_api_key

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
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def _error_detail(self, body: Any) -> str:
        """The server's own message from an error body (backends override for their shape)."""
        if isinstance(body, dict):
            err = body.get("error", body.get("detail", body.get("message")))
            if isinstance(err, dict):
                err = err.get("message") or err.get("type")
            if isinstance(err, list):
                err = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in err)
            if isinstance(err, str):
                return err
        return ""

    def _status_error(self, response: httpx.Response, body: Any, body_text: str) -> BackendError:
        """Map a non-success response to one error class (backends refine it for their codes)."""
        status = response.status_code
        detail = self._error_detail(body) if body is not None else ""
        detail = self._redact((detail or body_text or response.reason_phrase).strip())[:MAX_DETAIL_CHARS]
        message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
        if status in AUTH_STATUSES:
            return BackendAuthError(message, backend=self.name, status=status)
        if status in TRANSIENT_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return BackendTransientError(message, backend=self.name, status=status, retry_after=retry_after)
        return BackendPermanentError(message, backend=self.name, status=status)

    def _transport_error(self, exc: Exception, *, timeout: float) -> BackendError:
        """Map an httpx exception to one error class."""
        if isinstance(exc, httpx.TimeoutException):
            return BackendTransientError(f"timed out ({type(exc).__name__}, limit {timeout:g}s)", backend=self.name)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return BackendUnavailable(f"base URL {self.base_url!r} is not usable: {exc}", backend=self.name)
        if isinstance(exc, httpx.ConnectError):
            return BackendTransientError(f"cannot connect to {self.base_url}: {exc}", backend=self.name)
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return BackendTransientError(f"connection dropped: {exc}", backend=self.name)
        return BackendTransientError(f"network error: {type(exc).__name__}: {exc}", backend=self.name)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """The choke point: every HTTP request of this backend goes through here; non-2xx raise."""
        if self._requires_key() and not self._key():
            raise BackendUnavailable(f"{self.label} needs an API key; add one in Settings", backend=self.name)
        timeout = self.timeout
        if read_timeout is not None:
            timeout = httpx.Timeout(
                connect=self.timeout.connect, read=read_timeout, write=self.timeout.write, pool=self.timeout.pool
            )
        headers = self._headers() if auth else {"accept": "*/*"}
        started = time.perf_counter()
        try:
            response = await self.client.request(
                method,
                self._url(path),
                json=json_body,
                params=params,
                files=files,
                data=data,
                headers=headers,
                timeout=timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.info("%s %s %s failed: %s", self.name, method, path, type(exc).__name__)
            raise self._transport_error(exc, timeout=timeout.read or 0.0) from exc
        log.debug(
            "%s %s %s -> %s in %.3fs", self.name, method, path, response.status_code, time.perf_counter() - started
        )
        if response.is_success:
            return response
        text = response.text
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        raise self._status_error(response, body, text)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its decoded JSON body (any JSON type)."""
        response = await self._send(method, path, **kwargs)
        try:
            return json.loads(response.text)
        except (ValueError, UnicodeDecodeError) as exc:
            ctype = response.headers.get("content-type", "?")
            raise BackendProtocolError(
                f"{path}: expected JSON, got {ctype} ({type(exc).__name__})", backend=self.name
            ) from exc

    async def _json_object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Send a request and return its JSON body, which must be an object."""
        data = await self._json(method, path, **kwargs)
        if not isinstance(data, dict):
            raise BackendProtocolError(f"{path}: the response is not a JSON object", backend=self.name)
        return data


__all__ = [
    "MAX_SEED",
    "MIN_SIDE",
    "GeneratedImage",
    "HttpImageBackend",
    "ImageBackend",
    "ImageRequest",
    "Progress",
    "ProgressCallback",
    "as_png",
    "decode_b64_image",
    "png_size",
    "random_seed",
    "read_reference",
    "run_with_poller",
]
