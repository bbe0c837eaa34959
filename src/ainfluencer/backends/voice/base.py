"""The voice backend extension point: settings, the clip it returns, and shared WAV/timing helpers."""

from __future__ import annotations

import math
import re
import wave
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

from ainfluencer.backends.text.errors import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
)

__all__ = [
    "BackendAuthError",
    "BackendError",
    "BackendPermanentError",
    "BackendProtocolError",
    "BackendTransientError",
    "BackendUnavailable",
    "VoiceBackend",
    "VoiceClip",
    "VoiceSettings",
    "WordTiming",
    "estimate_word_timings",
    "read_wav_mono",
    "speech_span",
    "split_sentences",
    "wav_info",
    "write_wav",
]

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class VoiceSettings:
    """A character's voice: the same settings on the same backend give the same voice every time.

    ``speaker`` names a voice of the engine (Piper speaker, espeak-ng voice, ElevenLabs voice id);
    ``speed`` 1.0 is the engine's normal rate; ``pitch`` is in semitones and ``style`` (0.0-1.0, how
    expressive) apply only where the backend says it supports them; ``seed`` fixes the engine's
    random choices.
    """

    speaker: str | None = None
    speed: float = 1.0
    pitch: float = 0.0
    style: float | None = None
    seed: int = 0


class WordTiming(NamedTuple):
    """When one word is spoken, in seconds from the start of the clip."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class VoiceClip:
    """A synthesized narration on disk (mono WAV) and what we know about it."""

    path: Path
    duration_s: float
    sample_rate: int
    word_timings: list[WordTiming] | None = None
    backend: str = ""
    characters: int = 0
    timings_estimated: bool = True


class VoiceBackend(ABC):
    """Extension point: one speech engine.

    To add a backend, subclass this, set the capability class attributes, implement ``available``
    and ``_synthesize``, and add one line to ``backends/voice/registry.py``. Services never import a
    concrete backend; they ask the registry and read the class attributes generically.

    Capabilities (class attributes, read by the core):
        name             registry key, recorded on every ``VoiceClip``
        label            what a person sees in Settings
        paid             True when synthesis costs money (per character)
        local            True when the audio is made on this machine (no network)
        deterministic    True when the same text and ``VoiceSettings`` give byte-identical audio
        supports_pitch   ``VoiceSettings.pitch`` is honoured (otherwise a non-zero pitch is refused)
        supports_style   ``VoiceSettings.style`` is honoured (otherwise a set style is refused)
        speed_range      the accepted ``VoiceSettings.speed`` interval
        max_chars        longest text one call accepts

    Contract:
        ``synthesize`` writes a mono 16-bit WAV to ``out_path`` and returns a ``VoiceClip``, or
        raises exactly one of the backend errors: ``BackendUnavailable`` (with the fix), auth,
        transient (with ``retry_after`` when the server gave one) or permanent (bad text or
        settings). It blocks: call it from a worker thread, never inside ``async def``.
        ``available`` never raises; it answers ``(ok, fix)``.
    """

    name: ClassVar[str] = "base"
    label: ClassVar[str] = "Voice backend"
    paid: ClassVar[bool] = False
    local: ClassVar[bool] = True
    deterministic: ClassVar[bool] = True
    supports_pitch: ClassVar[bool] = False
    supports_style: ClassVar[bool] = False
    speed_range: ClassVar[tuple[float, float]] = (0.5, 2.0)
    max_chars: ClassVar[int] = 5000

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """Whether the backend can run here, and if not, what to do about it."""

    def speakers(self) -> list[str]:
        """Speaker names this backend offers (empty when it cannot tell)."""
        return []

    def check(self, text: str, voice: VoiceSettings) -> None:
        """Refuse text or settings this backend cannot honour, before any work is done."""
        if not text or not text.strip():
            raise BackendPermanentError("nothing to say: the text is empty", backend=self.name)
        if len(text) > self.max_chars:
            raise BackendPermanentError(
                f"text is {len(text)} characters; {self.label} takes at most {self.max_chars} per clip",
                backend=self.name,
            )
        low, high = self.speed_range
        if not (math.isfinite(voice.speed) and low <= voice.speed <= high):
            raise BackendPermanentError(f"speed {voice.speed} is outside {low}-{high}", backend=self.name)
        if voice.pitch and not self.supports_pitch:
            raise BackendPermanentError(f"{self.label} cannot change pitch; leave it at 0", backend=self.name)
        if voice.pitch and not -12.0 <= voice.pitch <= 12.0:
            raise BackendPermanentError(f"pitch {voice.pitch} is outside -12..12 semitones", backend=self.name)
        if voice.style is not None and not self.supports_style:
            raise BackendPermanentError(f"{self.label} has no style control; leave it unset", backend=self.name)
        if voice.style is not None and not 0.0 <= voice.style <= 1.0:
            raise BackendPermanentError(f"style {voice.style} is outside 0.0-1.0", backend=self.name)
        if not 0 <= voice.seed <= MAX_SEED:
            raise BackendPermanentError(f"seed must be between 0 and {MAX_SEED}", backend=self.name)

    def synthesize(self, text: str, *, voice: VoiceSettings | None = None, out_path: Path) -> VoiceClip:
        """Speak ``text`` with ``voice`` into a mono WAV at ``out_path``."""
        voice = voice or VoiceSettings()
        ok, fix = self.available()
        if not ok:
            raise BackendUnavailable(fix, backend=self.name)
        self.check(text, voice)
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        return self._synthesize(text.strip(), voice, out_path)

    @abstractmethod
    def _synthesize(self, text: str, voice: VoiceSettings, out_path: Path) -> VoiceClip:
        """Do the work; ``text`` and ``voice`` are already checked."""


def split_sentences(text: str) -> list[str]:
    """Split text into sentences on ., !, ? and … followed by whitespace (newlines also split)."""
    parts: list[str] = []
    for para in text.splitlines():
        parts.extend(s.strip() for s in _SENTENCE_END.split(para) if s.strip())
    return parts


def write_wav(path: Path, samples: bytes, *, sample_rate: int, channels: int = 1) -> None:
    """Write 16-bit PCM ``samples`` as a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples)


def wav_info(path: Path) -> tuple[float, int]:
    """Duration in seconds and sample rate of a PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return w.getnframes() / float(rate), rate
    except (wave.Error, EOFError) as exc:
        raise BackendProtocolError(f"{path.name} is not a readable WAV file: {exc}") from exc


def read_wav_mono(path: Path) -> tuple[bytes, int]:
    """The 16-bit mono samples and sample rate of a WAV written by a voice backend."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise BackendProtocolError(f"{path.name}: expected 16-bit mono PCM")
        return w.readframes(w.getnframes()), w.getframerate()


def speech_span(samples: bytes, sample_rate: int, *, threshold: float = 0.02) -> tuple[float, float]:
    """Seconds where speech starts and ends in 16-bit mono samples (leading/trailing silence skipped)."""
    import numpy as np

    audio = np.frombuffer(samples, dtype=np.int16)
    if audio.size == 0:
        return 0.0, 0.0
    level = np.abs(audio.astype(np.int32))
    peak = int(level.max())
    if peak == 0:
        return 0.0, audio.size / sample_rate
    loud = np.flatnonzero(level >= max(1, int(peak * threshold)))
    return float(loud[0]) / sample_rate, float(loud[-1] + 1) / sample_rate


def estimate_word_timings(
    words: list[str], start: float, end: float, *, weights: list[float] | None = None
) -> list[WordTiming]:
    """Spread ``words`` over [start, end] in proportion to ``weights`` (default: letters + 1 per word)."""
    if not words:
        return []
    if weights is None or len(weights) != len(words):
        weights = [len(w.strip(".,!?;:\"'()")) + 1.0 for w in words]
    total = sum(weights) or float(len(words))
    span = max(0.0, end - start)
    out: list[WordTiming] = []
    t = start
    for word, weight in zip(words, weights, strict=True):
        dt = span * weight / total
        out.append(WordTiming(word, round(t, 3), round(t + dt, 3)))
        t += dt
    return out
