"""Download model files (voices, text models, …) with progress, size and checksum checks, and resume.

Generic on purpose: a catalogue (voice, text model) describes what to fetch as ``RemoteFile`` rows and
calls ``fetch_files``; this module knows nothing about what the files are.

How one file is fetched:
    already at ``dest`` with the expected size and checksum  -> nothing to do
    ``dest.part`` exists                                     -> ask for the rest (``Range: bytes=N-``);
                                                                a 206 appends, a 200 starts over
    done                                                     -> size and SHA-256 checked, then renamed
                                                                into place (a bad file is deleted, never used)
Errors are ``FetchError`` (a 4xx/5xx, a network failure, a size or checksum mismatch) with a message a
person can act on; an interrupted download keeps its ``.part`` so the next call resumes it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from ainfluencer.errors import AppError

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, read=60.0)

# called with (file name, bytes done, bytes expected or None)
Progress = Callable[[str, int, int | None], None]


class FetchError(AppError):
    """A model file could not be downloaded or did not match what the catalogue promises."""

    status_code = 502
    code = "fetch_failed"


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: where from, its name in the target folder, and what it must be."""

    url: str
    name: str
    size: int | None = None
    sha256: str | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def is_complete(file: RemoteFile, folder: Path) -> bool:
    """Whether ``folder`` already holds ``file`` with the expected size and checksum."""
    dest = folder / file.name
    if not dest.is_file():
        return False
    if file.size is not None and dest.stat().st_size != file.size:
        return False
    return file.sha256 is None or _sha256(dest) == file.sha256.lower()


def fetch_file(
    file: RemoteFile, folder: Path, *, client: httpx.Client | None = None, progress: Progress | None = None,
) -> Path:
    """Download ``file`` into ``folder`` (resuming a partial download) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / file.name
    if is_complete(file, folder):
        if progress:
            progress(file.name, dest.stat().st_size, dest.stat().st_size)
        return dest
    part = dest.with_name(dest.name + ".part")
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=True)
    try:
        have = part.stat().st_size if part.is_file() else 0
        if file.size is not None and have > file.size:
            part.unlink()
            have = 0
        digest = hashlib.sha256()
        if have:
            with part.open("rb") as fh:
                for block in iter(lambda: fh.read(CHUNK), b""):
                    digest.update(block)
        headers = {"Range": f"bytes={have}-"} if have else {}
        if file.size is not None and have == file.size:
            pass  # everything arrived last time; only the checks below are left
        else:
            with http.stream("GET", file.url, headers=headers) as resp:
                if resp.status_code == 416 and have:  # nothing left to send: the part may be whole
                    pass
                elif resp.status_code not in (200, 206):
                    raise FetchError(f"{file.name}: the server answered {resp.status_code} for {file.url}")
                else:
                    if resp.status_code == 200 and have:  # the server ignored the range: start over
                        have, digest = 0, hashlib.sha256()
                    total = file.size
                    if total is None and resp.headers.get("content-length", "").isdigit():
                        total = have + int(resp.headers["content-length"])
                    with part.open("ab" if have else "wb") as out:
                        done = have
                        for block in resp.iter_bytes(CHUNK):
                            out.write(block)
                            digest.update(block)
                            done += len(block)
                            if file.size is not None and done > file.size:
                                raise FetchError(f"{file.name}: the server sent more than the expected "
                                                 f"{file.size} bytes")
                            if progress:
                                progress(file.name, done, total)
        size = part.stat().st_size if part.is_file() else 0
        if file.size is not None and size != file.size:
            raise FetchError(f"{file.name}: got {size} bytes of {file.size}; run the command again to resume")
        got = digest.hexdigest()
        if file.sha256 is not None and got != file.sha256.lower():
            part.unlink(missing_ok=True)
            raise FetchError(f"{file.name}: checksum mismatch (SHA-256 {got}, expected {file.sha256}); "
                             "the download was deleted")
        os.replace(part, dest)
        return dest
    except httpx.HTTPError as exc:
        raise FetchError(f"{file.name}: download from {file.url} failed ({exc}); run the command again to "
                         "resume") from exc
    finally:
        if own:
            http.close()


def fetch_files(
    files: Sequence[RemoteFile], folder: Path, *, client: httpx.Client | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Download every file of one model into ``folder`` (see ``fetch_file``)."""
    return [fetch_file(f, folder, client=client, progress=progress) for f in files]


def human_size(n: float) -> str:
    """Bytes as a short human-readable size (``63.2 MB``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
