"""Migration 0005 creates exactly what the calendar models declare (columns, types, indexes, foreign keys)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ainfluencer.db.models import Base
from ainfluencer.runtime import Runtime

TABLES = {"posting_slots", "account_calendar_settings", "publication_metrics"}


def _touches_ours(diff: object) -> bool:
    items = diff if isinstance(diff, list) else [diff]
    for item in items:
        for part in item if isinstance(item, tuple) else (item,):
            name = getattr(part, "name", None) or getattr(getattr(part, "table", None), "name", None)
            if name in TABLES or getattr(getattr(part, "table", None), "name", None) in TABLES:
                return True
            if isinstance(part, str) and part in TABLES:
                return True
    return False


def test_migration_matches_the_models(runtime: Runtime) -> None:
    with runtime.db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(ctx, Base.metadata) if _touches_ours(d)]
        names = set(conn.dialect.get_table_names(conn))
    assert TABLES <= names
    assert diffs == []
