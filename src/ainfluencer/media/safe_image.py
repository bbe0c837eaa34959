"""Safe loading of uploaded images and safe file names.

Every image that comes from outside (an upload, a backend's response, a file on
disk) goes through :func:`open_image_safely` before anything decodes it for real.
It refuses, with a message a person can act on:

- empty files and files over ``max_bytes`` (checked before reading a path);
- things that are not images: a video, audio file, PDF or archive renamed to
  ``.jpg`` is recognised from its first bytes and named;
- decompression bombs: the pixel count is read from the header and checked
  against ``max_pixels`` before any pixel is decoded (Pillow's own
  ``DecompressionBombError`` is mapped to the same message);
- corrupt and truncated files (Pillow's ``verify()`` then a full ``load()``).

Pillow's process-wide knobs (``Image.MAX_IMAGE_PIXELS``,
``ImageFile.LOAD_TRUNCATED_IMAGES``) are left alone: they are global and not
thread-safe, so the limits here are per call.
"""

from __future__ import annotations

import io
import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ainfluencer.errors import InvalidInput

if TYPE_CHECKING:
    from PIL import Image

#: Largest upload accepted by default (bytes).
DEFAULT_MAX_BYTES = 40 * 1024 * 1024
#: Largest image accepted by default (pixels, width × height): 40 MP, above any generator's output.
DEFAULT_MAX_PIXELS = 40_000_000
#: Image formats accepted by default (Pillow format names).
DEFAULT_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP")

_MAX_NAME_BYTES = 200
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}


class MediaRejected(InvalidInput):
    """An uploaded or produced file was refused; ``message`` says why and what to do."""

    code = "media_rejected"

    def __init__(self, message: str, *, field: str | None = "file", code: str | None = None) -> None:
        super().__init__(message, field=field, code=code)


def _size_text(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def sniff_non_image(head: bytes) -> str | None:
    """Name the kind of a non-image file from its first bytes ("an MP4 video"), or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return None  # HEIF/AVIF stills: let the decoder say whether it supports them
        if brand == b"qt  ":
            return "a QuickTime (MOV) video"
        if brand in (b"M4A ", b"M4B "):
            return "an M4A audio file"
        return "an MP4 video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "a WebM/Matroska video"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "an AVI video"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "a WAV audio file"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "an MPEG video"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "an MP3 audio file"
    if head.startswith(b"OggS"):
        return "an Ogg audio/video file"
    if head.startswith(b"fLaC"):
        return "a FLAC audio file"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        return "an SVG/HTML/XML text file"
    return None


def _read_source(source: bytes | bytearray | memoryview | str | os.PathLike[str], max_bytes: int) -> tuple[bytes, str]:
    """Return the file's bytes and a label for messages, enforcing the size limits."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        label = "The upload"
    else:
        path = Path(source)
        label = f"The file '{path.name}'"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise MediaRejected(f"{label} does not exist.") from None
        if not path.is_file():
            raise MediaRejected(f"{label} is not a regular file.")
        if size > max_bytes:
            raise MediaRejected(
                f"{label} is {_size_text(size)}; the limit is {_size_text(max_bytes)}. "
                "Export a smaller JPEG/PNG/WebP (e.g. 4096 px on the long side)."
            )
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    if not data:
        raise MediaRejected(
            f"{label} is empty (0 bytes). Choose the image again; the upload may have been interrupted."
        )
    if len(data) > max_bytes:
        raise MediaRejected(
            f"{label} is {_size_text(len(data))}; the limit is {_size_text(max_bytes)}. "
            "Export a smaller JPEG/PNG/WebP (e.g. 4096 px on the long side)."
        )
    return data, label


def open_image_safely(
    source: bytes | bytearray | memoryview | str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    formats: Iterable[str] = DEFAULT_FORMATS,
) -> Image.Image:
    """Open, check and fully decode an image from bytes or a path; raise MediaRejected if unsafe."""
    from PIL import Image, UnidentifiedImageError

    data, label = _read_source(source, max_bytes)
    allowed = tuple(f.upper() for f in formats)
    kind = sniff_non_image(data[:64])
    if kind:
        raise MediaRejected(
            f"{label} is {kind}, not an image. Upload it in the right place, or choose a JPEG/PNG/WebP."
        )
    names = "/".join(allowed)

    def _open() -> Image.Image:
        return Image.open(io.BytesIO(data), formats=list(allowed))

    try:
        im = _open()
        width, height = im.size
        if width <= 0 or height <= 0:
            raise MediaRejected(f"{label} declares an empty picture ({width}×{height}).")
        if width * height > max_pixels:
            raise MediaRejected(
                f"{label} declares {width}×{height} pixels ({width * height / 1e6:.0f} MP); the limit is "
                f"{max_pixels / 1e6:.0f} MP. It may be a decompression bomb; if it is a real photo, downscale it."
            )
        im.verify()  # structure and checksums (PNG CRCs); the object is unusable afterwards
        im = _open()
        im.load()
    except MediaRejected:
        raise
    except Image.DecompressionBombError:
        raise MediaRejected(
            f"{label} declares far more pixels than any real photo (decompression bomb). It was not decoded."
        ) from None
    except UnidentifiedImageError:
        raise MediaRejected(f"{label} is not a {names} image, or it is corrupt. Choose a {names} file.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow signals truncation and corruption with these; the text helps a person more than the type.
        detail = str(exc) or type(exc).__name__
        if "truncated" in detail.lower():
            raise MediaRejected(
                f"{label} is truncated or corrupt (the upload may have been cut short). Upload or export it again."
            ) from None
        raise MediaRejected(f"{label} is corrupt and cannot be decoded ({detail}). Export it again.") from None
    return im


def to_rgb_image(image: Any) -> Image.Image:
    """Return an RGB Pillow image from a Pillow image, an RGB/gray numpy array, bytes or a path."""
    import numpy as np
    from PIL import Image, ImageOps

    if isinstance(image, Image.Image):
        im = image
    elif isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, :3]
        im = Image.fromarray(np.ascontiguousarray(arr))
    elif isinstance(image, bytes | bytearray | memoryview | str | os.PathLike):
        im = ImageOps.exif_transpose(open_image_safely(image))
    else:
        raise TypeError(f"expected a PIL image, numpy array, bytes or path, got {type(image).__name__}")
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def safe_filename(name: str, *, strict: bool = False, default: str = "upload") -> str:
    """Return a bare, portable file name; with strict=True refuse names that carry folder parts."""
    original = name
    name = unicodedata.normalize("NFKC", name).replace("\\", "/")
    has_path = "/" in name or "\x00" in name or name.strip() in (".", "..")
    if strict and has_path:
        raise MediaRejected(
            f"The file name {original!r} contains folder parts; send a plain name such as 'photo.jpg'.",
            field="filename",
        )
    name = name.rsplit("/", 1)[-1]
    cleaned = []
    for ch in name:
        if unicodedata.category(ch).startswith("C"):
            continue
        cleaned.append(ch if (ch.isalnum() or ch in "._-") else "_")
    result = "".join(cleaned).strip("._ ")
    while "__" in result:
        result = result.replace("__", "_")
    if not result:
        return default
    stem, dot, ext = result.rpartition(".")
    if not dot:
        stem, ext = result, ""
    if stem.upper() in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    ext = ext[:16]
    budget = _MAX_NAME_BYTES - len(ext.encode()) - (1 if ext else 0)
    stem_bytes = stem.encode()[:budget]
    stem = stem_bytes.decode(errors="ignore") or default
    return f"{stem}.{ext}" if ext else stem


def safe_join(root: str | os.PathLike[str], *parts: str) -> Path:
    """Join sanitised parts under root and prove the result stays inside it (symlinks resolved)."""
    base = Path(root).resolve()
    target = base.joinpath(*(safe_filename(p, strict=True) for p in parts)).resolve()
    if not target.is_relative_to(base):
        raise MediaRejected(f"The path {'/'.join(parts)!r} points outside the media folder.", field="filename")
    return target
