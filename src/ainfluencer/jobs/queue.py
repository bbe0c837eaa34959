"""Put work on the queue, read it back, cancel it. Dispatch happens after the enqueuing commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, event, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from ainfluencer.db.models import Job, JobStatus, User, utcnow
from ainfluencer.errors import Conflict, NotFound

log = logging.getLogger(__name__)
RETRY_BUDGET = 3  # attempts a manual retry grants

# Executors in this process register here to hear about committed jobs (wake a thread, send a
# Celery message). Losing such a signal only delays a job: pollers and the scheduler re-dispatch.
_dispatchers: list[Callable[[list[int]], None]] = []


def add_dispatcher(fn: Callable[[list[int]], None]) -> None:
    """Register a callback receiving ids of jobs just committed."""
    if fn not in _dispatchers:
        _dispatchers.append(fn)


def remove_dispatcher(fn: Callable[[list[int]], None]) -> None:
    """Unregister a dispatch callback."""
    if fn in _dispatchers:
        _dispatchers.remove(fn)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    ids = session.info.pop("ainf_enqueued", None)
    if not ids:
        return
    for fn in list(_dispatchers):
        try:
            fn(ids)
        except Exception:  # a failed wake-up must not fail the committed request
            log.exception("job dispatch failed; the scheduler will re-dispatch")


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # Only the outermost rollback discards the ids: "after_rollback" also fires for a SAVEPOINT
    # rollback (enqueue's own duplicate-key path uses one), which would drop the wake-ups of jobs
    # enqueued earlier in the same, still committing, transaction. Ids left over from a rolled-back
    # savepoint are harmless: dispatchers skip ids with no queued row.
    if previous_transaction.parent is None:
        session.info.pop("ainf_enqueued", None)


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = 5,
    user_id: int | None = None,
) -> Job:
    """Add a job in the caller's transaction. With an idempotency key, return the existing job instead."""
    if idempotency_key:
        existing = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if existing is not None:
            return existing
    job = Job(
        kind=kind,
        payload=payload or {},
        idempotency_key=idempotency_key,
        run_at=run_at or utcnow(),
        max_attempts=max_attempts,
        user_id=user_id,
    )
    if idempotency_key:
        # A racing process may insert the same key between our check and insert.
        try:
            with session.begin_nested():
                session.add(job)
                session.flush()
        except IntegrityError:
            existing = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
            if existing is None:
                raise
            return existing
    else:
        session.add(job)
        session.flush()
    session.info.setdefault("ainf_enqueued", []).append(job.id)
    return job


def visible_jobs(user: User | None) -> ColumnElement[bool]:
    """SQL condition: jobs ``user`` may see (the owner role and system code, ``None``, see all).

    Anyone else sees only the jobs they caused; system jobs (no user) are the owner's to look after.
    """
    if user is None or user.is_owner:
        return true()
    return Job.user_id == user.id


def get_job(session: Session, job_id: int, *, user: User | None = None) -> Job:
    """One job; with ``user``, only one that user may see (another user's job is NotFound, not Forbidden)."""
    job = session.scalars(select(Job).where(Job.id == job_id, visible_jobs(user))).first()
    if job is None:
        raise NotFound(f"No job with id {job_id}.")
    return job


def list_jobs(
    session: Session, *, user: User | None = None, status: JobStatus | None = None, kind: str | None = None,
    limit: int = 50, offset: int = 0,
) -> tuple[list[Job], int]:
    """Newest jobs first, with the total matching count; with ``user``, only the jobs they may see."""
    q = select(Job).where(visible_jobs(user))
    if status is not None:
        q = q.where(Job.status == status)
    if kind:
        q = q.where(Job.kind == kind)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(Job.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def cancel_job(session: Session, job: Job) -> Job:
    """Cancel a queued or running job (a running handler stops at its next progress report)."""
    if job.status not in (JobStatus.queued, JobStatus.running):
        raise Conflict(f"Job {job.id} is {job.status.value}; only queued or running jobs can be cancelled.")
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_([JobStatus.queued, JobStatus.running]))
        .values(status=JobStatus.cancelled, finished_at=utcnow(), lease_until=None, last_error="cancelled by user")
    )
    session.refresh(job)
    return job


def retry_job(session: Session, job: Job) -> Job:
    """Put a failed or cancelled job back on the queue with a fresh attempt budget."""
    if job.status not in (JobStatus.failed, JobStatus.cancelled):
        raise Conflict(f"Job {job.id} is {job.status.value}; only failed or cancelled jobs can be retried.")
    job.status = JobStatus.queued
    job.run_at = utcnow()
    job.max_attempts = job.attempts + RETRY_BUDGET
    job.finished_at = None
    job.dispatched_at = None
    session.flush()
    session.info.setdefault("ainf_enqueued", []).append(job.id)
    return job


def status_counts(session: Session, *, user: User | None = None) -> dict[str, int]:
    """How many jobs are in each status (with ``user``: of the jobs they may see)."""
    rows = session.execute(
        select(Job.status, func.count()).where(visible_jobs(user)).group_by(Job.status)
    ).all()
    counts = {s.value: 0 for s in JobStatus}
    for status, n in rows:
        counts[JobStatus(status).value] = int(n)
    return counts
