"""Media: a 30 s 1080×1920 short (narration, captions, music, four images) against a bare ffmpeg encode of
the same timeline in the same run, and Piper's real-time factor."""

from __future__ import annotations

import statistics
import tempfile
import time
import wave
from pathlib import Path

from bench.harness import emit

TEXTS = [
    "Hi, I'm Nova, a virtual character, and everything you see here is made with AI.",
    "Today I'm showing you how a tiny studio turns a script into a short video.",
    "Every scene moves slowly, the captions follow my voice, and music sits underneath.",
    "Follow along for more behind the scenes, and tell me what to make next!",
]
RTF_TEXT = (
    "Piper turns text into speech on an ordinary processor. This paragraph is long enough to measure "
    "how many seconds of computation one second of speech costs. A smaller number is better, and a "
    "value below one means faster than real time."
)


def _images(folder: Path) -> list[Path]:
    from PIL import Image, ImageDraw

    out = []
    for i in range(4):
        im = Image.new("RGB", (1024, 1536))
        d = ImageDraw.Draw(im)
        for y in range(0, 1536, 6):
            d.rectangle([0, y, 1024, y + 6], fill=((y // 7 + 50 * i) % 256, (90 * i) % 256, 255 - (y // 7) % 256))
        for k in range(9):
            d.ellipse([110 * k, 160 * k, 110 * k + 180, 160 * k + 180], fill=(255, 240, (40 * k) % 256))
        path = folder / f"scene{i}.png"
        im.save(path)
        out.append(path)
    return out


def _music(path: Path, seconds: float = 12.0, rate: int = 44_100) -> Path:
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    tone = 0.25 * np.sin(2 * np.pi * 196 * t) + 0.15 * np.sin(2 * np.pi * 293.66 * t)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((tone * 32767).astype(np.int16).tobytes())
    return path


def piper_rtf(folder: Path) -> float:
    """Synthesis seconds per second of speech (model bytes cached, as in a running worker)."""
    from ainfluencer.backends.voice import VoiceSettings
    from ainfluencer.backends.voice.piper import PiperBackend

    backend = PiperBackend()
    backend.synthesize("Warm up.", voice=VoiceSettings(), out_path=folder / "warm.wav")
    ratios = []
    for seed in range(3):
        t0 = time.perf_counter()
        clip = backend.synthesize(RTF_TEXT, voice=VoiceSettings(seed=seed), out_path=folder / f"rtf{seed}.wav")
        ratios.append((time.perf_counter() - t0) / clip.duration_s)
    return statistics.median(ratios)


def _bare(result, images: list[Path], work: Path, music: Path, out: Path) -> float:  # type: ignore[no-untyped-def]
    """One ffmpeg command, the same filtergraph from raw images, pre-made narration and the same encoder."""
    import subprocess

    from ainfluencer.media.video.compose import audio_filter, encode_args, music_gain, video_filter, voice_gain_db
    from ainfluencer.media.video.presets import get_preset
    from ainfluencer.media.video.probe import ffmpeg_exe

    preset = get_preset("short_vertical")
    tl = result.timeline
    size = (round(preset.width * 1.5 / 2) * 2, round(preset.height * 1.5 / 2) * 2)
    vgraph, vlabel = video_filter(tl, captions_file="captions.ass", fonts_folder="fonts", prescale=size)
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    for img in images:
        args += ["-i", str(img)]
    from ainfluencer.media.video.probe import audio_level

    narr = [(len(images) + k, s.narration_start_s, voice_gain_db(*audio_level(work / f"narration_{k}.wav")))
            for k, s in enumerate(tl.scenes)]
    for k in range(len(tl.scenes)):
        args += ["-i", str(work / f"narration_{k}.wav")]
    music_idx = len(images) + len(tl.scenes)
    args += ["-stream_loop", "-1", "-i", str(music)]
    agraph, alabel = audio_filter(tl, narration_inputs=narr, music_input=music_idx,
                                  music_gain_db=music_gain(audio_level(music)[0], -18.0), duck_music=True)
    args += ["-filter_complex", f"{vgraph};{agraph}", "-map", f"[{vlabel}]", "-map", f"[{alabel}]",
             *encode_args(preset, x264_preset="veryfast", crf=None, total_frames=tl.total_frames),
             "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", str(out)]
    t0 = time.perf_counter()
    subprocess.run(args, cwd=work, check=True)
    return time.perf_counter() - t0


def main() -> None:
    """Emit short30_compose_s, short30_vs_bare_ffmpeg_ratio and piper_rtf."""
    from ainfluencer.backends.voice import VoiceSettings
    from ainfluencer.backends.voice.piper import PiperBackend
    from ainfluencer.media.video import Scene, Script, compose

    with tempfile.TemporaryDirectory(prefix="ainf-bench-media-") as tmp:
        folder = Path(tmp)
        images = _images(folder)
        music = _music(folder / "music.wav")
        script = Script(scenes=[Scene(image=p, text=t) for p, t in zip(images, TEXTS, strict=True)],
                        target_duration_s=30.0, music=music)
        voice = PiperBackend()  # a worker keeps its backend (and the cached model) between jobs
        voice.synthesize("Warm up.", voice=VoiceSettings(), out_path=folder / "warm.wav")
        ours, bare = [], []
        for round_ in range(2):
            work = folder / f"work{round_}"
            t0 = time.perf_counter()
            result = compose(script, out_path=folder / f"ours{round_}.mp4", work_dir=work, voice_backend=voice)
            ours.append(time.perf_counter() - t0)
            bare.append(_bare(result, images, work, music, folder / f"bare{round_}.mp4"))
        emit("short30_compose_s", statistics.median(ours), "s")
        emit("short30_bare_ffmpeg_s", statistics.median(bare), "s")
        emit("short30_vs_bare_ffmpeg_ratio", statistics.median(ours) / statistics.median(bare), "x")
        emit("piper_rtf", piper_rtf(folder), "x")


if __name__ == "__main__":
    main()
