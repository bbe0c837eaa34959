"""Media: a 30 s 1080×1920 short (narration, captions, music, four images) against a bare ffmpeg encode of
the same timeline and against a static encode of the same stills and audio in the same run, its loudness,
dead air and picture quality (SSIM against a lossless render), Piper's real-time factor, face scoring and
perceptual hashing per 512 px image, and the time our image pipeline (gates, provenance, vault ingest, job
and asset rows) adds per image on top of an image backend that answers in a fixed time (a local fake
Automatic1111 server)."""

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


def _portrait_512() -> object:
    """A real face photo (skimage's astronaut) at 512×512."""
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((512, 512))


def face_score_ms(runs: int = 7) -> float:
    """Median milliseconds to detect, align and embed the face of one 512 px image (models already loaded)."""
    from ainfluencer.media.quality.face import get_face_scorer

    scorer = get_face_scorer()
    image = _portrait_512()
    scorer.embed(image)  # loads the models once, as a running worker has them
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        scorer.embed(image)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def phash_ms(runs: int = 15) -> float:
    """Median milliseconds for the perceptual hashes (pHash + dHash) of one 512 px image."""
    from ainfluencer.media.quality.duplicates import hash_image

    image = _portrait_512()
    hash_image(image)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        hash_image(image)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


FAKE_BACKEND_S = 0.2  # the fake Automatic1111 server takes exactly this long per txt2img call


def _fake_a1111() -> tuple[object, int]:
    """A local HTTP server speaking the few /sdapi/v1 calls a generation makes; txt2img answers in 200 ms."""
    import base64
    import io
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import numpy as np
    from PIL import Image

    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            return

        def _send(self, body: dict[str, object]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.startswith("/sdapi/v1/options"):
                self._send({"sd_model_checkpoint": "fake-turbo.safetensors [0123456789]"})
            elif self.path.startswith("/sdapi/v1/progress"):
                self._send({"progress": 0.5, "state": {"sampling_step": 2, "sampling_steps": 4}})
            else:
                self._send({})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            counter["n"] += 1
            rng = np.random.default_rng(counter["n"])
            w, h = int(body.get("width") or 512), int(body.get("height") or 512)
            pixels = (rng.random((h // 8, w // 8, 3)) * 255).astype("uint8")
            buf = io.BytesIO()
            Image.fromarray(pixels).resize((w, h)).save(buf, "PNG")  # distinct per call: no duplicate shortcut
            time.sleep(FAKE_BACKEND_S)
            info = json.dumps({"seed": counter["n"], "all_seeds": [counter["n"]], "sd_model_name": "fake-turbo"})
            self._send({"images": [base64.b64encode(buf.getvalue()).decode()], "info": info})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def image_overhead_ms(folder: Path, jobs: int = 6) -> float:
    """Median job time per 512 px image minus the backend's fixed 200 ms: what our pipeline adds."""
    from ainfluencer.config import Settings
    from ainfluencer.db import migrate
    from ainfluencer.db.models import Character, User
    from ainfluencer.jobs import runner
    from ainfluencer.runtime import Runtime
    from ainfluencer.services import auth, studio

    server, port = _fake_a1111()
    runtime = Runtime.build(Settings(data_dir=folder / "data"))
    try:
        migrate.upgrade(runtime.db)
        with runtime.db.session() as s:
            user = auth.create_user(s, email="bench@example.com", password="correct horse battery", owner=True,
                                    verified=True)
            character = Character(user_id=user.id, name="Bench", handle="bench", persona={})
            s.add(character)
            s.flush()
            studio.save_backend_config(s, user=user, runtime=runtime, order=["automatic1111"],
                                       backends={"automatic1111": {"base_url": f"http://127.0.0.1:{port}"}})
            ids = (user.id, character.id)
        times = []
        for i in range(jobs + 1):
            with runtime.db.session() as s:
                owner = s.get(User, ids[0])
                assert owner is not None
                studio.request_generation(s, user=owner, req=studio.GenerationRequest(
                    character_id=ids[1], brief=f"bench {i}", width=512, height=512, seed=i))
            t0 = time.perf_counter()
            status = runner.run_one(runtime, worker="bench")
            elapsed = time.perf_counter() - t0
            if status is None or status.value != "succeeded":
                raise RuntimeError(f"the bench generation job ended {status}")
            if i:  # the first job loads the face models
                times.append(elapsed)
        return (statistics.median(times) - FAKE_BACKEND_S) * 1000
    finally:
        runtime.close()
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]


def _ffmpeg(args: list[str], cwd: Path) -> float:
    """Run one ffmpeg command and return its wall time."""
    import subprocess

    from ainfluencer.media.video.probe import ffmpeg_exe

    t0 = time.perf_counter()
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], cwd=cwd,
                   check=True)
    return time.perf_counter() - t0


def _audio_args(result, mix: Path, first_input: int) -> tuple[list[str], str, str]:  # type: ignore[no-untyped-def]
    """The mix as the next input, and the same loudnorm second pass our encode runs."""
    from ainfluencer.media.video.presets import get_preset

    rate = get_preset("short_vertical").audio_rate
    if result.loudness is None:
        return ["-i", str(mix)], "", f"{first_input}:a"
    return ["-i", str(mix)], f";[{first_input}:a]{result.loudness.filter(sample_rate=rate)}[aout]", "[aout]"


def _bare(result, images: list[Path], work: Path, music: Path, out: Path) -> float:  # type: ignore[no-untyped-def]
    """One ffmpeg command, the same filtergraph from raw images, pre-made narration and the same encoder."""
    from ainfluencer.media.video.compose import (
        NarrationInput,
        audio_filter,
        encode_args,
        motion_size,
        music_gain,
        video_filter,
        voice_gain_db,
    )
    from ainfluencer.media.video.presets import get_preset
    from ainfluencer.media.video.probe import audio_level

    preset = get_preset("short_vertical")
    tl = result.timeline
    vgraph, vlabel = video_filter(tl, captions_file="captions.ass", fonts_folder="fonts",
                                  prescale=motion_size(preset.width, preset.height, 0.12))
    args: list[str] = []
    for img in images:
        args += ["-i", str(img)]
    narr = [NarrationInput(len(images) + k, s.narration_start_s, voice_gain_db(*audio_level(s.narration)),
                           s.trim_start_s, s.trim_end_s) for k, s in enumerate(tl.scenes) if s.narration]
    for s in tl.scenes:
        if s.narration:
            args += ["-i", str(s.narration)]
    music_idx = len(images) + len(narr)
    args += ["-stream_loop", "-1", "-i", str(music)]
    agraph, alabel, _ = audio_filter(tl, narration_inputs=narr, music_input=music_idx,
                                     music_gain_db=music_gain(audio_level(music)[0], -18.0), duck_music=True)
    norm = ""
    if result.loudness is not None:
        norm = f";[{alabel}]{result.loudness.filter(sample_rate=preset.audio_rate)}[aout]"
        alabel = "aout"
    args += ["-filter_complex", f"{vgraph};{agraph}{norm}", "-map", f"[{vlabel}]", "-map", f"[{alabel}]",
             *encode_args(preset, x264_preset="veryfast", crf=None, total_frames=tl.total_frames),
             "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", str(out)]
    return _ffmpeg(args, work)


def _static(result, work: Path, out: Path) -> float:  # type: ignore[no-untyped-def]
    """The same stills and audio with the same encoder settings, no motion and no captions: each still scaled
    once, looped for its scene and the scenes concatenated."""
    from ainfluencer.media.video.compose import TO_BT709, encode_args
    from ainfluencer.media.video.presets import get_preset

    preset = get_preset("short_vertical")
    tl = result.timeline
    fps, w, h, xf = tl.fps, tl.width, tl.height, tl.crossfade_frames
    parts, args = [], []
    # without crossfades the scenes do not overlap: each one shows for its share of the timeline
    lengths = [s.frames - (xf if i < len(tl.scenes) - 1 else 0) for i, s in enumerate(tl.scenes)]
    for i, (s, frames) in enumerate(zip(tl.scenes, lengths, strict=True)):
        args += ["-i", str(s.image)]
        parts.append(f"[{i}:v]{TO_BT709},scale={w}:{h},loop=loop={frames - 1}:size=1:start=0,"
                     f"settb=1/{fps},setpts=N,fps={fps}:eof_action=pass,setsar=1[s{i}]")
    parts.append("".join(f"[s{i}]" for i in range(len(tl.scenes))) + f"concat=n={len(tl.scenes)}:v=1:a=0[v]")
    audio_in, anorm, amap = _audio_args(result, work / "mix.wav", len(tl.scenes))
    args += [*audio_in, "-filter_complex", ";".join(parts) + anorm, "-map", "[v]", "-map", amap,
             *encode_args(preset, x264_preset="veryfast", crf=None, total_frames=tl.total_frames),
             "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", str(out)]
    return _ffmpeg(args, work)


def _zoompan_graph(tl, size: tuple[int, int], amount: float = 0.12) -> str:  # type: ignore[no-untyped-def]
    """The previous composer's motion (zoompan at 4:4:4 on 1.5x stills, xfade), kept here as a quality reference."""
    w, h, fps, xf = tl.width, tl.height, tl.fps, tl.crossfade_frames
    parts = []
    for s in tl.scenes:
        p = f"(on/{max(1, s.frames - 1)})"
        z, x, y = {
            "zoom_in": (f"1+{amount}*{p}", "(iw-iw/zoom)/2", "(ih-ih/zoom)/2"),
            "zoom_out": (f"{1 + amount}-{amount}*{p}", "(iw-iw/zoom)/2", "(ih-ih/zoom)/2"),
            "pan_right": (f"{1 + amount}", f"(iw-iw/zoom)*{p}", "(ih-ih/zoom)/2"),
            "pan_left": (f"{1 + amount}", f"(iw-iw/zoom)*(1-{p})", "(ih-ih/zoom)/2"),
        }.get(s.motion, ("1", "0", "0"))
        parts.append(f"[{s.index}:v]scale={size[0]}:{size[1]}:force_original_aspect_ratio=increase,"
                     f"crop={size[0]}:{size[1]},format=rgb24,scale=out_color_matrix=bt709:out_range=tv,"
                     f"format=yuv444p,zoompan=z='{z}':x='{x}':y='{y}':d={s.frames}:s={w}x{h}:fps={fps},"
                     f"setsar=1,format=yuv420p[v{s.index}]")
    label = "v0"
    for s in tl.scenes[1:]:
        parts.append(f"[{label}][v{s.index}]xfade=transition=fade:duration={xf / fps:.6f}:"
                     f"offset={s.start_frame / fps:.6f}[x{s.index}]")
        label = f"x{s.index}"
    return ";".join(parts) + f";[{label}]null[vout]"


def _ideal_zoom_frame(image: Path, size: tuple[int, int], amount: float, zoom: float):  # type: ignore[no-untyped-def]
    """The exact centred zoom of ``image`` (float crop box, Lanczos), as luma: what any motion graph approximates."""
    import numpy as np
    from PIL import Image, ImageOps

    w, h = size
    with Image.open(image) as im:
        canvas = ImageOps.fit(im.convert("RGB"), (round(w * (1 + amount) * 2), round(h * (1 + amount) * 2)),
                             method=Image.Resampling.LANCZOS)
    cw, ch = canvas.size
    vw, vh = cw / zoom, ch / zoom  # zoom 1 shows the whole working still, 1 + amount a frame-sized part of it
    box = ((cw - vw) / 2, (ch - vh) / 2, (cw + vw) / 2, (ch + vh) / 2)
    frame = canvas.resize((w, h), Image.Resampling.LANCZOS, box=box)
    rgb = np.asarray(frame, dtype=np.float64)
    return 16 + 219 * (rgb @ np.array([0.2126, 0.7152, 0.0722])) / 255  # BT.709 limited-range luma


def _luma_frames(path: Path, indices: list[int], size: tuple[int, int]):  # type: ignore[no-untyped-def]
    import subprocess

    import numpy as np

    from ainfluencer.media.video.probe import ffmpeg_exe

    picks = "+".join(f"eq(n\\,{i})" for i in indices)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", f"select='{picks}'", "-fps_mode",
                          "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True,
                         check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, size[1], size[0]).astype(np.float64)


def quality(result, images: list[Path], work: Path, step: int = 15) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Mean SSIM (luma) of the first scene's zoom against an uncompressed ideal render of it (exact float
    crop of the original image, Lanczos): (this composer's scale/crop graph, the previous zoompan graph on
    1.5x stills at 4:4:4), both encoded with our settings, without captions."""
    from skimage.metrics import structural_similarity

    from ainfluencer.media.video.compose import encode_args, motion_size, video_filter
    from ainfluencer.media.video.presets import get_preset

    preset = get_preset("short_vertical")
    tl = result.timeline
    first = tl.scenes[0]
    assert first.motion == "zoom_in"
    frames = tl.scenes[1].start_frame  # before the first crossfade
    size = (tl.width, tl.height)
    inputs: list[str] = []
    for img in images:
        inputs += ["-i", str(img)]
    enc = encode_args(preset, x264_preset="veryfast", crf=None, total_frames=frames)
    enc = enc[: enc.index("-movflags")]
    old_out, new_out = work / "zoompan.mp4", work / "scalecrop.mp4"
    big = (round(preset.width * 1.5 / 2) * 2, round(preset.height * 1.5 / 2) * 2)
    _ffmpeg([*inputs, "-filter_complex", _zoompan_graph(tl, big), "-map", "[vout]", *enc, str(old_out)], work)
    new, label = video_filter(tl, captions_file=None, fonts_folder=None,
                              prescale=motion_size(preset.width, preset.height, 0.12))
    _ffmpeg([*inputs, "-filter_complex", new, "-map", f"[{label}]", *enc, str(new_out)], work)
    indices = list(range(0, frames, step))
    ideal = [_ideal_zoom_frame(images[0], size, 0.12, 1 + 0.12 * i / max(1, first.frames - 1)) for i in indices]
    scores = []
    for out in (new_out, old_out):
        got = _luma_frames(out, indices, size)
        scores.append(sum(structural_similarity(a, b, data_range=255.0) for a, b in zip(got, ideal, strict=True))
                      / len(indices))
    return scores[0], scores[1]


def _loudness(path: Path) -> tuple[float, float]:
    import re
    import subprocess

    from ainfluencer.media.video.probe import ffmpeg_exe

    log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-vn", "-af", "ebur128=peak=true",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    summary = log[log.rfind("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+) dBFS", summary).group(1))  # type: ignore[union-attr]
    return integrated, peak


def dead_air_s(result, voice: Path) -> float:  # type: ignore[no-untyped-def]
    """Longest silence (below -50 dBFS, 50 ms or more) of the voice track inside the narration span."""
    import re
    import subprocess

    from ainfluencer.media.video.probe import ffmpeg_exe

    log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(voice), "-af",
                          "silencedetect=noise=-50dB:d=0.05", "-f", "null", "-"], capture_output=True, text=True,
                         check=True).stderr
    starts = [float(x) for x in re.findall(r"silence_start: (-?[\d.]+)", log)]
    ends = [float(x) for x in re.findall(r"silence_end: ([\d.]+)", log)]
    spoken = [s for s in result.timeline.scenes if s.narration_s > 0]
    lo, hi = spoken[0].narration_start_s, spoken[-1].narration_start_s + spoken[-1].narration_s
    inside = [min(e, hi) - max(s, lo) for s, e in zip(starts, ends, strict=False) if e > lo and s < hi]
    return max(inside, default=0.0)


def main() -> None:
    """Emit the short30 lines (time, ratios, loudness, dead air, SSIM), piper_rtf, face_score_ms, phash_ms,
    image_overhead_ms."""
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
        ours, render, bare, static = [], [], [], []
        result = None
        for round_ in range(2):  # alternating, so drift on a shared machine hits all three alike
            work = folder / f"work{round_}"
            t0 = time.perf_counter()
            result = compose(script, out_path=folder / f"ours{round_}.mp4", work_dir=work, voice_backend=voice,
                             narration_out=folder / f"voice{round_}.wav")
            ours.append(time.perf_counter() - t0)
            render.append(result.stage_seconds["total"] - result.stage_seconds["narration"])
            bare.append(_bare(result, images, work, music, folder / f"bare{round_}.mp4"))
            static.append(_static(result, work, folder / f"static{round_}.mp4"))
        assert result is not None
        emit("short30_compose_s", statistics.median(ours), "s")
        emit("short30_bare_ffmpeg_s", statistics.median(bare), "s")
        emit("short30_vs_bare_ffmpeg_ratio", statistics.median(ours) / statistics.median(bare), "x")
        emit("short30_static_s", statistics.median(static), "s")
        # the composer's render (everything but speech synthesis) against the static encode
        emit("short30_vs_static_ratio", statistics.median(render) / statistics.median(static), "x")
        lufs, peak = _loudness(result.path)
        emit("short30_lufs", lufs, "LUFS")
        emit("short30_true_peak_db", peak, "dBTP")
        emit("short30_dead_air_s", dead_air_s(result, folder / "voice1.wav"), "s")
        emit("short30_outro_s", result.timeline.outro_s, "s")
        emit("short30_tempo", result.timeline.tempo, "x")
        new_ssim, old_ssim = quality(result, images, folder / "work1")
        emit("short30_ssim_ours", new_ssim, "ssim")
        emit("short30_ssim_previous", old_ssim, "ssim")
        emit("piper_rtf", piper_rtf(folder), "x")
        emit("face_score_ms", face_score_ms(), "ms")
        emit("phash_ms", phash_ms(), "ms")
        emit("image_overhead_ms", image_overhead_ms(folder), "ms")


if __name__ == "__main__":
    main()
