"""An MCP tool call over Streamable HTTP against the same REST read, on one `ainfluencer serve` (SQLite)."""

from __future__ import annotations

import json
import statistics
import time

import httpx

from bench.harness import emit, running_server

EMAIL, PASSWORD = "bench@example.com", "benchmark password"
CALLS = 200
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "MCP-Protocol-Version": "2025-06-18"}


def _times(send: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        send()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    """Median and p95 of `tools/call list_characters` vs `GET /api/v1/characters` (sequential, one client)."""
    unlimited = {"AINF_MCP_BURST": "100000", "AINF_MCP_CALLS_PER_MINUTE": "100000"}
    with running_server("serve", extra_env=unlimited) as server:
        server.cli("user", "create", "--email", EMAIL, "--password", PASSWORD, "--owner")
        token = json.loads(server.cli("token", "create", "--email", EMAIL, "--name", "bench", "--scope",
                                      "read,write"))["token"]
        with httpx.Client(base_url=server.base, timeout=10, headers={"Authorization": f"Bearer {token}"}) as c:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "list_characters", "arguments": {}}}

            def mcp_call() -> None:
                r = c.post("/mcp", json=body, headers=HEADERS)
                if r.status_code != 200 or "error" in r.json() or r.json()["result"].get("isError"):
                    raise RuntimeError(f"MCP call failed: {r.status_code} {r.text[:200]}")

            def rest_call() -> None:
                c.get("/api/v1/characters").raise_for_status()

            _times(mcp_call, 10), _times(rest_call, 10)  # warm up
            mcp, rest = _times(mcp_call, CALLS), _times(rest_call, CALLS)
        for name, values in (("mcp_list_characters", mcp), ("rest_list_characters", rest)):
            emit(f"{name}_p50", statistics.median(values), "ms")
            emit(f"{name}_p95", statistics.quantiles(values, n=20)[18], "ms")
        emit("mcp_over_rest_p50_ratio", statistics.median(mcp) / statistics.median(rest), "x")


if __name__ == "__main__":
    main()
