"""Voice backends by name, what each needs to run here, and the per-character fallback chain.

Fallback chain, in order for each (backend, settings) entry:
    paid backend while ``allow_paid()`` says no        -> skipped
    unavailable / auth / permanent error               -> next entry at once
    transient error                                     -> retry the same entry after
        delay(n) = min(max_wait_s, 1 s * 2 ** (n - 1)), floored by the server's Retry-After;
        at most ``max_retries`` retries; a Retry-After above ``max_wait_s`` moves on instead
Settings are per entry because speakers are per engine (a Piper speaker means nothing to ElevenLabs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ainfluencer.backends.voice.base import (
    BackendError,
    BackendTransientError,
    BackendUnavailable,
    VoiceBackend,
    VoiceClip,
    VoiceSettings,
)
from ainfluencer.backends.voice.elevenlabs import ElevenLabsBackend
from ainfluencer.backends.voice.espeak import EspeakBackend
from ainfluencer.backends.voice.piper import PiperBackend
from ainfluencer.backends.voice.xtts import XttsBackend
from ainfluencer.errors import InvalidInput

VOICE_BACKENDS: dict[str, type[VoiceBackend]] = {
    cls.name: cls for cls in (PiperBackend, EspeakBackend, ElevenLabsBackend, XttsBackend)
}
DEFAULT_CHAIN = ("piper", "espeak")


def backend_class(name: str) -> type[VoiceBackend]:
    """The backend class registered under ``name``."""
    try:
        return VOICE_BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(VOICE_BACKENDS))
        raise InvalidInput(f"unknown voice backend {name!r}; known: {known}", field="voice_backend") from None


def create_voice_backend(name: str, **options: Any) -> VoiceBackend:
    """A backend instance by registry name (options go to its constructor)."""
    return backend_class(name)(**options)


@dataclass(frozen=True)
class BackendStatus:
    """What Settings shows for one backend."""

    name: str
    label: str
    available: bool
    fix: str
    paid: bool
    local: bool
    deterministic: bool


def voice_backend_status(options: dict[str, dict[str, Any]] | None = None) -> list[BackendStatus]:
    """Every registered backend with whether it runs here and, if not, the fix."""
    out = []
    for name, cls in VOICE_BACKENDS.items():
        backend = cls(**(options or {}).get(name, {}))
        ok, fix = backend.available()
        out.append(BackendStatus(name, cls.label, ok, fix, cls.paid, cls.local, cls.deterministic))
    return out


def default_voice_backend() -> VoiceBackend:
    """The first backend of the default chain that runs here (Piper, else espeak-ng)."""
    fixes = []
    for name in DEFAULT_CHAIN:
        backend = create_voice_backend(name)
        ok, fix = backend.available()
        if ok:
            return backend
        fixes.append(fix)
    raise BackendUnavailable("no local voice backend is available: " + "; ".join(fixes), backend="voice")


@dataclass(frozen=True)
class VoiceAttempt:
    """What happened on one call (or skip) of one backend."""

    backend: str
    outcome: str
    message: str = ""


@dataclass(frozen=True)
class ChainClip:
    """The clip, who spoke it, and what failed before."""

    clip: VoiceClip
    backend: str
    attempts: list[VoiceAttempt]


def _always() -> bool:
    return True


class VoiceChain:
    """Tries (backend, settings) entries in order until one speaks."""

    def __init__(
        self,
        entries: Sequence[tuple[VoiceBackend, VoiceSettings]],
        *,
        allow_paid: Callable[[], bool] = _always,
        max_retries: int = 2,
        max_wait_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not entries:
            raise InvalidInput("a voice chain needs at least one backend", field="voice_backend")
        self.entries = list(entries)
        self.allow_paid = allow_paid
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.sleep = sleep

    def synthesize(self, text: str, *, out_path: Path) -> ChainClip:
        """Speak ``text`` with the first entry that works; raise the last error when none does."""
        attempts: list[VoiceAttempt] = []
        last: BackendError | None = None
        for backend, voice in self.entries:
            if backend.paid and not self.allow_paid():
                attempts.append(VoiceAttempt(backend.name, "skipped_paid", "usage cap reached"))
                continue
            retries = 0
            while True:
                try:
                    clip = backend.synthesize(text, voice=voice, out_path=out_path)
                except BackendTransientError as exc:
                    last = exc
                    attempts.append(VoiceAttempt(backend.name, exc.kind, exc.message))
                    delay = max(min(self.max_wait_s, 2.0 ** retries), exc.retry_after or 0.0)
                    if retries >= self.max_retries or delay > self.max_wait_s:
                        break
                    self.sleep(delay)
                    retries += 1
                    continue
                except BackendError as exc:
                    last = exc
                    attempts.append(VoiceAttempt(backend.name, exc.kind, exc.message))
                    break
                attempts.append(VoiceAttempt(backend.name, "ok"))
                return ChainClip(clip=clip, backend=backend.name, attempts=attempts)
        if last is None:
            last = BackendUnavailable("every voice backend in the chain was skipped", backend="voice")
        raise last
