"""The Celery executor: Redis carries job ids, the ``jobs`` table stays the truth.

A message only says "job N may be due". The worker claims the row with the same conditional
UPDATE the embedded executor uses, so duplicate or stale deliveries do nothing, and a message
that never arrives is replaced by the scheduler's re-dispatch of due rows (``Job.dispatched_at``).

``celery -A ainfluencer.jobs.celery_app worker`` works too: the module exposes ``app`` built from
the environment on first access.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from functools import lru_cache
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import select, update

from ainfluencer.config import Settings, get_settings
from ainfluencer.db.engine import Database
from ainfluencer.db.models import Job, JobStatus, utcnow
from ainfluencer.jobs.embedded import HEARTBEAT_SECONDS, clear_heartbeat, write_heartbeat
from ainfluencer.jobs.runner import claim, execute
from ainfluencer.runtime import Runtime, instance_name

log = logging.getLogger(__name__)

TASK_NAME = "ainfluencer.run_job"
QUEUE = "ainfluencer"
# A message for a future run_at is sent with a countdown; this margin keeps it from arriving a hair
# before the row is due (claim would then ignore it and the job would wait for re-dispatch).
COUNTDOWN_MARGIN = 0.05

_runtime_lock = threading.Lock()
_runtime: Runtime | None = None
_worker_settings: Settings | None = None


def worker_runtime() -> Runtime:
    """The runtime of this worker process, built once (from ``run_worker``'s settings or the env)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime.build(_worker_settings or get_settings())
        return _runtime


def make_celery(settings: Settings) -> Celery:
    """A Celery app on ``settings.redis_url`` with the ``ainfluencer.run_job`` task registered."""
    if not settings.redis_url:
        raise ValueError("the Celery executor needs AINF_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    app = Celery("ainfluencer", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        timezone="UTC",
        worker_hijack_root_logger=False,
        worker_concurrency=settings.worker_concurrency,
        # A web request that enqueues must not hang on a dead broker: the scheduler re-dispatches.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        broker_connection_timeout=4,
    )

    @app.task(name=TASK_NAME, bind=True, ignore_result=True)
    def run_job(task: Any, job_id: int) -> str:
        return _run_job(task.app, int(job_id))

    return app


def _run_job(app: Celery, job_id: int) -> str:
    runtime = worker_runtime()
    worker = f"{instance_name('worker')}/{threading.current_thread().name}"[:128]
    if not claim(runtime, job_id, worker=worker):
        return "skipped"  # not due, already taken, finished or cancelled: the row decides
    status = execute(runtime, job_id, worker=worker)
    if status == JobStatus.queued:  # a retry: deliver it again when its backoff ends
        CeleryDispatcher(app, runtime.db)([job_id])
    return status.value


class CeleryDispatcher:
    """Sends ``run_job`` for committed jobs and records ``dispatched_at`` (register with ``add_dispatcher``)."""

    def __init__(self, app: Celery, db: Database | None = None) -> None:
        self.app = app
        self.db = db

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CeleryDispatcher) and other.app is self.app and other.db is self.db

    def __hash__(self) -> int:
        return hash((id(self.app), id(self.db)))

    def __call__(self, ids: list[int]) -> None:
        """Send one message per queued job; a future ``run_at`` becomes the message's countdown."""
        if not ids:
            return
        db = self.db or worker_runtime().db
        now = utcnow()
        with db.session() as s:
            rows = s.execute(
                select(Job.id, Job.run_at).where(Job.id.in_(list(ids)), Job.status == JobStatus.queued)
            ).all()
        sent: list[tuple[int, Any]] = []
        for job_id, run_at in rows:
            delay = (run_at - now).total_seconds()
            options: dict[str, Any] = {"countdown": delay + COUNTDOWN_MARGIN} if delay > 0 else {}
            self.app.send_task(TASK_NAME, args=[job_id], queue=QUEUE, **options)
            # dispatched_at is when the message should arrive; re-dispatch counts from there.
            sent.append((job_id, max(now, run_at)))
        if sent:
            with db.session() as s:
                for job_id, at in sent:
                    s.execute(
                        update(Job)
                        .where(Job.id == job_id, Job.status == JobStatus.queued)
                        .values(dispatched_at=at)
                    )


# ---- worker liveness --------------------------------------------------------------------

_beat_stop = threading.Event()
_beat_thread: threading.Thread | None = None


def _beat_loop(concurrency: int) -> None:
    runtime = worker_runtime()
    name = instance_name("worker")
    while True:
        try:
            write_heartbeat(
                runtime.db, component="worker", instance=name,
                detail={"executor": "celery", "concurrency": concurrency},
            )
        except Exception:
            log.exception("celery worker heartbeat failed")
        if _beat_stop.wait(HEARTBEAT_SECONDS):
            break
    try:
        clear_heartbeat(runtime.db, component="worker", instance=name)
    except Exception:
        log.exception("could not clear the worker heartbeat")


@worker_ready.connect(weak=False, dispatch_uid="ainfluencer-worker-ready")
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    global _beat_thread
    if _beat_thread is not None and _beat_thread.is_alive():
        return
    controller = getattr(sender, "controller", None)
    concurrency = int(getattr(controller, "concurrency", 0) or worker_runtime().settings.worker_concurrency)
    _beat_stop.clear()
    _beat_thread = threading.Thread(target=_beat_loop, args=(concurrency,), name="ainf-celery-heartbeat", daemon=True)
    _beat_thread.start()


@worker_shutdown.connect(weak=False, dispatch_uid="ainfluencer-worker-shutdown")
def _on_worker_shutdown(**_: Any) -> None:
    _beat_stop.set()
    if _beat_thread is not None:
        _beat_thread.join(timeout=5)


def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    """Run a Celery worker in this process (thread pool) until it is stopped."""
    global _worker_settings
    _worker_settings = settings
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker_runtime()  # fail fast on a bad configuration, before connecting to the broker
    n = concurrency or settings.worker_concurrency
    app = make_celery(settings)
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            "-c", str(n),
            "--without-gossip",
            "--without-mingle",
            "-Q", QUEUE,
            "-n", f"ainfluencer-{os.getpid()}@{socket.gethostname()}",
            "--loglevel", settings.log_level,
        ]
    )


@lru_cache(maxsize=1)
def default_app() -> Celery:
    """The app built from the process settings (for ``celery -A ainfluencer.jobs.celery_app``)."""
    return make_celery(get_settings())


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        return default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
