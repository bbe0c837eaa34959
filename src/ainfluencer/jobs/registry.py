"""Job handlers by kind, and the context a handler runs with."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ainfluencer.jobs.errors import JobCancelled, LeaseLost

if TYPE_CHECKING:
    from ainfluencer.runtime import Runtime

Handler = Callable[["JobContext", dict[str, Any]], dict[str, Any] | None]
_handlers: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register a function as the handler of a job kind."""

    def register(fn: Handler) -> Handler:
        _handlers[kind] = fn
        return fn

    return register


def get_handler(kind: str) -> Handler | None:
    """The handler for a kind (loading the built-in handlers first)."""
    import ainfluencer.jobs.handlers  # noqa: F401 - registers built-ins

    return _handlers.get(kind)


def known_kinds() -> list[str]:
    """All registered kinds."""
    import ainfluencer.jobs.handlers  # noqa: F401

    return sorted(_handlers)


@dataclass
class JobContext:
    """What a running handler sees: its job, the runtime, and a way to report progress."""

    runtime: Runtime
    job_id: int
    attempt: int
    worker: str
    report: Callable[[int, str], None] = field(repr=False)
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    lease_lost: threading.Event = field(default_factory=threading.Event, repr=False)

    def check(self) -> None:
        """Stop here if the job was cancelled or taken away from this worker."""
        if self.lease_lost.is_set():
            raise LeaseLost(f"job {self.job_id} lease lost")
        if self.cancelled.is_set():
            raise JobCancelled(f"job {self.job_id} cancelled")

    def progress(self, percent: int, message: str = "") -> None:
        """Report progress (0-100) and a short message; also a cancellation point."""
        self.check()
        self.report(max(0, min(100, int(percent))), message[:255])
