"""Job-system fixtures: a runtime with a short lease, on SQLite or the suite's PostgreSQL database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ainfluencer.config import Settings
from ainfluencer.db import migrate
from ainfluencer.db.models import Base, Job, JobStatus
from ainfluencer.jobs import queue
from ainfluencer.runtime import Runtime

LEASE_SECONDS = 2  # below the settings' floor of 5 on purpose: the reaper tests wait for it


def job_settings(data_dir: Path, database_url: str | None, **overrides: Any) -> Settings:
    """Settings for an isolated data dir; the short lease bypasses validation via model_copy."""
    settings = Settings(data_dir=data_dir, database_url=database_url or "", redis_url="", executor="embedded")
    return settings.model_copy(update={"job_lease_seconds": LEASE_SECONDS, **overrides})


def truncate_all(rt: Runtime) -> None:
    """Empty every table of the PostgreSQL test database."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with rt.db.engine.begin() as c:
        c.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def build_runtime(data_dir: Path, database_url: str | None, **overrides: Any) -> Runtime:
    """A migrated runtime; PostgreSQL tables start empty."""
    rt = Runtime.build(job_settings(data_dir, database_url, **overrides))
    migrate.upgrade(rt.db)
    if not rt.db.is_sqlite:
        truncate_all(rt)
    return rt


@pytest.fixture
def runtime(tmp_path: Path, pg_database: str | None) -> Iterator[Runtime]:
    """A migrated runtime (lease 2s) on a fresh SQLite file or the emptied PostgreSQL database."""
    rt = build_runtime(tmp_path / "data", pg_database)
    yield rt
    rt.close()


@pytest.fixture
def make_sqlite_runtime(tmp_path: Path) -> Iterator[Callable[[str], Runtime]]:
    """Build extra SQLite runtimes in sub-folders (e.g. the source of a SQLite → PostgreSQL move)."""
    built: list[Runtime] = []

    def make(name: str) -> Runtime:
        rt = build_runtime(tmp_path / name, None)
        built.append(rt)
        return rt

    yield make
    for rt in built:
        rt.close()


@pytest.fixture(autouse=True)
def _restore_dispatchers() -> Iterator[None]:
    # Executors register process-wide dispatch callbacks; a failing test must not leak one.
    before = list(queue._dispatchers)
    yield
    queue._dispatchers[:] = before


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def job_row(rt: Runtime, job_id: int) -> Job:
    """A fresh copy of a job row."""
    with rt.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def enqueue_job(rt: Runtime, kind: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> int:
    """Enqueue in its own transaction and return the id."""
    with rt.db.session() as s:
        return queue.enqueue(s, kind, payload or {}, **kwargs).id


def status_of(rt: Runtime, job_id: int) -> JobStatus:
    """The job's current status."""
    return job_row(rt, job_id).status


@pytest.fixture(scope="session")
def helpers() -> Any:
    """The helper functions above, for test modules (conftest is not importable by name)."""

    class _Helpers:
        wait_for = staticmethod(wait_for)
        job_row = staticmethod(job_row)
        enqueue_job = staticmethod(enqueue_job)
        status_of = staticmethod(status_of)
        build_runtime = staticmethod(build_runtime)
        job_settings = staticmethod(job_settings)
        truncate_all = staticmethod(truncate_all)

    return _Helpers
