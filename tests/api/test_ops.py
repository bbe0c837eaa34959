"""Health, readiness, metrics and security headers."""

from __future__ import annotations

from ainfluencer.db.models import Heartbeat, utcnow


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.text == "ok"


def test_readyz_needs_worker_and_scheduler(client, runtime):
    r = client.get("/readyz")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["worker"]["ok"] is False
    with runtime.db.session() as s:
        s.add(Heartbeat(component="worker", instance="w1", beat_at=utcnow(), detail={}))
        s.add(Heartbeat(component="scheduler", instance="s1", beat_at=utcnow(), detail={"leader": True}))
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True


def test_metrics(client):
    client.get("/healthz")
    body = client.get("/metrics").text
    assert 'ainf_http_requests_total{method="GET",route="/healthz",status="200"}' in body
    assert 'ainf_jobs{status="queued"}' in body


def test_security_headers(client):
    r = client.get("/healthz")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_missing_optional_package_is_a_clear_503(app, client):
    # Simulate a base install without the media extra on a route that needs it.
    @app.get("/api/v1/_needs_extra")
    def _needs_extra() -> None:
        raise ModuleNotFoundError("No module named 'PIL'", name="PIL")

    r = client.get("/api/v1/_needs_extra")
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "feature_unavailable" and "'PIL'" in err["message"] and ".[media]" in err["message"]
