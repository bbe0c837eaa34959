"""Video composition with the ffmpeg binary shipped by imageio-ffmpeg: full-size renders, captions, limits."""

from __future__ import annotations

import subprocess
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ainfluencer.backends.voice import VoiceSettings
from ainfluencer.backends.voice.base import VoiceBackend, VoiceClip
from ainfluencer.backends.voice.piper import PiperBackend
from ainfluencer.errors import InvalidInput
from ainfluencer.media.video import RenderCancelled, Scene, Script, compose, get_preset, probe, read_frame
from ainfluencer.media.video.captions import CaptionStyle, group_lines, settle, to_ass, to_srt
from ainfluencer.media.video.compose import STAGES, plan_timeline, video_filter
from ainfluencer.media.video.presets import PLATFORMS, PRESETS, check_duration_and_size, get_platform
from ainfluencer.media.video.probe import count_frames, ffmpeg_exe

pytestmark = pytest.mark.nodb

TEXTS = [
    "Hi, I'm Nova, a virtual character made with AI.",
    "Today we tour a tiny studio where videos are built.",
    "Every picture here was generated, and we say so.",
    "Follow for more, and tell me what to make next!",
]
SMALL = replace(get_preset("short_vertical"), name="short_small", width=360, height=640)


def make_image(path: Path, seed: int, size: tuple[int, int] = (1024, 1536), mode: str = "RGB") -> Path:
    """A gradient with shapes: detailed enough for motion to show, no downloads."""
    w, h = size
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    base = rng.uniform(0, 255, 3)
    rgb = np.stack([(base[c] + 180 * (x if c == 0 else y) + 60 * np.sin(8 * (x + y) + c)) % 256 for c in range(3)],
                   axis=-1).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        cx, cy, r = int(rng.uniform(0, w)), int(rng.uniform(0, h)), int(rng.uniform(20, w / 6))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(v) for v in rng.uniform(0, 255, 3)))
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(Image.fromarray((x * y * 255 * np.ones((h, w))).astype(np.uint8)))
    im.save(path)
    return path


def make_music(path: Path, seconds: float = 9.0, rate: int = 44_100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((tone * 32767).astype(np.int16).tobytes())
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("video-assets")
    out = {f"img{i}": make_image(d / f"img{i}.png", i, size) for i, size in
           enumerate([(1024, 1536), (1536, 1024), (800, 800), (1200, 2000)])}
    out["alpha"] = make_image(d / "alpha.png", 9, (600, 900), mode="RGBA")
    out["music"] = make_music(d / "music.wav")
    return out


@pytest.fixture(scope="module")
def piper() -> PiperBackend:
    return PiperBackend()


def script_30s(assets: dict[str, Path], **kw: object) -> Script:
    scenes = [Scene(image=assets[f"img{i}"], text=t) for i, t in enumerate(TEXTS)]
    return Script(scenes=scenes, target_duration_s=30.0, music=assets["music"], **kw)  # type: ignore[arg-type]


class SpyVoice(VoiceBackend):
    """A backend that must not be called: proves a check happened before any synthesis."""

    name = "spy"

    def available(self) -> tuple[bool, str]:
        return True, ""

    def _synthesize(self, text: str, voice: VoiceSettings, out_path: Path) -> VoiceClip:
        raise AssertionError("synthesis started although the input was already known to be bad")


# --- the 30-second short, full size --------------------------------------------------------------------


@pytest.fixture(scope="module")
def short30(assets: dict[str, Path], piper: PiperBackend, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("short30")
    events: list[tuple[str, float]] = []
    captioned = compose(script_30s(assets), out_path=d / "short.mp4", voice_backend=piper,
                        x264_preset="superfast", progress=lambda s, p: events.append((s, p)))
    plain = compose(script_30s(assets), out_path=d / "plain.mp4", voice_backend=piper, x264_preset="superfast",
                    captions=False)
    return captioned, plain, events


def test_short30_duration_size_rate_codecs(short30) -> None:  # type: ignore[no-untyped-def]
    result, _, _ = short30
    info = probe(result.path)
    assert info.duration_s == pytest.approx(30.0, abs=0.2)
    assert (info.width, info.height) == (1080, 1920)
    assert info.fps == 30
    assert info.has_audio and info.audio_codec == "aac" and info.audio_rate == 48000
    assert info.video_codec == "h264" and info.video_profile == "High" and info.pix_fmt == "yuv420p"
    assert info.faststart is True
    frames, _ = count_frames(result.path)
    assert frames == 900
    assert result.timeline.total_frames == 900
    assert result.narration_backend == "piper"


def test_short30_progress_per_stage(short30) -> None:  # type: ignore[no-untyped-def]
    _, _, events = short30
    stages = [s for s, _ in events]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == list(STAGES)
    for stage in STAGES:
        pcts = [p for s, p in events if s == stage]
        assert pcts[0] == 0.0 and pcts[-1] == 100.0 and pcts == sorted(pcts)
    assert len([p for s, p in events if s == "encode"]) > 5  # parsed from ffmpeg -progress, not just 0/100


def test_short30_audio_is_narration_over_music(short30) -> None:  # type: ignore[no-untyped-def]
    result, _, _ = short30
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(result.path), "-ac", "1", "-ar", "8000", "-f", "s16le",
                          "-"], capture_output=True, check=True).stdout
    audio = np.frombuffer(out, dtype=np.int16).astype(np.float64) / 32768
    assert len(audio) / 8000 == pytest.approx(30.0, abs=0.2)
    first, last = result.timeline.scenes[0], result.timeline.scenes[-1]
    speech = audio[int((first.narration_start_s + 0.3) * 8000): int((first.narration_start_s + 1.5) * 8000)]
    quiet_from = last.narration_start_s + last.narration_s + 0.3  # after the last words, before the fade-out
    assert quiet_from < 27.5
    music_only = audio[int(quiet_from * 8000): int(28.0 * 8000)]
    assert np.sqrt(np.mean(speech**2)) > 3 * np.sqrt(np.mean(music_only**2)) > 0.001
    assert (np.abs(audio) > 0.99).mean() < 0.001  # no clipping from voice + music


def test_short30_captions_are_visible(short30) -> None:  # type: ignore[no-untyped-def]
    captioned, plain, _ = short30
    assert captioned.captions and captioned.srt.startswith("1\n")
    line = captioned.captions[1]
    at = (line.start + line.end) / 2
    a = read_frame(captioned.path, at).astype(np.int16)
    b = read_frame(plain.path, at).astype(np.int16)
    left, top, right, bottom = CaptionStyle.for_preset(get_preset("short_vertical")).region()
    in_region = np.abs(a[top:bottom, left:right] - b[top:bottom, left:right]).mean()
    above = np.abs(a[: top - 100] - b[: top - 100]).mean()
    assert above < 2.0, above  # the same render elsewhere: encoder noise only
    assert in_region > 10 * max(above, 0.5), (in_region, above)
    # white text with a black outline: both extremes appear in the band
    band = a[top:bottom, left:right]
    assert (band.min(axis=-1) > 235).sum() > 500 and (band.max(axis=-1) < 30).sum() > 200


# --- the 5-minute horizontal video ----------------------------------------------------------------------


@pytest.mark.slow
def test_five_minute_horizontal(assets: dict[str, Path], piper: PiperBackend, tmp_path: Path) -> None:
    images = [assets[f"img{i % 4}"] for i in range(10)]
    scenes = [Scene(image=img, text=f"This is part {i + 1} of a longer video about the studio.")
              for i, img in enumerate(images)]
    result = compose(Script(scenes=scenes, target_duration_s=300.0, music=assets["music"]),
                     out_path=tmp_path / "long.mp4", preset="long_horizontal", voice_backend=piper,
                     x264_preset="ultrafast", supersample=1.0)
    info = probe(result.path)
    assert (info.width, info.height) == (1920, 1080)
    assert info.duration_s == pytest.approx(300.0, abs=0.5)
    assert info.has_audio and info.video_codec == "h264" and info.faststart
    assert info.size_bytes <= get_preset("long_horizontal").max_size_bytes(300.0)
    print(f"5-minute render: {result.stage_seconds}")


# --- smaller renders: given audio, alpha images, orientation, cancellation ------------------------------


def tone_wav(path: Path, seconds: float, rate: int = 16_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((0.5 * np.sin(2 * np.pi * 330 * t) * 32767).astype(np.int16).tobytes())
    return path


def test_given_audio_no_voice_backend_and_explicit_durations(assets: dict[str, Path], tmp_path: Path) -> None:
    narration = tone_wav(tmp_path / "n.wav", 2.0)
    script = Script(scenes=[
        Scene(image=assets["img0"], audio=narration, caption="A caption from given audio", motion="pan_up"),
        Scene(image=assets["alpha"], duration_s=2.0, motion="none"),
        Scene(image=assets["img1"], text="", caption="", motion="zoom_out"),
    ])
    result = compose(script, out_path=tmp_path / "g.mp4", preset=SMALL, x264_preset="ultrafast", crossfade_s=0.4)
    frames = [s.frames for s in result.timeline.scenes]
    assert frames[1] == 60  # its own duration, exactly
    assert result.duration_s == pytest.approx((sum(frames) - 2 * 12) / 30, abs=0.1)
    assert result.narration_backend is None
    assert [c.text for c in result.captions] == ["A caption from given audio"]
    info = probe(result.path)
    assert (info.width, info.height, info.has_audio) == (360, 640, True)


def test_silent_script_still_has_an_audio_track(assets: dict[str, Path], tmp_path: Path) -> None:
    script = Script(scenes=[Scene(image=assets["img2"], duration_s=2.0)])
    result = compose(script, out_path=tmp_path / "s.mp4", preset=SMALL, x264_preset="ultrafast")
    info = probe(result.path)
    assert info.has_audio and info.duration_s == pytest.approx(2.0, abs=0.1)
    assert result.captions == []


def test_exif_rotated_image_is_upright(tmp_path: Path) -> None:
    src = Image.new("RGB", (400, 200), (255, 0, 0))
    src.paste((0, 0, 255), (0, 0, 200, 200))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display: blue ends up on top
    path = tmp_path / "rot.jpg"
    src.save(path, exif=exif)
    preset = replace(SMALL, width=200, height=400)
    result = compose(Script(scenes=[Scene(image=path, duration_s=1.0, motion="none")]), out_path=tmp_path / "r.mp4",
                     preset=preset, x264_preset="ultrafast")
    frame = read_frame(result.path, 0.5).astype(int)
    top, bottom = frame[:150].mean(axis=(0, 1)), frame[-150:].mean(axis=(0, 1))
    assert top[2] > 150 > top[0] and bottom[0] > 150 > bottom[2]


@pytest.mark.parametrize("per_pass", [100, 1])
def test_cancel_stops_the_render(assets: dict[str, Path], tmp_path: Path, per_pass: int) -> None:
    stop = {"now": False}

    def progress(stage: str, pct: float) -> None:
        if stage == "encode" and pct > 0:
            stop["now"] = True

    script = Script(scenes=[Scene(image=assets[f"img{i}"], duration_s=10.0) for i in range(3)])
    with pytest.raises(RenderCancelled, match="during encode"):
        compose(script, out_path=tmp_path / "c.mp4", preset=SMALL, x264_preset="ultrafast", progress=progress,
                cancel=lambda: stop["now"], scenes_per_pass=per_pass)
    assert not (tmp_path / "c.mp4").exists()
    assert not list(tmp_path.glob(".*partial*"))


def test_scene_passes_render_the_same_video(assets: dict[str, Path], tmp_path: Path) -> None:
    # long scripts are rendered a few scenes per ffmpeg pass (bounded memory) and piped into one encoder;
    # the result must be the frames a single pass makes, crossfades across pass boundaries included
    preset = replace(get_preset("long_horizontal"), width=320, height=180)
    images = [assets[f"img{i % 4}"] for i in range(5)]
    script = Script(scenes=[Scene(image=img, duration_s=1.5 + 0.3 * i, caption=f"caption {i}")
                            for i, img in enumerate(images)])
    events: list[tuple[str, float]] = []
    one = compose(script, out_path=tmp_path / "one.mp4", preset=preset, x264_preset="ultrafast",
                  scenes_per_pass=100)
    split = compose(script, out_path=tmp_path / "split.mp4", preset=preset, x264_preset="ultrafast",
                    scenes_per_pass=2, progress=lambda s, p: events.append((s, p)))
    assert count_frames(one.path)[0] == count_frames(split.path)[0] == one.timeline.total_frames
    assert probe(split.path).has_audio
    for t in np.linspace(0.05, one.duration_s - 0.1, 10):
        a = read_frame(one.path, float(t)).astype(np.int16)
        b = read_frame(split.path, float(t)).astype(np.int16)
        assert np.abs(a - b).mean() < 2.0, t
    assert [p for s, p in events if s == "encode"][-1] == 100.0


# --- bad input: clear errors before rendering -----------------------------------------------------------


def expect_refusal(script: Script, tmp_path: Path, match: str, **kw: object) -> None:
    stages: list[str] = []
    with pytest.raises(InvalidInput, match=match):
        compose(script, out_path=tmp_path / "bad.mp4", voice_backend=kw.pop("voice_backend", SpyVoice()),
                progress=lambda s, p: stages.append(s), **kw)  # type: ignore[arg-type]
    assert "encode" not in stages and "scenes" not in stages
    assert not (tmp_path / "bad.mp4").exists()


def test_missing_image(assets: dict[str, Path], tmp_path: Path) -> None:
    script = Script(scenes=[Scene(image=assets["img0"], text="Hi."), Scene(image=tmp_path / "nope.png", text="Hi.")])
    expect_refusal(script, tmp_path, r"scene 2: image nope.png does not exist")


def test_not_an_image(assets: dict[str, Path], tmp_path: Path) -> None:
    fake = tmp_path / "video.png"
    fake.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    expect_refusal(Script(scenes=[Scene(image=fake, text="Hi.")]), tmp_path, r"scene 1: video.png is not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    expect_refusal(Script(scenes=[Scene(image=empty)]), tmp_path, r"empty.jpg is not an image")


def test_too_long_for_the_preset(assets: dict[str, Path], tmp_path: Path) -> None:
    scenes = [Scene(image=assets["img0"], text="Hi.")]
    expect_refusal(Script(scenes=scenes, target_duration_s=61), tmp_path, r"allows at most 60 s")
    expect_refusal(Script(scenes=[Scene(image=assets["img0"], duration_s=45), Scene(image=assets["img1"],
                                                                                    duration_s=30)]),
                   tmp_path, r"add up to 75 s; short_vertical allows 60 s")
    long_text = "This sentence is spoken slowly and at length. " * 40  # at least ~75 s at any speed
    expect_refusal(Script(scenes=[Scene(image=assets["img0"], text=long_text)]), tmp_path,
                   r"takes at least \d+ s to say")
    expect_refusal(Script(scenes=scenes, target_duration_s=200), tmp_path, r"at most 180 s",
                   preset=replace(get_preset("short_vertical"), max_duration_s=600), platform="youtube_shorts")


def test_unsupported_preset_and_platform(assets: dict[str, Path], tmp_path: Path) -> None:
    script = Script(scenes=[Scene(image=assets["img0"], text="Hi.")])
    expect_refusal(script, tmp_path, r"unsupported video preset 'square_4k'; choose one of: long_horizontal, "
                                     r"short_vertical", preset="square_4k")
    expect_refusal(script, tmp_path, r"unknown platform 'myspace'", platform="myspace")
    expect_refusal(script, tmp_path, r"vertical or square video", preset="long_horizontal",
                   platform="youtube_shorts")
    expect_refusal(script, tmp_path, r"at most 1920 px wide",
                   preset=replace(get_preset("long_horizontal"), width=3840, height=2160), platform="instagram_reels")
    expect_refusal(script, tmp_path, r"takes 23-60 fps", preset=replace(SMALL, fps=15), platform="tiktok")


def test_platform_size_limit_before_rendering(assets: dict[str, Path], tmp_path: Path) -> None:
    script = Script(scenes=[Scene(image=assets["img0"], text="Hi.")], target_duration_s=60)
    expect_refusal(script, tmp_path, r"may reach \d+ MB; Telegram \(Bot API upload\) takes at most 50 MB",
                   platform="telegram")


def test_narration_longer_than_the_scene_is_refused_before_rendering(assets: dict[str, Path], piper: PiperBackend,
                                                                   tmp_path: Path) -> None:
    script = Script(scenes=[Scene(image=assets["img0"], text=TEXTS[0], duration_s=1.0)])
    expect_refusal(script, tmp_path, r"scene 1 lasts 1 s but its narration needs", voice_backend=piper, preset=SMALL)
    script = Script(scenes=[Scene(image=assets["img0"], text=TEXTS[0])], target_duration_s=1.5)
    expect_refusal(script, tmp_path, r"narration needs [\d.]+ s but the target is 1.5 s", voice_backend=piper,
                   preset=SMALL)


def test_other_bad_input(assets: dict[str, Path], tmp_path: Path) -> None:
    expect_refusal(Script(scenes=[]), tmp_path, r"no scenes")
    img = assets["img0"]
    expect_refusal(Script(scenes=[Scene(image=img)], music=tmp_path / "missing.mp3"), tmp_path,
                   r"music missing.mp3 does not exist")
    not_audio = tmp_path / "music.mp3"
    not_audio.write_text("not audio")
    expect_refusal(Script(scenes=[Scene(image=img)], music=not_audio), tmp_path, r"not a media file")
    expect_refusal(Script(scenes=[Scene(image=img, motion="spin")]), tmp_path, r"unknown motion 'spin'")  # type: ignore[arg-type]
    expect_refusal(Script(scenes=[Scene(image=img, text="Hi.")]), tmp_path, r"cannot change pitch",
                   voice_backend=PiperBackend(), voice=VoiceSettings(pitch=3))
    expect_refusal(Script(scenes=[Scene(image=img, duration_s=-1)]), tmp_path, r"positive number")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(tiny)
    expect_refusal(Script(scenes=[Scene(image=tiny)]), tmp_path, r"at least 16 px")


# --- pieces ---------------------------------------------------------------------------------------------


def test_timeline_is_whole_frames_and_hits_the_target() -> None:
    preset = get_preset("short_vertical")
    script = Script(scenes=[Scene(image="a"), Scene(image="b", duration_s=4.0), Scene(image="c")],
                    target_duration_s=17.3)
    tl = plan_timeline(script, [3.1, 0.0, 2.2], preset=preset, crossfade_s=0.5)
    assert tl.total_frames == round(17.3 * 30)
    assert tl.scenes[1].frames == 120
    assert [s.start_frame for s in tl.scenes] == [0, tl.scenes[0].frames - 15, tl.scenes[0].frames + 120 - 30]
    graph, label = video_filter(tl, captions_file="captions.ass", fonts_folder="fonts")
    assert label == "vout" and graph.count("xfade=") == 2 and "yuv444p" not in graph
    assert graph.count("loop=loop=") + graph.count("zoompan=") == 3
    assert f"offset={tl.scenes[2].start_frame / 30:.6f}" in graph


def test_captions_lines_ass_and_srt() -> None:
    from ainfluencer.backends.voice.base import estimate_word_timings

    text = "Hi, I'm Nova, a virtual character. Everything here is generated by AI {and} says so."
    lines = settle(group_lines(estimate_word_timings(text.split(), 0.5, 6.0), max_chars=26))
    assert all(len(c.text) <= 26 for c in lines)
    assert lines[0].text == "Hi, I'm Nova, a" and lines[1].text == "virtual character."
    assert all(a.end <= b.start for a, b in zip(lines, lines[1:], strict=False))
    style = CaptionStyle.for_preset(get_preset("short_vertical"))
    ass = to_ass(lines, style)
    assert "PlayResX: 1080" in ass and "PlayResY: 1920" in ass and "DejaVu Sans" in ass
    assert "{and}" not in ass and "(and)" in ass
    srt = to_srt(lines)
    assert srt.startswith("1\n00:00:00,500 --> ") and "virtual character." in srt


def test_presets_and_platforms_are_data() -> None:
    assert (PRESETS["short_vertical"].width, PRESETS["short_vertical"].height, PRESETS["short_vertical"].fps) == (
        1080, 1920, 30)
    assert PRESETS["short_vertical"].max_duration_s == 60
    assert (PRESETS["long_horizontal"].width, PRESETS["long_horizontal"].height) == (1920, 1080)
    assert PLATFORMS["youtube_shorts"].max_duration_s == 180
    assert all(p.max_size_bytes is None or p.max_size_bytes > 0 for p in PLATFORMS.values())
    check_duration_and_size(PRESETS["short_vertical"], get_platform("instagram_reels"), 30.0)
    with pytest.raises(InvalidInput):
        check_duration_and_size(PRESETS["short_vertical"], get_platform("instagram_reels"), 2.0)


def test_probe_refuses_non_media(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"definitely not a video")
    with pytest.raises(InvalidInput, match="not a media file"):
        probe(junk)
    with pytest.raises(InvalidInput, match="does not exist"):
        probe(tmp_path / "missing.mp4")
