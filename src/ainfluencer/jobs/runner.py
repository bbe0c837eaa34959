"""Claim, run and settle jobs; reap rows whose worker vanished. Shared by every executor."""

from __future__ import annotations

import logging
import threading
import traceback
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from ainfluencer.db.models import Job, JobStatus, utcnow
from ainfluencer.jobs.errors import JobCancelled, LeaseLost, PermanentJobError, TransientJobError
from ainfluencer.jobs.registry import JobContext, get_handler
from ainfluencer.jobs.retry import DEFAULT_POLICY, RetryPolicy
from ainfluencer.runtime import Runtime

log = logging.getLogger(__name__)


def _claim_values(worker: str, lease_seconds: int) -> dict[str, Any]:
    now = utcnow()
    return {
        "status": JobStatus.running,
        "attempts": Job.attempts + 1,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "heartbeat_at": now,
        "locked_by": worker,
        "started_at": now,
        "progress": 0,
        "progress_message": "started",
    }


def claim_next(runtime: Runtime, *, worker: str, kinds: list[str] | None = None) -> int | None:
    """Claim the oldest due job. The conditional UPDATE makes the claim atomic on every database."""
    lease = runtime.settings.job_lease_seconds
    with runtime.db.session() as s:
        q = select(Job.id).where(Job.status == JobStatus.queued, Job.run_at <= utcnow())
        if kinds:
            q = q.where(Job.kind.in_(kinds))
        for job_id in s.scalars(q.order_by(Job.run_at, Job.id).limit(8)):
            res = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.queued)
                .values(**_claim_values(worker, lease))
            )
            if res.rowcount == 1:  # type: ignore[attr-defined]
                return job_id
    return None


def claim(runtime: Runtime, job_id: int, *, worker: str) -> bool:
    """Claim one specific job (Celery delivers ids); False if it is not due or someone has it."""
    with runtime.db.session() as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.queued, Job.run_at <= utcnow())
            .values(**_claim_values(worker, runtime.settings.job_lease_seconds))
        )
        return res.rowcount == 1  # type: ignore[attr-defined]


class _Heartbeat(threading.Thread):
    """Renews the lease while the handler runs; notices cancellation and lost leases."""

    def __init__(self, runtime: Runtime, ctx: JobContext) -> None:
        super().__init__(name=f"job-{ctx.job_id}-heartbeat", daemon=True)
        self.runtime, self.ctx = runtime, ctx
        self.stop = threading.Event()
        self.interval = max(0.5, runtime.settings.job_lease_seconds / 3)

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat for job %s failed", self.ctx.job_id)

    def beat(self, **extra: Any) -> None:
        now = utcnow()
        lease = timedelta(seconds=self.runtime.settings.job_lease_seconds)
        with self.runtime.db.session() as s:
            res = s.execute(
                update(Job)
                .where(Job.id == self.ctx.job_id, Job.locked_by == self.ctx.worker, Job.status == JobStatus.running)
                .values(heartbeat_at=now, lease_until=now + lease, **extra)
            )
            if res.rowcount == 0:  # type: ignore[attr-defined]
                status = s.scalar(select(Job.status).where(Job.id == self.ctx.job_id))
                if status == JobStatus.cancelled:
                    self.ctx.cancelled.set()
                else:
                    self.ctx.lease_lost.set()


def execute(runtime: Runtime, job_id: int, *, worker: str, policy: RetryPolicy = DEFAULT_POLICY) -> JobStatus:
    """Run a job this worker has claimed and persist its outcome. Returns the resulting status."""
    with runtime.db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status != JobStatus.running or job.locked_by != worker:
            return job.status if job else JobStatus.failed
        kind, payload, attempt, max_attempts = job.kind, dict(job.payload), job.attempts, job.max_attempts

    hb: _Heartbeat | None = None

    def report(percent: int, message: str) -> None:
        assert hb is not None
        hb.beat(progress=percent, progress_message=message)
        hb.ctx.check()

    ctx = JobContext(runtime=runtime, job_id=job_id, attempt=attempt, worker=worker, report=report)
    hb = _Heartbeat(runtime, ctx)
    fn = get_handler(kind)
    hb.start()
    try:
        if fn is None:
            raise PermanentJobError(f"no handler for job kind {kind!r} in this version")
        result = fn(ctx, payload) or {}
        outcome: dict[str, Any] = {
            "status": JobStatus.succeeded, "result": result, "progress": 100,
            "progress_message": "done", "last_error": "",
        }
    except LeaseLost:
        log.warning("job %s: lease lost; another worker owns it now, result dropped", job_id)
        return JobStatus.running
    except JobCancelled:
        return JobStatus.cancelled
    except PermanentJobError as exc:
        outcome = {"status": JobStatus.failed, "last_error": str(exc)[:4000]}
    except Exception as exc:
        retry_after = exc.retry_after if isinstance(exc, TransientJobError) else None
        message = str(exc) or exc.__class__.__name__
        if not isinstance(exc, TransientJobError):
            log.error("job %s (%s) attempt %s raised:\n%s", job_id, kind, attempt, traceback.format_exc())
        decision = policy.decide(attempt=attempt, max_attempts=max_attempts, retry_after=retry_after)
        if decision.retry:
            outcome = {
                "status": JobStatus.queued,
                "run_at": utcnow() + decision.delay,
                "last_error": f"attempt {attempt}: {message}"[:4000],
                "progress_message": f"retrying in {int(decision.delay.total_seconds())}s",
                "dispatched_at": None,
            }
        else:
            outcome = {"status": JobStatus.failed, "last_error": f"attempt {attempt}: {message}"[:4000]}
    finally:
        hb.stop.set()
        hb.join(timeout=5)

    if outcome["status"] in (JobStatus.succeeded, JobStatus.failed):
        outcome["finished_at"] = utcnow()
    outcome.update(lease_until=None, locked_by="")
    with runtime.db.session() as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.locked_by == worker, Job.status == JobStatus.running)
            .values(**outcome)
        )
        if res.rowcount == 0:  # type: ignore[attr-defined]
            log.warning("job %s: finished but no longer ours (cancelled or reaped); outcome dropped", job_id)
            return s.scalar(select(Job.status).where(Job.id == job_id)) or JobStatus.failed
    return JobStatus(outcome["status"])


def reap_expired(runtime: Runtime) -> int:
    """Re-queue running jobs whose lease expired (their worker died); fail those out of attempts."""
    now = utcnow()
    with runtime.db.session() as s:
        lost = "lease expired: the worker stopped responding"
        requeued = s.execute(
            update(Job)
            .where(Job.status == JobStatus.running, Job.lease_until < now, Job.attempts < Job.max_attempts)
            .values(
                status=JobStatus.queued, run_at=now, lease_until=None, locked_by="", last_error=lost,
                dispatched_at=None, progress_message="re-queued after worker loss",
            )
        ).rowcount  # type: ignore[attr-defined]
        failed = s.execute(
            update(Job)
            .where(Job.status == JobStatus.running, Job.lease_until < now, Job.attempts >= Job.max_attempts)
            .values(
                status=JobStatus.failed, lease_until=None, locked_by="", finished_at=now,
                last_error=lost + " and no attempts are left",
            )
        ).rowcount  # type: ignore[attr-defined]
    if requeued or failed:
        log.warning("reaper: %s job(s) re-queued, %s failed after worker loss", requeued, failed)
    return int(requeued) + int(failed)


def run_one(runtime: Runtime, *, worker: str) -> JobStatus | None:
    """Claim and run the next due job (used by tests and the embedded executor)."""
    job_id = claim_next(runtime, worker=worker)
    if job_id is None:
        return None
    return execute(runtime, job_id, worker=worker)
