"""Logging: text or JSON lines, with secrets redacted wherever they slip into a message.

Redaction happens where every record is born (``Logger.makeRecord``), not in one
handler's filter: records of third-party loggers (httpx, httpcore, urllib3, telegram, tweepy...)
reach every handler — ours, pytest's ``caplog``, a handler a library adds — already cleaned. The
handler filter stays as a second line for records built by hand (``logging.makeLogRecord``).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"ainf_[A-Za-z0-9_\-]{20,}"), "ainf_***"),  # our API tokens
    # Telegram puts the bot token in the URL path: https://api.telegram.org/bot<id>:<secret>/sendMessage
    (re.compile(r"(/(?:file/)?bot)\d+:[A-Za-z0-9_\-]+"), r"\1***"),
    (re.compile(r"\b\d{5,}:[A-Za-z0-9_\-]{30,}\b"), "***"),  # a bare bot token
    # Authorization / Proxy-Authorization headers in any spelling (dict repr, header lines, tuples of bytes)
    (re.compile(r"(?i)((?:proxy-)?authorization[\"']?\s*[:=,]\s*b?[\"']?)(?:(?:bearer|basic|token|oauth|bot)\s+)?"
                r"[^\s\"',)}\]]+"), r"\1***"),
    (re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{8,}"), r"\1***"),
    # query values and key=value pairs: access_token=, refresh_token=, key=, token=, client_secret=...
    (re.compile(r"(?i)((?:[?&;]|\b)(?:access_token|refresh_token|id_token|client_secret|api_key|apikey|key|token|"
                r"password|passwd|secret|signature|sig|code_verifier|app_password)[\"']?\s*[=:]\s*[\"']?)"
                r"[^\s\"'&,;)}\]]+"), r"\1***"),
    (re.compile(r"(://[^:/\s]+:)[^@/\s]+(@)"), r"\1***\2"),  # credentials in URLs
]

# Values the secrets service has sealed or opened in this process: masked wherever they appear,
# whatever shape the message around them has. Shorter values than this are too likely to be words.
_MIN_KNOWN_SECRET = 6
_known_lock = threading.Lock()
_known_secrets: set[str] = set()
_known_regex: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every later log record (the secrets service calls this on put and get)."""
    global _known_regex
    if not value or len(value) < _MIN_KNOWN_SECRET:
        return
    with _known_lock:
        if value in _known_secrets:
            return
        _known_secrets.add(value)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_known_secrets, key=len, reverse=True)
        _known_regex = re.compile("|".join(re.escape(v) for v in ordered))


def known_secrets() -> frozenset[str]:
    """The values registered with :func:`register_secret` (tests assert none reaches a log)."""
    with _known_lock:
        return frozenset(_known_secrets)


def redact(text: str) -> str:
    """Mask tokens, passwords, URL credentials and every registered secret in a string."""
    known = _known_regex
    if known is not None:
        text = known.sub("***", text)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# A record carrying this attribute is a deliberate delivery (console e-mail) and is left whole.
UNREDACTED = "ainf_unredacted"


def _redact_record(record: logging.LogRecord) -> None:
    if getattr(record, UNREDACTED, False) or getattr(record, "_ainf_redacted", False):
        return
    record._ainf_redacted = True  # type: ignore[attr-defined]
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not lose the record  # noqa: BLE001
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        # Exception text (an httpx error quoting its URL) is formatted here once, cleaned, and cached
        # on the record where every Formatter looks first.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """Applies :func:`redact` to every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's message; never drops it."""
        _redact_record(record)
        return True


_original_make_record = logging.Logger.makeRecord


def _redacting_make_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _original_make_record(self, *args, **kwargs)
    _redact_record(record)  # after ``extra`` was applied, so UNREDACTED is honoured
    return record


def install_record_redaction() -> None:
    """Make every LogRecord a logger creates in this process redact itself (idempotent)."""
    logging.Logger.makeRecord = _redacting_make_record  # type: ignore[method-assign]


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once for the process."""
    install_record_redaction()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "alembic.runtime.plugins", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# Importing the package installs the record factory (see ainfluencer/__init__.py), so redaction
# holds even where configure_logging is never called: tests, a library user, a Celery worker.
install_record_redaction()
