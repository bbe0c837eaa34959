"""In-process diffusers (optional extra ``ainfluencer[diffusers]``): a local weights folder or the model cache.

torch, diffusers and huggingface_hub are imported only when a pipeline is loaded or a model is
pulled; without them ``available()`` says how to install the extra and nothing else breaks.

Loading: ``AutoPipelineForText2Image.from_pretrained(folder_or_repo_id, local_files_only=not
allow_download)`` on CUDA (float16), Apple MPS (float16) or CPU (float32), chosen automatically.
Pipelines live in a process-wide cache (most recently used ``PIPELINE_CACHE_SIZE`` kept) shared by
every backend instance; each has a lock because a pipeline is not safe to call from two threads.

Generation runs in a worker thread (never on the event loop) with one CPU ``torch.Generator`` per
image seeded ``seed + i`` (CPU generators give the same latents on every device); progress comes
from ``callback_on_step_end``. The model's safety checker is kept as shipped: images it flags are
dropped and, when all are, the call fails with ``ContentRejected``.

``pull_model`` downloads a diffusers repository (default: the small ``stabilityai/sd-turbo``) into
the models folder with ``huggingface_hub.snapshot_download``, reporting progress through a tqdm
adapter; it is what ``ainfluencer models pull`` runs.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.from_thread
import anyio.to_thread

from ainfluencer.backends.image.base import (
    GeneratedImage,
    ImageBackend,
    ImageRequest,
    Progress,
    ProgressCallback,
    png_size,
    read_reference,
)
from ainfluencer.backends.image.errors import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendTransientError,
    BackendUnavailable,
    ContentRejected,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL = "stabilityai/sd-turbo"
INSTALL_HINT = "install the extra: pip install 'ainfluencer[diffusers]'"
PIPELINE_CACHE_SIZE = 1
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TURBO_HINTS = ("turbo", "lightning", "lcm", "hyper")
_OTHER_WEIGHTS = (".bin", ".ckpt", ".pt", ".pth", ".onnx", ".msgpack", ".h5", ".onnx_data")


class _Stop(Exception):
    """Raised inside the step callback to stop a generation whose caller went away."""


@dataclass
class _Loaded:
    """One pipeline in the process-wide cache."""

    pipe: Any
    device: str
    dtype: str
    source: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    img2img: Any = None


_PIPELINES: OrderedDict[tuple[str, str, str | None], _Loaded] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_pipeline_cache() -> None:
    """Drop every cached pipeline (frees their memory once no generation holds them)."""
    with _CACHE_LOCK:
        _PIPELINES.clear()


def cached_pipelines() -> list[tuple[str, str]]:
    """(source, device) of the pipelines loaded in this process, oldest first."""
    with _CACHE_LOCK:
        return [(key[0], key[1]) for key in _PIPELINES]


def dependencies_missing() -> list[str]:
    """The Python packages this backend needs that are not installed (checked without importing them)."""
    return [name for name in ("torch", "diffusers", "transformers") if importlib.util.find_spec(name) is None]


def repo_slug(repo_id: str) -> str:
    """The folder name a pulled repository gets inside the models folder (``owner--name``)."""
    return repo_id.replace("/", "--")


def resolve_source(model: str, models_dir: Path | None) -> tuple[str, bool]:
    """Where ``model`` loads from: (local folder, True) or (Hub repo id for the model cache, False)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), True
    if models_dir is not None and _REPO_ID.match(model) and (Path(models_dir) / repo_slug(model)).is_dir():
        return str(Path(models_dir) / repo_slug(model)), True
    if models_dir is not None and (Path(models_dir) / model).is_dir():
        return str(Path(models_dir) / model), True
    if _REPO_ID.match(model) and not model.startswith((".", "~")):
        return model, False
    raise BackendUnavailable(f"no diffusers model folder at {model}", backend=DiffusersBackend.name)


def _local_variant(folder: Path) -> str | None:
    """``fp16`` when the folder's weights exist only as the fp16 variant (as ``pull_model`` fetches them)."""
    for sub in ("unet", "transformer"):
        d = folder / sub
        if d.is_dir():
            names = [p.name for p in d.iterdir()]
            plain = any(n.endswith(".safetensors") and ".fp16" not in n for n in names)
            if not plain and any(".fp16." in n or ".fp16-" in n for n in names):
                return "fp16"
    return None


def _import_stack() -> tuple[Any, Any]:
    try:
        import diffusers
        import torch
    except ImportError as exc:
        raise BackendUnavailable(f"unavailable: {INSTALL_HINT} ({exc.name} is missing)", backend="diffusers") from exc
    return torch, diffusers


def _pick_device(torch: Any, wanted: str) -> str:
    if wanted != "auto":
        return wanted
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _dtype_kwarg(diffusers: Any) -> str:
    """Diffusers 0.36 renamed ``torch_dtype`` to ``dtype``; older versions ignore the new name."""
    try:
        major, minor = (int(x) for x in diffusers.__version__.split(".")[:2])
    except ValueError:
        return "torch_dtype"
    return "dtype" if (major, minor) >= (0, 36) else "torch_dtype"


def load_pipeline(
    source: str,
    *,
    local: bool,
    device: str = "auto",
    allow_download: bool = False,
    cache_dir: Path | None = None,
    variant: str | None = None,
) -> _Loaded:
    """Load (or take from the cache) a text-to-image pipeline; blocking, so call it from a worker thread."""
    torch, diffusers = _import_stack()
    dev = _pick_device(torch, device)
    dtype = torch.float16 if dev in ("cuda", "mps") else torch.float32
    if local and variant is None:
        variant = _local_variant(Path(source))
    key = (source, dev, variant)
    with _CACHE_LOCK:
        if key in _PIPELINES:
            _PIPELINES.move_to_end(key)
            return _PIPELINES[key]
        while len(_PIPELINES) >= max(1, PIPELINE_CACHE_SIZE):
            _PIPELINES.popitem(last=False)  # least recently used goes; memory is freed when unused
        kwargs: dict[str, Any] = {"local_files_only": local or not allow_download, _dtype_kwarg(diffusers): dtype}
        if cache_dir is not None:
            kwargs["cache_dir"] = str(cache_dir)
        if variant:
            kwargs["variant"] = variant
        try:
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise _load_error(source, local=local, allow_download=allow_download, exc=exc) from exc
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise BackendTransientError(f"out of memory loading {source}", backend="diffusers") from exc
            raise BackendPermanentError(f"cannot load {source}: {exc}"[:400], backend="diffusers") from exc
        pipe = pipe.to(dev)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        loaded = _Loaded(pipe=pipe, device=dev, dtype=str(dtype).replace("torch.", ""), source=source)
        _PIPELINES[key] = loaded
        return loaded


def _load_error(source: str, *, local: bool, allow_download: bool, exc: Exception) -> BackendError:
    text = " ".join(str(exc).split())[:300]
    if local:
        if not (Path(source) / "model_index.json").is_file():
            return BackendUnavailable(
                f"{source} is not a diffusers model folder (no model_index.json)", backend="diffusers"
            )
        return BackendPermanentError(f"cannot load the model in {source}: {text}", backend="diffusers")
    if not allow_download:
        return BackendUnavailable(
            f"model {source} is not on this machine: run `ainfluencer models pull {source}` "
            "(or point the diffusers backend at a model folder)",
            backend="diffusers",
        )
    return BackendTransientError(f"cannot fetch {source}: {text}", backend="diffusers")


def _img2img(loaded: _Loaded) -> Any:
    if loaded.img2img is None:
        _, diffusers = _import_stack()
        try:
            loaded.img2img = diffusers.AutoPipelineForImage2Image.from_pipe(loaded.pipe)
        except (ValueError, TypeError) as exc:
            raise BackendPermanentError(
                f"this model has no image-to-image pipeline: {exc}", backend="diffusers"
            ) from exc
        if hasattr(loaded.img2img, "set_progress_bar_config"):
            loaded.img2img.set_progress_bar_config(disable=True)
    return loaded.img2img


class DiffusersBackend(ImageBackend):
    """Stable Diffusion class models run in this process with 🤗 diffusers (CPU or GPU)."""

    name: ClassVar[str] = "diffusers"
    label: ClassVar[str] = "diffusers (in-process)"
    paid: ClassVar[bool] = False
    local: ClassVar[bool] = True
    supports_face_reference: ClassVar[bool] = False
    supports_img2img: ClassVar[bool] = True
    supports_negative_prompt: ClassVar[bool] = True
    supports_seed: ClassVar[bool] = True
    max_size: ClassVar[tuple[int, int]] = (2048, 2048)
    max_batch: ClassVar[int] = 4
    default_model: ClassVar[str] = DEFAULT_MODEL

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        models_dir: Path | str | None = None,
        device: str = "auto",
        allow_download: bool = False,
        cache_dir: Path | str | None = None,
        variant: str | None = None,
        default_steps: int | None = None,
        default_guidance: float | None = None,
    ) -> None:
        self.model = str(model) if model else self.default_model
        self.models_dir = Path(models_dir) if models_dir else None
        self.device = device
        self.allow_download = allow_download
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.variant = variant
        self.default_steps = default_steps
        self.default_guidance = default_guidance

    def __repr__(self) -> str:
        return f"DiffusersBackend(model={self.model!r}, device={self.device!r})"

    def _defaults(self, model: str) -> tuple[int, float]:
        turbo = any(h in model.lower() for h in _TURBO_HINTS)
        steps = self.default_steps or (2 if turbo else 25)
        guidance = self.default_guidance if self.default_guidance is not None else (0.0 if turbo else 7.0)
        return steps, guidance

    async def available(self) -> tuple[bool, str]:
        """Whether the extra is installed and the model is on this machine; never raises (imports nothing heavy)."""
        missing = dependencies_missing()
        if missing:
            return False, f"unavailable: {INSTALL_HINT} (missing: {', '.join(missing)})"
        try:
            source, local = resolve_source(self.model, self.models_dir)
        except BackendError as exc:
            return False, exc.message
        if local:
            if not (Path(source) / "model_index.json").is_file():
                return False, f"{source} is not a diffusers model folder (no model_index.json)"
            return True, f"diffusers model folder {source}"
        if await anyio.to_thread.run_sync(self._in_hub_cache, source):
            return True, f"{source} from the model cache"
        if self.allow_download:
            return True, f"{source} will be downloaded on first use"
        return False, f"model {source} is not downloaded: run `ainfluencer models pull {source}`"

    def _in_hub_cache(self, repo_id: str) -> bool:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return False
        found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=self.cache_dir)
        return isinstance(found, str)

    async def list_models(self) -> list[str]:
        """Model folders in the models folder (as repo ids where pulled) and diffusers repos in the Hub cache."""
        return await anyio.to_thread.run_sync(self._list_models_sync)

    def _list_models_sync(self) -> list[str]:
        names: list[str] = []
        if self.models_dir is not None and self.models_dir.is_dir():
            for d in sorted(self.models_dir.iterdir()):
                if (d / "model_index.json").is_file():
                    names.append(d.name.replace("--", "/", 1) if "--" in d.name else d.name)
        try:
            from huggingface_hub import scan_cache_dir

            for repo in scan_cache_dir(self.cache_dir).repos:
                if repo.repo_type == "model" and any(
                    f.file_name == "model_index.json" for rev in repo.revisions for f in rev.files
                ):
                    names.append(repo.repo_id)
        except Exception as exc:  # no cache folder yet, or hub not installed: nothing cached to list
            log.debug("diffusers: model cache not readable: %s", type(exc).__name__)
        return sorted(set(names))

    async def _generate(self, req: ImageRequest, progress: Progress) -> list[GeneratedImage]:
        missing = dependencies_missing()
        if missing:
            raise BackendUnavailable(f"unavailable: {INSTALL_HINT} (missing: {', '.join(missing)})", backend=self.name)
        model = self.model_for(req)
        source, local = resolve_source(model, self.models_dir)
        init_bytes = None
        if req.init_image is not None:
            init_bytes = await read_reference(req.init_image, backend=self.name, what="init image")
        progress(0.02, "loading the model")
        loaded = await anyio.to_thread.run_sync(
            lambda: load_pipeline(
                source,
                local=local,
                device=self.device,
                allow_download=self.allow_download,
                cache_dir=self.cache_dir,
                variant=self.variant,
            )
        )
        progress(0.1, f"model ready on {loaded.device}")
        sampling = progress.span(0.1, 0.97)
        stop = threading.Event()

        def on_step(fraction: float, message: str) -> None:
            try:
                anyio.from_thread.run_sync(sampling, fraction, message)
            except RuntimeError:  # the caller is gone (cancelled); the step callback will stop the run
                stop.set()

        try:
            images = await anyio.to_thread.run_sync(
                lambda: self._run(loaded, req, model, init_bytes, on_step, stop), abandon_on_cancel=True
            )
        except anyio.get_cancelled_exc_class():
            stop.set()  # the worker thread stops at its next step and releases the pipeline
            raise
        return images

    def _run(
        self,
        loaded: _Loaded,
        req: ImageRequest,
        model: str,
        init_bytes: bytes | None,
        on_step: ProgressCallback,
        stop: threading.Event,
    ) -> list[GeneratedImage]:
        """The blocking part, in a worker thread: sample, decode, check safety, encode PNGs."""
        torch, _ = _import_stack()
        steps, guidance = self._defaults(model)
        steps = req.steps or steps
        guidance = req.guidance if req.guidance is not None else guidance
        width, height = req.width - req.width % 8, req.height - req.height % 8
        seed = req.seed if req.seed is not None else 0
        seeds = [seed + i for i in range(req.batch)]

        def step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            if stop.is_set():
                raise _Stop
            total = getattr(pipe, "num_timesteps", None) or steps
            on_step((step + 1) / max(1, total), f"step {step + 1}/{total}")
            return callback_kwargs

        kwargs: dict[str, Any] = {
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt or None,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "num_images_per_prompt": req.batch,
            "generator": [torch.Generator(device="cpu").manual_seed(s) for s in seeds],
            "output_type": "pil",
            "callback_on_step_end": step_end,
        }
        with loaded.lock:
            if init_bytes is not None:
                pipe = _img2img(loaded)
                kwargs["image"] = _decode_init(init_bytes, width, height)
                kwargs["strength"] = req.strength
                # a turbo model at 1-2 steps with strength 0.5 would run zero steps: keep at least one
                kwargs["num_inference_steps"] = max(steps, math.ceil(1 / req.strength))
            else:
                pipe = loaded.pipe
                kwargs.update(width=width, height=height)
            oom: type[BaseException] = getattr(torch, "OutOfMemoryError", MemoryError)
            try:
                with torch.inference_mode():
                    out = pipe(**kwargs)
            except _Stop:
                raise BackendTransientError("the generation was cancelled", backend=self.name) from None
            except oom as exc:
                raise BackendTransientError(
                    f"out of memory on {loaded.device}: {exc}"[:300], backend=self.name
                ) from exc
            except (ValueError, TypeError) as exc:
                raise BackendPermanentError(
                    f"the pipeline refused the request: {exc}"[:400], backend=self.name
                ) from exc
            except RuntimeError as exc:
                if "out of memory" in str(exc).lower():
                    raise BackendTransientError(f"out of memory on {loaded.device}", backend=self.name) from exc
                raise BackendPermanentError(f"generation failed: {exc}"[:400], backend=self.name) from exc
            checker = "on" if getattr(loaded.pipe, "safety_checker", None) is not None else "not in this model"
        flags = getattr(out, "nsfw_content_detected", None) or [False] * len(out.images)
        results: list[GeneratedImage] = []
        for image, flagged, s in zip(out.images, flags, seeds, strict=False):
            if flagged:
                continue
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            png = buf.getvalue()
            w, h = png_size(png)
            meta: dict[str, Any] = {
                "steps": kwargs["num_inference_steps"],
                "guidance": guidance,
                "device": loaded.device,
                "dtype": loaded.dtype,
                "source": loaded.source,
                "safety_checker": checker,
                "scheduler": type(getattr(loaded.pipe, "scheduler", None)).__name__,
            }
            if init_bytes is not None:
                meta["strength"] = req.strength
            results.append(
                GeneratedImage(png_bytes=png, seed=s, width=w, height=h, model=model, backend=self.name, meta=meta)
            )
        if not results:
            raise ContentRejected("the model's safety checker flagged every image; nothing was kept", backend=self.name)
        return results


def _decode_init(data: bytes, width: int, height: int) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB").resize((width, height))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BackendPermanentError(f"the init image does not decode: {exc}", backend="diffusers") from exc


# --- pulling models -------------------------------------------------------------------------------------


def models_dir_for(data_dir: Path) -> Path:
    """Where pulled diffusers models live inside the data directory."""
    return Path(data_dir) / "models" / "diffusers"


def hub_offline() -> bool:
    """Whether the Hugging Face Hub client is set to offline mode (``HF_HUB_OFFLINE``)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    check = getattr(constants, "is_offline_mode", None)
    return bool(check()) if callable(check) else bool(getattr(constants, "HF_HUB_OFFLINE", False))


def choose_files(files: Iterable[str], variant: str | None = "fp16") -> list[str]:
    """The files of a diffusers repository worth downloading: configs, tokenizers, one set of weights per part.

    Root-level single-file checkpoints, non-safetensors duplicates and the other precision are skipped;
    a part without the requested ``variant`` gets its plain weights.
    """
    by_dir: dict[str, list[str]] = {}
    chosen: list[str] = []
    for f in files:
        if "/" not in f:
            if f == "model_index.json":
                chosen.append(f)
            continue
        by_dir.setdefault(f.rsplit("/", 1)[0], []).append(f)
    tags = ("fp16", "fp32", "bf16", "ema", "non_ema", "onnx")

    def has_tag(name: str, tag: str) -> bool:
        base = name.rsplit("/", 1)[-1]
        return f".{tag}." in base or f".{tag}-" in base or base.endswith(f".{tag}.json")

    for _, names in sorted(by_dir.items()):
        weights = [n for n in names if n.endswith(".safetensors") or ".safetensors.index" in n]
        others = [n for n in names if n not in weights and not n.endswith(_OTHER_WEIGHTS)]
        chosen.extend(o for o in others if not o.endswith(".safetensors.index.json") or not weights)
        if not weights:
            chosen.extend(n for n in names if n.endswith(".bin") and not any(has_tag(n, t) for t in tags))
            continue
        picked = [n for n in weights if variant and has_tag(n, variant)]
        if not picked:
            picked = [n for n in weights if not any(has_tag(n, t) for t in tags)]
        chosen.extend(picked)
    return sorted(set(chosen))


def _tqdm_adapter(report: Callable[[float, str], None]) -> type:
    """A tqdm class for ``snapshot_download`` that draws nothing and forwards overall progress to ``report``."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    bars: list[Any] = []
    lock = threading.Lock()

    def emit() -> None:
        with lock:
            byte_bars = [b for b in bars if b.ainf_unit == "B" and (b.total or 0) > 0]
            pool = byte_bars or [b for b in bars if (b.total or 0) > 0]
            if not pool:
                return
            bar = max(pool, key=lambda b: b.total or 0)
            done, total = float(bar.n), float(bar.total or 1)
        if bar.ainf_unit == "B":
            message = f"downloading {done / 1e9:.2f} / {total / 1e9:.2f} GB"
        else:
            message = f"downloading {int(done)} / {int(total)} files"
        report(min(1.0, done / total), message)

    class _Adapter(hf_tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # no terminal bar; the CLI draws its own
            self.ainf_unit = str(kwargs.get("unit", "it"))  # a disabled tqdm does not keep its unit
            super().__init__(*args, **kwargs)
            with lock:
                bars.append(self)

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0  # a disabled tqdm does not count by itself
            emit()
            return None

        def __iter__(self) -> Any:
            for item in self.iterable:
                yield item
                self.update(1)

    return _Adapter


def pull_model(
    repo_id: str = DEFAULT_MODEL,
    dest: Path | None = None,
    *,
    models_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    variant: str | None = "fp16",
    revision: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
) -> Path:
    """Download a diffusers model from the Hugging Face Hub into ``dest``; blocking (a CLI call or a worker thread).

    ``dest`` defaults to ``models_dir/owner--name``. Raises ``BackendUnavailable`` with what to do
    when the Hub cannot be reached (offline mode, no network), ``BackendAuthError`` for gated or
    private repositories without a token, ``BackendPermanentError`` for a repository that does not exist.
    """
    if not _REPO_ID.match(repo_id):
        raise BackendPermanentError(f"{repo_id!r} is not a Hub repository id (owner/name)", backend="diffusers")
    if dest is None:
        if models_dir is None:
            raise ValueError("pass dest or models_dir")
        dest = Path(models_dir) / repo_slug(repo_id)
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub import errors as hub_errors
    except ImportError as exc:
        raise BackendUnavailable(f"unavailable: {INSTALL_HINT}", backend="diffusers") from exc
    cannot_reach = (
        f"cannot download {repo_id}: the Hugging Face Hub is not reachable from here ({{why}}). "
        f"Run `ainfluencer models pull {repo_id}` on a machine with internet access, or copy a diffusers "
        "model folder into the models folder and point the diffusers backend at it"
    )
    if hub_offline():
        raise BackendUnavailable(cannot_reach.format(why="HF_HUB_OFFLINE is set"), backend="diffusers")
    report = Progress(progress)
    report(0.0, f"looking up {repo_id}")
    try:
        files = HfApi(endpoint=endpoint, token=token).list_repo_files(repo_id, revision=revision)
        wanted = choose_files(files, variant)
        if "model_index.json" not in wanted:
            raise BackendPermanentError(
                f"{repo_id} is not a diffusers pipeline (no model_index.json)", backend="diffusers"
            )
        path = snapshot_download(
            repo_id,
            revision=revision,
            local_dir=str(dest),
            allow_patterns=wanted,
            tqdm_class=_tqdm_adapter(report),
            endpoint=endpoint,
            token=token,
        )
    except BackendError:
        raise
    except hub_errors.GatedRepoError as exc:
        raise BackendAuthError(
            f"{repo_id} is gated: accept its licence on the Hub and set HF_TOKEN", backend="diffusers"
        ) from exc
    except hub_errors.RepositoryNotFoundError as exc:
        raise BackendPermanentError(
            f"no model {repo_id} on the Hub (or it is private: set HF_TOKEN)", backend="diffusers"
        ) from exc
    except hub_errors.RevisionNotFoundError as exc:
        raise BackendPermanentError(f"{repo_id} has no revision {revision!r}", backend="diffusers") from exc
    except (hub_errors.LocalEntryNotFoundError, hub_errors.OfflineModeIsEnabled) as exc:
        raise BackendUnavailable(cannot_reach.format(why=type(exc).__name__), backend="diffusers") from exc
    except hub_errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            raise BackendAuthError(f"the Hub refused access to {repo_id} (HTTP {status})", backend="diffusers") from exc
        raise BackendTransientError(
            f"the Hub answered an error for {repo_id}: {exc}"[:300], backend="diffusers"
        ) from exc
    except Exception as exc:  # the hub's HTTP stack (httpx/requests) raises its own connection errors
        if _is_network_error(exc):
            raise BackendUnavailable(cannot_reach.format(why=type(exc).__name__), backend="diffusers") from exc
        raise
    report(1.0, f"{repo_id} is in {path}")
    return Path(path)


def _is_network_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    network = {"ConnectError", "ConnectionError", "ConnectTimeout", "TimeoutException", "NetworkError", "ProxyError"}
    return bool(names & network) or isinstance(exc, OSError | TimeoutError)
