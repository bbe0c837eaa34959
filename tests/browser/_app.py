"""Shared by the browser tests: run the real app in a subprocess, Debian's Chromium settings, and the steps every
browser test takes (open a page that records CSP refusals and script errors, sign in)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment without the developer's AINF_* variables, pointed at ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AINF_")}
    env.update({"AINF_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **extra})
    return env


def cli(env: dict[str, str], *args: str) -> None:
    """Run `python -m ainfluencer ARGS` to completion (setup steps such as `user create`)."""
    subprocess.run([sys.executable, "-m", "ainfluencer", *args], env=env, check=True, capture_output=True)


def owner_env(data_dir: Path, email: str, password: str, *, provenance: bool = False) -> dict[str, str]:
    """``app_env(data_dir)`` after `db upgrade` and `user create --owner` (and `provenance init` if asked)."""
    env = app_env(data_dir)
    cli(env, "db", "upgrade")
    cli(env, "user", "create", "--email", email, "--password", password, "--owner")
    if provenance:
        cli(env, "provenance", "init")
    return env


@contextmanager
def browser_page(browser: Any, *, width: int = 1400, height: int = 1000,
                 failure_screenshot: str | None = None) -> Iterator[tuple[Any, list[str]]]:
    """A page in a fresh context (15 s default timeout); yields it with a list that collects every console
    message about the Content Security Policy and every uncaught page error. On an exception the page is saved
    to ``ARTIFACTS / failure_screenshot`` (when named) and the exception goes on; the context is always closed."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        yield page, problems
    except Exception:
        if failure_screenshot:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / failure_screenshot), full_page=True)
        raise
    finally:
        context.close()


def sign_in(page: Any, base: str, email: str, password: str, next_path: str, *, landed: str | None = None) -> None:
    """Sign in through /login?next=NEXT_PATH and wait for the page it leads to: the URL glob ``landed``, by default
    ``**NEXT_PATH`` (name ``landed`` when NEXT_PATH is URL-encoded)."""
    page.goto(f"{base}/login?next={next_path}")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(landed or f"**{next_path}")


@contextmanager
def running_app(env: dict[str, str], log_path: Path, *, launcher: list[str] | None = None) -> Iterator[str]:
    """`python -m ainfluencer up` on a free port until /readyz answers; yields its base URL, stops it after.
    ``launcher`` replaces ``-m ainfluencer`` (a script that registers test adapters, then runs the CLI)."""
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, *(launcher or ["-m", "ainfluencer"]), "up", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in time:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
