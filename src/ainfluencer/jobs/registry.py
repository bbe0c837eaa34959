"""Job handlers by kind, and the context a handler runs with.

Each feature lists the job kinds it runs in one mapping (``HANDLERS``, or ``JOB_HANDLERS`` in a
service module), and :data:`FEATURES` names those mappings explicitly: which code may run as a job
is written down here, not assembled from import side effects. Tests and plug-ins add kinds with
:func:`register` (or the :func:`handler` decorator).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ainfluencer.jobs.errors import JobCancelled, LeaseLost

if TYPE_CHECKING:
    from ainfluencer.runtime import Runtime

Handler = Callable[["JobContext", dict[str, Any]], dict[str, Any] | None]
_handlers: dict[str, Handler] = {}
_features_lock = threading.Lock()
_features_loaded = False

# "module:MAPPING" of every feature that runs jobs, one line each.
FEATURES: tuple[str, ...] = (
    "ainfluencer.jobs.handlers:HANDLERS",  # selftest, mail.send, backup
    "ainfluencer.jobs.publish:HANDLERS",  # publish, publish.reconcile, publish.check, webhook.deliver
    "ainfluencer.jobs.studio:HANDLERS",  # studio.generate_images, studio.voice, studio.video
    "ainfluencer.jobs.automation:HANDLERS",  # automation.run
    "ainfluencer.services.writing:JOB_HANDLERS",  # text_backend.pull_model
)


def register(kind: str, fn: Handler) -> None:
    """Register ``fn`` as the handler of ``kind`` (a second, different handler for a kind is refused)."""
    existing = _handlers.get(kind)
    if existing is not None and existing is not fn:
        raise ValueError(f"job kind {kind!r} already has a handler ({existing.__module__}.{existing.__name__})")
    _handlers[kind] = fn


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Decorator form of :func:`register` (tests and plug-ins; features list theirs in FEATURES)."""

    def wrap(fn: Handler) -> Handler:
        register(kind, fn)
        return fn

    return wrap


def register_features() -> None:
    """Register every feature's handlers (idempotent; the app, workers and the runner call it)."""
    global _features_loaded
    with _features_lock:
        if _features_loaded:
            return
        for target in FEATURES:
            module, _, name = target.partition(":")
            mapping: Mapping[str, Handler] = getattr(importlib.import_module(module), name)
            for kind, fn in mapping.items():
                register(kind, fn)
        _features_loaded = True


def get_handler(kind: str) -> Handler | None:
    """The handler for a kind."""
    register_features()
    return _handlers.get(kind)


def known_kinds() -> list[str]:
    """All registered kinds."""
    register_features()
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
