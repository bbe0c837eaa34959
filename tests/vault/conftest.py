"""Vault test helpers: images made with Pillow, a character, a local C2PA CA, a file-tree snapshot."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy", reason="vault tests need ainfluencer[media]")
pytest.importorskip("PIL", reason="vault tests need ainfluencer[media]")

from PIL import Image  # noqa: E402

from ainfluencer.db.models import Character, User  # noqa: E402
from ainfluencer.runtime import Runtime  # noqa: E402


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (160, 120), seed: int = 1, **save: Any) -> bytes:
    """A random-noise image (distinct per seed) encoded as fmt."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
    # A few smooth blocks so the perceptual hashes of different seeds differ clearly.
    for _ in range(4):
        y, x = rng.integers(0, size[1] // 2), rng.integers(0, size[0] // 2)
        pixels[y : y + size[1] // 3, x : x + size[0] // 3] = rng.integers(0, 255, 3)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **save)
    return buf.getvalue()


def astronaut_bytes(fmt: str = "JPEG", transform: Callable[[Any], Any] | None = None) -> bytes:
    """skimage's astronaut photo (a real face), optionally transformed."""
    skdata = pytest.importorskip("skimage.data")
    pixels = skdata.astronaut()
    if transform is not None:
        pixels = transform(pixels)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, fmt)
    return buf.getvalue()


def grace_hopper_bytes(quality: int | None = None) -> bytes:
    """matplotlib's Grace Hopper sample photo (another person); re-encoded when ``quality`` is given."""
    cbook = pytest.importorskip("matplotlib.cbook")
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        data = fh.read()
    if quality is None:
        return data
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A silent mono 16-bit WAV."""
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


def mp4_bytes(duration_units: int = 2000, timescale: int = 1000, truncate: bool = False) -> bytes:
    """A minimal structurally valid MP4 (ftyp + moov/mvhd + mdat); ``truncate`` cuts the mdat short."""
    import struct

    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 512, b"isom", b"mp42")
    mvhd_body = struct.pack(">B3sIIII", 0, b"\0\0\0", 0, 0, timescale, duration_units) + b"\0" * 80
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    payload = b"\x00" * 64
    mdat = struct.pack(">I4s", 8 + len(payload), b"mdat") + payload
    data = ftyp + moov + mdat
    return data[:-20] if truncate else data


def tree(root: Path) -> set[str]:
    """Every regular file under root, relative, POSIX separators."""
    found = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            found.add((Path(dirpath) / name).relative_to(root).as_posix())
    return found


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user("owner@example.com", owner=True)


@pytest.fixture
def make_character(runtime: Runtime) -> Callable[..., Character]:
    def _make(user: User, name: str = "Ava Nova", handle: str = "ava.nova") -> Character:
        with runtime.db.session() as s:
            character = Character(user_id=user.id, name=name, handle=handle, persona={"age": 27, "style": "minimal"})
            s.add(character)
            s.flush()
            return character

    return _make


@pytest.fixture
def signing(runtime: Runtime) -> Path:
    """A local C2PA CA in <data dir>/provenance, as app start (or `ainfluencer provenance init`) makes it."""
    from ainfluencer.media.provenance.c2pa_sign import ensure_local_ca
    from ainfluencer.services.vault import provenance_dir

    pytest.importorskip("c2pa", reason="C2PA needs ainfluencer[media]")
    directory = provenance_dir(runtime.settings)
    ensure_local_ca(directory)  # the app's start may have made it already
    return directory
