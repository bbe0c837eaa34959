"""Restore checks every value first: rows a database would refuse are listed, or cleaned on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from ainfluencer.db.models import AppSetting, User
from ainfluencer.runtime import Runtime
from ainfluencer.services.backup import RestoreRefused, create_backup, restore_backup


def _sqlite_backup_with_bad_rows(make_sqlite_runtime: Any, tmp_path: Path) -> tuple[Path, list[int]]:
    # SQLite stores NUL bytes, and JSON text holding an escaped lone surrogate; written with plain
    # SQL, as older versions could.
    source = make_sqlite_runtime("source")
    ids = []
    with source.db.engine.begin() as c:
        c.execute(text("INSERT INTO app_settings (key, value, updated_at) "
                       "VALUES ('note', '{\"t\": \"Bad \\ud800 half\"}', '2026-01-01 00:00:00')"))
        for email, name in (("a@example.com", "Ada\x00Lovelace"), ("c@example.com", "Fine")):
            c.execute(text("INSERT INTO users (email, display_name, password_hash, role, is_active, timezone, "
                           "created_at) VALUES (:e, :n, 'h', 'member', 1, 'UTC', '2026-01-01 00:00:00')"),
                      {"e": email, "n": name})
            ids.append(c.scalar(text("SELECT id FROM users WHERE email = :e"), {"e": email}))
    return create_backup(source, dest_dir=tmp_path / "out"), ids


def test_bad_rows_are_listed_and_nothing_changes(runtime: Runtime, make_sqlite_runtime: Any, tmp_path: Path,
                                                 make_user: Any) -> None:
    path, ids = _sqlite_backup_with_bad_rows(make_sqlite_runtime, tmp_path)
    make_user("keep@example.com")
    with pytest.raises(RestoreRefused) as exc:
        restore_backup(runtime, path)
    listed = {(b.table, b.row_id, b.field) for b in exc.value.bad}
    assert listed == {("users", str(ids[0]), "display_name"), ("app_settings", "note", "value")}
    assert "NUL" in str(exc.value) and "--clean" in str(exc.value)
    with runtime.db.session() as s:  # atomic: the database is as it was
        assert [u.email for u in s.scalars(select(User))] == ["keep@example.com"]


def test_clean_restores_with_the_values_cleaned(runtime: Runtime, make_sqlite_runtime: Any, tmp_path: Path) -> None:
    path, ids = _sqlite_backup_with_bad_rows(make_sqlite_runtime, tmp_path)
    result = restore_backup(runtime, path, clean=True)
    assert result["cleaned_values"] == 2
    with runtime.db.session() as s:
        names = {u.id: u.display_name for u in s.scalars(select(User))}
        note = s.get(AppSetting, "note")
    assert names == {ids[0]: "AdaLovelace", ids[1]: "Fine"}
    assert note is not None and note.value == {"t": "Bad ? half"}


def test_cli_lists_rows_and_takes_clean(runtime: Runtime, make_sqlite_runtime: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from ainfluencer import cli

    path, _ = _sqlite_backup_with_bad_rows(make_sqlite_runtime, tmp_path)
    monkeypatch.setattr(cli, "_runtime", lambda **_: runtime)
    monkeypatch.setattr(cli, "_apply", lambda **_: None)
    refused = CliRunner().invoke(cli.app, ["restore", str(path), "--yes"])
    assert refused.exit_code != 0 and "display_name" in refused.output and "users" in refused.output
    done = CliRunner().invoke(cli.app, ["restore", str(path), "--yes", "--clean"])
    assert done.exit_code == 0, done.output
    assert "2 value(s) cleaned" in done.output
