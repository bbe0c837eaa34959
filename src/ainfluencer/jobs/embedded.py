"""The in-process executor: a few threads that claim and run due jobs (``ainfluencer up``).

Each thread polls the ``jobs`` table once a second and is woken early when this process commits
a new job (``queue.add_dispatcher``). A wake-up that gets lost only costs up to one poll interval.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy.exc import IntegrityError

from ainfluencer.db.engine import Database
from ainfluencer.db.models import Heartbeat, utcnow
from ainfluencer.jobs import queue
from ainfluencer.jobs.retry import DEFAULT_POLICY, RetryPolicy
from ainfluencer.jobs.runner import claim_next, execute
from ainfluencer.runtime import Runtime, instance_name

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


def write_heartbeat(db: Database, *, component: str, instance: str, detail: dict[str, Any]) -> None:
    """Insert or refresh the liveness row of one process (portable select-then-write upsert)."""
    for attempt in range(2):
        try:
            with db.session() as s:
                row = s.get(Heartbeat, (component, instance[:128]))
                if row is None:
                    s.add(Heartbeat(component=component, instance=instance[:128], beat_at=utcnow(), detail=detail))
                else:
                    row.beat_at = utcnow()
                    row.detail = detail
            return
        except IntegrityError:
            if attempt:  # a concurrent first insert of the same key won; the update path will work now
                raise


def clear_heartbeat(db: Database, *, component: str, instance: str) -> None:
    """Remove a process's liveness row when it stops cleanly."""
    with db.session() as s:
        row = s.get(Heartbeat, (component, instance[:128]))
        if row is not None:
            s.delete(row)


class EmbeddedExecutor:
    """Bounded pool of daemon threads running jobs in this process."""

    def __init__(
        self,
        runtime: Runtime,
        worker_name: str | None = None,
        concurrency: int | None = None,
        *,
        poll_seconds: float = 1.0,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.runtime = runtime
        self.worker_name = (worker_name or instance_name("worker"))[:120]
        self.concurrency = max(1, concurrency or runtime.settings.worker_concurrency)
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.policy = policy
        self._stop = threading.Event()
        self._wakes = [threading.Event() for _ in range(self.concurrency)]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running = 0

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker threads and the heartbeat, and listen for newly committed jobs."""
        if self._threads:
            return
        self._stop.clear()
        for i, wake in enumerate(self._wakes):
            t = threading.Thread(
                target=self._work, args=(f"{self.worker_name}#{i}", wake), name=f"ainf-worker-{i}", daemon=True
            )
            self._threads.append(t)
        self._threads.append(threading.Thread(target=self._beat, name="ainf-worker-heartbeat", daemon=True))
        for t in self._threads:
            t.start()
        queue.add_dispatcher(self.notify)
        log.info("embedded executor %s started with %s thread(s)", self.worker_name, self.concurrency)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop taking jobs and wait up to ``timeout`` for running ones; True when all threads ended."""
        queue.remove_dispatcher(self.notify)
        self._stop.set()
        for wake in self._wakes:
            wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            # Their jobs keep their lease until it runs out; the reaper then re-queues them.
            log.warning("embedded executor: %s still running after %ss", ", ".join(alive), timeout)
        else:
            try:
                clear_heartbeat(self.runtime.db, component="worker", instance=self.worker_name)
            except Exception:
                log.exception("could not clear the worker heartbeat")
        self._threads = [t for t in self._threads if t.is_alive()]
        return not alive

    def notify(self, ids: list[int] | None = None) -> None:
        """Wake idle threads now (new jobs were committed)."""
        for wake in self._wakes:
            wake.set()

    @property
    def running(self) -> int:
        """How many jobs this executor is running right now."""
        return self._running

    # ---- threads ------------------------------------------------------------------------
    def _work(self, worker: str, wake: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                job_id = claim_next(self.runtime, worker=worker)
            except Exception:
                log.exception("embedded executor: claiming a job failed")
                job_id = None
            if job_id is None:
                wake.wait(self.poll_seconds)
                wake.clear()
                continue
            with self._lock:
                self._running += 1
            try:
                execute(self.runtime, job_id, worker=worker, policy=self.policy)
            except Exception:
                # Settling failed (database gone?): the lease runs out and the reaper re-queues it.
                log.exception("embedded executor: job %s could not be settled", job_id)
            finally:
                with self._lock:
                    self._running -= 1

    def _beat(self) -> None:
        while True:
            try:
                write_heartbeat(
                    self.runtime.db,
                    component="worker",
                    instance=self.worker_name,
                    detail={"executor": "embedded", "concurrency": self.concurrency, "running": self._running},
                )
            except Exception:
                log.exception("embedded executor: heartbeat failed")
            if self._stop.wait(self.heartbeat_seconds):
                return
