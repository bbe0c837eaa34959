"""Property-based fuzzing of every operation in the OpenAPI document (schemathesis + Hypothesis).

Signed in as a normal user with a bearer token, so requests reach the handlers; each operation
gets valid (positive) and invalid (negative) requests generated from its schema. Two properties
must hold for every response: no server error (5xx), and every error body has the documented shape
``{"error": {"code", "message", "field"?}}``. The run is deterministic (``derandomize``) and bounded
(``AINF_FUZZ_EXAMPLES`` examples per operation and mode, default below); it prints its counts.
Runs on SQLite, and on PostgreSQL in the ``-m "not nodb"`` pass.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ainfluencer.db.models import User
from ainfluencer.runtime import Runtime

EXAMPLES = int(os.environ.get("AINF_FUZZ_EXAMPLES", "25"))

# Operations that end the fuzzing user's own session or token: run last, then a fresh token is minted.
_SELF_ENDING = ("/api/v1/tokens/{token_id}",)
_REQUEST_ARGS = ("method", "url", "params", "json", "content", "data", "files", "cookies")


# /readyz answers 503 with its own documented readiness body while no worker runs: not an error.
_OWN_SHAPE = {("GET", "/readyz")}
# A network the handler had to reach being unreachable is a documented 502/503 (code names it);
# only these upstream codes may come with a 5xx.
_UPSTREAM_CODES = {"platform_unavailable", "backend_unavailable", "feature_unavailable", "voice_unavailable"}


def _server_error(status: int, response: Any) -> bool:
    if status < 500:
        return False
    if status in (502, 503, 504):
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return True
        return code not in _UPSTREAM_CODES
    return True


@pytest.fixture
def no_traffic_off_this_machine(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Generated input may name any host (an instance URL, a default API): only loopback is reached."""
    refused: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("127.0.0.1", "localhost", "::1", "testserver"):
            refused.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "name resolution is off during fuzzing")
        return real_getaddrinfo(host, *args, **kwargs)

    real_connect = socket.socket.connect

    def connect_loopback(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else ""
        if host and not (host.startswith("127.") or host == "::1"):
            refused.append(host)
            raise ConnectionRefusedError(f"fuzzing: no traffic to {host}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    monkeypatch.setattr(socket.socket, "connect", connect_loopback)
    return refused


def _error_shape_problem(status: int, response: Any) -> str | None:
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return "error body is not JSON"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(body) != {"error"}:
        return f"error body is not {{'error': {{...}}}}: {str(body)[:200]}"
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return f"error without code/message: {error}"
    if not set(error) <= {"code", "message", "field"} or not isinstance(error.get("field", ""), str | None):
        return f"error with unexpected keys: {error}"
    return None


def test_every_operation_survives_generated_input(
    runtime: Runtime, app: Any, make_user: Callable[..., User], make_token: Callable[..., str],
    no_traffic_off_this_machine: list[str],
) -> None:
    user = make_user("fuzz@example.com")
    # API clients ask for JSON; then every path (the /m/ media links too) answers errors in JSON.
    auth = {"Authorization": f"Bearer {make_token(user)}", "Accept": "application/json"}
    schema = schemathesis.openapi.from_dict(app.openapi())
    operations = [op.ok() for op in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.path in _SELF_ENDING and op.method.upper() == "DELETE", op.path, op.method))
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    unsatisfiable: list[str] = []
    calls = 0
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:

        def fuzz(operation: Any, mode: GenerationMode) -> None:
            strategy = operation.as_strategy(generation_mode=mode)
            where = f"{operation.method.upper()} {operation.path} ({mode.value})"

            @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                      suppress_health_check=list(HealthCheck))
            @given(data=st.data())
            def run(data: st.DataObject) -> None:
                nonlocal calls
                case = data.draw(strategy)
                kwargs = case.as_transport_kwargs(base_url="http://testserver")
                headers = {**(kwargs.pop("headers", None) or {}), **auth}
                sent = {k: v for k, v in kwargs.items() if k in _REQUEST_ARGS}
                response = client.request(headers=headers, **sent)
                calls += 1
                statuses[response.status_code] += 1
                own_shape = (operation.method.upper(), operation.path) in _OWN_SHAPE
                if not own_shape and _server_error(response.status_code, response):
                    failures.append(f"{where}: {response.status_code} {response.text[:200]} "
                                    f"for {case.as_curl_command()[:400]}")
                problem = None if own_shape else _error_shape_problem(response.status_code, response)
                if problem:
                    failures.append(f"{where}: {problem} for {case.as_curl_command()[:300]}")

            try:
                run()
            except Unsatisfiable:
                unsatisfiable.append(where)  # e.g. no parameter to make invalid: nothing to send

        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, mode)
            if operation.method.upper() == "DELETE" and operation.path in _SELF_ENDING:
                auth["Authorization"] = f"Bearer {make_token(user)}"
    print(f"fuzz: {len(operations)} operations, {calls} requests, statuses {dict(sorted(statuses.items()))}, "
          f"{len(failures)} failures, {EXAMPLES} examples per operation and mode, "
          f"{len(unsatisfiable)} operation-modes with nothing to generate, "
          f"{len(no_traffic_off_this_machine)} outbound connections refused")
    assert calls >= len(operations)
    assert not failures, "\n".join(dict.fromkeys(failures))
