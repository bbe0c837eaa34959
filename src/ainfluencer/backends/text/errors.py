"""The text-backend exception hierarchy, written down once.

BackendError                     base; ``backend`` names who failed, the message is safe to show
├── BackendAuthError             401/403: the key is wrong or lacks access; reconnect needed
├── BackendTransientError        408/409/425/429/5xx, connect errors, timeouts, a stream cut off
│                                before its final event; retry with backoff, ``retry_after`` is a floor
├── BackendPermanentError        400/404/422 and other 4xx; retrying the same request will not help
│   ├── ModelMissing             the model is not on the server (Ollama: pull it first); ``model``
│   └── BackendProtocolError     a success status with a body we cannot parse (see below)
├── BackendUnavailable           not configured / disabled / missing dependency; skip it, do not retry
└── ChainExhausted               every backend of a fallback chain failed; ``attempts`` says how each one did

A malformed body on a success status is *permanent*: a server answering 200 with something that is
not its documented JSON (an HTML login page of a proxy, another API on that port) will answer the
same way on a retry, so the fallback chain moves on at once instead of waiting through backoff.
A body cut off mid-stream is a transport failure and stays *transient*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ainfluencer.jobs.errors import JobError, PermanentJobError, TransientJobError

MAX_RETRY_AFTER_S = 24 * 3600.0


class BackendError(Exception):
    """Base for every failure of a text backend."""

    kind = "error"

    def __init__(self, message: str, *, backend: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend
        self.status = status

    def as_job_error(self) -> JobError:
        """The job-runner outcome for this failure."""
        return PermanentJobError(str(self))

    def __str__(self) -> str:
        return f"{self.backend}: {self.message}" if self.backend else self.message


class BackendAuthError(BackendError):
    """The credentials were refused."""

    kind = "auth"


class BackendTransientError(BackendError):
    """Worth retrying later; ``retry_after`` (seconds) is a floor on the delay when the server gave one."""

    kind = "transient"

    def __init__(
        self, message: str, *, backend: str = "", status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, backend=backend, status=status)
        self.retry_after = retry_after

    def as_job_error(self) -> JobError:
        """The job-runner outcome for this failure."""
        return TransientJobError(str(self), retry_after=self.retry_after)


class BackendPermanentError(BackendError):
    """The request itself is wrong for this backend; retrying will not help."""

    kind = "permanent"


class ModelMissing(BackendPermanentError):
    """The requested model is not available on the server."""

    def __init__(self, model: str, *, backend: str = "", message: str | None = None) -> None:
        msg = message or f"model {model!r} is not available; pull or install it first"
        super().__init__(msg, backend=backend, status=404)
        self.model = model


class BackendProtocolError(BackendPermanentError):
    """The server answered with a body that is not the documented format."""


class BackendUnavailable(BackendError):
    """The backend cannot be used here at all (not configured, disabled, dependency missing)."""

    kind = "unavailable"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


class ChainExhausted(BackendError):
    """No backend of a chain answered; the message names each backend and why it failed."""

    kind = "unavailable"

    def __init__(self, attempts: Sequence[Any]) -> None:
        self.attempts = list(attempts)
        failed = [a for a in self.attempts if a.outcome != "ok"]
        seen: dict[str, str] = {}
        for a in failed:  # the last word of each backend (after its retries) is the one to show
            reason = "skipped: monthly usage cap reached" if a.outcome == "skipped_paid" else a.message
            seen[a.backend] = f"{a.backend}: {reason or a.outcome}"
        detail = "; ".join(seen.values()) or "no text backend is set up"
        super().__init__(f"No text model answered ({detail}).")
