"""Studio voice/video helpers: a character with approved images in the vault, music, and a job runner."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from typing import Any

import pytest

np = pytest.importorskip("numpy", reason="studio voice/video tests need ainfluencer[media]")
pytest.importorskip("PIL", reason="studio voice/video tests need ainfluencer[media]")
pytest.importorskip("piper", reason="studio voice/video tests need piper-tts (ainfluencer[media])")

from PIL import Image, ImageDraw  # noqa: E402

from ainfluencer.db.models import Character, Job, User  # noqa: E402
from ainfluencer.db.models_media import AssetKind, AssetSource, ReviewState  # noqa: E402
from ainfluencer.jobs import runner  # noqa: E402
from ainfluencer.runtime import Runtime  # noqa: E402
from ainfluencer.services import vault  # noqa: E402

SCRIPT_30S = (
    "Hi, I'm Nova, a virtual character made with AI.\n\n"
    "Today we tour a tiny studio where videos are built.\n\n"
    "Every picture here was generated, and we say so.\n\n"
    "Follow for more, and tell me what to make next!"
)


def picture(seed: int, size: tuple[int, int] = (720, 1080)) -> bytes:
    """A gradient with shapes (PNG): detailed enough for motion to show, distinct per seed."""
    w, h = size
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    base = rng.uniform(0, 255, 3)
    rgb = np.stack([(base[c] + 180 * (x if c == 0 else y) + 60 * np.sin(8 * (x + y) + c)) % 256 for c in range(3)],
                   axis=-1).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(10):
        cx, cy, r = int(rng.uniform(0, w)), int(rng.uniform(0, h)), int(rng.uniform(20, w / 6))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(v) for v in rng.uniform(0, 255, 3)))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def music_wav(seconds: float = 9.0, rate: int = 22_050) -> bytes:
    """A soft pulsing tone (mono WAV) to mix under the voice."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((tone * 32767).astype(np.int16).tobytes())
    return buf.getvalue()


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user("owner@example.com", owner=True)


@pytest.fixture
def character(runtime: Runtime, owner: User) -> Character:
    with runtime.db.session() as s:
        c = Character(user_id=owner.id, name="Nova Vale", handle="nova.vale", persona={"age": 27})
        s.add(c)
        s.flush()
        return c


@pytest.fixture
def add_image(runtime: Runtime, owner: User) -> Callable[..., int]:
    """Put an image of a character into the vault (approved unless told otherwise); returns its asset id."""

    def _add(character: Character, seed: int, state: ReviewState = ReviewState.approved,
             size: tuple[int, int] = (720, 1080)) -> int:
        with runtime.db.session() as s:
            c = s.get(Character, character.id)
            result = vault.ingest(s, settings=runtime.settings, data=picture(seed, size), filename=f"img{seed}.png",
                                  kind=AssetKind.image, character=c, user_id=owner.id, source=AssetSource.generated,
                                  review_state=state, run_gates=False)
            return result.asset.id

    return _add


@pytest.fixture
def add_music(runtime: Runtime, owner: User) -> Callable[..., int]:
    def _add(character: Character | None = None) -> int:
        with runtime.db.session() as s:
            c = s.get(Character, character.id) if character else None
            result = vault.ingest(s, settings=runtime.settings, data=music_wav(), filename="music.wav",
                                  kind=AssetKind.audio, character=c, user_id=owner.id, source=AssetSource.upload)
            return result.asset.id

    return _add


@pytest.fixture
def run_jobs(runtime: Runtime) -> Callable[[], list[Job]]:
    """Run every queued job in this process (no worker runs in tests); returns the finished rows."""

    def _run() -> list[Job]:
        ids = []
        while (status := runner.run_one(runtime, worker="test")) is not None:
            ids.append(status)
        with runtime.db.session() as s:
            from sqlalchemy import select

            return list(s.scalars(select(Job).order_by(Job.id)))

    return _run


def job_row(runtime: Runtime, job_id: int) -> Any:
    with runtime.db.session() as s:
        return s.get(Job, job_id)
