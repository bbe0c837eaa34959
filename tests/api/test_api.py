"""REST API: tokens, /me, jobs, error envelope and bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ainfluencer.db.models import ApiToken, AuditLog


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_me_with_token(client, make_user, make_token):
    user = make_user()
    token = make_token(user, scopes="read")
    r = client.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 200
    body = r.json()
    assert body["email"] == "owner@example.com"
    assert body["role"] == "owner"
    assert body["scopes"] == ["read"]


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "unauthorized"),
        ("Bearer nope", "bad_token"),
        ("Bearer ainf_doesnotexist", "bad_token"),
        ("Basic abc", "unauthorized"),
    ],
)
def test_me_rejects_bad_credentials(client, header, code):
    headers = {"Authorization": header} if header else {}
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]


def test_token_lifecycle_and_scopes(client, runtime, make_user, make_token):
    user = make_user()
    writer = make_token(user, scopes="write")
    r = client.post("/api/v1/tokens", json={"name": "ci bot", "scopes": ["read"]}, headers=bearer(writer))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["token"].startswith("ainf_")
    # The secret is stored only as a hash.
    with runtime.db.session() as s:
        row = s.get(ApiToken, created["id"])
        assert row is not None and created["token"] not in (row.token_hash, row.prefix)
        assert s.scalar(select(AuditLog).where(AuditLog.action == "token.created")) is not None
    listed = client.get("/api/v1/tokens", headers=bearer(writer)).json()
    assert created["id"] in [t["id"] for t in listed["data"]]
    assert all("token" not in t for t in listed["data"])
    # A read token cannot write.
    r = client.post("/api/v1/tokens", json={"name": "x"}, headers=bearer(created["token"]))
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    # Revocation takes effect at once.
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers=bearer(writer)).status_code == 200
    r = client.get("/api/v1/me", headers=bearer(created["token"]))
    assert r.status_code == 401


def test_cannot_revoke_someone_elses_token(client, make_user, make_token):
    a = make_user("a@example.com")
    b = make_user("b@example.com")
    ta = make_token(a)
    tb_id = client.post("/api/v1/tokens", json={"name": "b"}, headers=bearer(make_token(b))).json()["id"]
    r = client.delete(f"/api/v1/tokens/{tb_id}", headers=bearer(ta))
    assert r.status_code == 404


def test_jobs_api_selftest_idempotent(client, make_user, make_token):
    token = make_token(make_user())
    body = {"kind": "selftest", "payload": {"steps": 2, "step_seconds": 0}, "idempotency_key": "k-1"}
    first = client.post("/api/v1/jobs", json=body, headers=bearer(token))
    assert first.status_code == 201, first.text
    second = client.post("/api/v1/jobs", json=body, headers=bearer(token))
    assert second.json()["id"] == first.json()["id"]
    job = client.get(f"/api/v1/jobs/{first.json()['id']}", headers=bearer(token)).json()
    assert job["status"] == "queued"
    listed = client.get("/api/v1/jobs?status=queued", headers=bearer(token)).json()
    assert listed["count"] == 1
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bearer(token))
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bearer(token))
    assert again.status_code == 409 and "only queued or running" in again.json()["error"]["message"]
    assert client.post(f"/api/v1/jobs/{job['id']}/retry", headers=bearer(token)).json()["status"] == "queued"


def test_unknown_job_404(client, make_user, make_token):
    r = client.get("/api/v1/jobs/999999", headers=bearer(make_token(make_user())))
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": "No job with id 999999."}}


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "field"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "malformed_json", None),
        ({"json": {"name": 123}}, 422, "invalid", "name"),
        ({"json": {}}, 422, "invalid", "name"),
        ({"json": {"name": "ok", "scopes": ["admin"]}}, 422, "invalid", "scopes.0"),
        ({"json": {"name": "ok", "surprise": 1}}, 422, "invalid", "surprise"),
        ({"json": {"name": "ok", "expires_days": "soon"}}, 422, "invalid", "expires_days"),
        ({"json": {"name": "x" * 101}}, 422, "invalid", "name"),
        ({"json": {"name": "   "}}, 422, "invalid", "name"),
        ({"json": [1, 2]}, 422, "invalid", None),
    ],
)
def test_bad_input_is_a_clear_4xx(client, make_user, make_token, kwargs, status, code, field):
    token = make_token(make_user())
    r = client.post("/api/v1/tokens", headers={**bearer(token), **kwargs.pop("headers", {})}, **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert err["message"]
    if field:
        assert err["field"] == field


def test_oversized_body_is_413(client, make_user, make_token):
    token = make_token(make_user())
    r = client.post("/api/v1/tokens", headers=bearer(token),
                    content=b'{"name": "' + b"x" * 2_000_000 + b'"}')
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_selftest_payload_validation(client, make_user, make_token):
    token = make_token(make_user())
    r = client.post("/api/v1/jobs", json={"kind": "selftest", "payload": {"steps": 1000}}, headers=bearer(token))
    assert r.status_code == 422 and r.json()["error"]["field"] == "payload.steps"
    r = client.post("/api/v1/jobs", json={"kind": "rm -rf"}, headers=bearer(token))
    assert r.status_code == 422 and r.json()["error"]["field"] == "kind"


def test_member_cannot_start_backup(client, make_user, make_token):
    make_user()
    member = make_user("m@example.com")
    r = client.post("/api/v1/jobs", json={"kind": "backup"}, headers=bearer(make_token(member)))
    assert r.status_code == 403


def test_unicode_names_round_trip(client, make_user, make_token):
    token = make_token(make_user())
    for name in ["Zoë 🌸 token", "مفتاح الاختبار", "<script>alert(1)</script>"]:
        r = client.post("/api/v1/tokens", json={"name": name}, headers=bearer(token))
        assert r.status_code == 201
        assert r.json()["name"] == name


def test_unknown_route_and_method(client):
    assert client.get("/api/v1/nothing").json()["error"]["code"] == "not_found"
    r = client.put("/api/v1/me")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_cookie_authenticated_api_write_needs_csrf(client, make_user, login):
    make_user()
    login(client)
    r = client.post("/api/v1/tokens", json={"name": "from browser"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = client.post("/api/v1/tokens", json={"name": "from browser"},
                    headers={"X-CSRF-Token": client.cookies["ainf_csrf"]})
    assert r.status_code == 201


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/me" in spec["paths"] and "/api/v1/jobs/{job_id}" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/vendor/swagger-ui-bundle" in docs.text
    assert "cdn" not in docs.text.lower()


def test_openapi_declares_the_bearer_scheme(client):
    """/docs gets an Authorize button: every /api/v1 operation names the APIToken bearer scheme."""
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["APIToken"] == {
        "type": "http", "scheme": "bearer", "description": "A personal API token from Settings → API tokens (ainf_…)."}
    assert spec["paths"]["/api/v1/posts"]["post"]["security"] == [{"APIToken": []}]
    assert spec["paths"]["/api/v1/me"]["get"]["security"] == [{"APIToken": []}]
