"""Finished videos: continuous narration, pacing to a target, loudness, BT.709, crossfade 0, relative work dirs.

Small renders (360×640, a few seconds) so the suite stays fast; measured with ffmpeg's own analysers
(silencedetect, ebur128, trace_headers), not with our code.
"""

from __future__ import annotations

import re
import subprocess
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ainfluencer.backends.voice import VoiceSettings
from ainfluencer.backends.voice.base import VoiceBackend, VoiceClip
from ainfluencer.backends.voice.piper import PiperBackend
from ainfluencer.errors import InvalidInput
from ainfluencer.media.video import Scene, Script, compose, get_preset, probe
from ainfluencer.media.video.compose import (
    LEAD_S,
    MIN_TEMPO,
    PAUSE_S,
    plan_timeline,
    tighten_narration,
    video_filter,
)
from ainfluencer.media.video.probe import count_frames, ffmpeg_exe

pytestmark = pytest.mark.nodb

SMALL = replace(get_preset("short_vertical"), name="short_small", width=360, height=640)
TEXTS = [
    "Hi, I'm Nova, a virtual character made with AI.",
    "Today we tour a tiny studio where videos are built.",
    "Follow for more, and tell me what to make next!",
]


def still(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (400, 700)) -> Path:
    Image.new("RGB", size, rgb).save(path)
    return path


def tone(path: Path, seconds: float, *, rate: int = 16_000, gaps: tuple[tuple[float, float], ...] = ()) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.4 * np.sin(2 * np.pi * 300 * t)
    for start, end in gaps:
        audio[int(start * rate): int(end * rate)] = 0
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())
    return path


def music(path: Path, seconds: float = 6.0, rate: int = 44_100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())
    return path


def ffmpeg_log(*args: str) -> str:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", *args], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def silences(path: Path, *, noise_db: int = -50, min_s: float = 0.3) -> list[tuple[float, float]]:
    """(start, end) of every silence ffmpeg's silencedetect finds."""
    log = ffmpeg_log("-i", str(path), "-af", f"silencedetect=noise={noise_db}dB:d={min_s}", "-f", "null", "-")
    starts = [float(x) for x in re.findall(r"silence_start: (-?[\d.]+)", log)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", log)]
    return list(zip(starts, ends + [float("inf")] * (len(starts) - len(ends)), strict=True))


def loudness(path: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) from ffmpeg's ebur128 filter."""
    log = ffmpeg_log("-i", str(path), "-vn", "-af", "ebur128=peak=true", "-f", "null", "-")
    summary = log[log.rfind("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))  # type: ignore[union-attr]
    return integrated, peak


class SpyVoice(VoiceBackend):
    """A backend that must not be called: proves a refusal came before any synthesis."""

    name = "spy"

    def available(self) -> tuple[bool, str]:
        return True, ""

    def _synthesize(self, text: str, voice: VoiceSettings, out_path: Path) -> VoiceClip:
        raise AssertionError("synthesis started although the input was already known to be bad")


@pytest.fixture(scope="module")
def narrated(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Three Piper-narrated scenes over music, aimed 15 % longer than the speech needs (the one Piper render)."""
    d = tmp_path_factory.mktemp("narrated")
    piper = PiperBackend()
    images = [still(d / f"s{i}.jpg", (60 * i + 40, 120, 200 - 50 * i)) for i in range(3)]
    scenes = [Scene(image=img, text=t) for img, t in zip(images, TEXTS, strict=True)]
    natural = compose(Script(scenes=scenes), out_path=d / "natural.mp4", preset=SMALL, voice_backend=piper,
                      x264_preset="ultrafast", narration_out=d / "natural.wav")
    target = round(natural.duration_s * 1.15, 1)
    paced = compose(Script(scenes=scenes, target_duration_s=target, music=music(d / "music.wav")),
                    out_path=d / "paced.mp4", preset=SMALL, voice_backend=piper, x264_preset="ultrafast",
                    narration_out=d / "paced.wav")
    return natural, paced, target, d


def test_narration_runs_on_across_scenes_without_dead_air(narrated) -> None:  # type: ignore[no-untyped-def]
    natural, paced, target, d = narrated
    for result, voice in ((natural, d / "natural.wav"), (paced, d / "paced.wav")):
        tl = result.timeline
        first, last = tl.scenes[0], tl.scenes[-1]
        span = (first.narration_start_s, last.narration_start_s + last.narration_s)
        inside = [(s, e) for s, e in silences(voice) if e > span[0] + 0.05 and s < span[1] - 0.05]
        assert inside == [], (inside, span)  # no silence of 0.3 s or more while the character speaks
        # each scene's words start a short pause after the previous scene's last word
        for a, b in zip(tl.scenes, tl.scenes[1:], strict=False):
            assert b.narration_start_s - (a.narration_start_s + a.narration_s) == pytest.approx(PAUSE_S, abs=0.04)
            # the cut (the middle of the crossfade) falls inside that pause, not on a word
            assert a.narration_start_s + a.narration_s <= a.end_s <= b.narration_start_s
        assert first.narration_start_s == pytest.approx(LEAD_S, abs=0.01)
        assert len(result.captions) >= 3


def test_a_target_length_changes_the_pace_not_the_silence(narrated) -> None:  # type: ignore[no-untyped-def]
    natural, paced, target, _ = narrated
    assert natural.timeline.tempo == 1.0
    assert MIN_TEMPO <= paced.timeline.tempo < 0.95
    assert paced.duration_s == pytest.approx(target, abs=0.05)
    assert paced.timeline.outro_s < 1.0  # the speech fills the target: no long hold after the last words
    spoken = sum(s.narration_s for s in paced.timeline.scenes)
    assert spoken == pytest.approx(sum(s.narration_s for s in natural.timeline.scenes) / paced.timeline.tempo,
                                   rel=0.01)
    # captions follow the slower speech: the last caption ends near the last word, not at the natural pace
    last = paced.timeline.scenes[-1]
    assert paced.captions[-1].end == pytest.approx(last.narration_start_s + last.narration_s, abs=0.6)


def test_loudness_is_normalised(narrated) -> None:  # type: ignore[no-untyped-def]
    natural, paced, _, _ = narrated
    for result in (natural, paced):
        integrated, peak = loudness(result.path)
        assert integrated == pytest.approx(-14.0, abs=1.0), integrated
        assert peak <= -1.0, peak
        assert result.loudness is not None and result.loudness.integrated_lufs < -15  # it was quieter before


def test_encoded_and_tagged_bt709(narrated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    natural, _, _, _ = narrated
    log = ffmpeg_log("-i", str(natural.path), "-c:v", "copy", "-an", "-bsf:v", "trace_headers", "-frames:v", "1",
                     "-f", "null", "-")
    for name in ("colour_primaries", "transfer_characteristics", "matrix_coefficients"):
        assert re.search(rf"{name}\s+\d+ = 1\b", log), name  # 1 = BT.709 in the H.264 VUI
    assert re.search(r"video_full_range_flag\s+\d = 0", log)
    assert "yuv420p(tv, bt709" in ffmpeg_log("-i", str(natural.path), "-f", "null", "-t", "0.1", "-")
    # the pixels use the BT.709 matrix, not only the tags: a flat red still's luma is the BT.709 value
    red = (200, 30, 30)
    result = compose(Script(scenes=[Scene(image=still(tmp_path / "red.png", red), duration_s=1.0, motion="none")]),
                     out_path=tmp_path / "red.mp4", preset=SMALL, x264_preset="ultrafast", captions=False)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(result.path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "yuv420p", "-"], capture_output=True, check=True).stdout
    luma = float(np.frombuffer(raw[: 360 * 640], dtype=np.uint8).mean())
    bt709 = 16 + 219 * (0.2126 * red[0] + 0.7152 * red[1] + 0.0722 * red[2]) / 255
    bt601 = 16 + 219 * (0.299 * red[0] + 0.587 * red[1] + 0.114 * red[2]) / 255
    assert abs(luma - bt709) < 2.5 < abs(luma - bt601), (luma, bt709, bt601)


def test_crossfade_zero_cuts_with_concat(tmp_path: Path) -> None:
    images = [still(tmp_path / f"c{i}.png", (250 * (i % 2), 40, 250 * (1 - i % 2))) for i in range(3)]
    script = Script(scenes=[Scene(image=img, duration_s=1.0, motion=m)
                            for img, m in zip(images, ("zoom_in", "pan_left", "none"), strict=True)])
    result = compose(script, out_path=tmp_path / "cut.mp4", preset=SMALL, x264_preset="ultrafast", crossfade_s=0)
    assert result.timeline.crossfade_frames == 0
    assert count_frames(result.path)[0] == result.timeline.total_frames == 90
    graph, _ = video_filter(result.timeline, captions_file=None, fonts_folder=None)
    assert "concat=n=3" in graph and "xfade" not in graph
    # a hard cut: the frame before the cut is all the first image, the frame after all the second
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(result.path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 640, 360, 3).astype(int)
    assert frames[29, ..., 0].mean() < 30 < 220 < frames[30, ..., 0].mean()


@pytest.mark.parametrize("bad", [-0.5, float("nan"), 3.5])
def test_bad_crossfade_is_refused_before_any_work(tmp_path: Path, bad: float) -> None:
    stages: list[str] = []
    script = Script(scenes=[Scene(image=still(tmp_path / "x.png", (9, 9, 9)), text="Hello.")])
    with pytest.raises(InvalidInput, match="crossfade") as err:
        compose(script, out_path=tmp_path / "x.mp4", preset=SMALL, voice_backend=SpyVoice(), crossfade_s=bad,
                progress=lambda s, p: stages.append(s))
    assert err.value.field == "crossfade_s" and stages == []


def test_relative_work_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    speech = tone(Path("speech.wav"), 1.5)
    script = Script(scenes=[Scene(image=still(Path("a.png"), (10, 200, 10)), audio=speech, caption="given audio"),
                            Scene(image=still(Path("b.png"), (200, 10, 10)), duration_s=1.0)],
                    music=music(Path("music.wav")))
    result = compose(script, out_path="out/rel.mp4", preset=SMALL, x264_preset="ultrafast", work_dir="work/rel",
                     narration_out="out/voice.wav")
    assert result.path == tmp_path / "out" / "rel.mp4" and probe(result.path).has_audio
    assert (tmp_path / "work" / "rel" / "mix.wav").is_file()  # kept, and where it was asked for
    assert (tmp_path / "out" / "voice.wav").is_file()


def test_tighten_narration_shortens_long_pauses_and_moves_timings(tmp_path: Path) -> None:
    src = tone(tmp_path / "gappy.wav", 3.0, gaps=((0.0, 0.4), (1.0, 1.8), (2.7, 3.0)))
    result = tighten_narration(src, tmp_path / "tight.wav", max_pause_s=0.2, margin_s=0.03)
    assert result is not None
    seconds, moved = result
    # 0.6 s + 0.9 s of sound, one pause cut to 0.2 s, 30 ms margins at both ends
    assert seconds == pytest.approx(0.6 + 0.2 + 0.9 + 0.06, abs=0.03)
    assert moved(0.4) == pytest.approx(0.03, abs=0.02)
    assert moved(1.8) == pytest.approx(0.03 + 0.6 + 0.2, abs=0.03)
    assert [(round(s, 1), round(e, 1)) for s, e in silences(tmp_path / "tight.wav", min_s=0.25)] == []


def test_planning_places_narrations_end_to_end() -> None:
    script = Script(scenes=[Scene(image="a"), Scene(image="b"), Scene(image="c", duration_s=3.0), Scene(image="d")])
    tl = plan_timeline(script, [2.0, 1.0, 0.0, 1.5], preset=SMALL, crossfade_s=0.5)
    a, b, c, d = tl.scenes
    assert a.narration_start_s == pytest.approx(LEAD_S)
    assert b.narration_start_s - (a.narration_start_s + 2.0) == pytest.approx(PAUSE_S, abs=1 / 30)
    assert c.frames == 90 and c.narration_s == 0  # a silent scene keeps its own length
    assert tl.total_frames == sum(s.frames for s in tl.scenes) - 3 * tl.crossfade_frames
    # a target within reach slows the speech; past MIN_TEMPO the rest is held after the last words
    near = plan_timeline(replace(script, target_duration_s=tl.duration_s + 0.9), [2.0, 1.0, 0.0, 1.5], preset=SMALL,
                         crossfade_s=0.5)
    assert near.total_frames == round((tl.duration_s + 0.9) * 30) and near.tempo < 1 and near.outro_s < 0.7
    far = plan_timeline(replace(script, target_duration_s=30.0), [2.0, 1.0, 0.0, 1.5], preset=SMALL, crossfade_s=0.5)
    assert far.tempo == MIN_TEMPO and far.total_frames == 900 and far.outro_s > 20
