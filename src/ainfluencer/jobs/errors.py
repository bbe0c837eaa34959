"""How a job handler says what kind of failure happened.

JobError
├── TransientJobError   retry with backoff (``retry_after`` is a floor on the delay)
├── PermanentJobError   stop now, keep the message for the person
├── JobCancelled        someone cancelled the job while it ran
└── LeaseLost           the reaper gave the job to another worker; drop our result

Any other exception counts as transient.
"""

from __future__ import annotations


class JobError(Exception):
    """Base for job outcomes a handler can signal."""


class TransientJobError(JobError):
    """Worth retrying later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentJobError(JobError):
    """Retrying will not help."""


class JobCancelled(JobError):
    """The job was cancelled while running."""


class LeaseLost(JobError):
    """The worker no longer owns the job."""
