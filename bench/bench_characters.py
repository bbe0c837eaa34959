"""Characters and writing: list latency with 1,000 characters, offline writer throughput, pipeline overhead."""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.harness import emit, load, running_server

EMAIL, PASSWORD = "bench@example.com", "benchmark password"
CHARACTERS = 1000
MODEL_DELAY_S = 0.05  # the fake model server's fixed answer time
WORDS = ("light morning market coffee river street film quiet bright slow city bread garden table window "
         "rain walk music paper story").split()


def seed_characters(data_dir: Path, n: int = CHARACTERS) -> None:
    """Create ``n`` characters through the service, in the server's own database."""
    from ainfluencer.characters.templates import BUILTIN_TEMPLATES
    from ainfluencer.config import Settings
    from ainfluencer.runtime import Runtime
    from ainfluencer.services import auth
    from ainfluencer.services import characters as svc

    runtime = Runtime.build(Settings(data_dir=data_dir))
    slugs = list(BUILTIN_TEMPLATES)
    try:
        with runtime.db.session() as s:
            user = auth.get_user_by_email(s, EMAIL)
            assert user is not None
            for i in range(n):
                svc.create_character(s, user=user, name=f"Bench Character {i:04d}", handle=f"bench_{i:04d}",
                                     template=slugs[i % len(slugs)])
    finally:
        runtime.close()


def bench_list() -> None:
    """p95 of the first page of GET /api/v1/characters (1,000 rows) over p95 of /healthz, same server."""
    with running_server("serve") as server:
        server.cli("user", "create", "--email", EMAIL, "--password", PASSWORD, "--owner")
        token = json.loads(server.cli("token", "create", "--email", EMAIL, "--name", "bench"))["token"]
        seed_characters(server.data_dir)

        def plain() -> httpx.Client:
            return httpx.Client(base_url=server.base, timeout=10)

        def with_token() -> httpx.Client:
            return httpx.Client(base_url=server.base, timeout=10, headers={"Authorization": f"Bearer {token}"})

        first = with_token().get("/api/v1/characters").json()
        assert first["count"] == CHARACTERS, first.get("count")
        base = load("healthz", plain, "/healthz")
        listed = load("characters", with_token, "/api/v1/characters")
        emit("characters_list_p95", listed.pct(95), "ms")
        emit("characters_list_p95_ratio", listed.pct(95) / base.pct(95), "x_of_healthz")


def bench_offline(seconds: float = 3.0) -> None:
    """Captions per second from the offline persona writer (a different seed and template each time)."""
    from ainfluencer.characters.templates import BUILTIN_TEMPLATES
    from ainfluencer.writing.offline import OfflineWriter, WritingRequest

    writers = [OfflineWriter(t.persona, character_name=t.name) for t in BUILTIN_TEMPLATES.values()]
    request = WritingRequest(kind="caption", style="casual", brief="a small win this week", platform="instagram")
    n = 0
    stop = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop:
        writers[n % len(writers)].write(request, seed=n)
        n += 1
    emit("offline_captions_per_s", n / (time.perf_counter() - started), "captions/s")


class _FakeModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that answers after a fixed delay with a fresh text."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        payload = json.loads(self.rfile.read(int(self.headers["content-length"])))
        time.sleep(MODEL_DELAY_S)
        rng = random.Random()  # noqa: S311
        text = " ".join(rng.choice(WORDS) for _ in range(24)).capitalize() + f". #{rng.choice(WORDS)}"
        body = json.dumps({
            "id": "bench", "object": "chat.completion", "model": payload.get("model", "bench-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 60},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def fake_model_server() -> Iterator[str]:
    """The fake model server on a free port; yields its /v1 base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeModel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def bench_overhead(captions: int = 60) -> None:
    """Median time of a full generate() minus the median bare HTTP round trip to the same fake model."""
    from ainfluencer.config import Settings
    from ainfluencer.db import migrate
    from ainfluencer.db.models import Character
    from ainfluencer.runtime import Runtime
    from ainfluencer.services import auth, writing
    from ainfluencer.services import characters as svc

    with fake_model_server() as base_url, tempfile.TemporaryDirectory(prefix="ainf-bench-") as tmp:
        runtime = Runtime.build(Settings(data_dir=Path(tmp)))
        migrate.upgrade(runtime.db)
        with runtime.db.session() as s:
            user = auth.create_user(s, email=EMAIL, password=PASSWORD, owner=True, verified=True)
            writing.create_backend_config(s, runtime, user=user, name="fake", kind="openai_compat",
                                          base_url=base_url, default_model="bench-model")
            character = svc.create_character(s, user=user, name="Bench", handle="bench", template="home-chef",
                                             text_backend="fake")
            cid = character.id
        payload = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}], "stream": False}
        bare: list[float] = []
        with httpx.Client(timeout=10) as client:
            for _ in range(captions):
                t0 = time.perf_counter()
                client.post(f"{base_url}/chat/completions", json=payload).raise_for_status()
                bare.append(time.perf_counter() - t0)
        full: list[float] = []
        for _ in range(captions):
            t0 = time.perf_counter()
            with runtime.db.session() as s:
                row = s.get(Character, cid)
                assert row is not None
                out = writing.generate(s, runtime, character=row, platform="instagram", brief="weeknight pasta")
                assert out.backend == "fake" and out.attempts == 1, (out.backend, out.attempts)
            full.append(time.perf_counter() - t0)
        runtime.close()
    overhead_ms = (statistics.median(full) - statistics.median(bare)) * 1000
    emit("writer_model_roundtrip", statistics.median(bare) * 1000, "ms")
    emit("writer_overhead_ms", overhead_ms, "ms")


def main() -> None:
    """Run the three character benchmarks."""
    bench_list()
    bench_offline()
    bench_overhead()


if __name__ == "__main__":
    main()
