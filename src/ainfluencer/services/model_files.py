"""Fetching model files: progress, size, SHA-256 verification and resume after an interruption.

``fetch_file`` downloads one URL into a ``.part`` file next to the destination and asks the server
for the rest (``Range: bytes=N-``) when a previous try left one; only a file whose SHA-256 matches is
renamed into place, so a half-written or corrupted model is never loaded. ``pull_local_text_model``
is what ``ainfluencer models pull text`` and the setup page call; both pass a progress callback.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ainfluencer.backends.text.catalogue import DEFAULT_LOCAL_TEXT_MODEL, HUB_BASE_URL, LOCAL_TEXT_MODELS, LocalModel

CHUNK_BYTES = 1 << 20
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class FetchProgress:
    """Where a download stands: bytes on disk so far, the total when known, and a short status line."""

    done_bytes: int
    total_bytes: int | None
    resumed_from: int
    message: str

    @property
    def fraction(self) -> float | None:
        """0.0–1.0 when the total is known."""
        if not self.total_bytes:
            return None
        return min(1.0, self.done_bytes / self.total_bytes)


ProgressCallback = Callable[[FetchProgress], None]


class FetchError(Exception):
    """A download that did not produce a verified file; the message is safe to show."""

    def __init__(self, message: str, *, resumable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.resumable = resumable


class ChecksumMismatch(FetchError):
    """The downloaded bytes are not the file the catalogue (or the server) names; the partial file is deleted."""


def sha256_of(path: Path, *, upto: int | None = None) -> str:
    """The SHA-256 (hex) of a file's first ``upto`` bytes (all of it when None)."""
    h = hashlib.sha256()
    left = upto
    with path.open("rb") as f:
        while left is None or left > 0:
            block = f.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return h.hexdigest()


def _published_sha256(response: httpx.Response) -> str | None:
    """The checksum a server publishes for the file: the Hub's X-Linked-Etag (its LFS oid) or a SHA-256 ETag."""
    for r in [*response.history, response]:
        for header in ("x-linked-etag", "etag"):
            value = r.headers.get(header, "").strip()
            value = value.removeprefix("W/").strip('"').lower()
            if _SHA256_RE.match(value):
                return value
    return None


def _notify(progress: ProgressCallback | None, done: int, total: int | None, resumed: int, message: str) -> None:
    if progress is not None:
        progress(FetchProgress(done, total, resumed, message))


def fetch_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size_bytes: int | None = None,
    progress: ProgressCallback | None = None,
    client: httpx.Client | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming a ``.part`` file, and verify its SHA-256 before renaming it in place.

    ``sha256`` is the expected checksum (the server's published one is used when None; a file with
    neither is refused). Raises FetchError (``resumable`` when running again continues the download)
    or ChecksumMismatch.
    """
    expected = (sha256 or "").lower() or None
    if expected is not None and not _SHA256_RE.match(expected):
        raise FetchError(f"the expected checksum {sha256!r} is not a SHA-256 hex digest")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and expected is not None and sha256_of(dest) == expected:
        size = dest.stat().st_size
        _notify(progress, size, size, size, "already downloaded and verified")
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=15.0), follow_redirects=True)
    total: int | None = None
    try:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        _notify(progress, offset, size_bytes, offset, "resuming" if offset else "connecting")
        try:
            with http.stream("GET", url, headers=headers, follow_redirects=True) as response:
                expected = expected or _published_sha256(response)
                if response.status_code == 416 and offset:
                    total = offset  # the part already holds the whole file; verify it below
                elif response.status_code in (200, 206):
                    total = _receive(response, part, offset=offset, size_bytes=size_bytes, progress=progress)
                else:
                    raise FetchError(f"the server answered HTTP {response.status_code} for {url}")
        except httpx.HTTPError as exc:
            done = part.stat().st_size if part.exists() else 0
            raise FetchError(f"download interrupted after {done:,} bytes ({type(exc).__name__}); run it again to "
                             "resume", resumable=True) from exc
    finally:
        if own:
            http.close()
    done = part.stat().st_size
    if total is not None and done != total:
        raise FetchError(f"download stopped at {done:,} of {total:,} bytes; run it again to resume", resumable=True)
    if expected is None:
        part.unlink(missing_ok=True)
        raise FetchError("neither the catalogue nor the server gives a SHA-256 for this file; not keeping it")
    _notify(progress, done, total, offset, "verifying checksum")
    actual = sha256_of(part)
    if actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(f"checksum mismatch: expected {expected}, got {actual}; the partial file was removed")
    os.replace(part, dest)
    _notify(progress, done, done, offset, "done")
    return dest


def _receive(response: httpx.Response, part: Path, *, offset: int, size_bytes: int | None,
             progress: ProgressCallback | None) -> int | None:
    """Write the body to ``part`` (appending on a 206 that continues where we stopped); returns the total size."""
    if response.status_code == 206:
        m = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if m is None or int(m.group(1)) != offset:
            raise FetchError("the server sent a range that does not continue the partial file")
        total = int(m.group(3)) if m.group(3) != "*" else None
        mode = "ab"
    else:  # 200: the server ignored the range (or there was none); start over
        offset = 0
        length = response.headers.get("content-length")
        total = int(length) if length and length.isdigit() else size_bytes
        mode = "wb"
    done = offset
    last = 0.0
    with part.open(mode) as f:
        for block in response.iter_bytes():  # as received, so an interruption keeps what arrived
            f.write(block)
            done += len(block)
            now = time.monotonic()
            if now - last >= 0.2:  # a callback per chunk would flood a terminal or an SSE stream
                last = now
                _notify(progress, done, total, offset, "downloading")
    _notify(progress, done, total, offset, "downloading")
    return total


def text_models_dir(data_dir: Path) -> Path:
    """Where local text models live: ``<data dir>/models/text``."""
    return data_dir / "models" / "text"


def pull_local_text_model(
    model_id: str = DEFAULT_LOCAL_TEXT_MODEL,
    *,
    models_dir: Path,
    progress: ProgressCallback | None = None,
    base_url: str = HUB_BASE_URL,
    client: httpx.Client | None = None,
    entry: LocalModel | None = None,
) -> Path:
    """Fetch a catalogue model into ``models_dir`` (resuming, verified) and return its path."""
    model = entry or LOCAL_TEXT_MODELS.get(model_id)
    if model is None:
        known = ", ".join(LOCAL_TEXT_MODELS)
        raise FetchError(f"unknown local text model {model_id!r}; known: {known}")
    return fetch_file(model.url(base_url), models_dir / model.filename, sha256=model.sha256 or None,
                      size_bytes=model.size_bytes, progress=progress, client=client)
