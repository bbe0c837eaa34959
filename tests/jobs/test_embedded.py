"""The in-process executor end to end."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from ainfluencer.db.models import Heartbeat, Job, JobStatus, utcnow
from ainfluencer.jobs import queue
from ainfluencer.jobs.embedded import EmbeddedExecutor, write_heartbeat
from ainfluencer.runtime import Runtime


def _heartbeat(rt: Runtime, instance: str) -> Heartbeat | None:
    with rt.db.session() as s:
        return s.get(Heartbeat, ("worker", instance))


def test_embedded_executor_runs_jobs_and_stops(runtime: Runtime, helpers: Any) -> None:
    executor = EmbeddedExecutor(runtime, "test-embedded", 2, poll_seconds=0.5)
    executor.start()
    try:
        assert executor.notify in queue._dispatchers
        beat = helpers.wait_for(lambda: _heartbeat(runtime, "test-embedded"))
        assert beat.detail["executor"] == "embedded" and beat.detail["concurrency"] == 2

        ids = [helpers.enqueue_job(runtime, "selftest", {"steps": 3, "step_seconds": 0.05}) for _ in range(3)]
        helpers.wait_for(lambda: all(helpers.status_of(runtime, i) == JobStatus.succeeded for i in ids))
        rows = [helpers.job_row(runtime, i) for i in ids]
        assert all(r.result == {"steps": 3} and r.attempts == 1 for r in rows)
        assert {r.locked_by for r in rows} == {""}

        # A retrying job comes back by itself once its (short, forced) backoff is over.
        retry_id = helpers.enqueue_job(runtime, "selftest", {"steps": 1, "step_seconds": 0, "fail_times": 1})
        helpers.wait_for(lambda: helpers.job_row(runtime, retry_id).attempts == 1
                         and helpers.status_of(runtime, retry_id) == JobStatus.queued)
        with runtime.db.session() as s:
            s.execute(update(Job).where(Job.id == retry_id).values(run_at=utcnow()))
        helpers.wait_for(lambda: helpers.status_of(runtime, retry_id) == JobStatus.succeeded)
    finally:
        assert executor.stop(timeout=15)
    assert executor.notify not in queue._dispatchers
    assert _heartbeat(runtime, "test-embedded") is None

    # After stop nothing picks up new work.
    idle = helpers.enqueue_job(runtime, "selftest", {"steps": 1, "step_seconds": 0})
    assert helpers.status_of(runtime, idle) == JobStatus.queued


def test_stop_waits_for_the_running_job(runtime: Runtime, helpers: Any) -> None:
    executor = EmbeddedExecutor(runtime, "stopper", 1)
    executor.start()
    job_id = helpers.enqueue_job(runtime, "selftest", {"steps": 4, "step_seconds": 0.1})
    helpers.wait_for(lambda: helpers.status_of(runtime, job_id) == JobStatus.running)
    assert executor.stop(timeout=15)
    assert helpers.status_of(runtime, job_id) == JobStatus.succeeded


def test_heartbeat_upsert(runtime: Runtime) -> None:
    write_heartbeat(runtime.db, component="worker", instance="x", detail={"n": 1})
    write_heartbeat(runtime.db, component="worker", instance="x", detail={"n": 2})
    row = _heartbeat(runtime, "x")
    assert row is not None and row.detail == {"n": 2}
