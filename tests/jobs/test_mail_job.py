"""The mail.send job against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from ainfluencer.db.models import Job, JobStatus, OutboxMessage, utcnow
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime
from ainfluencer.services.mail import queue_mail


class Sink:
    """Collects every message the server accepts."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def _with_smtp(rt: Runtime, port: int) -> Runtime:
    settings = rt.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"})
    return replace(rt, settings=settings)


def _outbox(rt: Runtime, outbox_id: int) -> OutboxMessage:
    with rt.db.session() as s:
        msg = s.get(OutboxMessage, outbox_id)
        assert msg is not None
        return msg


def test_mail_is_delivered(runtime: Runtime, smtp: tuple[Sink, int]) -> None:
    sink, port = smtp
    rt = _with_smtp(runtime, port)
    with rt.db.session() as s:
        msg = queue_mail(s, rt.settings, to="fan@example.com", subject="Verify", body="Click https://x/verify")
    assert runner.run_one(rt, worker="w") == JobStatus.succeeded
    out = _outbox(rt, msg.id)
    assert out.status == "sent" and out.sent_at is not None and out.error == ""
    assert len(sink.messages) == 1
    assert sink.messages[0].rcpt_tos == ["fan@example.com"]
    assert b"Click https://x/verify" in sink.messages[0].content
    # A duplicate run (e.g. after a crash before settling) does not send twice.
    with rt.db.session() as s:
        s.execute(update(Job).where(Job.kind == "mail.send").values(status=JobStatus.queued, run_at=utcnow()))
    assert runner.run_one(rt, worker="w") == JobStatus.succeeded
    assert len(sink.messages) == 1


def test_unreachable_server_retries_then_fails(runtime: Runtime, helpers: Any) -> None:
    rt = _with_smtp(runtime, _free_port())  # nothing listens there
    with rt.db.session() as s:
        msg = queue_mail(s, rt.settings, to="fan@example.com", subject="Hi", body="body")
    assert runner.run_one(rt, worker="w") == JobStatus.queued
    out = _outbox(rt, msg.id)
    assert out.status == "retrying" and "attempt 1" in out.error and "Connection" in out.error

    with rt.db.session() as s:  # last attempt
        s.execute(update(Job).where(Job.kind == "mail.send").values(run_at=utcnow(), max_attempts=2))
    assert runner.run_one(rt, worker="w") == JobStatus.failed
    out = _outbox(rt, msg.id)
    assert out.status == "failed" and "attempt 2" in out.error
