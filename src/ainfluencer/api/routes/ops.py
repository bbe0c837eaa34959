"""Operations: liveness, readiness and Prometheus metrics (unauthenticated, no secrets)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import select, text

from ainfluencer import __version__
from ainfluencer.api.deps import RuntimeDep
from ainfluencer.db.models import Heartbeat, utcnow
from ainfluencer.jobs.queue import status_counts
from ainfluencer.runtime import Runtime

router = APIRouter(tags=["operations"])
STALE_AFTER = timedelta(seconds=30)


@router.get("/healthz", response_class=PlainTextResponse)
def read_healthz() -> str:
    """The process is up."""
    return "ok"


def readiness(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    """Check the database and the worker/scheduler heartbeats."""
    checks: dict[str, Any] = {}
    try:
        with runtime.db.session() as s:
            s.execute(text("SELECT 1"))
            beats = s.execute(select(Heartbeat)).scalars().all()
        checks["database"] = {"ok": True}
    except Exception as exc:
        return False, {"database": {"ok": False, "error": exc.__class__.__name__}}
    now = utcnow()
    for component in ("worker", "scheduler"):
        fresh = [b for b in beats if b.component == component and now - b.beat_at < STALE_AFTER]
        entry: dict[str, Any] = {"ok": bool(fresh), "instances": len(fresh)}
        if component == "scheduler":
            entry["leader"] = any(b.detail.get("leader") for b in fresh)
            entry["ok"] = entry["leader"]
        last = max((b.beat_at for b in beats if b.component == component), default=None)
        entry["last_beat"] = last.isoformat() if last else None
        checks[component] = entry
    ready = all(c["ok"] for c in checks.values())
    checks["credentials"] = _credentials_check(runtime)
    return ready, checks


def _credentials_check(runtime: Runtime) -> dict[str, Any]:
    # Reported, not blocking: an instance whose stored credentials came from another key ring still
    # serves pages and everything else; a person has to reconnect the accounts named here.
    from ainfluencer.services.secrets import UNREADABLE_MESSAGE

    try:
        with runtime.db.session() as s:
            rows = runtime.secrets.unreadable(s)
    except Exception as exc:  # noqa: BLE001 - readiness answers, whatever broke
        return {"ok": False, "error": exc.__class__.__name__}
    if not rows:
        return {"ok": True, "unreadable": 0}
    accounts = sorted({r.owner_id for r in rows if r.owner_kind == "social_account"})
    return {"ok": False, "unreadable": len(rows), "accounts": accounts, "message": UNREADABLE_MESSAGE}


@router.get("/readyz")
def read_readyz(runtime: RuntimeDep) -> Response:
    """Ready when the database answers and a worker and the leading scheduler beat recently.

    ``checks.credentials`` lists stored credentials this key ring cannot decrypt (a backup restored
    without its key); it does not make the instance unready, but names what to reconnect.
    """
    ok, checks = readiness(runtime)
    return JSONResponse({"ready": ok, "version": __version__, "checks": checks}, status_code=200 if ok else 503)


class _JobCollector:
    """Reads job counts from the database at scrape time (correct across processes)."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    def collect(self) -> Any:
        if self.runtime is None:
            return
        gauge = GaugeMetricFamily("ainf_jobs", "Jobs by status", labels=["status"])
        try:
            with self.runtime.db.session() as s:
                for status, n in status_counts(s).items():
                    gauge.add_metric([status], n)
        except Exception:  # a scrape must not fail because the database blinked
            return
        yield gauge


_collector = _JobCollector()
REGISTRY.register(_collector)  # type: ignore[arg-type]


@router.get("/metrics", include_in_schema=False)
def read_metrics(request: Request) -> Response:
    """Prometheus exposition."""
    _collector.runtime = request.app.state.runtime
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
