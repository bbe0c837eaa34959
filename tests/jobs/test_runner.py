"""The job lifecycle on a real database: crash recovery, retries, idempotency, cancel, concurrency."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ainfluencer.db.models import Job, JobStatus, utcnow
from ainfluencer.errors import Conflict
from ainfluencer.jobs import queue, runner
from ainfluencer.jobs.registry import JobContext, handler
from ainfluencer.jobs.retry import RetryPolicy
from ainfluencer.runtime import Runtime

# Side effect of the concurrency test's handler: which job ids ran, and how often.
_ran: list[int] = []
_ran_lock = threading.Lock()


@handler("test.count")
def _count(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    with _ran_lock:
        _ran.append(ctx.job_id)
    time.sleep(0.005)  # long enough for the threads to overlap
    return {"n": payload["n"]}


CHILD = """
import sys
from pathlib import Path
from ainfluencer.config import Settings
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime

data_dir, url, job_id = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
settings = Settings(data_dir=data_dir, database_url=url, redis_url="", executor="embedded")
rt = Runtime.build(settings.model_copy(update={"job_lease_seconds": int(sys.argv[4])}))
assert runner.claim(rt, job_id, worker="doomed-child"), "child could not claim the job"
runner.execute(rt, job_id, worker="doomed-child")
"""


def test_job_survives_worker_killed_mid_run(runtime: Runtime, helpers: Any) -> None:
    job_id = helpers.enqueue_job(runtime, "selftest", {"steps": 10, "step_seconds": 0.3})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AINF_")}
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", CHILD, str(runtime.settings.data_dir), runtime.settings.database_url,
         str(job_id), str(runtime.settings.job_lease_seconds)],
        env=env,
    )
    try:
        # Wait until the child is inside the handler (it reported at least one step).
        helpers.wait_for(lambda: (j := helpers.job_row(runtime, job_id)).status == JobStatus.running
                         and j.progress > 0 and child.poll() is None, timeout=30)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    row = helpers.job_row(runtime, job_id)
    assert row.status == JobStatus.running and row.locked_by == "doomed-child" and row.attempts == 1

    # Nothing renews the lease now; once it has passed the reaper hands the job back.
    helpers.wait_for(lambda: utcnow() > helpers.job_row(runtime, job_id).lease_until, timeout=10)
    assert runner.reap_expired(runtime) == 1
    row = helpers.job_row(runtime, job_id)
    assert row.status == JobStatus.queued
    assert "lease expired" in row.last_error and row.locked_by == ""

    assert runner.run_one(runtime, worker="rescuer") == JobStatus.succeeded
    row = helpers.job_row(runtime, job_id)
    assert row.status == JobStatus.succeeded
    assert row.attempts == 2
    assert row.result == {"steps": 10}
    assert row.progress == 100


def test_reaper_fails_a_job_out_of_attempts(runtime: Runtime, helpers: Any) -> None:
    job_id = helpers.enqueue_job(runtime, "selftest", {"steps": 1, "step_seconds": 0}, max_attempts=1)
    assert runner.claim(runtime, job_id, worker="ghost")
    with runtime.db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert runner.reap_expired(runtime) == 1
    row = helpers.job_row(runtime, job_id)
    assert row.status == JobStatus.failed and "no attempts are left" in row.last_error


def test_retry_policy_formula_with_seeded_random() -> None:
    policy = RetryPolicy(base_seconds=5, max_seconds=3600, jitter=0.25)
    delays = []
    for attempt in range(1, 8):
        expected_jitter = random.Random(attempt).uniform(0, 0.25)  # noqa: S311
        decision = policy.decide(attempt=attempt, max_attempts=10, rng=random.Random(attempt))
        assert decision.retry
        expected = min(3600, 5 * 2 ** (attempt - 1)) * (1 + expected_jitter)
        assert decision.delay.total_seconds() == pytest.approx(expected)
        delays.append(decision.delay)
    assert delays == sorted(delays) and delays[0] < delays[-1]
    # The ceiling, the Retry-After floor and the attempt budget.
    assert policy.decide(attempt=20, max_attempts=30, rng=random.Random(0)).delay <= timedelta(seconds=3600 * 1.25)
    assert policy.decide(attempt=1, max_attempts=5, retry_after=90, rng=random.Random(0)).delay == timedelta(
        seconds=90
    )
    assert not policy.decide(attempt=5, max_attempts=5).retry


def test_retries_back_off_then_succeed(runtime: Runtime, helpers: Any) -> None:
    job_id = helpers.enqueue_job(runtime, "selftest", {"steps": 1, "step_seconds": 0, "fail_times": 2})
    delays = []
    for attempt in (1, 2):
        before = utcnow()
        assert runner.run_one(runtime, worker="w") == JobStatus.queued
        row = helpers.job_row(runtime, job_id)
        assert row.status == JobStatus.queued
        assert row.attempts == attempt
        assert row.last_error == f"attempt {attempt}: selftest: planned failure"
        assert row.run_at > utcnow(), "a retry waits for its backoff"
        assert runner.run_one(runtime, worker="w") is None, "not due yet"
        delays.append(row.run_at - before)
        # Let the backoff pass without sleeping through it.
        with runtime.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
    assert timedelta(seconds=5) <= delays[0] < delays[1]
    assert delays[1] >= timedelta(seconds=10)
    assert runner.run_one(runtime, worker="w") == JobStatus.succeeded
    row = helpers.job_row(runtime, job_id)
    assert row.attempts == 3 and row.last_error == "" and row.result == {"steps": 1}


def test_idempotency_key_prevents_duplicates(runtime: Runtime, helpers: Any) -> None:
    first = helpers.enqueue_job(runtime, "selftest", {"steps": 1}, idempotency_key="once")
    second = helpers.enqueue_job(runtime, "selftest", {"steps": 2}, idempotency_key="once")
    assert first == second

    barrier = threading.Barrier(6)
    ids: list[int] = []
    errors: list[BaseException] = []

    def racer() -> None:
        try:
            barrier.wait(timeout=10)
            ids.append(helpers.enqueue_job(runtime, "selftest", {"steps": 1}, idempotency_key="race"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(ids) == 6 and len(set(ids)) == 1
    with runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.idempotency_key == "race")) == 1
        assert s.scalar(select(func.count()).select_from(Job)) == 2


def test_savepoint_rollback_keeps_earlier_wakeups(runtime: Runtime) -> None:
    # A duplicate idempotency key rolls back a SAVEPOINT; the job enqueued before it must still be
    # announced to dispatchers when the transaction commits.
    heard: list[int] = []
    queue.add_dispatcher(heard.extend)
    try:
        with runtime.db.session() as s:
            queue.enqueue(s, "selftest", {}, idempotency_key="dup")
        heard.clear()
        with runtime.db.session() as s:
            fresh = queue.enqueue(s, "selftest", {})
            with pytest.raises(IntegrityError), s.begin_nested():
                s.add(Job(kind="selftest", idempotency_key="dup"))
                s.flush()
    finally:
        queue.remove_dispatcher(heard.extend)
    assert heard == [fresh.id]


def test_cancel_stops_running_job_and_failed_job_can_be_retried(runtime: Runtime, helpers: Any) -> None:
    job_id = helpers.enqueue_job(runtime, "selftest", {"steps": 100, "step_seconds": 0.05})
    outcome: list[JobStatus | None] = []
    t = threading.Thread(target=lambda: outcome.append(runner.run_one(runtime, worker="w")))
    t.start()
    helpers.wait_for(lambda: helpers.job_row(runtime, job_id).progress >= 2)
    with runtime.db.session() as s:
        queue.cancel_job(s, queue.get_job(s, job_id))
    t.join(timeout=20)
    assert not t.is_alive()
    assert outcome == [JobStatus.cancelled]
    row = helpers.job_row(runtime, job_id)
    assert row.status == JobStatus.cancelled
    assert row.progress < 100 and row.result == {}
    with runtime.db.session() as s, pytest.raises(Conflict):
        queue.cancel_job(s, queue.get_job(s, job_id))

    failing = helpers.enqueue_job(runtime, "selftest", {"steps": 1, "step_seconds": 0, "fail_times": 1},
                                  max_attempts=1)
    assert runner.run_one(runtime, worker="w") == JobStatus.failed
    assert "planned failure" in helpers.job_row(runtime, failing).last_error
    with runtime.db.session() as s:
        retried = queue.retry_job(s, queue.get_job(s, failing))
        assert retried.status == JobStatus.queued and retried.max_attempts == 1 + queue.RETRY_BUDGET
    assert runner.run_one(runtime, worker="w") == JobStatus.succeeded
    assert helpers.job_row(runtime, failing).attempts == 2


def test_concurrent_claims_run_every_job_exactly_once(runtime: Runtime, helpers: Any) -> None:
    _ran.clear()
    with runtime.db.session() as s:
        ids = [queue.enqueue(s, "test.count", {"n": i}).id for i in range(40)]

    def drain(name: str) -> None:
        while runner.run_one(runtime, worker=name) is not None:
            pass

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    counts = Counter(_ran)
    assert set(counts) == set(ids)
    assert all(n == 1 for n in counts.values()), counts
    with runtime.db.session() as s:
        assert queue.status_counts(s)["succeeded"] == 40


@pytest.mark.parametrize(
    "payload, message",
    [({"steps": 0}, "steps must be between 1 and 100"), ({"step_seconds": 11}, "step_seconds must be between"),
     ({"steps": "many"}, "steps must be a whole number")],
)
def test_selftest_rejects_bad_payload(runtime: Runtime, helpers: Any, payload: dict[str, Any], message: str) -> None:
    job_id = helpers.enqueue_job(runtime, "selftest", payload)
    assert runner.run_one(runtime, worker="w") == JobStatus.failed
    assert message in helpers.job_row(runtime, job_id).last_error


def test_unknown_kind_fails_permanently(runtime: Runtime, helpers: Any) -> None:
    job_id = helpers.enqueue_job(runtime, "no.such.kind")
    assert runner.run_one(runtime, worker="w") == JobStatus.failed
    row = helpers.job_row(runtime, job_id)
    assert row.attempts == 1 and "no handler" in row.last_error


def test_features_register_their_job_kinds_explicitly() -> None:
    from ainfluencer.jobs import registry

    kinds = set(registry.known_kinds())
    assert {"selftest", "mail.send", "backup", "publish", "publish.reconcile", "publish.check", "webhook.deliver",
            "studio.generate_images", "studio.voice", "studio.video", "automation.run",
            "text_backend.pull_model"} <= kinds
    listed = {k for target in registry.FEATURES for k in getattr(
        __import__(target.partition(":")[0], fromlist=["_"]), target.partition(":")[2])}
    assert listed <= kinds
    with pytest.raises(ValueError, match="already has a handler"):
        registry.register("publish", lambda ctx, payload: None)
