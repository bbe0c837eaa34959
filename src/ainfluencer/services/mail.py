"""Outgoing e-mail: always kept in the outbox table and logged; sent over SMTP when configured."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy.orm import Session

from ainfluencer.config import Settings
from ainfluencer.db.models import OutboxMessage, utcnow
from ainfluencer.jobs.queue import enqueue
from ainfluencer.logging_setup import UNREDACTED

log = logging.getLogger(__name__)


def queue_mail(session: Session, settings: Settings, *, to: str, subject: str, body: str) -> OutboxMessage:
    """Store a message in the outbox and, with SMTP configured, queue its delivery job."""
    msg = OutboxMessage(
        to_addr=to, subject=subject, body=body, transport="smtp" if settings.smtp_enabled else "console"
    )
    session.add(msg)
    session.flush()
    if settings.smtp_enabled:
        enqueue(session, "mail.send", {"outbox_id": msg.id}, idempotency_key=f"mail:{msg.id}", max_attempts=8)
    else:
        msg.status = "logged"
        msg.sent_at = utcnow()
        # The embedded setup's delivery is the console, so the link must survive log redaction.
        log.info("mail to=%s subject=%r\n%s", to, subject, body, extra={UNREDACTED: True})
    return msg


def send_smtp(settings: Settings, *, to: str, subject: str, body: str) -> None:
    """Deliver one message over SMTP (raises on failure so the job retries)."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="ainfluencer.local")
    message.set_content(body)
    timeout = 30
    if settings.smtp_security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)
