"""Celery mode against the real local Redis and a real worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from ainfluencer.db.models import Heartbeat, JobStatus, utcnow
from ainfluencer.jobs import queue
from ainfluencer.jobs.celery_app import TASK_NAME, CeleryDispatcher, make_celery
from ainfluencer.jobs.scheduler import Scheduler
from ainfluencer.runtime import Runtime

pytestmark = pytest.mark.celery

REDIS_URL = os.environ.get("AINF_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

WORKER = (
    "from ainfluencer.config import get_settings\n"
    "from ainfluencer.jobs.celery_app import run_worker\n"
    "run_worker(get_settings(), 2)\n"
)


def _flush() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


def _worker_beat(rt: Runtime) -> Heartbeat | None:
    with rt.db.session() as s:
        return s.scalars(select(Heartbeat).where(Heartbeat.component == "worker")).first()


@pytest.fixture(scope="module")
def celery_runtime(tmp_path_factory: pytest.TempPathFactory, pg_database: str | None,
                   helpers: Any) -> Iterator[Runtime]:
    """A runtime in Celery mode with a real worker process consuming from Redis db 15."""
    try:
        _flush()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    root = tmp_path_factory.mktemp("celery")
    rt = helpers.build_runtime(root / "data", pg_database, redis_url=REDIS_URL, executor="celery")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AINF_")}
    env.update(
        AINF_DATA_DIR=str(rt.settings.data_dir), AINF_REDIS_URL=REDIS_URL, AINF_EXECUTOR="celery",
        AINF_LOG_LEVEL="INFO",
    )
    if pg_database:
        env["AINF_DATABASE_URL"] = pg_database
    log_path = root / "worker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=log,  # noqa: S603
                                stderr=subprocess.STDOUT)
    try:
        helpers.wait_for(lambda: _worker_beat(rt) or proc.poll() is not None, timeout=60)
        if proc.poll() is not None:
            pytest.fail(f"celery worker exited:\n{log_path.read_text()}")
        yield rt
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _flush()
        rt.close()
        if os.environ.get("AINF_TEST_SHOW_WORKER_LOG"):
            sys.stderr.write(Path(log_path).read_text())


@pytest.fixture
def app(celery_runtime: Runtime) -> Iterator[Any]:
    celery = make_celery(celery_runtime.settings)
    yield celery
    celery.close()


def test_worker_heartbeat(celery_runtime: Runtime) -> None:
    beat = _worker_beat(celery_runtime)
    assert beat is not None and beat.detail["executor"] == "celery"


def test_selftest_completes_via_broker(celery_runtime: Runtime, app: Any, helpers: Any) -> None:
    rt = celery_runtime
    queue.add_dispatcher(CeleryDispatcher(app, rt.db))
    job_id = helpers.enqueue_job(rt, "selftest", {"steps": 3, "step_seconds": 0.05})
    helpers.wait_for(lambda: helpers.status_of(rt, job_id) == JobStatus.succeeded, timeout=30)
    row = helpers.job_row(rt, job_id)
    assert row.result == {"steps": 3} and row.attempts == 1
    assert row.dispatched_at is not None and row.locked_by == ""


def test_duplicate_delivery_runs_once(celery_runtime: Runtime, app: Any, helpers: Any) -> None:
    rt = celery_runtime
    job_id = helpers.enqueue_job(rt, "selftest", {"steps": 2, "step_seconds": 0.1})
    for _ in range(3):
        app.send_task(TASK_NAME, args=[job_id], queue="ainfluencer")
    helpers.wait_for(lambda: helpers.status_of(rt, job_id) == JobStatus.succeeded, timeout=30)
    time.sleep(0.5)  # let any duplicate delivery arrive; it must find nothing to claim
    assert helpers.job_row(rt, job_id).attempts == 1


def test_retrying_job_backs_off_and_completes(celery_runtime: Runtime, app: Any, helpers: Any) -> None:
    rt = celery_runtime
    queue.add_dispatcher(CeleryDispatcher(app, rt.db))
    enqueued = utcnow()
    job_id = helpers.enqueue_job(rt, "selftest", {"steps": 1, "step_seconds": 0, "fail_times": 1})
    helpers.wait_for(lambda: helpers.job_row(rt, job_id).attempts == 1
                     and helpers.status_of(rt, job_id) == JobStatus.queued, timeout=30)
    waiting = helpers.job_row(rt, job_id)
    assert waiting.last_error == "attempt 1: selftest: planned failure"
    assert waiting.run_at > enqueued
    # The worker re-sent the message itself, due when the backoff ends.
    helpers.wait_for(lambda: helpers.job_row(rt, job_id).dispatched_at is not None, timeout=10)
    helpers.wait_for(lambda: helpers.status_of(rt, job_id) == JobStatus.succeeded, timeout=45)
    done = helpers.job_row(rt, job_id)
    assert done.attempts == 2
    assert done.started_at is not None and done.started_at >= waiting.run_at


def test_lost_message_is_redispatched_by_the_scheduler(celery_runtime: Runtime, helpers: Any) -> None:
    rt = celery_runtime
    # No dispatcher registered: the row is committed but no message is ever sent (a lost message).
    job_id = helpers.enqueue_job(rt, "selftest", {"steps": 1, "step_seconds": 0})
    time.sleep(1.0)
    row = helpers.job_row(rt, job_id)
    assert row.status == JobStatus.queued and row.dispatched_at is None

    sched = Scheduler(rt, "celery-scheduler")  # builds its own Celery dispatcher in celery mode
    try:
        summary = sched.tick()
    finally:
        sched.close()
    assert summary["leader"] and summary["redispatched"] >= 1
    helpers.wait_for(lambda: helpers.status_of(rt, job_id) == JobStatus.succeeded, timeout=30)
    assert helpers.job_row(rt, job_id).attempts == 1
