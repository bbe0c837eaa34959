"""Migration 0007: the voice column matches the model, and rows that existed before get the default voice."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from ainfluencer.db import migrate
from ainfluencer.db.engine import Database
from ainfluencer.db.models import Base
from ainfluencer.runtime import Runtime


def _tables_in(diff: Any) -> set[str]:
    """Table names a compare_metadata entry (or group of entries) touches."""
    if isinstance(diff, list):
        return set().union(*(_tables_in(d) for d in diff)) if diff else set()
    names = set()
    for part in diff[1:]:
        if isinstance(part, str):
            names.add(part)
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            names.add(table.name)
        elif isinstance(name, str):
            names.add(name)
    return names


def _insert(raw: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
    """Insert a row, filling every other NOT NULL column with a value of its type."""
    row = dict(values)
    for _cid, name, kind, notnull, default, pk in raw.execute(f"PRAGMA table_info({table})"):
        if name in row or not notnull or default is not None or pk:
            continue
        kind = kind.upper()
        row[name] = (1 if "INT" in kind or "BOOL" in kind else 0.0 if "FLOAT" in kind or "REAL" in kind
                     else "2026-01-01 00:00:00.000000" if "DATE" in kind or "TIME" in kind
                     else "{}" if "JSON" in kind else "x")
    names = ", ".join(row)
    raw.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in row)})",  # noqa: S608
                list(row.values()))


def test_upgraded_schema_matches_the_model(runtime: Runtime) -> None:
    assert migrate.current_revision(runtime.db) == migrate.head_revision()
    with runtime.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    mine = [d for d in diff if "character_media_settings" in _tables_in(d)]
    assert mine == []
    columns = Base.metadata.tables["character_media_settings"].c
    assert "voice" in columns and not columns["voice"].nullable


def test_existing_rows_get_the_default_voice_and_downgrade_removes_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        migrate.upgrade(db, "0006")
        # a row from before 0007, with its parent rows (whatever columns they had at 0006)
        raw = sqlite3.connect(tmp_path / "m.db")
        _insert(raw, "users", {"id": 1, "email": "a@example.com", "role": "owner"})
        _insert(raw, "characters", {"id": 1, "user_id": 1, "name": "Nova", "handle": "nova", "status": "active"})
        _insert(raw, "character_media_settings", {"character_id": 1, "thresholds": "{}"})
        raw.commit()
        raw.close()
        migrate.upgrade(db)
        with db.engine.connect() as c:
            assert c.execute(text("SELECT voice FROM character_media_settings")).scalar_one() == "{}"
        cfg = migrate.alembic_config(db.url)
        with db.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0006")
        with db.engine.connect() as c:
            cols = [row[1] for row in c.execute(text("PRAGMA table_info(character_media_settings)"))]
        assert "voice" not in cols and "thresholds" in cols
    finally:
        db.dispose()
