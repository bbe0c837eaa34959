"""A small load harness: a real server in a subprocess, N client threads, latency percentiles."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    env: dict[str, str]
    data_dir: Path

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "ainfluencer", *args], env=self.env, capture_output=True,
                             text=True, check=True)
        return out.stdout


@contextlib.contextmanager
def running_server(command: str = "serve", extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start `ainfluencer <command>` on a free port with a fresh data dir; stop it afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="ainf-bench-"))
    port = free_port()
    env = {**os.environ, "AINF_DATA_DIR": str(tmp), "AINF_LOG_LEVEL": "WARNING", **(extra_env or {})}
    server = Server(base=f"http://127.0.0.1:{port}", env=env, data_dir=tmp)
    server.cli("db", "upgrade")
    proc = subprocess.Popen([sys.executable, "-m", "ainfluencer", command, "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000


def load(name: str, make_client: Callable[[], httpx.Client], path: str, *, threads: int = 4,
         seconds: float = 5.0, warmup: int = 20) -> Result:
    """Hit ``path`` from ``threads`` clients for ``seconds``; every response must be 200."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        try:
            c = clients.pop()
            for _ in range(warmup // threads + 1):
                c.get(path)
            mine = []
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = c.get(path)
                mine.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"{path} -> {r.status_code}")
                    break
            with lock:
                latencies.extend(mine)
        except Exception as exc:  # a dead thread must fail the benchmark, not shrink it
            errors.append(f"{path}: {exc!r}")

    clients = [make_client() for _ in range(threads)]  # sign-ins etc. happen before the clock starts
    stop = time.monotonic() + seconds
    start = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    for c in clients:
        c.close()
    if errors or not latencies:
        raise RuntimeError(errors[0] if errors else f"{path}: no requests completed")
    return Result(name, len(latencies), time.monotonic() - start, latencies)


def emit(name: str, value: float, unit: str) -> None:
    print(f"bench: {name} {value:.3f} {unit}", flush=True)


def save(results: dict[str, float]) -> None:
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
