"""Compose a video from a script: one continuous narration, moving stills, crossfades, captions, music, H.264/AAC.

Stages, each reported through ``progress(stage, pct)`` with pct 0-100:
    narration  speak each scene's text with a voice backend (or take the scene's own audio)
    scenes     check and prepare the stills (orientation, cover-crop to the frame plus room for motion)
    captions   group the narration's word timings into short lines; write ASS (burned in) and SRT
    mix        one ffmpeg pass: narrations placed end to end, music under them (ducked or fixed gain);
               then loudnorm's first pass measures the mix (EBU R128)
    encode     one ffmpeg pass: per-frame scale/crop of looped 4:2:0 stills, xfade (or concat) between
               scenes, ``ass`` captions, libx264 tagged BT.709; the mix normalised to -14 LUFS, true peak
               under -1 dBTP (loudnorm's second pass, on the encoder's audio thread)
Everything that can be checked before rendering is: preset and platform limits, crossfade, images, audio
files, voice settings, a narration-length lower bound from the text, then the exact planned duration and
worst-case size once the narration exists and before any frame is encoded.

Narration drives the timing. Each clip is trimmed to its speech and the clips follow each other with a
``PAUSE_S`` pause, so speech runs on across scene changes; a scene ends in the middle of the pause after
its words (the crossfade is centred there). A target length is met by slowing the speech (never below
``MIN_TEMPO``); only what that cannot fill is added after the last words. Timeline arithmetic is in whole
frames: scene i lasts ``frames[i]``, the crossfade is ``X`` frames, scene i starts at
``sum(frames[:i]) - i * X`` and the total is ``sum(frames) - (n - 1) * X``.
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
import wave
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

LEAD_S = 0.25  # before the first words
PAUSE_S = 0.2  # between one scene's last word and the next scene's first (a breath, not dead air)
END_S = 0.6  # after the last words
MIN_TEMPO = 0.75  # a target length slows speech at most this much (0.75 = a third longer)
SPEECH_MARGIN_S = 0.03  # kept around a clip's detected speech so no word is clipped
MAX_PAUSE_S = 0.2  # a longer pause inside a narration clip is shortened to this (slowed by at most 1/MIN_TEMPO)
LOUDNESS_LUFS = -14.0  # integrated loudness of the finished audio (what the big apps normalise to)
TRUE_PEAK_DB = -2.0  # loudnorm's ceiling: AAC encoding adds a few tenths, the result stays under -1 dBTP
LOUDNESS_LRA = 20.0  # loose enough that a narration's range never forces loudnorm out of linear mode
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
    narration_start_s: float  # where its speech starts on the timeline
    narration_s: float  # how long its speech lasts on the timeline (after the tempo)
    trim_start_s: float = 0.0  # the speech inside the narration file
    trim_end_s: float | None = None
    end_s: float = 0.0  # the scene's boundary: the middle of its outgoing crossfade (or the video's end)


@dataclass(frozen=True)
class Timeline:
    """The planned video: whole frames per scene, crossfade length, total."""

    fps: int
    width: int
    height: int
    crossfade_frames: int
    scenes: list[TimelineScene]
    tempo: float = 1.0  # speech speed applied to every narration (1.0 = as spoken)

    @property
    def total_frames(self) -> int:
        """Frames in the finished video."""
        return sum(s.frames for s in self.scenes) - (len(self.scenes) - 1) * self.crossfade_frames

    @property
    def duration_s(self) -> float:
        """Length of the finished video in seconds."""
        return self.total_frames / self.fps

    @property
    def outro_s(self) -> float:
        """Seconds after the last words: what pacing could not fill (0 for a script without speech)."""
        spoken = [s for s in self.scenes if s.narration_s > 0]
        if not spoken:
            return 0.0
        return max(0.0, self.duration_s - spoken[-1].narration_start_s - spoken[-1].narration_s)


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
    loudness: Loudness | None = None  # the mix before normalisation (None: silent, or normalisation off)


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
    speech: Sequence[tuple[float, float] | None] | None = None,
) -> Timeline:
    """Whole-frame scenes laid out around one continuous narration, paced to the target duration if one is set.

    ``narration_s`` is each scene's audio length; ``speech`` (optional) where the words start and end
    inside it, so the clips' own leading and trailing silence is dropped and the pause between two
    scenes is exactly ``PAUSE_S``. A target longer than the narration first slows the speech (down to
    ``MIN_TEMPO``); only what that cannot fill goes to the last scene, after the last words.
    """
    fps = preset.fps
    scenes = list(script.scenes)
    n = len(scenes)
    xf = max(0, round(crossfade_s * fps)) if n > 1 else 0
    spans: list[tuple[float, float]] = []
    for i, seconds in enumerate(narration_s):
        span = speech[i] if speech is not None and speech[i] is not None else None
        if seconds <= 0:
            spans.append((0.0, 0.0))
        elif span is None:
            spans.append((0.0, float(seconds)))
        else:
            start, end = span
            spans.append((max(0.0, start), min(float(seconds), max(end, start))))
    spoken = [e - s for s, e in spans]

    def layout(tempo: float) -> tuple[list[int], list[float]]:
        """Scene boundaries (frames; boundary i ends scene i) and where each narration starts (seconds)."""
        bounds: list[int] = []
        starts: list[float] = []
        prev = 0
        for i, scene in enumerate(scenes):
            # the crossfade is centred on a boundary: a scene shares half of each of its crossfades
            share = (xf // 2 if i > 0 else 0) + ((xf - xf // 2) if i < n - 1 else 0)
            fades = (i > 0) + (i < n - 1)
            floor = max(1, fades * xf + 1 - share)  # a scene's crossfades must not overlap
            gap = LEAD_S if i == 0 else PAUSE_S / 2
            begin = prev / fps + gap
            starts.append(begin)
            if spoken[i] > 0:
                tail = END_S if i == n - 1 else PAUSE_S / 2
                need = max(floor, math.ceil((gap + spoken[i] / tempo + tail) * fps - 1e-6))
            else:
                need = max(floor, math.ceil(MIN_SCENE_S * fps) - share)
            if scene.duration_s is not None:
                own = round(scene.duration_s * fps) - share
                if spoken[i] > 0 and own < need:
                    raise InvalidInput(
                        f"scene {i + 1} lasts {scene.duration_s:g} s but its narration needs "
                        f"{(need + share) / fps:.2f} s (with the pauses and the crossfade)",
                        field="duration_s",
                    )
                if own < floor:
                    raise InvalidInput(
                        f"scene {i + 1} lasts {scene.duration_s:g} s; with {crossfade_s:g} s crossfades a scene "
                        f"needs at least {(floor + share) / fps:.2f} s",
                        field="duration_s",
                    )
                need = own
            prev += need
            bounds.append(prev)
        return bounds, starts

    tempo = 1.0
    bounds, starts = layout(tempo)
    total = bounds[-1]
    if script.target_duration_s is not None:
        target = round(script.target_duration_s * fps)
        if total > target:
            raise InvalidInput(
                f"the narration needs {total / fps:.2f} s but the target is {script.target_duration_s:g} s — "
                "shorten the text or raise the target",
                field="target_duration_s",
            )
        said = sum(spoken[i] for i, s in enumerate(scenes) if s.duration_s is None)
        fixed_speech = any(s.duration_s is not None and spoken[i] > 0 for i, s in enumerate(scenes))
        if target > total and said > 0 and not fixed_speech:
            # slower speech fills the target; pauses and the scenes' own durations stay as they are
            tempo = max(MIN_TEMPO, said / (said + (target - total) / fps))
            bounds, starts = layout(tempo)
            while bounds[-1] > target and tempo < 1.0:  # whole-frame rounding: speed up a hair
                tempo = min(1.0, tempo * 1.002)
                bounds, starts = layout(tempo)
        extra = target - bounds[-1]
        flexible = [i for i, s in enumerate(scenes) if s.duration_s is None]
        if extra and not flexible:
            raise InvalidInput(
                f"every scene has a fixed duration, adding up to {bounds[-1] / fps:.2f} s, not the target "
                f"{script.target_duration_s:g} s",
                field="target_duration_s",
            )
        if extra:
            # what pacing cannot fill: after the last words when the last scene is flexible (an outro
            # under the music, never a gap inside the narration); spread over the scenes of a silent script
            if said > 0:
                where = {flexible[-1]: extra}
            else:
                sizes = [bounds[i] - (bounds[i - 1] if i else 0) for i in flexible]
                shares = [extra * size // sum(sizes) for size in sizes]
                shares[-1] += extra - sum(shares)
                where = dict(zip(flexible, shares, strict=True))
            shift = 0
            new_bounds, new_starts = [], []
            for i in range(n):
                new_starts.append(starts[i] + shift / fps)
                shift += where.get(i, 0)
                new_bounds.append(bounds[i] + shift)
            bounds, starts = new_bounds, new_starts
    out: list[TimelineScene] = []
    for i, scene in enumerate(scenes):
        begin = 0 if i == 0 else bounds[i - 1] - xf // 2
        end = bounds[i] + ((xf - xf // 2) if i < n - 1 else 0)
        motion = scene.motion or MOTION_CYCLE[i % len(MOTION_CYCLE)]
        out.append(
            TimelineScene(
                index=i,
                image=Path(images[i]) if images else Path(scene.image),
                frames=end - begin,
                start_frame=begin,
                motion=motion,
                narration=(narrations[i] if narrations else None),
                narration_start_s=starts[i],
                narration_s=spoken[i] / tempo,
                trim_start_s=spans[i][0],
                trim_end_s=spans[i][1],
                end_s=bounds[i] / fps,
            )
        )
    return Timeline(fps=fps, width=preset.width, height=preset.height, crossfade_frames=xf, scenes=out,
                    tempo=tempo)


# --- filter graphs -----------------------------------------------------------------------------------

# frames leave every scene chain in this colour description; captions (ASS ``YCbCr Matrix: TV.709``) and
# the encoder's VUI tags say the same
BT709 = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"
TO_BT709 = "format=rgb24,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"


def motion_size(width: int, height: int, amount: float) -> tuple[int, int]:
    """The still's working size: the frame plus ``amount`` of room for zooming and panning (even sides)."""
    return _even(width * (1 + amount)), _even(height * (1 + amount))


def _motion_chain(motion: Motion, frames: int, width: int, height: int, amount: float) -> str:
    """Zooms: zoompan of the 4:2:0 still (it makes its own frames); pans: a moving crop of the looped still."""
    p = f"(n/{max(1, frames - 1)})"
    if motion in ("zoom_in", "zoom_out"):
        # zoom 1 shows the whole still (frame plus room), 1 + amount a frame-sized centre of it; zoompan
        # counts its own frames, so a scene rendered again in another pass gives the same frames
        q = f"(on/{max(1, frames - 1)})"
        z = f"(1+{amount:.4f}*{q})" if motion == "zoom_in" else f"(1+{amount:.4f}*(1-{q}))"
        return f"zoompan=z='{z}':x='(iw-iw/zoom)/2':y='(ih-ih/zoom)/2':d={frames}:s={width}x{height}"
    if motion == "none":
        return ""  # the still was scaled to the frame once, before the loop
    x, y = "(iw-ow)/2", "(ih-oh)/2"
    if motion == "pan_right":
        x = f"(iw-ow)*{p}"
    elif motion == "pan_left":
        x = f"(iw-ow)*(1-{p})"
    elif motion == "pan_down":
        y = f"(ih-oh)*{p}"
    elif motion == "pan_up":
        y = f"(ih-oh)*(1-{p})"
    return f"crop={width}:{height}:x='{x}':y='{y}':exact=1"


def video_filter(
    timeline: Timeline,
    *,
    captions_file: str | None,
    fonts_folder: str | None,
    motion_amount: float = 0.12,
    prescale: tuple[int, int] | None = None,
    transition: str = "fade",
) -> tuple[str, str]:
    """The video filtergraph (inputs 0..n-1 are the scene stills) and its output label.

    Each still is decoded once, converted to BT.709 4:2:0 once and looped; motion is a per-frame
    ``scale`` (zooms) or a moving ``crop`` (pans) of that one frame. Scenes are joined with
    ``xfade`` when there is a crossfade and with ``concat`` when there is none. ``prescale`` adds a
    cover-crop to the working size in ffmpeg, for raw images that were not prepared beforehand.
    """
    w, h, fps, xf = timeline.width, timeline.height, timeline.fps, timeline.crossfade_frames
    mw, mh = prescale or motion_size(w, h, motion_amount)
    parts: list[str] = []
    for s in timeline.scenes:
        pre = f"scale={mw}:{mh}:force_original_aspect_ratio=increase,crop={mw}:{mh}," if prescale else ""
        still = f"scale={w}:{h}:flags=bicubic," if s.motion == "none" else ""
        move = _motion_chain(s.motion, s.frames, w, h, motion_amount)
        if s.motion in ("zoom_in", "zoom_out"):
            parts.append(f"[{s.index}:v]{pre}{TO_BT709},{move}:fps={fps},setsar=1[v{s.index}]")
            continue
        parts.append(
            f"[{s.index}:v]{pre}{TO_BT709},{still}loop=loop={s.frames - 1}:size=1:start=0,"
            f"settb=1/{fps},setpts=N,fps={fps}:eof_action=pass,{move + ',' if move else ''}setsar=1[v{s.index}]"
        )
    if len(timeline.scenes) == 1:
        label = "v0"
    elif xf == 0:
        parts.append("".join(f"[v{s.index}]" for s in timeline.scenes)
                     + f"concat=n={len(timeline.scenes)}:v=1:a=0[vcat]")
        label = "vcat"
    else:
        label = "v0"
        for s in timeline.scenes[1:]:
            out = f"x{s.index}"
            parts.append(
                f"[{label}][v{s.index}]xfade=transition={transition}:duration={xf / fps:.6f}:"
                f"offset={s.start_frame / fps:.6f}[{out}]"
            )
            label = out
    tagged = f"{BT709},ass=filename={captions_file}" if captions_file else BT709
    if captions_file and fonts_folder:
        tagged += f":fontsdir={fonts_folder}"
    parts.append(f"[{label}]{tagged}[vout]")
    return ";".join(parts), "vout"


@dataclass(frozen=True)
class NarrationInput:
    """One narration on the audio timeline: ffmpeg input index, where it starts, its gain and its speech span."""

    input: int
    start_s: float
    gain_db: float
    trim_start_s: float = 0.0
    trim_end_s: float | None = None


def audio_filter(
    timeline: Timeline,
    *,
    narration_inputs: Sequence[NarrationInput],
    music_input: int | None,
    music_gain_db: float,
    duck_music: bool,
    sample_rate: int = 48_000,
    voice_output: bool = False,
) -> tuple[str, str, str | None]:
    """The audio filtergraph: narrations on silence of the video's length, music under them.

    Returns the graph, the mix's label and (with ``voice_output``) the label of the voice bus alone.
    Each narration is trimmed to its speech, slowed to the timeline's tempo (rubberband keeps the
    pitch) and placed at its start.
    """
    total = timeline.duration_s
    fmt = f"aresample={sample_rate},aformat=sample_fmts=fltp:sample_rates={sample_rate}:channel_layouts=stereo"
    parts = [f"anullsrc=r={sample_rate}:cl=stereo,atrim=duration={total:.6f}[base]"]
    labels = ["[base]"]
    tempo = "" if abs(timeline.tempo - 1.0) < 1e-3 else f"rubberband=tempo={timeline.tempo:.4f}:pitchq=quality,"
    for k, n in enumerate(narration_inputs):
        end = f":end={n.trim_end_s:.4f}" if n.trim_end_s is not None else ""
        trim = f"atrim=start={n.trim_start_s:.4f}{end},asetpts=PTS-STARTPTS," if n.trim_start_s or end else ""
        parts.append(f"[{n.input}:a]{trim}{fmt},volume={n.gain_db:.2f}dB,{tempo}"
                     f"adelay=delays={round(n.start_s * 1000)}:all=1[n{k}]")
        labels.append(f"[n{k}]")
    parts.append(
        f"{''.join(labels)}amix=inputs={len(labels)}:normalize=0:duration=first:dropout_transition=0,"
        f"{_limiter()},atrim=duration={total:.6f}[voice]"
    )
    voice_label: str | None = None
    if voice_output:
        parts[-1] = parts[-1].removesuffix("[voice]") + "[voicebus]"
        parts.append("[voicebus]asplit=2[voice][voiceonly]")
        voice_label = "voiceonly"
    if music_input is None:
        return ";".join(parts), "voice", voice_label
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
    return ";".join(parts), "mix", voice_label


def _limiter() -> str:
    return f"alimiter=limit={10 ** (PEAK_CEILING_DB / 20):.4f}:attack=5:release=50:level=0:latency=1"


def voice_gain_db(rms_db: float, peak_db: float) -> float:
    """Gain that brings a narration to ``VOICE_RMS_DB``; the voice bus limiter takes at most 6 dB off its peaks."""
    return max(-MAX_GAIN_DB, min(VOICE_RMS_DB - rms_db, PEAK_CEILING_DB + LIMITER_MAX_DB - peak_db, MAX_GAIN_DB))


def music_gain(rms_db: float, under_voice_db: float) -> float:
    """Gain that puts music ``under_voice_db`` (negative) relative to the narration level."""
    return max(-60.0, min(VOICE_RMS_DB + under_voice_db - rms_db, MAX_GAIN_DB))


@dataclass(frozen=True)
class Loudness:
    """The first loudnorm pass's measurement of a mix (EBU R128)."""

    integrated_lufs: float
    true_peak_db: float
    lra: float
    threshold: float
    offset: float

    def filter(self, *, sample_rate: int) -> str:
        """The second pass: normalise to ``LOUDNESS_LUFS`` with true peaks under ``TRUE_PEAK_DB``."""
        return (f"loudnorm=I={LOUDNESS_LUFS}:TP={TRUE_PEAK_DB}:LRA={LOUDNESS_LRA}:measured_I={self.integrated_lufs}:"
                f"measured_TP={self.true_peak_db}:measured_LRA={self.lra}:measured_thresh={self.threshold}:"
                f"offset={self.offset}:linear=true:print_format=none,aresample={sample_rate}")


def measure_loudness(path: Path, *, cwd: Path | None = None) -> Loudness | None:
    """EBU R128 loudness of ``path`` (loudnorm's first pass); None for silence, which is left as it is."""
    import json

    proc = subprocess.run(  # noqa: S603 - fixed binary, arguments built here
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-i", str(path), "-vn",
         "-af", f"loudnorm=I={LOUDNESS_LUFS}:TP={TRUE_PEAK_DB}:LRA={LOUDNESS_LRA}:print_format=json",
         "-f", "null", "-"],
        capture_output=True, timeout=600, check=False, cwd=cwd,
    )
    text = proc.stderr.decode("utf-8", "replace")
    start, end = text.rfind("{"), text.rfind("}")
    if proc.returncode != 0 or start < 0 or end < start:
        raise RenderFailed(f"ffmpeg could not measure the loudness of the mix: {text.strip()[-800:] or 'no message'}")
    data = json.loads(text[start:end + 1])
    values = [data.get(k) for k in ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")]
    try:
        i, tp, lra, thresh, offset = (float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (i, tp, lra, thresh, offset)) or i < -70:
        return None
    return Loudness(integrated_lufs=i, true_peak_db=tp, lra=lra, threshold=thresh, offset=offset)


def encode_args(
    preset: VideoPreset, *, x264_preset: str, crf: int | None, total_frames: int
) -> list[str]:
    """libx264 High / yuv420p tagged BT.709 with a VBV ceiling and an exact frame count (x264's own GOP)."""
    rate = preset.max_video_kbps
    return [
        "-c:v", "libx264", "-preset", x264_preset, "-profile:v", preset.profile, "-pix_fmt", preset.pix_fmt,
        "-crf", str(crf if crf is not None else preset.crf), "-maxrate", f"{rate}k", "-bufsize", f"{rate * 2}k",
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
        "-r", str(preset.fps), "-fps_mode", "cfr", "-frames:v", str(total_frames),
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
            fitted.save(dest, format="JPEG", quality=95, subsampling=2)  # 4:2:0, the format it is moved in


def _even(v: float) -> int:
    return max(2, int(round(v / 2)) * 2)


def _timings(clip_words: list[WordTiming] | None, text: str, speech_s: float) -> list[WordTiming]:
    if clip_words:
        return clip_words
    return estimate_word_timings(text.split(), 0.0, speech_s)


def tighten_narration(
    src: Path, dest: Path, *, max_pause_s: float = MAX_PAUSE_S, margin_s: float = SPEECH_MARGIN_S,
    floor_db: float = -40.0,
) -> tuple[float, Callable[[float], float]] | None:
    """Write ``src`` without its leading and trailing silence and with every inner pause at most ``max_pause_s``.

    A pause is a run of 10 ms blocks quieter than ``floor_db`` under the clip's peak; a long one keeps
    half of ``max_pause_s`` after the sound before it and half before the sound after it, so fades and
    soft consonants stay. Returns the new length and a function that moves a time in ``src`` to the
    same moment in ``dest`` (for word timings), or None when ``src`` is not a 16-bit mono WAV.
    """
    import numpy as np

    from ainfluencer.backends.voice.base import read_wav_mono, write_wav

    try:
        raw, rate = read_wav_mono(src)
    except (BackendError, OSError, EOFError, wave.Error):
        return None
    audio = np.frombuffer(raw, dtype=np.int16)
    block = max(1, rate // 100)
    blocks = audio.size // block
    if blocks < 2:
        return None
    level = np.abs(audio[: blocks * block].astype(np.int32)).reshape(blocks, block).max(axis=1)
    peak = int(level.max())
    if peak == 0:
        return None
    loud = level >= peak * 10 ** (floor_db / 20)
    idx = np.flatnonzero(loud)
    first, last = int(idx[0]), int(idx[-1]) + 1
    keep_blocks = max(1, round(max_pause_s / 2 * rate / block))
    margin = round(margin_s * rate)
    cuts: list[tuple[int, int]] = [(0, max(0, first * block - margin))]  # (start, end) sample ranges to drop
    run_start = None
    for b in range(first, last):
        if not loud[b] and run_start is None:
            run_start = b
        elif loud[b] and run_start is not None:
            if b - run_start > 2 * keep_blocks:
                cuts.append(((run_start + keep_blocks) * block, (b - keep_blocks) * block))
            run_start = None
    cuts.append((min(audio.size, last * block + margin), audio.size))
    keep: list[tuple[int, int]] = []
    pos = 0
    for start, end in cuts:
        if start > pos:
            keep.append((pos, start))
        pos = max(pos, end)
    out = np.concatenate([audio[a:b] for a, b in keep]) if keep else audio[:0]
    if out.size == 0:
        return None
    write_wav(dest, out.tobytes(), sample_rate=rate)
    starts = np.array([a for a, _ in keep], dtype=np.float64) / rate
    ends = np.array([b for _, b in keep], dtype=np.float64) / rate
    offsets = np.concatenate([[0.0], np.cumsum(ends - starts)])[:-1]

    def moved(t: float) -> float:
        i = int(np.searchsorted(ends, t))
        if i >= len(keep):
            return float(out.size / rate)
        return float(offsets[i] + max(0.0, t - starts[i]))

    return out.size / rate, moved


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
    supersample: float = 1.0,
    music_gain_db: float = -18.0,
    duck_music: bool = True,
    normalize: bool = True,
    x264_preset: str = "veryfast",
    crf: int | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    work_dir: Path | str | None = None,
    scenes_per_pass: int = 8,
    narration_out: Path | str | None = None,
) -> ComposeResult:
    """Render ``script`` to an MP4 at ``out_path``; see the module docstring for the stages.

    ``narration_out``, when given, receives the voice alone (WAV, on the video's timeline).
    """
    started = time.perf_counter()
    if not (isinstance(crossfade_s, int | float) and math.isfinite(crossfade_s) and 0 <= crossfade_s <= 3):
        raise InvalidInput("crossfade must be between 0 and 3 seconds (0 cuts between scenes)", field="crossfade_s")
    if not (math.isfinite(motion_amount) and 0 <= motion_amount <= 0.5):
        raise InvalidInput("motion amount must be between 0 and 0.5", field="motion_amount")
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
    out = Path(out_path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    keep = work_dir is not None
    # absolute: ffmpeg runs inside the work dir, where a relative path would point somewhere else
    work = Path(work_dir).resolve() if work_dir else Path(tempfile.mkdtemp(prefix="ainf-compose-"))
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
                path: Path | None = Path(scene.audio).resolve()
                seconds = probe(Path(scene.audio)).duration_s
            elif scene.text.strip():
                assert voice_backend is not None
                # backend errors pass through unchanged: their kind (auth/transient/permanent) drives retries
                clip = voice_backend.synthesize(scene.text, voice=voice, out_path=work / f"voice_{i}.wav")
                path, seconds = clip.path.resolve(), clip.duration_s
                tight = tighten_narration(clip.path, work / f"narration_{i}.wav")
                if tight is not None:
                    # silence trimmed and long pauses shortened: the word timings move with the audio
                    seconds, moved = tight
                    path = (work / f"narration_{i}.wav").resolve()
                    words = [WordTiming(w, moved(s), moved(e)) for w, s, e in (clip.word_timings or [])]
                    clip = replace(clip, path=path, duration_s=seconds, word_timings=words or None)
            else:
                path, seconds = None, 0.0
            clips.append(clip)
            narr_paths.append(path)
            narr_s.append(seconds)
            report("narration", round((i + 1) / len(scenes) * 100, 1))
        stage_s["narration"] = time.perf_counter() - t0

        timeline = plan_timeline(script, narr_s, preset=the_preset, crossfade_s=crossfade_s, narrations=narr_paths)
        shortest = max(the_preset.min_duration_s, the_platform.min_duration_s if the_platform else 0.0)
        if script.target_duration_s is None and timeline.duration_s < shortest:
            # too short for the platform: paced out to its minimum like a target length
            script = replace(script, target_duration_s=math.ceil(shortest * the_preset.fps) / the_preset.fps)
            timeline = plan_timeline(script, narr_s, preset=the_preset, crossfade_s=crossfade_s,
                                     narrations=narr_paths)
        check_duration_and_size(the_preset, the_platform, timeline.duration_s)

        # scenes
        t0 = time.perf_counter()
        report("scenes", 0.0)
        k = max(1.0, supersample)
        work_size = motion_size(round(the_preset.width * k), round(the_preset.height * k), motion_amount)
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
        timeline = replace(timeline, scenes=[replace(ts, image=img) for ts, img in zip(timeline.scenes, prepared,
                                                                                       strict=True)])
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
            scene_end = ts.end_s
            if ts.narration_s <= 0:  # a caption over a silent scene: shown for the scene
                offset = ts.start_frame / timeline.fps + LEAD_S
                words = estimate_word_timings(shown.split(), 0.0, max(0.5, scene_end - offset - 0.25))
            elif scene.caption is not None and scene.caption != scene.text:
                offset = ts.narration_start_s
                words = estimate_word_timings(shown.split(), 0.0, ts.narration_s)
            else:
                # the clip's own timings, moved past the trimmed silence and stretched by the tempo
                offset = ts.narration_start_s
                raw = _timings(clip.word_timings if clip else None, shown,
                               (ts.trim_end_s or ts.narration_s) - ts.trim_start_s)
                cut = ts.trim_start_s if clip else 0.0
                words = [WordTiming(w, max(0.0, (s - cut) / timeline.tempo), max(0.0, (e - cut) / timeline.tempo))
                         for w, s, e in raw]
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
        inputs: list[NarrationInput] = []
        for ts in timeline.scenes:
            if ts.narration is not None:
                gain = voice_gain_db(*audio_level(ts.narration))
                inputs.append(NarrationInput(len(inputs), ts.narration_start_s, gain, ts.trim_start_s, ts.trim_end_s))
                args += ["-i", str(ts.narration)]
        music_idx = None
        music_db = music_gain_db
        if script.music is not None:
            music_idx = len(inputs)
            music_db = music_gain(audio_level(Path(script.music))[0], music_gain_db)
            args += ["-stream_loop", "-1", "-i", str(Path(script.music).resolve())]
        graph, label, voice_label = audio_filter(
            timeline, narration_inputs=inputs, music_input=music_idx, music_gain_db=music_db, duck_music=duck_music,
            sample_rate=the_preset.audio_rate, voice_output=narration_out is not None)
        # PCM here; AAC is encoded in the encode pass, on its own thread beside the video encoder
        mix = work / "mix.wav"
        pcm = ["-c:a", "pcm_s16le", "-ar", str(the_preset.audio_rate)]
        args += ["-filter_complex", graph, "-map", f"[{label}]", *pcm, "-ac", "2", str(mix)]
        if voice_label is not None and narration_out is not None:
            args += ["-map", f"[{voice_label}]", *pcm, "-ac", "1", str(Path(narration_out).resolve())]
        run_ffmpeg(args, stage="mix", total_s=timeline.duration_s, cwd=work, progress=progress, cancel=cancel,
                   timeout_s=120 + timeline.duration_s * 2)
        loudness = measure_loudness(mix, cwd=work) if normalize else None
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
                args += ["-i", str(ts.image)]
            audio_input = len(timeline.scenes)
        else:
            # every still input holds its decoded frame for the whole pass, so long scripts are rendered
            # a few scenes at a time, piped as raw frames into one encoder
            feed = _feed_passes(timeline, chunk_filters(timeline, per_pass=scenes_per_pass,
                                                        motion_amount=motion_amount), work)
            args = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{timeline.width}x{timeline.height}",
                    "-framerate", str(timeline.fps), "-i", "pipe:0"]
            captioned = f",ass=filename={captions_file}:fontsdir={fonts_folder}" if captions_file else ""
            vgraph, vlabel = f"[0:v]{BT709}{captioned},setsar=1[vout]", "vout"
            audio_input = 1
        audio_map = f"{audio_input}:a"
        if loudness is not None:
            vgraph += f";[{audio_input}:a]{loudness.filter(sample_rate=the_preset.audio_rate)}[aout]"
            audio_map = "[aout]"
        args += ["-i", str(mix), "-filter_complex", vgraph, "-map", f"[{vlabel}]", "-map", audio_map,
                 *encode, "-c:a", "aac", "-b:a", f"{the_preset.audio_kbps}k", "-ar", str(the_preset.audio_rate),
                 "-ac", "2", str(partial)]
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
        loudness=loudness,
    )
