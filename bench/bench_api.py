"""API and page throughput against a real server, each as a ratio to a bare /healthz in the same run."""

from __future__ import annotations

import json

import httpx

from bench.harness import emit, load, running_server

EMAIL, PASSWORD = "bench@example.com", "benchmark password"


def main() -> None:
    """Measure /healthz, /api/v1/me and /dashboard on `ainfluencer serve` (SQLite, one process)."""
    with running_server("serve") as server:
        server.cli("user", "create", "--email", EMAIL, "--password", PASSWORD, "--owner")
        token = json.loads(server.cli("token", "create", "--email", EMAIL, "--name", "bench"))["token"]

        def plain() -> httpx.Client:
            return httpx.Client(base_url=server.base, timeout=10)

        def with_token() -> httpx.Client:
            return httpx.Client(base_url=server.base, timeout=10, headers={"Authorization": f"Bearer {token}"})

        def signed_in() -> httpx.Client:
            c = httpx.Client(base_url=server.base, timeout=10)
            c.get("/login")
            r = c.post("/login", data={"email": EMAIL, "password": PASSWORD,
                                       "csrf_token": c.cookies["ainf_csrf"]})
            if r.status_code != 303:
                raise RuntimeError(f"sign-in failed: {r.status_code}")
            return c

        results = {}
        for name, factory, path in (
            ("healthz", plain, "/healthz"),
            ("me", with_token, "/api/v1/me"),
            ("dashboard", signed_in, "/dashboard"),
        ):
            results[name] = load(name, factory, path)
        base = results["healthz"]
        emit("healthz_rps", base.rps, "req/s")
        emit("healthz_p95", base.pct(95), "ms")
        for name in ("me", "dashboard"):
            r = results[name]
            emit(f"{name}_rps", r.rps, "req/s")
            emit(f"{name}_p95", r.pct(95), "ms")
            emit(f"{name}_rps_ratio", r.rps / base.rps, "x_of_healthz")
            emit(f"{name}_p95_ratio", r.pct(95) / base.pct(95), "x_of_healthz")
