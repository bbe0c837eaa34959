"""Jobs: visible state of background work."""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from ainfluencer.api.deps import Reader, SessionDep, Writer
from ainfluencer.api.schemas import JobCreate, JobPublic, JobsPublic
from ainfluencer.db.models import Job, JobStatus
from ainfluencer.errors import InvalidInput, PermissionDenied
from ainfluencer.jobs import queue

router = APIRouter(prefix="/jobs", tags=["jobs"])


def job_public(job: Job) -> JobPublic:
    """Schema for one job."""
    return JobPublic.model_validate(job, from_attributes=True).model_copy(update={"status": job.status.value})


@router.get("", response_model=JobsPublic)
def read_jobs(
    principal: Reader,
    session: SessionDep,
    status_: JobStatus | None = Query(None, alias="status"),
    kind: str | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> JobsPublic:
    """Jobs you caused, newest first (the owner role sees every job, including the system's)."""
    rows, total = queue.list_jobs(session, user=principal.user, status=status_, kind=kind, limit=limit, offset=offset)
    return JobsPublic(data=[job_public(j) for j in rows], count=total)


@router.get("/{job_id}", response_model=JobPublic)
def read_job(job_id: int, principal: Reader, session: SessionDep) -> JobPublic:
    """One job's state; another user's job answers 404."""
    return job_public(queue.get_job(session, job_id, user=principal.user))


@router.post("", response_model=JobPublic, status_code=status.HTTP_201_CREATED)
def create_job(body: JobCreate, principal: Writer, session: SessionDep) -> JobPublic:
    """Start a self-test or a backup (other kinds are started by the features that own them)."""
    if body.kind == "backup" and not principal.user.is_owner:
        raise PermissionDenied("Only the owner can start a backup.")
    payload = dict(body.payload)
    if body.kind == "selftest":
        steps, delay = payload.get("steps", 10), payload.get("step_seconds", 0.5)
        if not isinstance(steps, int) or not 1 <= steps <= 100:
            raise InvalidInput("steps must be a whole number from 1 to 100.", field="payload.steps")
        if not isinstance(delay, int | float) or not 0 <= delay <= 10:
            raise InvalidInput("step_seconds must be a number from 0 to 10.", field="payload.step_seconds")
        payload = {"steps": steps, "step_seconds": float(delay)}
    else:
        payload = {}
    job = queue.enqueue(
        session, body.kind, payload, idempotency_key=body.idempotency_key, user_id=principal.user.id
    )
    return job_public(job)


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: int, principal: Writer, session: SessionDep) -> JobPublic:
    """Cancel a queued or running job."""
    return job_public(queue.cancel_job(session, queue.get_job(session, job_id, user=principal.user)))


@router.post("/{job_id}/retry", response_model=JobPublic)
def retry_job(job_id: int, principal: Writer, session: SessionDep) -> JobPublic:
    """Re-queue a failed or cancelled job."""
    return job_public(queue.retry_job(session, queue.get_job(session, job_id, user=principal.user)))
