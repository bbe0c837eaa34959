"""Every route refuses what SQLite and PostgreSQL would not both store, with a 422 naming the field.

The routes are read from the app's own route table, so a route added later is covered without a
new test; the test fails if a route with an ``int`` parameter ever escapes the guard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ainfluencer.input_guard import _int_params, _route_ints, iter_routes

TOO_BIG = 2**63
PAST_INT32 = 2**31  # fits SQLite, but not PostgreSQL's integer, the type of every id


def _routes(app: Any) -> list[tuple[str, APIRoute]]:
    return [(path, r) for path, r in iter_routes(app.router.routes) if isinstance(r, APIRoute)]


def _fill(path: str, int_names: frozenset[str], bad: str) -> str:
    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", lambda m: bad if m.group(1) in int_names else "x", path)


@pytest.fixture
def signed_in(client: TestClient, make_user: Callable[..., Any], make_token: Callable[..., str]) -> TestClient:
    user = make_user()
    client.headers["Authorization"] = f"Bearer {make_token(user)}"
    return client


def test_every_int_path_parameter_refuses_values_past_64_bits(signed_in: TestClient, app: Any) -> None:
    checked = 0
    for full_path, route in _routes(app):
        int_path, _ = _int_params(route)
        if not int_path:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            url = _fill(full_path, int_path, str(PAST_INT32))
            resp = signed_in.request(method, url, headers={"accept": "application/json"})
            assert resp.status_code == 422, (method, url, resp.status_code, resp.text[:200])
            field = resp.json()["error"]["field"]
            assert field in int_path, (method, url, field)
            checked += 1
    print(f"int path parameters checked: {checked} route-methods")
    assert checked > 20


def test_every_int_query_parameter_refuses_values_past_64_bits(signed_in: TestClient, app: Any) -> None:
    checked = 0
    for full_path, route in _routes(app):
        int_path, int_query = _int_params(route)
        if not int_query or "GET" not in route.methods:
            continue
        url = _fill(full_path, int_path, "1")
        for name in sorted(int_query):
            resp = signed_in.get(url, params={name: str(-TOO_BIG - 1)}, headers={"accept": "application/json"})
            assert resp.status_code == 422, (url, name, resp.status_code, resp.text[:200])
            assert resp.json()["error"]["field"] == name
            checked += 1
    print(f"int query parameters checked: {checked}")
    assert checked > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"name": "a\ud800b"}, "name"),
        ({"name": "ok", "expires_days": TOO_BIG}, "expires_days"),
    ],
)
def test_json_body_values_are_refused_with_their_field(signed_in: TestClient, body: dict[str, Any],
                                                       field: str) -> None:
    # json.dumps escapes a lone surrogate as \\ud800, as a hostile client would send it
    resp = signed_in.post("/api/v1/tokens", content=json.dumps(body), headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field


def test_wide_integer_fields_keep_64_bits(app: Any) -> None:
    # Seeds declare a 64-bit maximum (stored as bigint): the 32-bit id rule leaves them alone.
    wide = {name for _, route in _routes(app) for name in _route_ints(route).wide}
    assert "seed" in wide


def test_nested_body_field_is_named(signed_in: TestClient) -> None:
    resp = signed_in.post("/api/v1/jobs", json={"kind": "selftest", "payload": {"deep": [1, {"n": TOO_BIG}]}})
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "payload.deep.1.n"


def test_body_value_past_the_column_is_refused(signed_in: TestClient) -> None:
    resp = signed_in.put("/api/v1/calendar/accounts/1/settings", json={"max_per_day": TOO_BIG})
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "max_per_day"


def test_nul_in_query_text_is_refused(signed_in: TestClient) -> None:
    resp = signed_in.get("/api/v1/assets", params={"q": "cat\x00"})
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "q"


def test_web_form_with_nul_is_refused(client: TestClient) -> None:
    client.get("/login")  # sets the CSRF cookie
    token = client.cookies["ainf_csrf"]
    resp = client.post("/login", data={"email": "a\x00@example.com", "password": "x", "csrf_token": token})
    assert resp.status_code == 422
    assert "email" in resp.text


def test_a_value_past_a_32_bit_column_is_refused_by_the_store(runtime: Any, make_user: Callable[..., Any]) -> None:
    # Integer columns are 32-bit on PostgreSQL: the same value must fail the same way on SQLite.
    from ainfluencer.db.models_publishing import WebhookDelivery
    from ainfluencer.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc, runtime.db.session() as s:
        s.add(WebhookDelivery(webhook_id=1, event="ping", attempts=2**31))
        s.flush()
    assert exc.value.field == "attempts"


def test_text_past_a_column_length_is_refused_by_the_store(runtime: Any) -> None:
    from ainfluencer.db.models_publishing import WebhookDelivery
    from ainfluencer.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc, runtime.db.session() as s:
        s.add(WebhookDelivery(webhook_id=1, event="e" * 65))
        s.flush()
    assert exc.value.field == "event"
