"""The vault: every generated or uploaded file, kept with its prompt, scores and provenance.

Ingest, in order, for every file (an upload, a backend's output, a consented reference photo):

1. size and type: empty and oversized files are refused; the kind is read from the first bytes
   (a video renamed ``.jpg`` is named as a video); images are fully decoded by ``open_image_safely``
   (decompression bombs, truncation and corruption refused); MP4/MOV and WAV get light structural
   checks (no ffmpeg needed): boxes/chunks must fit in the file, which catches cut-off uploads;
2. provenance: images are re-encoded without private metadata (GPS, serials) and labelled with the
   IPTC ``DigitalSourceType`` of their origin in XMP: ``trainedAlgorithmicMedia`` for generated media,
   and for uploads what the uploader declared (camera photo ``digitalCapture``, edited photo
   ``minorHumanEdits``, digital art ``digitalCreation``, AI ``trainedAlgorithmicMedia``, composite
   ``compositeWithTrainedAlgorithmicMedia``), so nothing non-AI is labelled AI. A signed C2PA
   manifest claiming the same source type is embedded when ``<data_dir>/provenance`` holds
   credentials (created at app start, or ``ainfluencer provenance init``), then read back with
   the local CA as trust anchor, so the vault can show "provenance verified". Reference photos of
   real people are stripped but never labelled or signed as AI media, and are never publishable;
3. content-addressed write: the final bytes' SHA-256 names the file, at
   ``<character-handle-or-id>/<yyyy>/<mm>/<sha256[:2]>/<sha256>.<ext>`` under the media folder
   (built with ``safe_join``; nothing a caller names reaches the file system), written to a temp
   file and moved into place atomically;
4. quality gates (images): face similarity against the character's canonical face, technical
   score, perceptual-hash near-duplicates against the character's earlier images, with the
   character's thresholds; a "reject" decision files the asset as rejected with the reasons;
5. the row, in the caller's transaction. A file whose row never commits is removed again.

Ingest is CPU work: call it from a sync route (FastAPI's thread pool) or a job, never an ``async def``.

Search is deliberately portable: case-insensitive ``LIKE`` over prompt, caption, file name and tags
(the same on SQLite and PostgreSQL; no full-text index).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import struct
import uuid
import wave
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, Table, and_, case, event, exists, func, inspect, or_, select, true
from sqlalchemy.orm import Session, SessionTransaction

from ainfluencer import events
from ainfluencer.config import Settings
from ainfluencer.db.models import Character, User, utcnow
from ainfluencer.db.models_media import (
    Appearance,
    Asset,
    AssetKind,
    AssetSource,
    AssetTag,
    CharacterMediaSettings,
    ReviewState,
)
from ainfluencer.errors import Conflict, InvalidInput, NotFound
from ainfluencer.media.safe_image import DEFAULT_MAX_BYTES, MediaRejected, open_image_safely, safe_join
from ainfluencer.services.auth import audit

log = logging.getLogger(__name__)

PAGE_MAX = 200
MAX_TAGS = 30
MAX_TAG_LEN = 64
MAX_FOLDER_LEN = 200
MAX_BATCH = 500
EARLIER_HASHES_LIMIT = 5000
CHUNK = 1024 * 1024
PROVENANCE_DIR = "provenance"
NO_CHARACTER_DIR = "unassigned"

TRANSITIONS: dict[ReviewState, frozenset[ReviewState]] = {
    ReviewState.draft: frozenset({ReviewState.in_review, ReviewState.approved, ReviewState.rejected,
                                  ReviewState.archived}),
    ReviewState.in_review: frozenset({ReviewState.draft, ReviewState.approved, ReviewState.rejected,
                                      ReviewState.archived}),
    ReviewState.approved: frozenset({ReviewState.in_review, ReviewState.rejected, ReviewState.archived}),
    ReviewState.rejected: frozenset({ReviewState.in_review, ReviewState.approved, ReviewState.archived}),
    ReviewState.archived: frozenset({ReviewState.in_review}),
}
ACTION_STATES = {
    "approve": ReviewState.approved,
    "reject": ReviewState.rejected,
    "archive": ReviewState.archived,
    "review": ReviewState.in_review,
    "draft": ReviewState.draft,
}
BATCH_ACTIONS = (*ACTION_STATES, "tag", "untag", "move", "delete")
# Publication statuses after which a post no longer needs its media; anything else (planned, due, sending,
# retry_wait, and failed/unknown, which a person may retry) still does. models_publishing.FINAL when present.
FINISHED_PUBLICATION_STATUSES = frozenset({"published", "cancelled"})

_TAG_RE = re.compile(r"[^\w\- ]+")
_FOLDER_PART_RE = re.compile(r"[^\w\- .]+")
_KIND_BY_EXT = {
    "jpg": AssetKind.image, "jpeg": AssetKind.image, "png": AssetKind.image, "webp": AssetKind.image,
    "gif": AssetKind.image, "bmp": AssetKind.image, "tif": AssetKind.image, "tiff": AssetKind.image,
    "heic": AssetKind.image, "avif": AssetKind.image,
    "wav": AssetKind.audio, "mp3": AssetKind.audio, "ogg": AssetKind.audio, "oga": AssetKind.audio,
    "flac": AssetKind.audio, "m4a": AssetKind.audio,
    "mp4": AssetKind.video, "mov": AssetKind.video, "webm": AssetKind.video, "mkv": AssetKind.video,
    "m4v": AssetKind.video,
}
_EXT_BY_MIME = {
    "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
    "audio/wav": "wav", "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/flac": "flac", "audio/mp4": "m4a",
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
}
_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
SUPPORTED_TEXT = "JPEG/PNG/WebP images, WAV/MP3/OGG/FLAC/M4A audio or MP4/MOV/WebM video"


class MediaTooLarge(MediaRejected):
    """The file is over the upload limit."""

    status_code = 413
    code = "payload_too_large"


# ---- small helpers -------------------------------------------------------------------------------------


def _size_text(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def sniff_media(head: bytes) -> tuple[AssetKind, str] | None:
    """The kind and MIME type of a supported file from its first bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return AssetKind.image, "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return AssetKind.image, "image/png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return AssetKind.image, "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return AssetKind.audio, "audio/wav"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return AssetKind.audio, "audio/mpeg"
    if head.startswith(b"OggS"):
        return AssetKind.audio, "audio/ogg"
    if head.startswith(b"fLaC"):
        return AssetKind.audio, "audio/flac"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return AssetKind.audio, "audio/mp4"
        if brand == b"qt  ":
            return AssetKind.video, "video/quicktime"
        return AssetKind.video, "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return AssetKind.video, "video/webm"
    return None


def claimed_kind(filename: str = "", content_type: str = "") -> AssetKind | None:
    """The kind an upload says it is, from its file name's extension or its Content-Type."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext in _KIND_BY_EXT:
        return _KIND_BY_EXT[ext]
    major = content_type.split("/", 1)[0].strip().lower()
    if major in ("image", "audio", "video"):
        return AssetKind(major)
    return None


def clean_tag(raw: str) -> str:
    """A tag as stored: lower-case letters, digits, '-', '_' (spaces become '-'), at most 64 characters."""
    tag = _TAG_RE.sub("", raw.strip().lstrip("#").lower())
    tag = re.sub(r"\s+", "-", tag.strip()).strip("-_")
    if not tag:
        raise InvalidInput(f"The tag {raw!r} has no letters or digits.", field="tags")
    if len(tag) > MAX_TAG_LEN:
        raise InvalidInput(f"A tag may be at most {MAX_TAG_LEN} characters.", field="tags")
    return tag


def clean_tags(values: Iterable[str]) -> list[str]:
    """Cleaned, de-duplicated tags (commas split one value into several)."""
    out: list[str] = []
    for value in values:
        for part in str(value).split(","):
            if part.strip():
                tag = clean_tag(part)
                if tag not in out:
                    out.append(tag)
    if len(out) > MAX_TAGS:
        raise InvalidInput(f"An asset may have at most {MAX_TAGS} tags.", field="tags")
    return out


def clean_folder(raw: str | None) -> str:
    """A virtual folder label like 'campaigns/summer' (it never touches the file system)."""
    parts = []
    for part in (raw or "").replace("\\", "/").split("/"):
        part = _FOLDER_PART_RE.sub("", part).strip().strip(".")
        if part:
            parts.append(part)
    folder = "/".join(parts)
    if len(folder) > MAX_FOLDER_LEN:
        raise InvalidInput(f"A folder name may be at most {MAX_FOLDER_LEN} characters.", field="folder")
    return folder


def _escape_like(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def provenance_dir(settings: Settings) -> Path:
    """Where `ainfluencer provenance init` keeps the local C2PA CA and signer."""
    return settings.resolved_data_dir / PROVENANCE_DIR


def ensure_signing(settings: Settings) -> str:
    """At app start: create the local C2PA CA when there is none, so every new file is signed.

    Returns what happened ("created", "present", "incomplete" or "unavailable: …"); never raises,
    since a start must not fail because signing cannot be set up (files are then stored unsigned
    and the vault says so).
    """
    directory = provenance_dir(settings)
    try:
        from ainfluencer.media.provenance.c2pa_sign import SigningCredentials, SigningError, ensure_local_ca

        if ensure_local_ca(directory):
            log.info("created a local C2PA signing CA in %s; new media is signed", directory)
            return "created"
        try:
            SigningCredentials.load(directory)
        except SigningError as exc:
            log.warning("C2PA signing is not usable: %s", exc)
            return "incomplete"
        return "present"
    except ImportError as exc:
        log.warning("C2PA signing unavailable: %s", exc)
        return f"unavailable: {exc}"
    except OSError as exc:
        log.warning("could not create the C2PA signing CA in %s: %s", directory, exc)
        return f"unavailable: {exc}"


def _tmp_dir(settings: Settings) -> Path:
    # Next to the media folder (same file system, so the final move is atomic) but outside it, so a
    # backup indexing the media folder never sees half-written files.
    path = settings.resolved_data_dir / "tmp" / "ingest"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_path(settings: Settings, asset: Asset) -> Path:
    """The asset's file on disk (proved to lie inside the media folder)."""
    return safe_join(settings.media_dir, *asset.path.split("/"))


# ---- files that must go away with their transaction -------------------------------------------------------


@event.listens_for(Session, "after_commit")
def _unlink_after_commit(session: Session) -> None:
    for path in session.info.pop("ainf_vault_unlink", []):
        try:
            Path(path).unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove deleted asset file %s", path)
    session.info.pop("ainf_vault_new", None)


@event.listens_for(Session, "after_soft_rollback")
def _unlink_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is not None:
        return
    session.info.pop("ainf_vault_unlink", None)
    for path in session.info.pop("ainf_vault_new", []):
        Path(path).unlink(missing_ok=True)


# ---- structural checks for audio and video (no ffmpeg) -----------------------------------------------------


def _check_mp4(fh: BinaryIO, size: int, label: str) -> float | None:
    """Walk top-level ISO-BMFF boxes; refuse a file whose boxes overrun it or that has no 'moov'. Returns seconds."""
    pos, seen_moov, duration = 0, False, None
    while pos < size:
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 8:
            break
        box_size, box_type = struct.unpack(">I4s", header)
        header_len = 8
        if box_size == 1:
            big = fh.read(8)
            if len(big) < 8:
                raise MediaRejected(f"{label} is truncated (the upload may have been cut short).")
            box_size = struct.unpack(">Q", big)[0]
            header_len = 16
        elif box_size == 0:
            box_size = size - pos
        if box_size < header_len or pos + box_size > size:
            raise MediaRejected(f"{label} is truncated or corrupt (the upload may have been cut short).")
        if box_type == b"moov":
            seen_moov = True
            duration = _mvhd_duration(fh, pos + header_len, pos + box_size)
        pos += box_size
    if not seen_moov:
        raise MediaRejected(f"{label} has no movie header ('moov' box); it is incomplete or not a playable video.")
    return duration


def _mvhd_duration(fh: BinaryIO, start: int, end: int) -> float | None:
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        box_size, box_type = struct.unpack(">I4s", fh.read(8))
        if box_size < 8:
            return None
        if box_type == b"mvhd":
            version = fh.read(1)[0]
            fh.read(3)
            if version == 1:
                fh.read(16)
                timescale, length = struct.unpack(">IQ", fh.read(12))
            else:
                fh.read(8)
                timescale, length = struct.unpack(">II", fh.read(8))
            return round(length / timescale, 3) if timescale else None
        pos += box_size
    return None


def _check_wav(path: Path, label: str) -> float:
    try:
        with wave.open(str(path), "rb") as w:
            frames, rate = w.getnframes(), w.getframerate()
            if rate <= 0:
                raise MediaRejected(f"{label} declares a sample rate of 0; it is corrupt.")
            expected = frames * w.getnchannels() * w.getsampwidth()
            data = w.readframes(frames)
    except (wave.Error, EOFError, struct.error) as exc:
        raise MediaRejected(f"{label} is not a readable WAV file ({exc}).") from None
    if len(data) < expected:
        raise MediaRejected(f"{label} is truncated (the upload may have been cut short).")
    return round(frames / rate, 3)


# ---- ingest ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationInfo:
    """What made an asset: prompt, backend, model, seed, cost, time and the request's parameters."""

    prompt: str = ""
    negative_prompt: str = ""
    caption: str = ""
    backend: str = ""
    model: str = ""
    seed: int | None = None
    cost_usd: float = 0.0
    generation_ms: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestResult:
    """The stored asset, and whether it was already in the vault (the same bytes for the same character)."""

    asset: Asset
    duplicate: bool = False


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _strip_only(image: Any, dst: Path, fmt: str) -> None:
    """Re-encode pixels only (no EXIF, XMP or text chunks): private metadata gone, no AI label added."""
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(image)
    if fmt == "JPEG" and im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    elif im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    clean = Image.frombytes(im.mode, im.size, im.tobytes())
    options: dict[str, Any] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    clean.save(dst, format=fmt, **options)


def _signing_credentials(settings: Settings) -> Any:
    from ainfluencer.media.provenance.c2pa_sign import SigningCredentials, SigningError

    try:
        return SigningCredentials.load(provenance_dir(settings))
    except SigningError:
        return None


def resolve_origin(origin: str | None, source: AssetSource) -> Any:
    """The declared :class:`~ainfluencer.media.provenance.metadata.Origin`; generated media is always AI.

    ``None`` means the caller is the app itself (a generator, or internal code importing AI media),
    which is treated as AI; the upload form and API require the person to choose (field ``origin``).
    """
    from ainfluencer.media.provenance.metadata import ORIGINS

    if source == AssetSource.generated or origin is None:
        return ORIGINS["ai"]
    chosen = ORIGINS.get(origin.strip().lower())
    if chosen is None:
        raise InvalidInput(f"origin is one of {', '.join(ORIGINS)}.", field="origin")
    return chosen


def _c2pa_step(settings: Settings, src: Path, dst: Path, *, title: str, ai_system: str | None,
               digital_source_type: str | None = None) -> dict[str, Any]:
    """Sign src into dst when credentials exist; returns the provenance 'c2pa' section (dst exists if signed)."""
    creds = _signing_credentials(settings)
    if creds is None:
        return {"state": "unsigned", "verified": False,
                "message": "C2PA signing is not set up; run `ainfluencer provenance init`"}
    try:
        from ainfluencer.media.provenance.c2pa_sign import ProvenanceUnavailable, SigningError, sign_file, verify_file
    except ImportError as exc:  # pragma: no cover - the module imports c2pa lazily
        return {"state": "unavailable", "verified": False, "message": str(exc)}
    try:
        from ainfluencer.media.provenance.metadata import DIGITAL_SOURCE_TYPE_TRAINED

        sign_file(src, dst, credentials=creds, title=title, ai_system=ai_system,
                  digital_source_type=digital_source_type or DIGITAL_SOURCE_TYPE_TRAINED)
    except ProvenanceUnavailable as exc:
        return {"state": "unavailable", "verified": False, "message": str(exc)}
    except SigningError as exc:
        return {"state": "failed", "verified": False, "message": str(exc)}
    report = verify_file(dst, trust_anchors_pem=creds.trust_anchors_pem())
    return {"state": "signed", "verified": report.valid, "report": report.as_dict(),
            "checked_at": utcnow().isoformat()}


def canonical_appearance(session: Session, character_id: int) -> Appearance | None:
    """The character's appearance holding its canonical face, if one was picked."""
    return session.scalars(
        select(Appearance).where(Appearance.character_id == character_id, Appearance.is_canonical.is_(True))
        .order_by(Appearance.id).limit(1)
    ).first()


def thresholds_for(session: Session, character_id: int | None) -> Any:
    """The character's quality-gate thresholds (defaults where none were saved)."""
    from ainfluencer.media.quality.gates import QualityThresholds

    if character_id is None:
        return QualityThresholds()
    row = session.get(CharacterMediaSettings, character_id)
    return QualityThresholds(**(row.thresholds if row and row.thresholds else {}))


def _earlier_hashes(session: Session, character_id: int | None) -> list[tuple[int, str]]:
    q = select(Asset.id, Asset.phash).where(Asset.kind == AssetKind.image, Asset.phash != "")
    q = q.where(Asset.character_id == character_id if character_id is not None else Asset.character_id.is_(None))
    rows = session.execute(q.order_by(Asset.id.desc()).limit(EARLIER_HASHES_LIMIT)).all()
    return [(int(i), str(h)) for i, h in rows]


def _run_gates(session: Session, image: Any, character_id: int | None, face_scorer: Any) -> Any:
    from ainfluencer.media.quality.face import FaceEmbedding
    from ainfluencer.media.quality.gates import evaluate

    embedding = None
    if character_id is not None:
        appearance = canonical_appearance(session, character_id)
        if appearance is not None and appearance.face_embedding:
            embedding = FaceEmbedding.from_dict(appearance.face_embedding)
    return evaluate(
        image,
        canonical_embedding=embedding,
        earlier_hashes=_earlier_hashes(session, character_id),
        thresholds=thresholds_for(session, character_id),
        face_scorer=face_scorer,
    )


def _open_image(raw: bytes | None, path: Path | None, size: int, label: str) -> Any:
    """Decode an image through open_image_safely, naming the file as the person named it in messages."""
    if raw is None:
        assert path is not None
        if size > DEFAULT_MAX_BYTES:
            limit = _size_text(DEFAULT_MAX_BYTES)
            raise MediaTooLarge(f"{label} is {_size_text(size)}; images are limited to {limit}. "
                                "Export a smaller JPEG/PNG/WebP (e.g. 4096 px on the long side).")
        raw = path.read_bytes()
    try:
        return open_image_safely(raw)
    except MediaRejected as exc:
        message = exc.message.replace("The upload", label, 1)
        raise type(exc)(message, field=exc.field, code=exc.code) from None


def _storage_parts(character: Character | None, when: datetime, sha: str, ext: str) -> list[str]:
    owner = (character.handle or str(character.id)) if character is not None else NO_CHARACTER_DIR
    return [owner, f"{when:%Y}", f"{when:%m}", sha[:2], f"{sha}.{ext}"]


def ingest(
    session: Session,
    *,
    settings: Settings,
    data: bytes | Path,
    filename: str = "",
    kind: AssetKind | None = None,
    character: Character | None = None,
    user_id: int | None = None,
    source: AssetSource = AssetSource.upload,
    generation: GenerationInfo | None = None,
    tags: Sequence[str] = (),
    folder: str = "",
    review_state: ReviewState | None = None,
    job_id: int | None = None,
    face_scorer: Any = None,
    run_gates: bool = True,
    origin: str | None = None,
) -> IngestResult:
    """Check, label, sign, store and score one file, and add its row (see the module docstring).

    ``origin`` is what an upload is (a key of ``metadata.ORIGINS``: camera, edited, created, ai,
    composite); generated media is always ``ai``.
    """
    gen = generation or GenerationInfo()
    declared = resolve_origin(origin, source)
    label = "The file" if not filename else f"The file '{Path(filename.replace(chr(92), '/')).name[:80]}'"
    limit = settings.max_upload_bytes
    # 1. size and type ------------------------------------------------------------------------------------
    if isinstance(data, bytes | bytearray | memoryview):
        payload = bytes(data)
        raw: bytes | None = payload
        size, head = len(payload), payload[:64]
        src_path: Path | None = None
    else:
        raw, src_path = None, Path(data)
        size = src_path.stat().st_size
        with src_path.open("rb") as fh:
            head = fh.read(64)
    if size == 0:
        raise MediaRejected(f"{label} is empty (0 bytes). Choose it again; the upload may have been interrupted.")
    if size > limit:
        raise MediaTooLarge(f"{label} is {_size_text(size)}; the limit is {_size_text(limit)}.")
    tags_clean = clean_tags(tags)
    folder_clean = clean_folder(folder)
    sniffed = sniff_media(head)
    claimed = kind or claimed_kind(filename)
    image = None
    if claimed == AssetKind.image or (claimed is None and sniffed is not None and sniffed[0] == AssetKind.image):
        image = _open_image(raw, src_path, size, label)  # names videos/audio renamed as images, bombs, truncation
        mime = _IMAGE_FORMATS[str(image.format)]
        asset_kind = AssetKind.image
    else:
        if sniffed is None:
            raise MediaRejected(f"{label} is not a supported file. Upload {SUPPORTED_TEXT}.")
        asset_kind, mime = sniffed
        if claimed is not None and claimed != asset_kind:
            article = "an" if asset_kind in (AssetKind.audio, AssetKind.image) else "a"
            raise MediaRejected(
                f"{label} was sent as {claimed.value} but is {article} {asset_kind.value} file ({mime}). "
                f"Upload it as {asset_kind.value}."
            )
        if asset_kind == AssetKind.image:
            image = _open_image(raw, src_path, size, label)
            mime = _IMAGE_FORMATS[str(image.format)]
    if source == AssetSource.reference and asset_kind != AssetKind.image:
        raise MediaRejected("A reference photo must be a JPEG, PNG or WebP image.")

    # duplicates: the same incoming bytes for the same character and purpose are the same asset
    hasher = hashlib.sha256()
    if raw is not None:
        hasher.update(raw)
    else:
        assert src_path is not None
        with src_path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                hasher.update(chunk)
    source_sha = hasher.hexdigest()
    character_id = character.id if character is not None else None
    existing = session.scalars(
        select(Asset).where(
            Asset.source_sha256 == source_sha,
            Asset.source == source,
            Asset.character_id == character_id if character_id is not None else Asset.character_id.is_(None),
        ).limit(1)
    ).first()
    if existing is not None and file_path(settings, existing).is_file():
        return IngestResult(existing, duplicate=True)

    # 2. provenance ---------------------------------------------------------------------------------------
    tmp = _tmp_dir(settings)
    token = uuid.uuid4().hex
    ext = _EXT_BY_MIME[mime]
    scratch: list[Path] = []

    def scratch_path(suffix: str) -> Path:
        path = tmp / f"{token}-{len(scratch)}.{suffix}"
        scratch.append(path)
        return path

    provenance: dict[str, Any] = {}
    width = height = None
    duration = None
    try:
        if raw is not None:
            incoming = scratch_path(ext)
            incoming.write_bytes(raw)
        else:
            assert src_path is not None
            incoming = src_path
        title = (f"{character.name} · " if character is not None else "") + (gen.prompt[:80] or asset_kind.value)
        ai_system = (gen.model or gen.backend or None) if declared.ai else None
        if source != AssetSource.reference:
            provenance["origin"] = {"key": declared.key, "label": declared.label,
                                    "digital_source_type": declared.digital_source_type, "ai": declared.ai}
        if image is not None:
            width, height = image.size
            labelled = scratch_path(ext)
            fmt = str(image.format)
            if source == AssetSource.reference:
                _strip_only(image, labelled, fmt)
                provenance["xmp"] = {"labelled": False, "private_metadata_stripped": True,
                                     "note": "reference photo of a consenting person: not labelled as AI media"}
            else:
                from ainfluencer.media.provenance.metadata import read_provenance, strip_and_label

                strip_and_label(incoming, labelled, title=title, ai_system=ai_system,
                                description=declared.description,
                                digital_source_type=declared.digital_source_type)
                info = read_provenance(labelled)
                provenance["xmp"] = {"labelled": True, "private_metadata_stripped": not info["private_metadata"],
                                     "digital_source_type": info["digital_source_type"],
                                     "ai_generated": info["ai_generated"], "creator_tool": info["creator_tool"]}
            current = labelled
        else:
            with incoming.open("rb") as fh:
                if mime in ("video/mp4", "video/quicktime", "audio/mp4"):
                    duration = _check_mp4(fh, size, label)
            if mime == "audio/wav":
                duration = _check_wav(incoming, label)
            provenance["xmp"] = {"labelled": False, "note": "XMP labelling applies to images; see C2PA"}
            current = incoming
        if source == AssetSource.reference:
            provenance["c2pa"] = {"state": "not_applicable", "verified": False,
                                  "message": "reference photos are not signed as AI media"}
        else:
            from ainfluencer.media.provenance.c2pa_sign import SigningError, sniff_mime

            try:
                sniff_mime(current)
                signed = scratch_path(ext)
                provenance["c2pa"] = _c2pa_step(settings, current, signed, title=title, ai_system=ai_system,
                                                digital_source_type=declared.digital_source_type)
                if provenance["c2pa"]["state"] == "signed":
                    current = signed
            except SigningError:
                provenance["c2pa"] = {"state": "unsupported", "verified": False,
                                      "message": f"C2PA cannot be embedded in {mime} files here"}

        # 3. content-addressed write ------------------------------------------------------------------------
        sha = _sha256_file(current)
        final_size = current.stat().st_size
        now = utcnow()
        parts = _storage_parts(character, now, sha, ext)
        final = safe_join(settings.media_dir, *parts)
        final.parent.mkdir(parents=True, exist_ok=True)
        created_file = False
        if not final.exists():
            staged = tmp / f"{token}-final.{ext}"
            scratch.append(staged)
            shutil.copyfile(current, staged)
            os.chmod(staged, 0o644)
            os.replace(staged, final)
            created_file = True
    finally:
        for path in scratch:
            path.unlink(missing_ok=True)
    if created_file:
        session.info.setdefault("ainf_vault_new", []).append(str(final))

    # 4. quality gates ---------------------------------------------------------------------------------------
    scores: dict[str, Any] = {}
    decision, reasons = "", []
    if image is not None and run_gates and source != AssetSource.reference:
        result = _run_gates(session, image, character_id, face_scorer)
        scores = dict(result.scores)
        scores["notes"] = list(result.notes)
        scores["duplicates"] = [{"asset_id": a, "distance": d} for a, d in result.duplicates]
        decision, reasons = result.decision, list(result.reasons)
    elif image is not None:
        from ainfluencer.media.quality.duplicates import hash_image

        scores = {"phash": hash_image(image), "notes": ["quality gates not run"]}

    state = review_state
    if state is None:
        state = ReviewState.rejected if decision == "reject" else ReviewState.in_review

    # 5. the row ---------------------------------------------------------------------------------------------
    asset = Asset(
        character_id=character_id,
        created_by=user_id,
        kind=asset_kind,
        source=source,
        sha256=sha,
        source_sha256=source_sha,
        path="/".join(parts),
        original_name=(Path(filename.replace("\\", "/")).name[:255] if filename else ""),
        mime=mime,
        size=final_size,
        width=width,
        height=height,
        duration_s=duration,
        prompt=gen.prompt,
        negative_prompt=gen.negative_prompt,
        caption=gen.caption,
        backend=gen.backend,
        model=gen.model,
        seed=gen.seed,
        cost_usd=float(gen.cost_usd or 0.0),
        generation_ms=gen.generation_ms,
        params=dict(gen.params),
        scores=scores,
        face_similarity=scores.get("face_similarity"),
        technical_score=scores.get("technical"),
        phash=str(scores.get("phash") or ""),
        gate_decision=decision,
        gate_reasons=reasons,
        provenance=provenance,
        review_state=state,
        folder=folder_clean,
        job_id=job_id,
        created_at=now,
    )
    asset.tags = [AssetTag(tag=t) for t in tags_clean]
    session.add(asset)
    session.flush()
    return IngestResult(asset)


def spool_upload(settings: Settings, stream: BinaryIO, *, filename: str = "") -> Path:
    """Copy an upload stream into a private temp file (outside the media folder), enforcing the size limit."""
    limit = settings.max_upload_bytes
    path = _tmp_dir(settings) / f"upload-{uuid.uuid4().hex}"
    written = 0
    try:
        with path.open("wb") as out:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                written += len(chunk)
                if written > limit:
                    name = f"The file '{Path(filename.replace(chr(92), '/')).name[:80]}'" if filename else "The file"
                    raise MediaTooLarge(f"{name} is larger than the limit of {_size_text(limit)}.")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# ---- reading ------------------------------------------------------------------------------------------------


def visible(user: User) -> ColumnElement[bool]:
    """Assets the user may see: the owner sees all; others see their characters' assets and their own uploads."""
    if user.is_owner:
        return true()
    own_characters = select(Character.id).where(Character.user_id == user.id)
    return or_(Asset.character_id.in_(own_characters),
               and_(Asset.character_id.is_(None), Asset.created_by == user.id))


def get_asset(session: Session, asset_id: int, *, user: User) -> Asset:
    """One asset the user may see, or NotFound."""
    asset = session.scalars(select(Asset).where(Asset.id == asset_id, visible(user))).first()
    if asset is None:
        raise NotFound(f"No asset with id {asset_id}.")
    return asset


@dataclass
class AssetFilter:
    """What the vault list can be narrowed by."""

    character_id: int | None = None
    kind: AssetKind | None = None
    review_state: Sequence[ReviewState] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    min_face: float | None = None
    min_technical: float | None = None
    gate: str | None = None
    tag: str | None = None
    folder: str | None = None
    source: AssetSource | None = None
    q: str | None = None


@dataclass
class AssetPage:
    """One page of assets and the total matching count."""

    items: list[Asset]
    total: int
    limit: int
    offset: int

    @property
    def page(self) -> int:
        """1-based page number."""
        return self.offset // self.limit + 1

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1)."""
        return max(1, -(-self.total // self.limit))


SORTS: dict[str, tuple[Any, ...]] = {
    "-created": (Asset.created_at.desc(), Asset.id.desc()),
    "created": (Asset.created_at.asc(), Asset.id.asc()),
    "-face": (Asset.face_similarity.desc().nulls_last(), Asset.id.desc()),
    "-technical": (Asset.technical_score.desc().nulls_last(), Asset.id.desc()),
    "-size": (Asset.size.desc(), Asset.id.desc()),
}


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _conditions(f: AssetFilter, user: User) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [visible(user)]
    if f.character_id is not None:
        conditions.append(Asset.character_id == f.character_id)
    if f.kind is not None:
        conditions.append(Asset.kind == f.kind)
    if f.review_state:
        conditions.append(Asset.review_state.in_(list(f.review_state)))
    if f.date_from is not None:
        conditions.append(Asset.created_at >= _aware(f.date_from))
    if f.date_to is not None:
        conditions.append(Asset.created_at <= _aware(f.date_to))
    if f.min_face is not None:
        conditions.append(Asset.face_similarity >= f.min_face)
    if f.min_technical is not None:
        conditions.append(Asset.technical_score >= f.min_technical)
    if f.gate:
        if f.gate not in ("pass", "flag", "reject"):
            raise InvalidInput("gate is one of pass, flag, reject.", field="gate")
        conditions.append(Asset.gate_decision == f.gate)
    if f.source is not None:
        conditions.append(Asset.source == f.source)
    if f.tag:
        tag = clean_tag(f.tag)
        conditions.append(exists().where(AssetTag.asset_id == Asset.id, AssetTag.tag == tag))
    if f.folder is not None and f.folder.strip():
        folder = clean_folder(f.folder)
        conditions.append(or_(Asset.folder == folder, Asset.folder.like(f"{_escape_like(folder)}/%", escape="\\")))
    search = (f.q or "").strip().lower()
    if search:
        pattern = f"%{_escape_like(search)}%"
        conditions.append(or_(
            func.lower(Asset.prompt).like(pattern, escape="\\"),
            func.lower(Asset.caption).like(pattern, escape="\\"),
            func.lower(Asset.original_name).like(pattern, escape="\\"),
            exists().where(AssetTag.asset_id == Asset.id, AssetTag.tag.like(pattern, escape="\\")),
        ))
    return conditions


def list_assets(
    session: Session, *, user: User, filters: AssetFilter | None = None, sort: str = "-created",
    limit: int = 48, offset: int = 0,
) -> AssetPage:
    """Assets the user may see, filtered, searched, sorted and paged."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be from 1 to {PAGE_MAX}.", field="limit")
    if offset < 0:
        raise InvalidInput("offset must be 0 or more.", field="offset")
    if sort not in SORTS:
        raise InvalidInput(f"sort is one of {', '.join(SORTS)}.", field="sort")
    conditions = _conditions(filters or AssetFilter(), user)
    total = session.scalar(select(func.count(Asset.id)).where(*conditions)) or 0
    rows = session.scalars(select(Asset).where(*conditions).order_by(*SORTS[sort]).limit(limit).offset(offset))
    return AssetPage(items=list(rows), total=int(total), limit=limit, offset=offset)


def review_queue(
    session: Session, *, user: User, character_id: int | None = None, limit: int = 100
) -> list[Asset]:
    """Assets waiting for a person: flagged by the gates first, then oldest first (FIFO)."""
    conditions = [visible(user), Asset.review_state == ReviewState.in_review]
    if character_id is not None:
        conditions.append(Asset.character_id == character_id)
    flagged_first = case((Asset.gate_decision == "flag", 0), else_=1)
    q = select(Asset).where(*conditions).order_by(flagged_first, Asset.created_at.asc(), Asset.id.asc())
    return list(session.scalars(q.limit(limit)))


def folders(session: Session, *, user: User) -> list[tuple[str, int]]:
    """Folder labels in use and how many assets each holds."""
    rows = session.execute(
        select(Asset.folder, func.count(Asset.id)).where(visible(user), Asset.folder != "")
        .group_by(Asset.folder).order_by(Asset.folder)
    ).all()
    return [(str(f), int(n)) for f, n in rows]


def tag_counts(session: Session, *, user: User, limit: int = 100) -> list[tuple[str, int]]:
    """Most used tags."""
    rows = session.execute(
        select(AssetTag.tag, func.count(AssetTag.id)).join(Asset, Asset.id == AssetTag.asset_id)
        .where(visible(user)).group_by(AssetTag.tag).order_by(func.count(AssetTag.id).desc(), AssetTag.tag)
        .limit(limit)
    ).all()
    return [(str(t), int(n)) for t, n in rows]


def state_counts(session: Session, *, user: User) -> dict[str, int]:
    """How many visible assets are in each review state."""
    counts = {s.value: 0 for s in ReviewState}
    rows = session.execute(
        select(Asset.review_state, func.count(Asset.id)).where(visible(user)).group_by(Asset.review_state)
    ).all()
    for state, n in rows:
        counts[ReviewState(state).value] = int(n)
    return counts


# ---- changing ----------------------------------------------------------------------------------------------


def set_review_state(
    session: Session, *, user: User, asset: Asset, state: ReviewState | str, ip: str = ""
) -> Asset:
    """Move an asset through the review workflow (refusing moves the workflow does not allow)."""
    try:
        target = ReviewState(state)
    except ValueError:
        raise InvalidInput(f"review_state is one of {', '.join(s.value for s in ReviewState)}.",
                           field="review_state") from None
    current = ReviewState(asset.review_state)
    if target == current:
        return asset
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
        raise Conflict(f"Asset {asset.id} is {current.value}; it can move to {allowed}, not {target.value}.",
                       field="review_state")
    if target == ReviewState.approved and asset.source == AssetSource.reference:
        raise Conflict(f"Asset {asset.id} is a reference photo of a real person; it is used for face consistency "
                       "only and can never be approved for publishing.", field="review_state")
    asset.review_state = target
    asset.reviewed_by = user.id
    asset.reviewed_at = utcnow()
    audit(session, "vault.review", user_id=user.id, ip=ip, asset_id=asset.id, state=target.value,
          previous=current.value)
    if target == ReviewState.approved:
        events.publish(session, events.AssetApproved(asset=asset))
    return asset


def set_tags(session: Session, *, asset: Asset, tags: Iterable[str]) -> Asset:
    """Replace an asset's tags."""
    wanted = clean_tags(tags)
    keep = [t for t in asset.tags if t.tag in wanted]
    have = {t.tag for t in keep}
    asset.tags = keep + [AssetTag(tag=t) for t in wanted if t not in have]
    return asset


def add_tags(session: Session, *, asset: Asset, tags: Iterable[str]) -> Asset:
    """Add tags to an asset (existing ones stay)."""
    return set_tags(session, asset=asset, tags=[*asset.tag_names, *clean_tags(tags)])


def remove_tags(session: Session, *, asset: Asset, tags: Iterable[str]) -> Asset:
    """Remove tags from an asset."""
    drop = set(clean_tags(tags))
    asset.tags = [t for t in asset.tags if t.tag not in drop]
    return asset


def move(session: Session, *, asset: Asset, folder: str) -> Asset:
    """Put an asset in a (virtual) folder; '' is the top level."""
    asset.folder = clean_folder(folder)
    return asset


def update_asset(
    session: Session, *, user: User, asset: Asset, tags: Sequence[str] | None = None, folder: str | None = None,
    review_state: ReviewState | str | None = None, caption: str | None = None, ip: str = "",
) -> Asset:
    """Change an asset's tags, folder, caption and/or review state."""
    if tags is not None:
        set_tags(session, asset=asset, tags=tags)
    if folder is not None:
        move(session, asset=asset, folder=folder)
    if caption is not None:
        if len(caption) > 5000:
            raise InvalidInput("A caption may be at most 5000 characters.", field="caption")
        asset.caption = caption
    if review_state is not None:
        set_review_state(session, user=user, asset=asset, state=review_state, ip=ip)
    session.flush()
    return asset


# ---- delete, with the scheduled-publication check -------------------------------------------------------------


def _finished_statuses() -> list[str]:
    try:
        from ainfluencer.db.models_publishing import FINAL

        return sorted(str(getattr(s, "value", s)) for s in FINAL)
    except ImportError:  # pragma: no cover - publishing not installed
        return sorted(FINISHED_PUBLICATION_STATUSES)


def _publication_table(session: Session) -> Table | None:
    """The publishing feature's table when it exists (model import first, reflection as a fallback)."""
    try:
        from ainfluencer.db.models_publishing import Publication

        table = Publication.__table__
        return table if isinstance(table, Table) else None
    except ImportError:  # pragma: no cover - publishing not installed
        pass
    bind = session.get_bind()
    if not inspect(bind).has_table("publications"):
        return None
    from sqlalchemy import MetaData

    return Table("publications", MetaData(), autoload_with=bind)


def _media_refs(media: Any) -> tuple[set[int], set[str]]:
    """Asset ids and media-folder paths named in a publication's media JSON (list of {asset_id, path, …} or ids)."""
    if isinstance(media, str):
        try:
            media = json.loads(media)
        except ValueError:
            return set(), set()
    ids: set[int] = set()
    paths: set[str] = set()
    if isinstance(media, dict):
        media = media.get("assets", media.get("items", [media]))
    if not isinstance(media, list):
        return ids, paths
    for item in media:
        value = item.get("asset_id", item.get("id")) if isinstance(item, dict) else item
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            ids.add(int(value))
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            paths.add(item["path"].replace("\\", "/").lstrip("/"))
    return ids, paths


def scheduled_uses(session: Session, assets: Sequence[Asset]) -> dict[int, list[str]]:
    """Which assets unfinished publications (planned, due, sending, retrying, failed …) use, per asset id."""
    if not assets:
        return {}
    table = _publication_table(session)
    if table is None or "media" not in table.c or "status" not in table.c:
        return {}
    columns = [table.c.id, table.c.status, table.c.media]
    if "scheduled_at" in table.c:
        columns.append(table.c.scheduled_at)
    rows = session.execute(select(*columns).where(table.c.status.not_in(_finished_statuses()))).mappings()
    by_id = {a.id: a for a in assets}
    uses: dict[int, list[str]] = {}
    for row in rows:
        ids, paths = _media_refs(row["media"])
        hit = {i for i in ids if i in by_id} | {a.id for a in assets if a.path in paths}
        if not hit:
            continue
        status = getattr(row["status"], "value", row["status"])
        desc = f"post #{row['id']} ({status}"
        when = row.get("scheduled_at")
        if when is not None:
            desc += f", scheduled {when:%Y-%m-%d %H:%M} UTC"
        desc += ")"
        for asset_id in sorted(hit):
            uses.setdefault(asset_id, []).append(desc)
    return uses


def delete_assets(session: Session, *, user: User, assets: Sequence[Asset], settings: Settings, ip: str = "") -> int:
    """Delete assets and (after commit) their files; refuses, deleting nothing, if a scheduled post uses one."""
    if not assets:
        return 0
    uses = scheduled_uses(session, assets)
    if uses:
        lines = [f"asset {aid} is used by {', '.join(descs)}" for aid, descs in sorted(uses.items())]
        raise Conflict("Nothing was deleted: " + "; ".join(lines)
                       + ". Remove the asset from the post or cancel the post first.", code="asset_in_use")
    canonical = session.scalars(
        select(Appearance).where(Appearance.canonical_asset_id.in_([a.id for a in assets]))
    ).all()
    if canonical:
        names = ", ".join(f"asset {a.canonical_asset_id} (appearance '{a.name}')" for a in canonical)
        raise Conflict(f"Nothing was deleted: {names} is a character's canonical face. Pick another canonical face "
                       "first.", code="asset_in_use")
    ids = [a.id for a in assets]
    paths = {a.path for a in assets}
    for asset in assets:
        session.delete(asset)
    session.flush()
    still_used = set(session.scalars(select(Asset.path).where(Asset.path.in_(paths))))
    for rel in paths - still_used:
        session.info.setdefault("ainf_vault_unlink", []).append(str(safe_join(settings.media_dir, *rel.split("/"))))
    audit(session, "vault.delete", user_id=user.id, ip=ip, asset_ids=ids)
    return len(ids)


# ---- batch -----------------------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What a batch action did: the ids changed and, per skipped id, why."""

    action: str
    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def assets_by_ids(session: Session, *, user: User, ids: Iterable[int]) -> list[Asset]:
    """The visible assets among ``ids`` (in id order); unknown ids raise NotFound."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        raise InvalidInput("Select at least one asset.", field="ids")
    if len(wanted) > MAX_BATCH:
        raise InvalidInput(f"At most {MAX_BATCH} assets at a time.", field="ids")
    rows = list(session.scalars(select(Asset).where(Asset.id.in_(wanted), visible(user)).order_by(Asset.id)))
    missing = sorted(set(wanted) - {a.id for a in rows})
    if missing:
        raise NotFound(f"No asset with id {', '.join(map(str, missing))}.")
    return rows


def batch(
    session: Session, *, user: User, settings: Settings, ids: Iterable[int], action: str,
    tags: Sequence[str] = (), folder: str | None = None, ip: str = "",
) -> BatchResult:
    """Approve, reject, archive, review, tag, untag, move or delete many assets at once."""
    if action not in BATCH_ACTIONS:
        raise InvalidInput(f"action is one of {', '.join(BATCH_ACTIONS)}.", field="action")
    assets = assets_by_ids(session, user=user, ids=ids)
    result = BatchResult(action=action)
    if action == "delete":
        delete_assets(session, user=user, assets=assets, settings=settings, ip=ip)
        result.done = [a.id for a in assets]
        return result
    if action in ("tag", "untag") and not clean_tags(tags):
        raise InvalidInput("Name at least one tag.", field="tags")
    if action == "move" and folder is None:
        raise InvalidInput("Name the folder to move to ('' for the top level).", field="folder")
    for asset in assets:
        try:
            if action in ACTION_STATES:
                set_review_state(session, user=user, asset=asset, state=ACTION_STATES[action], ip=ip)
            elif action == "tag":
                add_tags(session, asset=asset, tags=tags)
            elif action == "untag":
                remove_tags(session, asset=asset, tags=tags)
            else:
                move(session, asset=asset, folder=folder or "")
        except (Conflict, InvalidInput) as exc:
            result.skipped[asset.id] = exc.message
            continue
        result.done.append(asset.id)
    session.flush()
    return result


# ---- provenance ---------------------------------------------------------------------------------------------


def verify_provenance(session: Session, *, settings: Settings, asset: Asset) -> dict[str, Any]:
    """Read the asset's C2PA manifest (and XMP label) back now, store and return the outcome."""
    path = file_path(settings, asset)
    if not path.is_file():
        raise NotFound(f"The file of asset {asset.id} is missing from the media folder.")
    provenance = dict(asset.provenance or {})
    c2pa_section = dict(provenance.get("c2pa") or {})
    creds = _signing_credentials(settings)
    if creds is None:
        c2pa_section.update(verified=False, message="no local CA to verify against; run `ainfluencer provenance init`")
    else:
        try:
            from ainfluencer.media.provenance.c2pa_sign import ProvenanceUnavailable, verify_file

            report = verify_file(path, trust_anchors_pem=creds.trust_anchors_pem())
            c2pa_section.update(verified=report.valid, report=report.as_dict(), checked_at=utcnow().isoformat())
            if report.has_manifest and c2pa_section.get("state") in (None, "unsigned"):
                c2pa_section["state"] = "signed"
        except ProvenanceUnavailable as exc:
            c2pa_section.update(verified=False, message=str(exc))
    provenance["c2pa"] = c2pa_section
    if asset.kind == AssetKind.image and asset.source != AssetSource.reference:
        from ainfluencer.media.provenance.metadata import read_provenance

        info = read_provenance(path)
        provenance["xmp"] = {**dict(provenance.get("xmp") or {}), "labelled": bool(info["digital_source_type"]),
                             "digital_source_type": info["digital_source_type"],
                             "ai_generated": bool(info["ai_generated"]),
                             "private_metadata_stripped": not info["private_metadata"]}
    asset.provenance = provenance
    session.flush()
    return provenance


def provenance_verified(asset: Asset) -> bool:
    """True when the asset's C2PA manifest was read back valid against our CA."""
    return bool((asset.provenance or {}).get("c2pa", {}).get("verified"))


def c2pa_status(asset: Asset) -> dict[str, Any]:
    """The last C2PA check in three words: ``valid``, ``invalid`` (a manifest that fails) or ``not signed``.

    With the signer's name, the source type the manifest claims (short IPTC term) and why it is not valid.
    """
    section = dict((asset.provenance or {}).get("c2pa") or {})
    report = dict(section.get("report") or {})
    claimed = str(report.get("digital_source_type") or "")
    if section.get("verified"):
        status = "valid"
    elif report.get("has_manifest") or section.get("state") == "signed":
        status = "invalid"  # a manifest that fails, or a file we signed whose manifest is now unreadable
    else:
        status = "not signed"
    reasons = list(report.get("errors") or [])
    if status == "not signed" and section.get("message"):
        reasons = [str(section["message"])]
    return {"status": status, "signed_by": report.get("signed_by"), "issuer": report.get("issuer"),
            "digital_source_type": claimed or None, "source_type": claimed.rsplit("/", 1)[-1] if claimed else None,
            "reasons": reasons, "checked_at": section.get("checked_at")}


# ---- zip download (streamed) -------------------------------------------------------------------------------------


class _StreamBuffer(io.RawIOBase):
    """A write-only, non-seekable sink: zipfile writes into it, the generator drains it after each chunk."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:  # type: ignore[override]
        data = bytes(b)
        self._chunks.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        return None

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


@dataclass(frozen=True)
class ZipEntry:
    """One file going into a zip: where it is and the name it gets inside the archive."""

    path: Path
    arcname: str


def zip_entries(settings: Settings, assets: Sequence[Asset], characters: dict[int, str]) -> list[ZipEntry]:
    """Archive names ``<character>/<id>-<sha12>.<ext>`` for the assets whose files exist."""
    entries = []
    for asset in assets:
        path = file_path(settings, asset)
        if not path.is_file():
            continue
        owner = characters.get(asset.character_id or 0, NO_CHARACTER_DIR)
        entries.append(ZipEntry(path, f"{owner}/{asset.id}-{asset.sha256[:12]}.{asset.ext}"))
    return entries


def asset_manifest(asset: Asset) -> dict[str, Any]:
    """The JSON-ready record of an asset that goes into a zip's manifest.json."""
    return {
        "id": asset.id, "character_id": asset.character_id, "kind": asset.kind.value, "mime": asset.mime,
        "sha256": asset.sha256, "size": asset.size, "width": asset.width, "height": asset.height,
        "duration_s": asset.duration_s, "prompt": asset.prompt, "negative_prompt": asset.negative_prompt,
        "caption": asset.caption, "backend": asset.backend, "model": asset.model, "seed": asset.seed,
        "cost_usd": asset.cost_usd, "review_state": asset.review_state.value, "tags": asset.tag_names,
        "folder": asset.folder, "scores": asset.scores, "gate_decision": asset.gate_decision,
        "gate_reasons": asset.gate_reasons, "provenance": asset.provenance,
        "created_at": asset.created_at.isoformat() if asset.created_at else None,
    }


def zip_stream(entries: Sequence[ZipEntry], manifest: list[dict[str, Any]]) -> Iterator[bytes]:
    """Yield a zip archive of the entries plus manifest.json chunk by chunk (never the whole zip in memory)."""
    sink = _StreamBuffer()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry.arcname, date_time=datetime.now(UTC).timetuple()[:6])
            info.compress_type = zipfile.ZIP_STORED
            with entry.path.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    dst.write(chunk)
                    data = sink.drain()
                    if data:
                        yield data
            data = sink.drain()
            if data:
                yield data
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False, default=str))
    tail = sink.drain()
    if tail:
        yield tail
