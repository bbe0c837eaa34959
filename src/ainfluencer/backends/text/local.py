"""A local text model inside the app process: llama.cpp (``llama-cpp-python``) on a quantised GGUF file.

This is the embedded default: no server, no key, nothing leaves the machine. The model file lives in
``<data dir>/models/text`` (``ainfluencer models pull text`` fetches the catalogue default). llama.cpp
was chosen over transformers for CPU speed: a Q4_K_M 0.5B model writes a caption in seconds on two
cores, where the same model in PyTorch float32 needs several times the memory and time.

The loaded model is kept (one at a time, keyed by file) because loading costs far more than a short
generation; calls to one model are serialised by its lock, since a llama.cpp context is not
thread-safe. Generation runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio

from ainfluencer.backends.text.base import (
    ChatMessage,
    ChatResult,
    ConnectionReport,
    StreamUsage,
    TextBackend,
    approx_tokens,
)
from ainfluencer.backends.text.catalogue import DEFAULT_LOCAL_TEXT_MODEL, local_model
from ainfluencer.backends.text.errors import BackendError, BackendPermanentError, BackendUnavailable

INSTALL_HINT = "install llama-cpp-python: pip install -e '.[local]' (compiles llama.cpp; a few minutes)"
PULL_HINT = "run `ainfluencer models pull text` (or open Setup) to download it"
DEFAULT_CONTEXT = 4096


@dataclass
class _Loaded:
    path: str
    n_ctx: int
    llm: Any
    lock: threading.Lock


_loaded: _Loaded | None = None
_load_lock = threading.Lock()


def default_threads() -> int:
    """Threads for llama.cpp: half the cores, at least one.

    llama.cpp's threads wait for each other at every layer, so on a small machine that also runs the
    web server, the worker and the database, one thread per core made generation several times slower
    (measured on a busy 2-core machine: a 220-token answer took ~6 s with two threads, ~1 s with one).
    """
    return max(1, (os.cpu_count() or 2) // 2)


def engine_available() -> bool:
    """Whether llama-cpp-python is installed."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def unload() -> None:
    """Drop the loaded model (frees its memory once nothing else holds it)."""
    global _loaded
    with _load_lock:
        _loaded = None


# free the model before the interpreter tears down the modules llama.cpp's finaliser needs
atexit.register(unload)


def _load(path: Path, *, n_ctx: int, n_threads: int | None) -> _Loaded:
    """The model for ``path``, loading it (and dropping another one) when needed."""
    global _loaded
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise BackendUnavailable(f"the local model engine is not installed; {INSTALL_HINT}", backend="local") from exc
    with _load_lock:
        if _loaded is not None and _loaded.path == str(path) and _loaded.n_ctx == n_ctx:
            return _loaded
        _loaded = None  # let the previous model go before the next one takes its memory
        try:
            llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or default_threads(),
                        n_gpu_layers=0, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendPermanentError(f"cannot load {path.name}: {exc}", backend="local") from exc
        _loaded = _Loaded(str(path), n_ctx, llm, threading.Lock())
        return _loaded


class LocalTextBackend(TextBackend):
    """A GGUF model run by llama.cpp in this process."""

    name: ClassVar[str] = "local"
    label: ClassVar[str] = "Local model (in the app)"
    streams: ClassVar[bool] = True
    paid: ClassVar[bool] = False
    default_timeout: ClassVar[float] = 600.0
    default_model: ClassVar[str] = DEFAULT_LOCAL_TEXT_MODEL

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        model: str | None = None,
        model_path: Path | None = None,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        seed: int | None = None,
        **_ignored: Any,
    ) -> None:
        self.models_dir = models_dir
        self.model = model or self.default_model
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed

    def __repr__(self) -> str:
        return f"LocalTextBackend(model={self.model!r})"

    def resolve(self, model: str | None = None) -> Path:
        """The GGUF file for a model id, a file name in the models folder, or an explicit path."""
        if self.model_path is not None and (not model or model == self.model):
            path = self.model_path
        else:
            wanted = model or self.model
            entry = local_model(wanted)
            filename = entry.filename if entry else wanted
            candidate = Path(filename)
            if candidate.is_absolute():
                path = candidate
            elif self.models_dir is None:
                raise BackendUnavailable("no models folder is set for the local model", backend=self.name)
            else:
                path = self.models_dir / candidate.name
        if not path.is_file():
            raise BackendUnavailable(f"the model file {path.name} is not downloaded; {PULL_HINT}", backend=self.name)
        return path

    def _options(self, temperature: float, max_tokens: int) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": max(0.0, temperature), "max_tokens": max_tokens}
        if self.seed is not None:
            options["seed"] = self.seed
        return options

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        temperature: float = 0.8,
        max_tokens: int = 512,
    ) -> ChatResult:
        """Complete the conversation in one call."""
        started = time.perf_counter()
        path = self.resolve(model)
        loaded = await anyio.to_thread.run_sync(lambda: _load(path, n_ctx=self.n_ctx, n_threads=self.n_threads))
        payload = [{"role": m.role, "content": m.content} for m in messages]

        def complete() -> dict[str, Any]:
            with loaded.lock:
                try:
                    out: dict[str, Any] = loaded.llm.create_chat_completion(
                        messages=payload, **self._options(temperature, max_tokens))
                except ValueError as exc:  # e.g. the prompt does not fit the context window
                    raise BackendPermanentError(str(exc)[:300], backend=self.name) from exc
                return out

        data = await anyio.to_thread.run_sync(complete)
        choice = (data.get("choices") or [{}])[0]
        text = str((choice.get("message") or {}).get("content") or "")
        usage = data.get("usage") or {}
        return ChatResult(
            text=text,
            model=path.name,
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or approx_tokens(text)),
            latency_s=time.perf_counter() - started,
            backend=self.name,
            paid=False,
            finish_reason=choice.get("finish_reason"),
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
        path = self.resolve(model)
        loaded = await anyio.to_thread.run_sync(lambda: _load(path, n_ctx=self.n_ctx, n_threads=self.n_threads))
        usage.model = path.name
        payload = [{"role": m.role, "content": m.content} for m in messages]
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        options = self._options(temperature, max_tokens)

        def put(item: tuple[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                with loaded.lock:
                    parts: list[str] = []
                    chunks = 0  # llama.cpp streams one chunk per sampled token
                    finish = None
                    for chunk in loaded.llm.create_chat_completion(messages=payload, stream=True, **options):
                        if stop.is_set():
                            finish = "cancelled"
                            break
                        choice = (chunk.get("choices") or [{}])[0]
                        delta = (choice.get("delta") or {}).get("content")
                        chunks += 1 if delta is not None else 0
                        if delta:
                            parts.append(delta)
                            put(("delta", delta))
                        finish = choice.get("finish_reason") or finish
                    prompt_tokens = self._count_prompt(loaded.llm, payload)
                    completion_tokens = chunks
                put(("end", (finish, prompt_tokens, completion_tokens)))
            except ValueError as exc:
                put(("error", BackendPermanentError(str(exc)[:300], backend=self.name)))
            except Exception as exc:  # reported to the reader; a thread must not die silently
                put(("error", BackendPermanentError(f"{type(exc).__name__}: {exc}"[:300], backend=self.name)))

        thread = threading.Thread(target=work, name="local-text-model", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "delta":
                    yield value
                elif kind == "end":
                    usage.finish_reason, usage.input_tokens, usage.output_tokens = value
                    return
                else:
                    raise value
        finally:
            stop.set()

    @staticmethod
    def _count_prompt(llm: Any, payload: list[dict[str, str]]) -> int:
        text = "\n".join(m["content"] for m in payload)
        try:
            return len(llm.tokenize(text.encode(), add_bos=True))
        except Exception:  # counting is informational; never fail a finished answer over it
            return approx_tokens(text)

    async def list_models(self) -> list[str]:
        """GGUF files in the models folder."""
        if self.models_dir is None or not self.models_dir.is_dir():
            return []
        return sorted(p.name for p in self.models_dir.glob("*.gguf") if p.is_file())

    async def test_connection(self) -> ConnectionReport:
        """Whether the engine is installed and the model file is there (loading it too)."""
        if not engine_available():
            return ConnectionReport(ok=False, message=f"unavailable: {INSTALL_HINT}")
        try:
            path = self.resolve()
            await anyio.to_thread.run_sync(lambda: _load(path, n_ctx=self.n_ctx, n_threads=self.n_threads))
        except BackendError as exc:
            return ConnectionReport(ok=False, message=f"{exc.kind}: {exc.message}")
        return ConnectionReport(ok=True, message=f"{path.name} loaded in the app", models=await self.list_models())
