"""Verification and reset mail reach a real local SMTP server; failures retry; the outbox keeps all."""

from __future__ import annotations

import socket
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from ainfluencer.db.models import Job, JobStatus, OutboxMessage, User
from ainfluencer.jobs.runner import run_one
from ainfluencer.runtime import Runtime
from ainfluencer.services import auth
from ainfluencer.services.mail import queue_mail


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def smtp_runtime(runtime, smtp):
    controller, _ = smtp
    settings = runtime.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": controller.port, "smtp_security": "none"}
    )
    return Runtime(settings=settings, db=runtime.db, keyring=runtime.keyring, secret=runtime.secret)


def test_verification_and_reset_mail_over_smtp(smtp_runtime, smtp, make_user):
    _, inbox = smtp
    rt = smtp_runtime
    user = make_user("mail@example.com", verified=False)
    with rt.db.session() as s:
        token = auth.issue_link_token(s, secret=rt.secret, user=s.get(User, user.id), purpose="verify")
        queue_mail(s, rt.settings, to=user.email, subject="Verify your e-mail",
                   body=f"Open http://127.0.0.1:8000/verify-email?token={token}")
        reset = auth.issue_link_token(s, secret=rt.secret, user=s.get(User, user.id), purpose="reset")
        queue_mail(s, rt.settings, to=user.email, subject="Reset your password",
                   body=f"Open http://127.0.0.1:8000/reset-password?token={reset}")
    assert run_one(rt, worker="t") == JobStatus.succeeded
    assert run_one(rt, worker="t") == JobStatus.succeeded
    subjects = sorted(m["Subject"] for m in inbox.messages)
    assert subjects == ["Reset your password", "Verify your e-mail"]
    verify_mail = next(m for m in inbox.messages if m["Subject"] == "Verify your e-mail")
    assert verify_mail["To"] == "mail@example.com"
    link_token = verify_mail.get_payload(decode=True).decode().split("token=")[1].split()[0]
    with rt.db.session() as s:
        assert auth.verify_email(s, secret=rt.secret, token=link_token).email_verified_at is not None
        statuses = {m.subject: m.status for m in s.scalars(select(OutboxMessage))}
    assert statuses == {"Verify your e-mail": "sent", "Reset your password": "sent"}


def test_smtp_down_retries_and_keeps_the_message(runtime):
    port = _free_port()  # nothing listens here
    settings = runtime.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
    )
    rt = Runtime(settings=settings, db=runtime.db, keyring=runtime.keyring, secret=runtime.secret)
    with rt.db.session() as s:
        queue_mail(s, rt.settings, to="x@example.com", subject="Hello", body="body")
    assert run_one(rt, worker="t") == JobStatus.queued
    with rt.db.session() as s:
        job = s.scalar(select(Job))
        msg = s.scalar(select(OutboxMessage))
        assert job.attempts == 1 and job.last_error and job.run_at > job.created_at
        assert msg.status in ("retrying", "queued") and msg.error


def test_console_mail_goes_to_log_and_outbox(runtime, caplog):
    caplog.set_level("INFO")
    with runtime.db.session() as s:
        queue_mail(s, runtime.settings, to="x@example.com", subject="Hi", body="link http://x/verify?token=abc")
    assert "link http://x/verify?token=abc" in caplog.text
    with runtime.db.session() as s:
        msg = s.scalar(select(OutboxMessage))
        assert msg.transport == "console" and msg.status == "logged"
        assert s.scalar(select(Job)) is None


def test_console_mail_link_survives_log_redaction(runtime, capsys):
    import logging

    from ainfluencer.logging_setup import configure_logging

    configure_logging("INFO", "text")
    try:
        with runtime.db.session() as s:
            queue_mail(s, runtime.settings, to="x@example.com", subject="Verify",
                       body="Open http://127.0.0.1:8000/verify-email?token=abc.DEF-123")
        logging.getLogger("other").info("password=hunter2")
        err = capsys.readouterr().err
        assert "verify-email?token=abc.DEF-123" in err
        assert "hunter2" not in err
    finally:
        logging.getLogger().handlers.clear()
