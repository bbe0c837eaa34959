"""The command line, run the way a user or a script runs it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from typer.testing import CliRunner

from ainfluencer import __version__
from ainfluencer.cli import app
from ainfluencer.logging_setup import RedactingFilter

runner = CliRunner()


def _env(tmp_path, pg_database):
    env = {"AINF_DATA_DIR": str(tmp_path / "data")}
    if pg_database:
        env["AINF_DATABASE_URL"] = pg_database
    return env


def test_version_subprocess():
    out = subprocess.run([sys.executable, "-m", "ainfluencer", "version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == __version__


def test_user_and_token_create_print_json(tmp_path, runtime, pg_database, monkeypatch):
    for k, v in _env(tmp_path, pg_database).items():
        monkeypatch.setenv(k, v)
    r = runner.invoke(app, ["user", "create", "--email", "cli@example.com", "--password", "long password",
                            "--owner"])
    assert r.exit_code == 0, r.output
    user = json.loads(r.stdout)
    assert user["email"] == "cli@example.com" and user["role"] == "owner" and user["verified"] is True
    r = runner.invoke(app, ["token", "create", "--email", "cli@example.com", "--name", "script",
                            "--scope", "read,write"])
    assert r.exit_code == 0, r.output
    token = json.loads(r.stdout)
    assert token["token"].startswith("ainf_") and token["scopes"] == ["read", "write"]
    # Duplicate user: a clear error and a non-zero exit, no traceback.
    r = runner.invoke(app, ["user", "create", "--email", "cli@example.com", "--password", "long password"])
    assert r.exit_code == 1 and "already exists" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["token", "create", "--email", "nobody@example.com", "--name", "x"])
    assert r.exit_code == 1 and "no user" in r.output


def test_rotate_key_cli(tmp_path, runtime, pg_database, monkeypatch):
    for k, v in _env(tmp_path, pg_database).items():
        monkeypatch.setenv(k, v)
    with runtime.db.session() as s:
        runtime.secrets.put(s, owner_kind="x", owner_id=1, name="y", value="z")
    # The CLI sees the same data dir only if the test runtime used it; make them the same.
    monkeypatch.setenv("AINF_DATA_DIR", str(runtime.settings.resolved_data_dir))
    r = runner.invoke(app, ["secrets", "rotate-key"])
    assert r.exit_code == 0, r.output
    assert "re-encrypted 1 stored secret" in r.output


def test_production_refusal_exit_code(tmp_path, monkeypatch):
    monkeypatch.setenv("AINF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AINF_ENV", "production")
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 2 and "refusing to start in production" in r.output


def test_log_redaction():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connect %s with token=%s", (
        "postgresql://u:pw@h/db", "ainf_" + "a" * 40), None)
    RedactingFilter().filter(record)
    msg = record.getMessage()
    assert "pw@" not in msg and "a" * 40 not in msg


def test_machine_output_is_not_wrapped_when_piped(tmp_path):
    """A long token must come out on one line even on a narrow terminal (| jq, copy-paste)."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AINF_")}
    env.update({"AINF_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "40"})
    run = lambda *a: subprocess.run([sys.executable, "-m", "ainfluencer", *a], env=env, capture_output=True,  # noqa: E731
                                    text=True, check=True)
    run("user", "create", "--email", "pipe@example.com", "--password", "long password", "--owner")
    out = run("token", "create", "--email", "pipe@example.com", "--name", "a rather long token name for a script",
              "--scope", "read,write").stdout
    assert out.count("\n") == 1, out
    assert json.loads(out)["token"].startswith("ainf_")


def test_busy_port_is_said_plainly(tmp_path):
    """`up` on a port another program holds says so and how to pick another, instead of "Open http://…"."""
    import os
    import socket

    env = {k: v for k, v in os.environ.items() if not k.startswith("AINF_")}
    env["AINF_DATA_DIR"] = str(tmp_path / "data")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "ainfluencer", "up", "--host", "127.0.0.1", "--port", str(port)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    said = " ".join((r.stdout + r.stderr).split())
    assert f"Port {port} on 127.0.0.1 is busy" in said and f"--port {port + 1}" in said
    assert "Open http" not in said
