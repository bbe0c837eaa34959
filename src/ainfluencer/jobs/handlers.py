"""Built-in job handlers: the live-channel self-test, e-mail delivery and backups."""

from __future__ import annotations

import smtplib
import time
from typing import Any

from ainfluencer.db.models import Job, OutboxMessage, utcnow
from ainfluencer.jobs.errors import PermanentJobError, TransientJobError
from ainfluencer.jobs.registry import Handler, JobContext


def _int_in(payload: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    try:
        value = int(payload.get(key, default))
    except (TypeError, ValueError) as exc:
        raise PermanentJobError(f"{key} must be a whole number") from exc
    if not low <= value <= high:
        raise PermanentJobError(f"{key} must be between {low} and {high}, got {value}")
    return value


def _float_in(payload: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    try:
        value = float(payload.get(key, default))
    except (TypeError, ValueError) as exc:
        raise PermanentJobError(f"{key} must be a number") from exc
    if not low <= value <= high:
        raise PermanentJobError(f"{key} must be between {low} and {high}, got {value}")
    return value


def selftest(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Walk through ``steps`` timed steps reporting progress; fail the first ``fail_times`` attempts."""
    steps = _int_in(payload, "steps", 10, 1, 100)
    step_seconds = _float_in(payload, "step_seconds", 0.5, 0.0, 10.0)
    fail_times = _int_in(payload, "fail_times", 0, 0, 100)
    for i in range(1, steps + 1):
        if step_seconds:
            time.sleep(step_seconds)
        ctx.progress(round(100 * i / steps), f"step {i} of {steps}")
    if ctx.attempt <= fail_times:
        raise TransientJobError("selftest: planned failure")
    return {"steps": steps}


def _set_outbox(ctx: JobContext, outbox_id: int, **values: Any) -> None:
    with ctx.runtime.db.session() as s:
        msg = s.get(OutboxMessage, outbox_id)
        if msg is not None:
            for key, value in values.items():
                setattr(msg, key, value)


def _refused_for_good(exc: BaseException) -> bool:
    # A 5xx refusal of every recipient will not change on retry; 4xx (greylisting) will.
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    return False


def mail_send(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Deliver one outbox message over SMTP, keeping the outbox row's status and error current."""
    from ainfluencer.services.mail import send_smtp

    outbox_id = int(payload["outbox_id"])
    settings = ctx.runtime.settings
    with ctx.runtime.db.session() as s:
        msg = s.get(OutboxMessage, outbox_id)
        if msg is None:
            raise PermanentJobError(f"outbox message {outbox_id} no longer exists")
        if msg.status == "sent":  # a duplicate run after a crash between send and settle
            return {"outbox_id": outbox_id, "already_sent": True}
        to, subject, body = msg.to_addr, msg.subject, msg.body
        job = s.get(Job, ctx.job_id)
        max_attempts = job.max_attempts if job is not None else ctx.attempt
    if not settings.smtp_enabled:
        error = "SMTP is not configured (set AINF_SMTP_HOST); the message was not sent"
        _set_outbox(ctx, outbox_id, status="failed", error=error)
        raise PermanentJobError(error)
    ctx.progress(10, f"sending to {to}")
    try:
        send_smtp(settings, to=to, subject=subject, body=body)
    except (smtplib.SMTPException, OSError) as exc:
        error = f"attempt {ctx.attempt}: {exc.__class__.__name__}: {exc}"[:4000]
        permanent = _refused_for_good(exc)
        last = permanent or ctx.attempt >= max_attempts
        _set_outbox(ctx, outbox_id, status="failed" if last else "retrying", error=error)
        if permanent:
            raise PermanentJobError(error) from exc
        raise TransientJobError(error) from exc
    _set_outbox(ctx, outbox_id, status="sent", sent_at=utcnow(), error="")
    ctx.progress(100, "sent")
    return {"outbox_id": outbox_id}


def backup(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Write a backup archive, then delete the oldest beyond ``backup_keep``."""
    from ainfluencer.services.backup import create_backup, prune_backups

    path = create_backup(ctx.runtime, progress=ctx.progress, include_media=bool(payload.get("include_media")))
    pruned = prune_backups(ctx.runtime, ctx.runtime.settings.backup_keep)
    return {"path": str(path), "size": path.stat().st_size, "pruned": [p.name for p in pruned]}


HANDLERS: dict[str, Handler] = {"selftest": selftest, "mail.send": mail_send, "backup": backup}
