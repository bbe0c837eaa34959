"""espeak-ng through its command-line program: robotic but tiny, fast and deterministic; the light fallback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

from ainfluencer.backends.voice.base import (
    BackendPermanentError,
    BackendTransientError,
    VoiceBackend,
    VoiceClip,
    VoiceSettings,
    estimate_word_timings,
    read_wav_mono,
    speech_span,
)

INSTALL_FIX = "espeak-ng is not installed: apt-get install espeak-ng (Debian/Ubuntu) or brew install espeak-ng"
DEFAULT_VOICE = "en-us"
BASE_WPM = 175  # espeak-ng's own default rate


class EspeakBackend(VoiceBackend):
    """The espeak-ng formant synthesizer; speed, pitch and any installed language voice."""

    name: ClassVar[str] = "espeak"
    label: ClassVar[str] = "espeak-ng (local, light)"
    deterministic: ClassVar[bool] = True
    supports_pitch: ClassVar[bool] = True
    speed_range: ClassVar[tuple[float, float]] = (0.5, 2.5)
    max_chars: ClassVar[int] = 20_000

    def __init__(self, *, binary: str = "espeak-ng", timeout_s: float = 120.0) -> None:
        self.binary = binary
        self.timeout_s = timeout_s

    def _exe(self) -> str | None:
        return shutil.which(self.binary)

    def available(self) -> tuple[bool, str]:
        """Whether the espeak-ng program is on PATH."""
        return (True, "") if self._exe() else (False, INSTALL_FIX)

    def speakers(self) -> list[str]:
        """Language voices espeak-ng has installed (e.g. ``en-us``); variants like ``en-us+f3`` also work."""
        exe = self._exe()
        if not exe:
            return []
        out = subprocess.run([exe, "--voices"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
        names = []
        for line in out.stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 2:
                names.append(cols[1])
        return sorted(set(names))

    def _synthesize(self, text: str, voice: VoiceSettings, out_path: Path) -> VoiceClip:
        exe = self._exe()
        if exe is None:  # removed since available() said yes
            raise BackendTransientError(INSTALL_FIX, backend=self.name)
        speaker = voice.speaker or DEFAULT_VOICE
        if speaker.startswith("-") or "/" in speaker.replace("+", ""):
            raise BackendPermanentError(f"{speaker!r} is not an espeak-ng voice name", backend=self.name)
        pitch = max(0, min(99, round(50 + 4 * voice.pitch)))
        cmd = [
            exe,
            "-v",
            speaker,
            "-s",
            str(round(BASE_WPM * voice.speed)),
            "-p",
            str(pitch),
            "-b",
            "1",
            "-w",
            str(out_path),
            "--stdin",
        ]
        try:
            proc = subprocess.run(  # noqa: S603 - fixed program, arguments are ours
                cmd, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendTransientError(f"espeak-ng took longer than {self.timeout_s:.0f}s", backend=self.name) from exc
        err = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode != 0 or not out_path.is_file() or out_path.stat().st_size <= 44:
            raise BackendPermanentError(
                f"espeak-ng failed ({proc.returncode}): {err[:300] or 'no audio'}", backend=self.name
            )
        samples, rate = read_wav_mono(out_path)
        duration = len(samples) / 2 / rate
        start, end = speech_span(samples, rate)
        return VoiceClip(
            path=out_path,
            duration_s=duration,
            sample_rate=rate,
            word_timings=estimate_word_timings(text.split(), start, end),
            backend=self.name,
            characters=len(text),
        )
