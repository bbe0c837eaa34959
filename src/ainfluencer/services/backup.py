"""Portable logical backups that restore on SQLite or PostgreSQL alike.

An archive ``ainfluencer-backup-<UTC stamp>.tar.gz`` holds, in this order:

- ``manifest.json``: format, app version, Alembic revision, creation time, source dialect,
  row count per table and a media summary;
- ``tables/<table>.jsonl``: one JSON object per row for every table of ``Base.metadata``
  (datetimes ISO 8601, bytes base64, enums by value), read from one consistent snapshot;
- ``media_index.jsonl``: relative path, size and SHA-256 of every file under the media dir;
- ``media/<path>``: the media files themselves, when asked for.

Because rows are stored as data rather than SQL, a backup of the embedded SQLite database
restores into PostgreSQL: the way to move an install onto the production database.
Encrypted credentials stay encrypted; their key (``encryption.keys`` or ``AINF_ENCRYPTION_KEY``)
is deliberately *not* in the archive, so keep it alongside.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import time as _time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Connection, Integer, Table, TypeDecorator, create_engine, func, select, text
from sqlalchemy.pool import NullPool

from ainfluencer.db.engine import Database
from ainfluencer.db.migrate import current_revision, upgrade
from ainfluencer.db.models import Base, utcnow

if TYPE_CHECKING:
    from ainfluencer.runtime import Runtime

log = logging.getLogger(__name__)

Progress = Callable[[int, str], None]

FORMAT = "ainfluencer-backup"
FORMAT_VERSION = 1
NAME_PREFIX = "ainfluencer-backup-"
NAME_RE = re.compile(r"^ainfluencer-backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar\.gz$")
# Liveness rows describe processes, not data: a restore must not resurrect yesterday's workers.
EPHEMERAL_TABLES = frozenset({"heartbeats"})
BATCH = 500
STALE_TEMP_SECONDS = 6 * 3600


@dataclass(frozen=True)
class BackupInfo:
    """One archive in the backup directory."""

    path: Path
    name: str
    size: int
    created_at: datetime


def _app_version() -> str:
    import ainfluencer

    return str(getattr(ainfluencer, "__version__", "0.1.0"))


def _noop(_percent: int, _message: str) -> None:
    return None


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in EPHEMERAL_TABLES]


# ---- value encoding ---------------------------------------------------------------------


def _encode(value: Any) -> Any:
    """A JSON-safe form of one column value."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool | int | float | str | dict | list):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot back up a value of type {type(value).__name__}")


def _decoder(column: Any) -> Callable[[Any], Any] | None:
    """How to turn a column's JSON form back into what the column type binds."""
    col_type = column.type
    while isinstance(col_type, TypeDecorator):
        col_type = col_type.impl_instance
    try:
        python_type = col_type.python_type
    except NotImplementedError:
        return None
    decoders: dict[type, Callable[[Any], Any]] = {
        datetime: datetime.fromisoformat,
        date: date.fromisoformat,
        time: time.fromisoformat,
        bytes: lambda v: base64.b64decode(v, validate=True),
        Decimal: lambda v: Decimal(str(v)),
        timedelta: lambda v: timedelta(seconds=v),
        uuid.UUID: uuid.UUID,
    }
    if python_type in decoders:
        return decoders[python_type]
    if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
        return python_type
    return None


# ---- snapshot ---------------------------------------------------------------------------


@contextmanager
def _snapshot(db: Database, work: Path) -> Iterator[Connection]:
    """A connection that sees one consistent state of the whole database."""
    if db.is_sqlite:
        # SQLite's online-backup API copies a consistent image without holding the write lock
        # for the length of the dump (the job's own heartbeat needs that lock meanwhile).
        copy = work / "snapshot.sqlite3"
        raw = db.engine.raw_connection()
        try:
            target = sqlite3.connect(copy)
            try:
                raw.driver_connection.backup(target)  # type: ignore[union-attr]
            finally:
                target.close()
        finally:
            raw.close()
        engine = create_engine(f"sqlite:///{copy}", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()
        return
    options: dict[str, Any] = {"isolation_level": "REPEATABLE READ"}
    if db.engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    with db.engine.connect() as conn:
        conn = conn.execution_options(**options)
        with conn.begin():
            yield conn


_SURROGATE = re.compile("[\ud800-\udfff]")


def _dump_table(conn: Connection, table: Table, out: IO[str]) -> int:
    count = 0
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(yield_per=1000).execute(select(table).order_by(*order))
    for row in result:
        mapping = row._mapping
        record = {col.name: _encode(mapping[col]) for col in table.columns}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        if _SURROGATE.search(line):  # a lone surrogate cannot be written as UTF-8: keep it escaped
            line = json.dumps(record, separators=(",", ":"))
        out.write(line + "\n")
        count += 1
    return count


# ---- media ------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def media_index(media_dir: Path) -> list[dict[str, Any]]:
    """Relative path, size and SHA-256 of every regular file under ``media_dir``."""
    entries: list[dict[str, Any]] = []
    if not media_dir.is_dir():
        return entries
    for root, dirs, files in os.walk(media_dir, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(media_dir).as_posix()
            entries.append({"path": rel, "size": path.stat().st_size, "sha256": _sha256_file(path)})
    return entries


# ---- archive writing --------------------------------------------------------------------


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o600
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    tar.addfile(_tarinfo(name, len(data), mtime), io.BytesIO(data))


def _add_path(tar: tarfile.TarFile, name: str, path: Path, mtime: float) -> None:
    with path.open("rb") as fh:
        tar.addfile(_tarinfo(name, path.stat().st_size, mtime), fh)


def _archive_name(dest: Path, created: datetime) -> Path:
    stem = NAME_PREFIX + created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = dest / f"{stem}.tar.gz"
    n = 1
    while candidate.exists():
        candidate = dest / f"{stem}-{n}.tar.gz"
        n += 1
    return candidate


def create_backup(
    runtime: Runtime,
    *,
    dest_dir: Path | None = None,
    progress: Progress | None = None,
    include_media: bool = False,
) -> Path:
    """Write a backup archive (atomically) and return its path."""
    report = progress or _noop
    settings = runtime.settings
    dest = Path(dest_dir) if dest_dir is not None else settings.backup_dir
    dest.mkdir(parents=True, exist_ok=True)
    created = utcnow().replace(microsecond=0)
    stamp = created.timestamp()
    tables = _tables()
    report(1, "reading the database")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{NAME_PREFIX}", suffix=".tmp", dir=dest)
    tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory(prefix=f".{NAME_PREFIX}work-", dir=dest) as work_dir:
            work = Path(work_dir)
            counts: dict[str, int] = {}
            with _snapshot(runtime.db, work) as conn:
                for i, table in enumerate(tables):
                    with (work / f"{table.name}.jsonl").open("w", encoding="utf-8") as out:
                        counts[table.name] = _dump_table(conn, table, out)
                    report(1 + int(59 * (i + 1) / max(1, len(tables))), f"read table {table.name}")
            report(62, "indexing media")
            media = media_index(settings.media_dir)
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "app_version": _app_version(),
                "alembic_revision": current_revision(runtime.db),
                "created_at": created.isoformat(),
                "dialect": runtime.db.engine.dialect.name,
                "tables": counts,
                "media": {
                    "files": len(media),
                    "bytes": sum(e["size"] for e in media),
                    "included": include_media,
                },
            }
            with os.fdopen(fd, "wb") as raw:
                fd = -1
                with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                    _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode(), stamp)
                    for table in tables:
                        _add_path(tar, f"tables/{table.name}.jsonl", work / f"{table.name}.jsonl", stamp)
                    index = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in media)
                    _add_bytes(tar, "media_index.jsonl", index.encode(), stamp)
                    report(70, "archiving")
                    if include_media:
                        for i, entry in enumerate(media):
                            _add_path(tar, f"media/{entry['path']}", settings.media_dir / entry["path"], stamp)
                            if i % 50 == 0:
                                report(70 + int(25 * i / max(1, len(media))), f"media {i} of {len(media)}")
                raw.flush()
                os.fsync(raw.fileno())
        os.chmod(tmp, 0o600)  # the archive holds password hashes and e-mail addresses
        final = _archive_name(dest, created)
        os.replace(tmp, final)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    report(100, f"wrote {final.name}")
    log.info("backup written: %s (%s bytes)", final, final.stat().st_size)
    return final


# ---- listing and pruning ----------------------------------------------------------------


def list_backups(runtime: Runtime, *, backup_dir: Path | None = None) -> list[BackupInfo]:
    """Archives in the backup directory, newest first."""
    folder = backup_dir or runtime.settings.backup_dir
    if not folder.is_dir():
        return []
    found: list[tuple[datetime, int, BackupInfo]] = []
    for path in folder.iterdir():
        match = NAME_RE.match(path.name)
        if not match or not path.is_file():
            continue
        created = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        info = BackupInfo(path=path, name=path.name, size=path.stat().st_size, created_at=created)
        found.append((created, int(match.group(2) or 0), info))
    found.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [info for _, _, info in found]


def prune_backups(runtime: Runtime, keep: int, *, backup_dir: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` archives (and stale temp files); return what was deleted."""
    folder = backup_dir or runtime.settings.backup_dir
    removed: list[Path] = []
    for info in list_backups(runtime, backup_dir=folder)[max(0, keep):]:
        info.path.unlink(missing_ok=True)
        removed.append(info.path)
    if folder.is_dir():
        cutoff = _time.time() - STALE_TEMP_SECONDS
        for leftover in folder.glob(f".{NAME_PREFIX}*"):
            if leftover.stat().st_mtime < cutoff:  # left behind by a crashed backup
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
    return removed


# ---- restore ----------------------------------------------------------------------------


def _check_members(members: list[tarfile.TarInfo]) -> None:
    for member in members:
        parts = PurePosixPath(member.name).parts
        if member.name.startswith("/") or "\\" in member.name or ".." in parts or not parts:
            raise ValueError(f"refusing to restore: unsafe path {member.name!r} in the backup archive")
        if not (member.isreg() or member.isdir()):
            raise ValueError(f"refusing to restore: {member.name!r} in the backup archive is not a regular file")


def _read_json(tar: tarfile.TarFile, name: str) -> Any:
    try:
        fh = tar.extractfile(name)
    except KeyError:
        fh = None
    if fh is None:
        raise ValueError(f"not an AInfluencer backup: {name} is missing")
    return json.load(fh)


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    preparer = conn.dialect.identifier_preparer
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        seq = conn.scalar(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": preparer.format_table(table), "column": pk[0].name},
        )
        if seq is None:
            continue
        top = conn.scalar(select(func.max(pk[0])))
        # is_called=false: the next nextval() returns exactly max+1 (also valid on an empty table).
        conn.execute(text("SELECT setval(:seq, :value, false)"), {"seq": seq, "value": int(top or 0) + 1})


@dataclass(frozen=True)
class BadValue:
    """One value of an archived row that not every database would accept."""

    table: str
    row_id: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.table} id={self.row_id} {self.field}: {self.problem}"


class RestoreRefused(ValueError):
    """The archive holds values this database would refuse; nothing was changed."""

    def __init__(self, bad: list[BadValue], total: int) -> None:
        shown = "\n".join(f"  {b}" for b in bad[:50])
        more = f"\n  ... and {total - len(bad[:50])} more" if total > 50 else ""
        super().__init__(
            f"refusing to restore: {total} value(s) in the backup cannot be stored in every database "
            f"(NUL bytes, invalid Unicode, numbers or text too large for their column). Nothing was changed.\n"
            f"{shown}{more}\nRestore with --clean to remove NUL bytes and invalid Unicode and shorten over-long "
            "text in these rows."
        )
        self.bad = bad
        self.total = total


def _clean_text(value: str, length: int | None) -> str:
    value = value.replace("\x00", "")
    value = value.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate becomes "?"
    return value[:length] if length is not None else value


def _clean_value(column: Any, value: Any) -> Any:
    """A value every database stores, when cleaning can make one (text only; numbers cannot)."""
    if isinstance(value, str):
        return _clean_text(value, getattr(column.type, "length", None))
    if isinstance(value, dict):
        return {_clean_text(str(k), None): _clean_value(column, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_value(column, v) for v in value]
    return value


def _decoded_rows(table: Table, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    decoders = {col.name: _decoder(col) for col in table.columns}
    for line in fh:
        if not line.strip():
            continue
        record = json.loads(line)
        row = {}
        for name, value in record.items():
            if name not in decoders:
                continue  # a column this version does not have (same revision: should not happen)
            decode = decoders[name]
            row[name] = decode(value) if decode is not None and value is not None else value
        yield row


def _row_problems(table: Table, row: dict[str, Any]) -> Iterator[tuple[str, str]]:
    from ainfluencer.input_guard import column_problem

    for column in table.columns:
        if column.name in row:
            problem = column_problem(column, row[column.name])
            if problem:
                yield column.name, problem


def check_archive_rows(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], tables: list[Table]
                       ) -> tuple[list[BadValue], int]:
    """Every archived value any database would refuse, as (table, id, field) — found before any change."""
    bad: list[BadValue] = []
    total = 0
    for table in tables:
        member = members.get(f"tables/{table.name}.jsonl")
        fh = tar.extractfile(member) if member is not None else None
        if fh is None:
            continue
        pk = [c.name for c in table.primary_key.columns]
        for row in _decoded_rows(table, fh):
            for field, problem in _row_problems(table, row):
                total += 1
                if len(bad) < 1000:
                    row_id = ",".join(str(row.get(k)) for k in pk)
                    bad.append(BadValue(table.name, row_id, field, problem))
    return bad, total


def _load_table(conn: Connection, table: Table, fh: IO[bytes], *, clean: bool = False) -> int:
    batch: list[dict[str, Any]] = []
    count = 0
    for row in _decoded_rows(table, fh):
        if clean:
            for field, _problem in list(_row_problems(table, row)):
                row[field] = _clean_value(table.columns[field], row[field])
        batch.append(row)
        if len(batch) >= BATCH:
            conn.execute(table.insert(), batch)
            count += len(batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)
        count += len(batch)
    return count


def _restore_media(tar: tarfile.TarFile, members: list[tarfile.TarInfo], media_dir: Path) -> int:
    index: dict[str, str] = {}
    try:
        fh = tar.extractfile("media_index.jsonl")
    except KeyError:
        fh = None
    if fh is not None:
        for line in fh:
            if line.strip():
                entry = json.loads(line)
                index[entry["path"]] = entry["sha256"]
    root = media_dir.resolve()
    restored = 0
    for member in members:
        if not member.isreg() or not member.name.startswith("media/"):
            continue
        rel = member.name[len("media/"):]
        target = (root / rel).resolve()
        if not target.is_relative_to(root) or target == root:
            raise ValueError(f"refusing to restore: {member.name!r} points outside the media directory")
        source = tar.extractfile(member)
        if source is None:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".restore-", dir=target.parent)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            expected = index.get(rel)
            if expected is not None and expected != digest.hexdigest():
                raise ValueError(f"media file {rel!r} in the backup is corrupt (checksum mismatch)")
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        restored += 1
    return restored


def restore_backup(runtime: Runtime, path: Path | str, *, progress: Progress | None = None,
                   clean: bool = False) -> dict[str, Any]:
    """Replace every row (and restore included media) from an archive; refuses a schema mismatch.

    Atomic: every archived value is checked first, and values a database would refuse (NUL bytes
    and lone surrogates, which SQLite stores and PostgreSQL does not; numbers or text beyond their
    column) stop the restore before anything changes, listed as (table, id, field) in
    :class:`RestoreRefused`. ``clean=True`` removes NUL bytes and invalid Unicode and shortens
    over-long text in those rows instead; a number out of range cannot be cleaned and still refuses.
    """
    report = progress or _noop
    path = Path(path)
    try:
        tar = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ValueError(f"{path} is not a readable backup archive: {exc}") from exc
    with tar:
        members = tar.getmembers()
        _check_members(members)
        manifest = _read_json(tar, "manifest.json")
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{path.name} is not an AInfluencer backup (format {manifest.get('format')!r})")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(
                f"{path.name} uses backup format {manifest['format_version']}; this version reads up to "
                f"{FORMAT_VERSION}. Upgrade AInfluencer to restore it."
            )
        report(2, "upgrading the database schema")
        upgrade(runtime.db)
        target_revision = current_revision(runtime.db)
        archive_revision = manifest.get("alembic_revision")
        if archive_revision != target_revision:
            raise ValueError(
                f"refusing to restore: {path.name} was made by AInfluencer {manifest.get('app_version')} at "
                f"database schema revision {archive_revision!r}, but this database is at revision "
                f"{target_revision!r}. Restore it with the AInfluencer version that made it, then upgrade."
            )
        tables = _tables()
        by_name = {m.name: m for m in members}
        counts: dict[str, int] = {}
        report(4, "checking every value")
        bad, total = check_archive_rows(tar, by_name, tables)
        unfixable = [b for b in bad if "between" in b.problem]
        if bad and (not clean or unfixable):
            raise RestoreRefused(unfixable or bad, len(unfixable) if unfixable else total)
        cleaned = total if clean else 0
        report(5, "replacing rows")
        with runtime.db.engine.begin() as conn:
            for table in reversed(tables):
                conn.execute(table.delete())
            for i, table in enumerate(tables):
                member = by_name.get(f"tables/{table.name}.jsonl")
                fh = tar.extractfile(member) if member is not None else None
                counts[table.name] = _load_table(conn, table, fh, clean=clean) if fh is not None else 0
                report(5 + int(80 * (i + 1) / max(1, len(tables))), f"restored table {table.name}")
            if conn.dialect.name == "postgresql":
                _reset_sequences(conn, tables)
        report(88, "restoring media")
        media_files = _restore_media(tar, members, runtime.settings.media_dir)
    report(100, "restored")
    log.warning("restored %s (made %s on %s)", path.name, manifest.get("created_at"), manifest.get("dialect"))
    return {
        "revision": target_revision,
        "created_at": manifest.get("created_at"),
        "source_dialect": manifest.get("dialect"),
        "tables": counts,
        "media_files": media_files,
        "cleaned_values": cleaned,
    }
