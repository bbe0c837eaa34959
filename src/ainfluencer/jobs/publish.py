"""Publishing job kinds: publish, reconcile an uncertain post, poll processing, deliver webhooks.

The handlers are thin: the state machine lives in ``services/publishing.py``.
"""

from __future__ import annotations

from typing import Any

from ainfluencer.db.models import Job
from ainfluencer.jobs.errors import PermanentJobError
from ainfluencer.jobs.registry import Handler, JobContext


def _int(payload: dict[str, Any], key: str) -> int:
    try:
        return int(payload[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentJobError(f"payload needs a whole number {key!r}") from exc


def _last_try(ctx: JobContext) -> bool:
    with ctx.runtime.db.session() as s:
        job = s.get(Job, ctx.job_id)
        return job is None or ctx.attempt >= job.max_attempts


def publish(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Claim a publication, send it once, and settle its state (see services.publishing)."""
    from ainfluencer.services.publishing import run_publish

    return run_publish(ctx.runtime, _int(payload, "publication_id"), _int(payload, "seq"), worker=ctx.worker)


def reconcile(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Look for an uncertain publication on the network before anything is re-sent."""
    from ainfluencer.services.publishing import run_reconcile

    return run_reconcile(ctx.runtime, _int(payload, "publication_id"), _int(payload, "attempt"),
                         worker=ctx.worker, last_try=_last_try(ctx))


def check(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Poll a publication the network accepted and is still processing."""
    from ainfluencer.services.publishing import run_check_status

    return run_check_status(ctx.runtime, _int(payload, "publication_id"), _int(payload, "attempt"),
                            _int(payload, "poll"), worker=ctx.worker)


def deliver(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one signed webhook event; retried with backoff on failure."""
    from ainfluencer.services.publishing import deliver_webhook

    return deliver_webhook(ctx.runtime, _int(payload, "delivery_id"), attempt=ctx.attempt, last_try=_last_try(ctx))


HANDLERS: dict[str, Handler] = {
    "publish": publish,
    "publish.reconcile": reconcile,
    "publish.check": check,
    "webhook.deliver": deliver,
}
