"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via AINF_TEST_DATABASE_URL), app, client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ainfluencer.config import Settings
from ainfluencer.db import migrate
from ainfluencer.db.models import Base, User
from ainfluencer.runtime import Runtime

PG_URL = os.environ.get("AINF_TEST_DATABASE_URL", "")


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {make_url(PG_URL).render_as_string(hide_password=True) if PG_URL else 'SQLite (per test)'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test that never asks for the database fixture cannot depend on which database runs:
    # mark it so the PostgreSQL pass (`-m "not nodb"`) does not run it a second time.
    for item in items:
        if "pg_database" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.nodb)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests build their own Settings; a developer's AINF_* variables must not leak in.
    for name in list(os.environ):
        if name.startswith("AINF_") and name != "AINF_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for the session (dropped after), or None on SQLite."""
    if not PG_URL:
        yield None
        return
    base = make_url(PG_URL)
    name = f"ainf_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    from ainfluencer.db.engine import Database

    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    yield url
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(runtime: Runtime) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with runtime.db.engine.begin() as c:
        c.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def settings(tmp_path: Path, pg_database: str | None) -> Settings:
    """Settings for an isolated data dir; fast password hashing is not faked."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=pg_database or "",
        login_max_failures_account=5,
        login_max_failures_ip=20,
    )


@pytest.fixture
def runtime(settings: Settings, pg_database: str | None) -> Iterator[Runtime]:
    """A migrated runtime; PostgreSQL tables are emptied before each test."""
    rt = Runtime.build(settings)
    if pg_database:
        _truncate(rt)
    else:
        migrate.upgrade(rt.db)
    yield rt
    rt.close()


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    """The web app without background roles."""
    from ainfluencer.app import create_app

    return create_app(runtime)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """A TestClient (lifespan runs; no worker or scheduler in this process)."""
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def make_user(runtime: Runtime) -> Callable[..., User]:
    """Create a user directly through the service."""
    from ainfluencer.services import auth

    def _make(email: str = "owner@example.com", password: str = "correct horse battery", *,
              owner: bool | None = None, verified: bool = True, display_name: str = "") -> User:
        with runtime.db.session() as s:
            return auth.create_user(s, email=email, password=password, owner=owner, verified=verified,
                                    display_name=display_name)

    return _make


@pytest.fixture
def make_token(runtime: Runtime) -> Callable[..., str]:
    """Create an API token for a user; returns the raw bearer value."""
    from ainfluencer.services import auth

    def _make(user: User, scopes: str = "read,write", name: str = "test") -> str:
        with runtime.db.session() as s:
            u = s.get(User, user.id)
            assert u is not None
            return auth.create_api_token(s, user=u, name=name, scopes=scopes).raw

    return _make


def csrf_of(client: TestClient) -> str:
    """Fetch a page so the CSRF cookie is set, and return it."""
    if "ainf_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["ainf_csrf"]


@pytest.fixture
def login() -> Callable[[TestClient, str, str], None]:
    """Sign a TestClient in through the real form."""

    def _login(client: TestClient, email: str = "owner@example.com", password: str = "correct horse battery") -> None:
        token = csrf_of(client)
        r = client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                        follow_redirects=False)
        assert r.status_code == 303, r.text

    return _login
