"""What is in a media file, read with the ffmpeg binary that imageio-ffmpeg ships (no ffprobe needed)."""

from __future__ import annotations

import math
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ainfluencer.errors import AppError, InvalidInput

_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio): (\w+)(?: \(([^)]*)\))?(.*)")
_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_FPS = re.compile(r"([\d.]+)(k?) fps")
_RATE = re.compile(r"(\d+) Hz")


class FfmpegMissing(AppError):
    """The ffmpeg binary is not available."""

    status_code = 503
    code = "ffmpeg_missing"


def ffmpeg_exe() -> str:
    """Path to the ffmpeg binary shipped by imageio-ffmpeg (or IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise FfmpegMissing("video needs ffmpeg: pip install 'ainfluencer[media]' (imageio-ffmpeg)") from exc
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise FfmpegMissing(f"imageio-ffmpeg has no ffmpeg binary for this platform: {exc}") from exc


@dataclass(frozen=True)
class MediaInfo:
    """Container and stream facts of one file."""

    duration_s: float
    width: int | None
    height: int | None
    fps: float | None
    has_video: bool
    has_audio: bool
    video_codec: str | None
    video_profile: str | None
    pix_fmt: str | None
    audio_codec: str | None
    audio_rate: int | None
    size_bytes: int
    faststart: bool | None  # MP4/MOV: the index (moov) comes before the media data (mdat)


def _moov_first(path: Path) -> bool | None:
    """Walk the top-level MP4 boxes; True when moov precedes mdat, None if not an MP4."""
    try:
        with path.open("rb") as f:
            pos, size_total = 0, path.stat().st_size
            seen_ftyp = False
            while pos + 8 <= size_total:
                f.seek(pos)
                header = f.read(16)
                size, kind = struct.unpack(">I4s", header[:8])
                if size == 1:
                    size = struct.unpack(">Q", header[8:16])[0]
                elif size == 0:
                    size = size_total - pos
                if kind == b"ftyp":
                    seen_ftyp = True
                elif not seen_ftyp:
                    return None
                if kind == b"moov":
                    return True
                if kind == b"mdat":
                    return False
                if size < 8:
                    return None
                pos += size
    except (OSError, struct.error):
        return None
    return None


def probe(path: Path | str) -> MediaInfo:
    """Duration, frame size, frame rate, codecs and audio presence of a media file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path.name} does not exist", field="path")
    proc = subprocess.run(  # noqa: S603 - fixed binary, our arguments
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, timeout=60, check=False
    )
    text = proc.stderr.decode("utf-8", "replace")
    if "Invalid data found" in text or "Duration:" not in text:
        raise InvalidInput(f"{path.name} is not a media file ffmpeg can read", field="path")
    m = _DURATION.search(text)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else 0.0
    info: dict[str, Any] = {
        "width": None, "height": None, "fps": None, "video_codec": None, "video_profile": None,
        "pix_fmt": None, "audio_codec": None, "audio_rate": None,
    }
    has_video = has_audio = False
    for kind, codec, profile, rest in _STREAM.findall(text):
        if kind == "Video" and not has_video:
            has_video = True
            info["video_codec"] = codec
            info["video_profile"] = profile.split(")")[0] if profile and "/" not in profile else None
            if size := _SIZE.search(rest):
                info["width"], info["height"] = int(size[1]), int(size[2])
            if fps := _FPS.search(rest):
                info["fps"] = float(fps[1]) * (1000 if fps[2] else 1)
            fmt = rest.split(",")[1].strip() if rest.count(",") >= 1 else ""
            info["pix_fmt"] = fmt.split("(")[0].strip() or None
        elif kind == "Audio" and not has_audio:
            has_audio = True
            info["audio_codec"] = codec
            if rate := _RATE.search(rest):
                info["audio_rate"] = int(rate[1])
    return MediaInfo(
        duration_s=duration,
        has_video=has_video,
        has_audio=has_audio,
        size_bytes=path.stat().st_size,
        faststart=_moov_first(path),
        **info,
    )


def count_frames(path: Path | str) -> tuple[int, float]:
    """Decode the whole video: exact frame count and duration in seconds."""
    import imageio_ffmpeg

    frames, secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    return int(frames), float(secs)


def read_frame(path: Path | str, at_s: float) -> Any:
    """The frame shown at ``at_s`` seconds as an RGB numpy array (height × width × 3)."""
    import numpy as np

    info = probe(path)
    if not info.has_video or not info.width or not info.height:
        raise InvalidInput(f"{Path(path).name} has no video stream", field="path")
    proc = subprocess.run(  # noqa: S603
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-ss", f"{at_s:.3f}", "-i", str(path),
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, timeout=120, check=False,
    )
    expected = info.width * info.height * 3
    if proc.returncode != 0 or len(proc.stdout) < expected:
        raise InvalidInput(f"no frame at {at_s:.2f} s in {Path(path).name}", field="at_s")
    return np.frombuffer(proc.stdout[:expected], dtype=np.uint8).reshape(info.height, info.width, 3)


def audio_level(path: Path | str, *, max_seconds: float = 120.0, rate: int = 16_000) -> tuple[float, float]:
    """Active RMS and peak of a file's audio in dBFS (50 ms blocks within 30 dB of the loudest count as active)."""
    import numpy as np

    pcm = _pcm16_wav(Path(path), max_seconds)
    if pcm is not None:  # our own narrations: no decoder process needed
        audio, rate = pcm
    else:
        proc = subprocess.run(  # noqa: S603
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-t", f"{max_seconds:.3f}", "-i",
             str(path), "-vn", "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
            capture_output=True, timeout=120, check=False,
        )
        raw = proc.stdout[: len(proc.stdout) // 2 * 2]
        audio = np.frombuffer(raw, dtype=np.int16).astype(np.float64) / 32768.0
        if proc.returncode != 0 or audio.size == 0:
            raise InvalidInput(f"{Path(path).name} has no audio ffmpeg can decode", field="audio")
    peak = float(np.abs(audio).max())
    if peak <= 1e-6:
        return -120.0, -120.0
    block = rate // 20
    blocks = audio[: audio.size // block * block].reshape(-1, block) if audio.size >= block else audio[None, :]
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    active = rms[rms >= rms.max() * 10 ** (-30 / 20)]
    level = float(np.sqrt(np.mean(active**2)))
    return 20 * math.log10(max(level, 1e-6)), 20 * math.log10(peak)


def _pcm16_wav(path: Path, max_seconds: float) -> tuple[Any, int] | None:
    """Samples (mono float) and rate of a 16-bit PCM WAV file, or None for anything else."""
    import wave

    import numpy as np

    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                return None
            rate, channels = w.getframerate(), w.getnchannels()
            raw = w.readframes(min(w.getnframes(), int(max_seconds * rate)))
    except (wave.Error, EOFError, OSError):
        return None
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        samples = samples[: samples.size // channels * channels].reshape(-1, channels).mean(axis=1)
    return samples, rate
