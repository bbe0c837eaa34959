"""Compose a video from a script: narration, Ken-Burns scenes with crossfades, captions, music, H.264/AAC.

Stages, each reported through ``progress(stage, pct)`` with pct 0-100:
    narration  speak each scene's text with a voice backend (or take the scene's own audio)
    scenes     check and prepare the images (orientation, cover-crop, supersampled for smooth motion)
    captions   group the narration's word timings into short lines; write ASS (burned in) and SRT
    mix        one ffmpeg pass: narrations placed on the timeline, music under them (ducked or fixed gain)
    encode     one ffmpeg pass: zoompan per image, xfade between scenes, ``ass`` captions, libx264
Everything that can be checked before rendering is: preset and platform limits, images, audio files,
voice settings, a narration-length lower bound from the text, then the exact planned duration and
worst-case size once the narration exists and before any frame is encoded.

Timeline arithmetic is in whole frames, so a script aimed at 30 s comes out at 30 s: scene i lasts
``frames[i]``, the crossfade is ``X`` frames, scene i starts at ``sum(frames[:i]) - i * X``, the total
is ``sum(frames) - (n - 1) * X``, and scene i's narration starts ``LEAD_S`` after the scene starts.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Literal

from ainfluencer.backends.voice.base import (
    BackendError,
    VoiceBackend,
    VoiceClip,
    VoiceSettings,
    WordTiming,
    estimate_word_timings,
)
from ainfluencer.errors import AppError, InvalidInput
from ainfluencer.media.video.captions import CaptionLine, CaptionStyle, fonts_dir, group_lines, settle, to_ass, to_srt
from ainfluencer.media.video.presets import (
    PlatformLimits,
    VideoPreset,
    check_duration_and_size,
    check_format,
    get_platform,
    get_preset,
    max_duration,
)
from ainfluencer.media.video.probe import MediaInfo, audio_level, ffmpeg_exe, probe

Motion = Literal["zoom_in", "zoom_out", "pan_left", "pan_right", "pan_up", "pan_down", "none"]
MOTIONS: tuple[Motion, ...] = ("zoom_in", "zoom_out", "pan_left", "pan_right", "pan_up", "pan_down", "none")
MOTION_CYCLE: tuple[Motion, ...] = ("zoom_in", "pan_right", "zoom_out", "pan_left")
STAGES = ("narration", "scenes", "captions", "mix", "encode")
Progress = Callable[[str, float], None]

LEAD_S = 0.25  # silence before a scene's narration
TAIL_S = 0.35  # silence after it, before the next scene's narration
MIN_SCENE_S = 1.5  # a scene without narration lasts at least this long
MAX_SCENES = 200
MAX_TEXT_CHARS = 5000
FAST_SPEECH_CHARS_PER_S = 25.0  # faster than any voice speaks at speed 1.0: a safe lower bound on length
VOICE_RMS_DB = -18.0  # narration's active level; about -16 LUFS, what social apps play speech at
PEAK_CEILING_DB = -1.5  # the voice bus limiter's ceiling, so voice + music under it do not clip
LIMITER_MAX_DB = 6.0  # at most this much peak reduction is asked of the limiter
MAX_GAIN_DB = 24.0


class RenderFailed(AppError):
    """ffmpeg could not produce the video."""

    status_code = 500
    code = "render_failed"


class RenderCancelled(AppError):
    """The render was cancelled."""

    status_code = 409
    code = "cancelled"


@dataclass(frozen=True)
class Scene:
    """One image on screen, what is said over it, and optionally for how long and how it moves."""

    image: Path | str
    text: str = ""
    duration_s: float | None = None
    audio: Path | str | None = None
    motion: Motion | None = None
    caption: str | None = None  # text to show instead of ``text`` ("" shows none)


@dataclass(frozen=True)
class Script:
    """Scenes in order, an optional exact total length, and optional background music."""

    scenes: Sequence[Scene]
    target_duration_s: float | None = None
    music: Path | str | None = None
    title: str = ""


@dataclass(frozen=True)
class TimelineScene:
    """Where one scene sits on the timeline (frames) and where its narration starts (seconds)."""

    index: int
    image: Path
    frames: int
    start_frame: int
    motion: Motion
    narration: Path | None
    narration_start_s: float
    narration_s: float


@dataclass(frozen=True)
class Timeline:
    """The planned video: whole frames per scene, crossfade length, total."""

    fps: int
    width: int
    height: int
    crossfade_frames: int
    scenes: list[TimelineScene]

    @property
    def total_frames(self) -> int:
        """Frames in the finished video."""
        return sum(s.frames for s in self.scenes) - (len(self.scenes) - 1) * self.crossfade_frames

    @property
    def duration_s(self) -> float:
        """Length of the finished video in seconds."""
        return self.total_frames / self.fps


@dataclass(frozen=True)
class ComposeResult:
    """The finished file and how it was made."""

    path: Path
    duration_s: float
    width: int
    height: int
    fps: float
    size_bytes: int
    info: MediaInfo
    timeline: Timeline
    captions: list[CaptionLine]
    srt: str
    narration_backend: str | None
    stage_seconds: dict[str, float] = field(default_factory=dict)


# --- checks before any work --------------------------------------------------------------------------


def _check_image(path: Path, where: str) -> None:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InvalidInput(f"{where}: image {path.name} does not exist", field="image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(f"{where}: {path.name} is not an image we can use ({exc})", field="image") from exc
    except OSError as exc:
        raise InvalidInput(f"{where}: {path.name} cannot be read ({exc})", field="image") from exc
    if w < 16 or h < 16:
        raise InvalidInput(f"{where}: {path.name} is {w}×{h}; images need at least 16 px a side", field="image")


def _check_audio(path: Path, what: str) -> MediaInfo:
    if not path.is_file():
        raise InvalidInput(f"{what} {path.name} does not exist", field="audio")
    info = probe(path)
    if not info.has_audio or info.duration_s <= 0:
        raise InvalidInput(f"{what} {path.name} has no audio", field="audio")
    return info


def validate(
    script: Script,
    *,
    preset: VideoPreset,
    platform: PlatformLimits | None,
    voice_backend: VoiceBackend | None,
    voice: VoiceSettings,
) -> None:
    """Refuse a script that cannot become a video with these settings, before anything is rendered."""
    check_format(preset, platform)
    scenes = list(script.scenes)
    if not scenes:
        raise InvalidInput("the script has no scenes", field="scenes")
    if len(scenes) > MAX_SCENES:
        raise InvalidInput(f"the script has {len(scenes)} scenes; at most {MAX_SCENES}", field="scenes")
    limit = max_duration(preset, platform)
    if script.target_duration_s is not None:
        if not math.isfinite(script.target_duration_s) or script.target_duration_s <= 0:
            raise InvalidInput("the target duration must be a positive number of seconds", field="target_duration_s")
        check_duration_and_size(preset, platform, script.target_duration_s)
    fixed = sum(s.duration_s for s in scenes if s.duration_s is not None)
    if fixed > limit + 1e-6:
        raise InvalidInput(f"the scenes' own durations add up to {fixed:g} s; {preset.name} allows {limit:g} s",
                           field="duration")
    spoken_chars = 0
    for i, scene in enumerate(scenes, 1):
        where = f"scene {i}"
        if scene.duration_s is not None and (not math.isfinite(scene.duration_s) or scene.duration_s <= 0):
            raise InvalidInput(f"{where}: duration must be a positive number of seconds", field="duration_s")
        if scene.motion is not None and scene.motion not in MOTIONS:
            raise InvalidInput(f"{where}: unknown motion {scene.motion!r}; one of {', '.join(MOTIONS)}",
                               field="motion")
        if len(scene.text) > MAX_TEXT_CHARS:
            raise InvalidInput(f"{where}: narration is {len(scene.text)} characters; at most {MAX_TEXT_CHARS}",
                               field="text")
        _check_image(Path(scene.image), where)
        if scene.audio is not None:
            _check_audio(Path(scene.audio), f"{where}: audio")
        elif scene.text.strip():
            if voice_backend is None:
                raise InvalidInput(f"{where} has narration text but no voice backend was given", field="voice")
            try:
                voice_backend.check(scene.text, voice)
            except BackendError as exc:
                raise InvalidInput(f"{where}: {exc.message}", field="voice") from exc
            spoken_chars += len(scene.text.strip())
    if spoken_chars:
        at_least = spoken_chars / (FAST_SPEECH_CHARS_PER_S * voice.speed)
        if at_least > limit:
            raise InvalidInput(
                f"the narration ({spoken_chars} characters) takes at least {at_least:.0f} s to say; "
                f"{preset.name} allows {limit:g} s — shorten the text",
                field="duration",
            )
    if script.music is not None:
        _check_audio(Path(script.music), "music")
    if voice_backend is not None and any(s.text.strip() and s.audio is None for s in scenes):
        ok, fix = voice_backend.available()
        if not ok:
            raise InvalidInput(f"the voice backend {voice_backend.name} is unavailable: {fix}", field="voice")


# --- planning ----------------------------------------------------------------------------------------


def plan_timeline(
    script: Script,
    narration_s: Sequence[float],
    *,
    preset: VideoPreset,
    crossfade_s: float,
    images: Sequence[Path] | None = None,
    narrations: Sequence[Path | None] | None = None,
) -> Timeline:
    """Whole-frame scene lengths that fit each narration, stretched to the target duration if one is set."""
    fps = preset.fps
    scenes = list(script.scenes)
    n = len(scenes)
    xf = max(0, round(crossfade_s * fps)) if n > 1 else 0
    frames: list[int] = []
    for i, (scene, speech) in enumerate(zip(scenes, narration_s, strict=True)):
        out_fade = xf if i < n - 1 else 0
        floor = max(2 * xf + 1, out_fade + 1)  # two crossfades must not overlap
        if speech > 0:
            need = max(floor, math.ceil((LEAD_S + speech + TAIL_S) * fps) + out_fade)
        else:
            need = max(floor, math.ceil(MIN_SCENE_S * fps) + out_fade)
        if scene.duration_s is not None:
            own = round(scene.duration_s * fps)
            if speech > 0 and own < need:
                raise InvalidInput(
                    f"scene {i + 1} lasts {scene.duration_s:g} s but its narration needs {need / fps:.2f} s "
                    f"(with {LEAD_S:g} s lead, {TAIL_S:g} s tail and the crossfade)",
                    field="duration_s",
                )
            if own < floor:
                raise InvalidInput(
                    f"scene {i + 1} lasts {scene.duration_s:g} s; with {crossfade_s:g} s crossfades a scene needs "
                    f"at least {floor / fps:.2f} s",
                    field="duration_s",
                )
            need = own
        frames.append(need)
    total = sum(frames) - (n - 1) * xf
    if script.target_duration_s is not None:
        target = round(script.target_duration_s * fps)
        if total > target:
            raise InvalidInput(
                f"the narration needs {total / fps:.2f} s but the target is {script.target_duration_s:g} s — "
                "shorten the text or raise the target",
                field="target_duration_s",
            )
        flexible = [i for i, s in enumerate(scenes) if s.duration_s is None]
        extra = target - total
        if extra and not flexible:
            raise InvalidInput(
                f"every scene has a fixed duration, adding up to {total / fps:.2f} s, not the target "
                f"{script.target_duration_s:g} s",
                field="target_duration_s",
            )
        if extra:
            weight = sum(frames[i] for i in flexible)
            shares = [extra * frames[i] // weight for i in flexible]
            shares[-1] += extra - sum(shares)
            for i, share in zip(flexible, shares, strict=True):
                frames[i] += share
    out: list[TimelineScene] = []
    start = 0
    for i, scene in enumerate(scenes):
        motion = scene.motion or MOTION_CYCLE[i % len(MOTION_CYCLE)]
        out.append(
            TimelineScene(
                index=i,
                image=Path(images[i]) if images else Path(scene.image),
                frames=frames[i],
                start_frame=start,
                motion=motion,
                narration=(narrations[i] if narrations else None),
                narration_start_s=start / fps + LEAD_S,
                narration_s=narration_s[i],
            )
        )
        start += frames[i] - xf
    return Timeline(fps=fps, width=preset.width, height=preset.height, crossfade_frames=xf, scenes=out)


# --- filter graphs -----------------------------------------------------------------------------------


def _motion_exprs(motion: Motion, frames: int, amount: float) -> tuple[str, str, str]:
    d = max(1, frames - 1)
    p = f"(on/{d})"
    cx, cy = "(iw-iw/zoom)/2", "(ih-ih/zoom)/2"
    z_full = f"{1 + amount:.4f}"
    if motion == "zoom_in":
        return f"1+{amount:.4f}*{p}", cx, cy
    if motion == "zoom_out":
        return f"{z_full}-{amount:.4f}*{p}", cx, cy
    if motion == "pan_right":
        return z_full, f"(iw-iw/zoom)*{p}", cy
    if motion == "pan_left":
        return z_full, f"(iw-iw/zoom)*(1-{p})", cy
    if motion == "pan_down":
        return z_full, cx, f"(ih-ih/zoom)*{p}"
    if motion == "pan_up":
        return z_full, cx, f"(ih-ih/zoom)*(1-{p})"
    return "1", "0", "0"


def video_filter(
    timeline: Timeline,
    *,
    captions_file: str | None,
    fonts_folder: str | None,
    motion_amount: float = 0.12,
    prescale: tuple[int, int] | None = None,
    transition: str = "fade",
) -> tuple[str, str]:
    """The video filtergraph (inputs 0..n-1 are the scene images) and its output label.

    ``prescale`` adds a cover-crop to that working size in ffmpeg, for raw images that were not
    prepared beforehand (the benchmark's bare-ffmpeg baseline uses it).
    """
    w, h, fps, xf = timeline.width, timeline.height, timeline.fps, timeline.crossfade_frames
    parts: list[str] = []
    for s in timeline.scenes:
        z, x, y = _motion_exprs(s.motion, s.frames, motion_amount)
        pre = ""
        if prescale:
            pw, ph = prescale
            pre = f"scale={pw}:{ph}:force_original_aspect_ratio=increase,crop={pw}:{ph},"
        parts.append(
            f"[{s.index}:v]{pre}scale=out_range=tv,format=yuv444p,zoompan=z='{z}':x='{x}':y='{y}':d={s.frames}:s={w}x{h}:fps={fps},"
            f"setsar=1,format=yuv420p[v{s.index}]"
        )
    label = "v0"
    for s in timeline.scenes[1:]:
        out = f"x{s.index}"
        parts.append(
            f"[{label}][v{s.index}]xfade=transition={transition}:duration={xf / fps:.6f}:"
            f"offset={s.start_frame / fps:.6f}[{out}]"
        )
        label = out
    if captions_file:
        fonts = f":fontsdir={fonts_folder}" if fonts_folder else ""
        parts.append(f"[{label}]ass=filename={captions_file}{fonts}[vout]")
        label = "vout"
    return ";".join(parts), label


def audio_filter(
    timeline: Timeline,
    *,
    narration_inputs: Sequence[tuple[int, float, float]],
    music_input: int | None,
    music_gain_db: float,
    duck_music: bool,
    sample_rate: int = 48_000,
) -> tuple[str, str]:
    """The audio filtergraph: narrations (input, start s, gain dB) on silence of the video's length, music under."""
    total = timeline.duration_s
    fmt = f"aresample={sample_rate},aformat=sample_fmts=fltp:sample_rates={sample_rate}:channel_layouts=stereo"
    parts = [f"anullsrc=r={sample_rate}:cl=stereo,atrim=duration={total:.6f}[base]"]
    labels = ["[base]"]
    for k, (idx, start, gain) in enumerate(narration_inputs):
        parts.append(f"[{idx}:a]{fmt},volume={gain:.2f}dB,adelay=delays={round(start * 1000)}:all=1[n{k}]")
        labels.append(f"[n{k}]")
    parts.append(
        f"{''.join(labels)}amix=inputs={len(labels)}:normalize=0:duration=first:dropout_transition=0,"
        f"{_limiter()},atrim=duration={total:.6f}[voice]"
    )
    if music_input is None:
        return ";".join(parts), "voice"
    fade_out = min(2.0, total / 4)
    parts.append(
        f"[{music_input}:a]{fmt},atrim=duration={total:.6f},asetpts=N/SR/TB,volume={music_gain_db:.2f}dB,"
        f"afade=t=in:d={min(1.0, total / 4):.3f},afade=t=out:st={total - fade_out:.3f}:d={fade_out:.3f}[music]"
    )
    if duck_music and narration_inputs:
        parts.append("[voice]asplit=2[vo][sc]")
        parts.append("[music][sc]sidechaincompress=threshold=0.03:ratio=6:attack=20:release=400[ducked]")
        parts.append("[vo][ducked]amix=inputs=2:normalize=0:duration=first:dropout_transition=0[mix]")
    else:
        parts.append("[voice][music]amix=inputs=2:normalize=0:duration=first:dropout_transition=0[mix]")
    return ";".join(parts), "mix"


def _limiter() -> str:
    return f"alimiter=limit={10 ** (PEAK_CEILING_DB / 20):.4f}:attack=5:release=50:level=0:latency=1"


def voice_gain_db(rms_db: float, peak_db: float) -> float:
    """Gain that brings a narration to ``VOICE_RMS_DB``; the voice bus limiter takes at most 6 dB off its peaks."""
    return max(-MAX_GAIN_DB, min(VOICE_RMS_DB - rms_db, PEAK_CEILING_DB + LIMITER_MAX_DB - peak_db, MAX_GAIN_DB))


def music_gain(rms_db: float, under_voice_db: float) -> float:
    """Gain that puts music ``under_voice_db`` (negative) relative to the narration level."""
    return max(-60.0, min(VOICE_RMS_DB + under_voice_db - rms_db, MAX_GAIN_DB))


def encode_args(
    preset: VideoPreset, *, x264_preset: str, crf: int | None, total_frames: int
) -> list[str]:
    """libx264 High / yuv420p with a VBV ceiling, closed GOPs of two seconds, exact frame count."""
    rate = preset.max_video_kbps
    return [
        "-c:v", "libx264", "-preset", x264_preset, "-profile:v", preset.profile, "-pix_fmt", preset.pix_fmt,
        "-crf", str(crf if crf is not None else preset.crf), "-maxrate", f"{rate}k", "-bufsize", f"{rate * 2}k",
        "-g", str(preset.fps * 2), "-r", str(preset.fps), "-fps_mode", "cfr", "-frames:v", str(total_frames),
        "-tag:v", "avc1", "-movflags", "+faststart",
    ]


# --- running ffmpeg ----------------------------------------------------------------------------------


def run_ffmpeg(
    args: Sequence[str],
    *,
    stage: str,
    total_s: float,
    cwd: Path,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    timeout_s: float | None = None,
    feed: Callable[[IO[bytes], threading.Event], None] | None = None,
) -> None:
    """Run ffmpeg with ``-progress pipe:1``, reporting ``stage`` percent from ``out_time_us``.

    ``feed``, when given, runs in a thread and writes ffmpeg's standard input (then it is closed); it
    gets an event that is set when the run is being stopped.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", *([] if feed else ["-nostdin"]), "-y", "-loglevel", "error",
           "-progress", "pipe:1", "-nostats", *args]
    stop = threading.Event()
    feed_error: list[BaseException] = []
    with tempfile.TemporaryFile(dir=cwd) as err:
        proc = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built here
            cmd, cwd=cwd, stdin=subprocess.PIPE if feed else None, stdout=subprocess.PIPE, stderr=err
        )
        timed_out = threading.Event()

        def kill_on_timeout() -> None:
            timed_out.set()
            stop.set()
            proc.kill()

        def run_feed() -> None:
            assert feed is not None and proc.stdin is not None
            try:
                feed(proc.stdin, stop)
            except BaseException as exc:  # handed to the caller's thread below
                feed_error.append(exc)
            finally:
                with contextlib.suppress(OSError):
                    proc.stdin.close()

        feeder = threading.Thread(target=run_feed, name=f"ffmpeg-{stage}-feed", daemon=True) if feed else None
        if feeder:
            feeder.start()
        timer = threading.Timer(timeout_s, kill_on_timeout) if timeout_s else None
        if timer:
            timer.daemon = True
            timer.start()
        last = -1.0
        cancelled = False
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                key, _, value = raw.decode("ascii", "replace").strip().partition("=")
                if cancel is not None and cancel():
                    cancelled = True
                    stop.set()
                    proc.kill()
                    break
                if key == "out_time_us" and value.isdigit() and progress and total_s > 0:
                    pct = min(99.0, int(value) / 1e6 / total_s * 100)
                    if pct - last >= 1.0:
                        last = pct
                        progress(stage, round(pct, 1))
            rc = proc.wait()
        finally:
            if timer:
                timer.cancel()
            if proc.poll() is None:
                stop.set()
                proc.kill()
                proc.wait()
            if feeder:
                feeder.join()
        if cancelled:
            raise RenderCancelled(f"cancelled during {stage}")
        if rc != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace").strip()[-1500:]
            why = f"timed out after {timeout_s:.0f} s" if timed_out.is_set() else f"exit {rc}"
            raise RenderFailed(f"ffmpeg failed during {stage} ({why}): {tail or 'no message'}")
        if feed_error:  # the encoder ended cleanly on a short input: the feeder's failure is the cause
            raise feed_error[0]


def chunk_ranges(count: int, per_pass: int) -> list[tuple[int, int]]:
    """Split scene indices 0..count-1 into consecutive (first, last_exclusive) groups of at most ``per_pass``."""
    groups = max(1, math.ceil(count / max(1, per_pass)))
    base, extra = divmod(count, groups)
    out, first = [], 0
    for g in range(groups):
        size = base + (1 if g < extra else 0)
        out.append((first, first + size))
        first += size
    return out


def chunk_filters(timeline: Timeline, *, per_pass: int, motion_amount: float) -> list[tuple[list[int], str]]:
    """For each pass: the scene indices it reads and a filtergraph producing its run of finished frames.

    Pass c renders its scenes plus the next pass's first scene, so the crossfade between them happens
    here; it outputs global frames [start(first) + X, start(next) + X) (the first pass from frame 0,
    the last to the end). The next pass renders that scene again and skips the X frames already shown;
    zoompan depends only on its own frame counter, so both renders of it are the same frames.
    """
    xf = timeline.crossfade_frames
    ranges = chunk_ranges(len(timeline.scenes), per_pass)
    out: list[tuple[list[int], str]] = []
    for c, (first, end) in enumerate(ranges):
        last_pass = c == len(ranges) - 1
        indices = list(range(first, end if last_pass else end + 1))
        origin = timeline.scenes[first].start_frame
        local = Timeline(
            fps=timeline.fps, width=timeline.width, height=timeline.height, crossfade_frames=xf,
            scenes=[replace(timeline.scenes[i], index=k, start_frame=timeline.scenes[i].start_frame - origin)
                    for k, i in enumerate(indices)],
        )
        graph, label = video_filter(local, captions_file=None, fonts_folder=None, motion_amount=motion_amount)
        lo = xf if c > 0 else 0
        hi = local.total_frames if last_pass else local.scenes[-1].start_frame + xf
        graph += f";[{label}]trim=start_frame={lo}:end_frame={hi},setpts=PTS-STARTPTS[chunk]"
        out.append((indices, graph))
    return out


def _feed_passes(
    timeline: Timeline, passes: list[tuple[list[int], str]], cwd: Path
) -> Callable[[IO[bytes], threading.Event], None]:
    """A feeder that runs the scene passes one after another, each writing raw frames into the encoder."""

    def feed(stdin: IO[bytes], stop: threading.Event) -> None:
        for n, (indices, graph) in enumerate(passes, 1):
            if stop.is_set():
                return
            args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
            for i in indices:
                args += ["-i", str(timeline.scenes[i].image.resolve())]
            args += ["-filter_complex", graph, "-map", "[chunk]", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]
            with tempfile.TemporaryFile(dir=cwd) as err:
                proc = subprocess.Popen(args, cwd=cwd, stdout=stdin, stderr=err)  # noqa: S603
                while proc.poll() is None:
                    if stop.wait(0.2):
                        proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=0.05)
                if proc.returncode != 0 and not stop.is_set():
                    err.seek(0)
                    tail = err.read().decode("utf-8", "replace").strip()[-1500:]
                    raise RenderFailed(f"ffmpeg failed in scene pass {n} of {len(passes)}: {tail or 'no message'}")

    return feed


# --- the pipeline ------------------------------------------------------------------------------------


def _prepare_image(src: Path, dest: Path, size: tuple[int, int]) -> None:
    """Orientation applied, alpha flattened, cover-cropped and resized to the motion working size."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(src) as im:
            if im.format == "JPEG":
                im.draft("RGB", size)
            img = ImageOps.exif_transpose(im)
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA")
                flat = Image.new("RGB", img.size, (0, 0, 0))
                flat.paste(img, mask=img.getchannel("A"))
                img = flat
            elif img.mode != "RGB":
                img = img.convert("RGB")
            fitted = ImageOps.fit(img, size, method=Image.Resampling.LANCZOS)
            fitted.save(dest, format="JPEG", quality=94, subsampling=0)


def _even(v: float) -> int:
    return max(2, int(round(v / 2)) * 2)


def _timings(clip_words: list[WordTiming] | None, text: str, speech_s: float) -> list[WordTiming]:
    if clip_words:
        return clip_words
    return estimate_word_timings(text.split(), 0.0, speech_s)


def compose(
    script: Script,
    *,
    out_path: Path | str,
    preset: str | VideoPreset = "short_vertical",
    platform: str | PlatformLimits | None = None,
    voice_backend: VoiceBackend | None = None,
    voice: VoiceSettings | None = None,
    captions: bool = True,
    crossfade_s: float = 0.5,
    motion_amount: float = 0.12,
    supersample: float = 1.5,
    music_gain_db: float = -18.0,
    duck_music: bool = True,
    x264_preset: str = "veryfast",
    crf: int | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    work_dir: Path | str | None = None,
    scenes_per_pass: int = 8,
) -> ComposeResult:
    """Render ``script`` to an MP4 at ``out_path``; see the module docstring for the stages."""
    started = time.perf_counter()
    the_preset = get_preset(preset)
    the_platform = get_platform(platform)
    voice = voice or VoiceSettings()
    scenes = list(script.scenes)
    needs_voice = any(s.text.strip() and s.audio is None for s in scenes)
    if needs_voice and voice_backend is None:
        from ainfluencer.backends.voice.registry import default_voice_backend

        try:
            voice_backend = default_voice_backend()
        except BackendError as exc:
            raise InvalidInput(exc.message, field="voice") from exc
    validate(script, preset=the_preset, platform=the_platform, voice_backend=voice_backend, voice=voice)
    if not 0 <= crossfade_s <= 3:
        raise InvalidInput("crossfade must be between 0 and 3 seconds", field="crossfade_s")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    keep = work_dir is not None
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="ainf-compose-"))
    work.mkdir(parents=True, exist_ok=True)
    stage_s: dict[str, float] = {}

    def report(stage: str, pct: float) -> None:
        if progress:
            progress(stage, pct)
        if cancel is not None and cancel():
            raise RenderCancelled(f"cancelled during {stage}")

    try:
        # narration
        t0 = time.perf_counter()
        report("narration", 0.0)
        clips: list[VoiceClip | None] = []
        narr_paths: list[Path | None] = []
        narr_s: list[float] = []
        for i, scene in enumerate(scenes):
            clip: VoiceClip | None = None
            if scene.audio is not None:
                path: Path | None = Path(scene.audio)
                seconds = probe(Path(scene.audio)).duration_s
            elif scene.text.strip():
                assert voice_backend is not None
                # backend errors pass through unchanged: their kind (auth/transient/permanent) drives retries
                clip = voice_backend.synthesize(scene.text, voice=voice, out_path=work / f"narration_{i}.wav")
                path, seconds = clip.path, clip.duration_s
            else:
                path, seconds = None, 0.0
            clips.append(clip)
            narr_paths.append(path)
            narr_s.append(seconds)
            report("narration", round((i + 1) / len(scenes) * 100, 1))
        stage_s["narration"] = time.perf_counter() - t0

        timeline = plan_timeline(script, narr_s, preset=the_preset, crossfade_s=crossfade_s, narrations=narr_paths)
        check_duration_and_size(the_preset, the_platform, timeline.duration_s)

        # scenes
        t0 = time.perf_counter()
        report("scenes", 0.0)
        k = max(1.0, supersample)
        work_size = (_even(the_preset.width * k), _even(the_preset.height * k))
        prepared: list[Path] = []
        for i, scene in enumerate(scenes):
            dest = work / f"scene_{i}.jpg"
            try:
                _prepare_image(Path(scene.image), dest, work_size)
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"scene {i + 1}: {Path(scene.image).name} cannot be used ({exc})",
                                   field="image") from exc
            prepared.append(dest)
            report("scenes", round((i + 1) / len(scenes) * 100, 1))
        timeline = plan_timeline(script, narr_s, preset=the_preset, crossfade_s=crossfade_s, images=prepared,
                                 narrations=narr_paths)
        stage_s["scenes"] = time.perf_counter() - t0

        # captions
        t0 = time.perf_counter()
        report("captions", 0.0)
        style = CaptionStyle.for_preset(the_preset)
        lines: list[CaptionLine] = []
        for ts, scene, clip in zip(timeline.scenes, scenes, clips, strict=True):
            shown = scene.text if scene.caption is None else scene.caption
            if not shown.strip() or ts.narration_s <= 0 and scene.caption is None:
                continue
            if scene.caption is not None and scene.caption != scene.text:
                words = estimate_word_timings(shown.split(), 0.0, ts.narration_s or ts.frames / timeline.fps - 0.5)
            else:
                words = _timings(clip.word_timings if clip else None, shown, ts.narration_s)
            offset = ts.narration_start_s
            scene_end = (ts.start_frame + ts.frames - timeline.crossfade_frames) / timeline.fps
            scene_lines = group_lines([WordTiming(w, s + offset, e + offset) for w, s, e in words],
                                      max_chars=style.max_chars)
            lines.extend(settle(scene_lines, until=scene_end))
        srt = to_srt(lines)
        captions_file = None
        fonts_folder = None
        if captions and lines:
            (work / "captions.ass").write_text(to_ass(lines, style), encoding="utf-8")
            captions_file = "captions.ass"
            fonts_dir(work / "fonts")
            fonts_folder = "fonts"
        report("captions", 100.0)
        stage_s["captions"] = time.perf_counter() - t0

        # mix
        t0 = time.perf_counter()
        report("mix", 0.0)
        args: list[str] = []
        inputs: list[tuple[int, float, float]] = []
        for ts in timeline.scenes:
            if ts.narration is not None:
                gain = voice_gain_db(*audio_level(ts.narration))
                inputs.append((len(inputs), ts.narration_start_s, gain))
                args += ["-i", str(ts.narration.resolve())]
        music_idx = None
        music_db = music_gain_db
        if script.music is not None:
            music_idx = len(inputs)
            music_db = music_gain(audio_level(Path(script.music))[0], music_gain_db)
            args += ["-stream_loop", "-1", "-i", str(Path(script.music).resolve())]
        graph, label = audio_filter(timeline, narration_inputs=inputs, music_input=music_idx,
                                    music_gain_db=music_db, duck_music=duck_music,
                                    sample_rate=the_preset.audio_rate)
        # PCM here; AAC is encoded in the encode pass, on its own thread beside the video encoder
        mix = work / "mix.wav"
        args += ["-filter_complex", graph, "-map", f"[{label}]", "-c:a", "pcm_s16le", "-ar", str(the_preset.audio_rate),
                 "-ac", "2", str(mix)]
        run_ffmpeg(args, stage="mix", total_s=timeline.duration_s, cwd=work, progress=progress, cancel=cancel,
                   timeout_s=120 + timeline.duration_s * 2)
        report("mix", 100.0)
        stage_s["mix"] = time.perf_counter() - t0

        # encode
        t0 = time.perf_counter()
        report("encode", 0.0)
        partial = out.with_name(f".{out.stem}.partial.mp4")
        encode = encode_args(the_preset, x264_preset=x264_preset, crf=crf, total_frames=timeline.total_frames)
        feed = None
        if len(timeline.scenes) <= scenes_per_pass:
            vgraph, vlabel = video_filter(timeline, captions_file=captions_file, fonts_folder=fonts_folder,
                                          motion_amount=motion_amount)
            args = []
            for ts in timeline.scenes:
                args += ["-i", str(ts.image.resolve())]
            audio_input = len(timeline.scenes)
        else:
            # every image input holds its decoded frame for the whole pass, so long scripts are rendered
            # a few scenes at a time, piped as raw frames into one encoder
            feed = _feed_passes(timeline, chunk_filters(timeline, per_pass=scenes_per_pass,
                                                        motion_amount=motion_amount), work)
            args = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{timeline.width}x{timeline.height}",
                    "-framerate", str(timeline.fps), "-i", "pipe:0"]
            captioned = f"ass=filename={captions_file}:fontsdir={fonts_folder}" if captions_file else "null"
            vgraph, vlabel = f"[0:v]{captioned},setsar=1[vout]", "vout"
            audio_input = 1
        args += ["-i", str(mix), "-filter_complex", vgraph, "-map", f"[{vlabel}]", "-map", f"{audio_input}:a",
                 *encode, "-c:a", "aac", "-b:a", f"{the_preset.audio_kbps}k", "-ar", str(the_preset.audio_rate),
                 "-ac", "2", str(partial.resolve())]
        try:
            run_ffmpeg(args, stage="encode", total_s=timeline.duration_s, cwd=work, progress=progress,
                       cancel=cancel, timeout_s=300 + timeline.duration_s * 20, feed=feed)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
        report("encode", 100.0)
        stage_s["encode"] = time.perf_counter() - t0
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    info = probe(out)
    if abs(info.duration_s - timeline.duration_s) > 0.5:
        raise RenderFailed(f"the video came out at {info.duration_s:.2f} s instead of {timeline.duration_s:.2f} s")
    if the_platform and the_platform.max_size_bytes and info.size_bytes > the_platform.max_size_bytes:
        out.unlink(missing_ok=True)
        raise InvalidInput(f"the video came out at {info.size_bytes} bytes, over {the_platform.label}'s limit",
                           field="duration")
    stage_s["total"] = time.perf_counter() - started
    return ComposeResult(
        path=out,
        duration_s=info.duration_s,
        width=info.width or the_preset.width,
        height=info.height or the_preset.height,
        fps=info.fps or the_preset.fps,
        size_bytes=info.size_bytes,
        info=info,
        timeline=timeline,
        captions=lines,
        srt=srt,
        narration_backend=voice_backend.name if needs_voice and voice_backend else None,
        stage_seconds=stage_s,
    )
