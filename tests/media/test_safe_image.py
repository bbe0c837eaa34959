"""Bad input is refused with actionable messages; file names cannot escape the media folder."""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

np = pytest.importorskip("numpy", reason="media tests need ainfluencer[media]")
pytest.importorskip("PIL", reason="media tests need ainfluencer[media]")

from PIL import Image  # noqa: E402

from ainfluencer.errors import InvalidInput  # noqa: E402
from ainfluencer.media.safe_image import (  # noqa: E402
    MediaRejected,
    open_image_safely,
    safe_filename,
    safe_join,
    sniff_non_image,
)

pytestmark = pytest.mark.nodb


def _png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype("uint8")).save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(2).random((256, 256, 3)) * 255).astype("uint8")).save(buf, "JPEG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width×height (1-bit gray): decoding it would need huge memory."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_valid_image_from_bytes_and_path(tmp_path: Path) -> None:
    im = open_image_safely(_png_bytes())
    assert im.size == (64, 48) and im.format == "PNG"
    path = tmp_path / "ok.jpg"
    path.write_bytes(_jpeg_bytes())
    assert open_image_safely(path).format == "JPEG"


def test_media_rejected_is_an_invalid_input() -> None:
    err = MediaRejected("nope")
    assert isinstance(err, InvalidInput) and err.status_code == 422 and err.code == "media_rejected"
    assert err.field == "file"


@pytest.mark.parametrize("source", [b"", "empty.png"])
def test_zero_bytes(tmp_path: Path, source: bytes | str) -> None:
    if isinstance(source, str):
        (tmp_path / source).write_bytes(b"")
        source = str(tmp_path / source)
    with pytest.raises(MediaRejected, match=r"empty \(0 bytes\)"):
        open_image_safely(source)


def test_huge_files_are_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(MediaRejected, match="the limit is 1000 bytes"):
        open_image_safely(_jpeg_bytes(), max_bytes=1000)
    big = tmp_path / "huge.jpg"
    with big.open("wb") as fh:  # sparse: 200 MB on paper, nothing on disk
        fh.truncate(200 * 1024 * 1024)
    with pytest.raises(MediaRejected, match=r"200\.0 MB; the limit is 40\.0 MB"):
        open_image_safely(big)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(MediaRejected, match="does not exist"):
        open_image_safely(tmp_path / "nope.png")


def test_corrupt_images() -> None:
    garbage = b"\xff\xd8\xff\xe0" + os.urandom(2000)
    with pytest.raises(MediaRejected, match="corrupt"):
        open_image_safely(garbage)
    with pytest.raises(MediaRejected, match="not a JPEG/PNG/WEBP image"):
        open_image_safely(b"hello, this is plain text, not an image at all")
    png = bytearray(_png_bytes())
    png[60] ^= 0xFF  # inside IDAT: CRC no longer matches
    with pytest.raises(MediaRejected, match="corrupt"):
        open_image_safely(bytes(png))


@pytest.mark.parametrize("maker", [_jpeg_bytes, _png_bytes])
def test_truncated_images(maker: Callable[[], bytes]) -> None:
    data = maker()
    with pytest.raises(MediaRejected, match="truncated or corrupt"):
        open_image_safely(data[: len(data) // 2])


def test_decompression_bombs() -> None:
    # Far past Pillow's own limit: Pillow's DecompressionBombError, mapped to our message.
    with pytest.raises(MediaRejected, match="decompression bomb"):
        open_image_safely(_bomb_png(100_000, 100_000))
    # Under Pillow's limit but over ours: refused from the header, before decoding.
    with pytest.raises(MediaRejected, match=r"declares 9000×9000 pixels \(81 MP\); the limit is 40 MP"):
        open_image_safely(_bomb_png(9000, 9000))
    with pytest.raises(MediaRejected, match="the limit is 0 MP"):
        open_image_safely(_png_bytes(), max_pixels=100)


def test_video_uploaded_as_image(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for i in range(5):
        writer.write(np.full((64, 64, 3), i * 40, np.uint8))
    writer.release()
    disguised = tmp_path / "holiday.jpg"
    clip.rename(disguised)
    with pytest.raises(MediaRejected, match=r"'holiday.jpg' is an MP4 video, not an image"):
        open_image_safely(disguised)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.7\n", "a PDF document"),
        (b"PK\x03\x04rest", "a ZIP archive"),
        (b"\x1aE\xdf\xa3rest", "a WebM/Matroska video"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "a WAV audio file"),
        (b"ID3\x03\x00", "an MP3 audio file"),
        (b'  <svg xmlns="http://www.w3.org/2000/svg">', "an SVG/HTML/XML text file"),
        (b"\x00\x00\x00\x18ftypqt  ", "a QuickTime (MOV) video"),
    ],
)
def test_non_images_are_named(head: bytes, kind: str) -> None:
    assert sniff_non_image(head) == kind
    with pytest.raises(MediaRejected, match=re.escape(kind)):
        open_image_safely(head + b"\x00" * 64)


def test_disallowed_format_is_refused() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "BMP")
    with pytest.raises(MediaRejected, match="not a JPEG/PNG/WEBP image"):
        open_image_safely(buf.getvalue())
    assert open_image_safely(buf.getvalue(), formats=["BMP"]).format == "BMP"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\config.sys", "config.sys"),
        ("/abs/path/photo.JPG", "photo.JPG"),
        ("..", "upload"),
        ("", "upload"),
        ("...", "upload"),
        (".bashrc", "bashrc"),
        ("CON.jpg", "_CON.jpg"),
        ("a\x00b\x07c.png", "abc.png"),
        ("my photo (1).jpg", "my_photo_1_.jpg"),
        ("café.webp", "café.webp"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_strict_and_long_names() -> None:
    with pytest.raises(MediaRejected, match="contains folder parts") as info:
        safe_filename("../../etc/passwd", strict=True)
    assert info.value.field == "filename"
    long = safe_filename("é" * 500 + ".png")
    assert long.endswith(".png") and len(long.encode()) <= 200


def test_safe_join_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    assert safe_join(root, "char-1", "a.png") == (root / "char-1" / "a.png").resolve()
    with pytest.raises(MediaRejected):
        safe_join(root, "../outside.png")
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(MediaRejected, match="outside the media folder"):
        safe_join(root, "link", "x.png")
    assert not (tmp_path / "outside.png").exists()
