"""Backups: round trip, SQLite → current database, refusals, listing and pruning."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ainfluencer.db.models import (
    ApiToken,
    AppSetting,
    Base,
    Heartbeat,
    Job,
    JobStatus,
    Role,
    StoredSecret,
    User,
)
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime
from ainfluencer.services.backup import create_backup, list_backups, prune_backups, restore_backup


def _seed(rt: Runtime) -> None:
    with rt.db.session() as s:
        owner = User(email="owner@example.com", display_name="Ünïcode Owner", password_hash="$argon2id$x",
                     role=Role.owner, email_verified_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
        member = User(email="m@example.com", password_hash="h", role=Role.member, is_active=False)
        s.add_all([owner, member])
        s.flush()
        s.add(ApiToken(user_id=owner.id, name="cli", prefix="ainf_ab", token_hash="f" * 64, scopes="read,write",
                       expires_at=datetime(2027, 1, 1, tzinfo=UTC)))
        s.add(StoredSecret(owner_kind="account", owner_id=7, name="token", key_id="k1",
                           ciphertext=bytes(range(256))))
        s.add(AppSetting(key="signups", value={"open": True, "nested": [1, "two", None]}, updated_by=owner.id))
        s.add(Job(kind="selftest", payload={"steps": 3}, status=JobStatus.failed, attempts=2,
                  idempotency_key="k:1", last_error="boom", user_id=member.id,
                  finished_at=datetime(2026, 5, 5, tzinfo=UTC)))
        s.add(Job(kind="selftest", payload={"steps": 1, "step_seconds": 0}, run_at=datetime(2030, 1, 1, tzinfo=UTC)))
        s.add(Heartbeat(component="worker", instance="old", detail={}))


def _dump(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with rt.db.engine.connect() as c:
        for table in Base.metadata.sorted_tables:
            if table.name == "heartbeats":
                continue
            rows = c.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def _rewrite(src: Path, dest: Path, *, manifest: dict[str, Any] | None = None,
             extra: tuple[tarfile.TarInfo, bytes] | None = None) -> Path:
    """Copy an archive, optionally replacing the manifest or adding a member."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w:gz") as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json" and manifest is not None:
                data = json.dumps(manifest).encode()
                member.size = len(data)
            tout.addfile(member, io.BytesIO(data))
        if extra is not None:
            info, data = extra
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    return dest


def test_round_trip_restores_every_row(runtime: Runtime, tmp_path: Path) -> None:
    _seed(runtime)
    media = runtime.settings.media_dir
    (media / "ab").mkdir(parents=True)
    (media / "ab" / "cd.png").write_bytes(b"\x89PNG fake image")
    (media / "top.txt").write_text("hello")
    before = _dump(runtime)
    seen: list[int] = []

    path = create_backup(runtime, progress=lambda pct, msg: seen.append(pct), include_media=True)
    assert path.parent == runtime.settings.backup_dir
    assert path.name.startswith("ainfluencer-backup-") and path.name.endswith("Z.tar.gz")
    assert seen[-1] == 100 and seen == sorted(seen)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temp files left behind"

    with tarfile.open(path) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = [json.loads(line) for line in tar.extractfile("media_index.jsonl")]  # type: ignore[union-attr]
    assert names[0] == "manifest.json"
    assert "tables/users.jsonl" in names and "media/ab/cd.png" in names
    assert "tables/heartbeats.jsonl" not in names
    assert manifest["tables"]["users"] == 2 and manifest["tables"]["jobs"] == 2
    assert manifest["alembic_revision"] and manifest["app_version"] == "0.1.0"
    assert manifest["dialect"] == runtime.db.engine.dialect.name
    assert {e["path"]: e["sha256"] for e in index} == {
        "ab/cd.png": hashlib.sha256(b"\x89PNG fake image").hexdigest(),
        "top.txt": hashlib.sha256(b"hello").hexdigest(),
    }

    # Wipe: rows changed and gone, media lost.
    with runtime.db.session() as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())
        s.add(User(email="intruder@example.com", password_hash="x"))
    (media / "ab" / "cd.png").unlink()

    summary = restore_backup(runtime, path)
    assert summary["tables"]["users"] == 2 and summary["media_files"] == 2
    assert _dump(runtime) == before
    assert (media / "ab" / "cd.png").read_bytes() == b"\x89PNG fake image"

    # Ids keep counting after the restored maximum (PostgreSQL sequences were reset).
    with runtime.db.session() as s:
        fresh = User(email="new@example.com", password_hash="x")
        s.add(fresh)
        s.flush()
        assert fresh.id > max(row[0] for row in before["users"])


def test_sqlite_backup_restores_into_this_database(runtime: Runtime, make_sqlite_runtime: Any,
                                                   tmp_path: Path) -> None:
    source = make_sqlite_runtime("source")
    _seed(source)
    path = create_backup(source, dest_dir=tmp_path / "out")
    restore_backup(runtime, path)
    assert _dump(runtime) == _dump(source)
    # The restored database is fully usable: jobs run, new rows get fresh ids.
    with runtime.db.session() as s:
        s.execute(Job.__table__.update().values(run_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.execute(Job.__table__.update().where(Job.status == JobStatus.failed).values(status=JobStatus.cancelled))
    assert runner.run_one(runtime, worker="w") == JobStatus.succeeded


def test_mismatched_revision_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    _seed(runtime)
    path = create_backup(runtime)
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    manifest["alembic_revision"] = "9999_from_the_future"
    bad = _rewrite(path, tmp_path / "future.tar.gz", manifest=manifest)
    before = _dump(runtime)
    with pytest.raises(ValueError, match=r"schema revision '9999_from_the_future'.*Restore it with the AInfluencer"):
        restore_backup(runtime, bad)
    assert _dump(runtime) == before, "nothing was touched"


def test_path_traversal_member_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    _seed(runtime)
    path = create_backup(runtime)
    before = _dump(runtime)
    evil = _rewrite(path, tmp_path / "evil.tar.gz",
                    extra=(tarfile.TarInfo("media/../../../escaped.txt"), b"pwned"))
    with pytest.raises(ValueError, match="unsafe path"):
        restore_backup(runtime, evil)
    link = tarfile.TarInfo("media/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    sneaky = _rewrite(path, tmp_path / "link.tar.gz", extra=(link, b""))
    with pytest.raises(ValueError, match="not a regular file"):
        restore_backup(runtime, sneaky)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert _dump(runtime) == before


def test_not_a_backup_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"definitely not gzip")
    with pytest.raises(ValueError, match="not a readable backup"):
        restore_backup(runtime, junk)


def test_list_and_prune(runtime: Runtime) -> None:
    folder = runtime.settings.backup_dir
    folder.mkdir(parents=True, exist_ok=True)
    for stamp in ("20260101T030000Z", "20260103T030000Z", "20260102T030000Z", "20260103T030000Z-1"):
        (folder / f"ainfluencer-backup-{stamp}.tar.gz").write_bytes(b"x")
    (folder / "unrelated.txt").write_text("keep me")
    names = [b.name for b in list_backups(runtime)]
    assert names == [
        "ainfluencer-backup-20260103T030000Z-1.tar.gz",
        "ainfluencer-backup-20260103T030000Z.tar.gz",
        "ainfluencer-backup-20260102T030000Z.tar.gz",
        "ainfluencer-backup-20260101T030000Z.tar.gz",
    ]
    removed = prune_backups(runtime, 2)
    assert sorted(p.name for p in removed) == [
        "ainfluencer-backup-20260101T030000Z.tar.gz", "ainfluencer-backup-20260102T030000Z.tar.gz"]
    assert len(list_backups(runtime)) == 2 and (folder / "unrelated.txt").exists()


def test_backup_job_prunes_to_keep(runtime: Runtime, helpers: Any) -> None:
    runtime.settings = runtime.settings.model_copy(update={"backup_keep": 1})
    folder = runtime.settings.backup_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ainfluencer-backup-20200101T000000Z.tar.gz").write_bytes(b"old")
    job_id = helpers.enqueue_job(runtime, "backup")
    assert runner.run_one(runtime, worker="w") == JobStatus.succeeded
    result = helpers.job_row(runtime, job_id).result
    assert result["pruned"] == ["ainfluencer-backup-20200101T000000Z.tar.gz"]
    assert [b.path for b in list_backups(runtime)] == [Path(result["path"])]
