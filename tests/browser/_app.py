"""Shared by the browser tests: run the real app in a subprocess, and Debian's Chromium settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def running_app(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`python -m ainfluencer up` on a free port until /readyz answers; yields its base URL, stops it after."""
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ainfluencer", "up", "--host", "127.0.0.1", "--port", str(port)],
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
