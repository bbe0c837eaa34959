"""Logging: text or JSON lines, with secrets redacted wherever they slip into a message."""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"ainf_[A-Za-z0-9_\-]{20,}"), "ainf_***"),  # our API tokens
    (re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"), r"\1***"),
    (re.compile(r"(?i)((?:password|passwd|secret|token|api_key|apikey)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,]+"), r"\1***"),
    (re.compile(r"(://[^:/\s]+:)[^@/\s]+(@)"), r"\1***\2"),  # credentials in URLs
]


def redact(text: str) -> str:
    """Mask tokens, passwords and URL credentials in a string."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# A record carrying this attribute is a deliberate delivery (console e-mail) and is left whole.
UNREDACTED = "ainf_unredacted"


class RedactingFilter(logging.Filter):
    """Applies :func:`redact` to every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's message; never drops it."""
        if getattr(record, UNREDACTED, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once for the process."""
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
