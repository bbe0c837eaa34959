"""The scheduler: one active leader reaps stalled jobs, enqueues periodic work and re-dispatches.

Leadership is a lock that dies with its holder, so a crashed leader never blocks a standby:

- PostgreSQL: a session-level ``pg_try_advisory_lock`` held by one dedicated connection. If that
  connection breaks, the lock is gone and this instance is a standby again.
- SQLite: a non-blocking ``flock`` on ``<data_dir>/scheduler.lock`` (one machine by definition).

Every instance ticks; a standby only tries to become leader and writes its heartbeat.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import Connection, or_, select, text

from ainfluencer.db.models import AppSetting, Job, JobStatus, utcnow
from ainfluencer.jobs.embedded import write_heartbeat
from ainfluencer.jobs.queue import enqueue
from ainfluencer.jobs.runner import reap_expired
from ainfluencer.runtime import Runtime, instance_name

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# "AINFSCHD" as a signed 64-bit advisory-lock key, fixed forever so every version agrees.
ADVISORY_LOCK_KEY = int.from_bytes(b"AINFSCHD", "big", signed=True)
BACKUP_SLOT_KEY = "scheduler.backup.last_slot"
REDISPATCH_AFTER = timedelta(seconds=60)
REDISPATCH_BATCH = 500


def server_zone() -> tzinfo:
    """The zone cron expressions are read in: ``$TZ`` when it names a zone, else the system offset."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("TZ=%r is not a known time zone; using the system offset", name)
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


class _PostgresLock:
    """Holds the advisory lock on a connection of its own."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.conn: Connection | None = None

    def acquire(self) -> bool:
        """Keep or take the lock; False while another session holds it."""
        if self.conn is not None:
            try:
                held = self.conn.scalar(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND pid = pg_backend_pid() AND objsubid = 1"
                        " AND ((classid::bigint << 32) | objid::bigint) = (:key)::bigint)"
                    ),
                    {"key": ADVISORY_LOCK_KEY},
                )
                if held:
                    return True
            except Exception as exc:
                log.warning("scheduler: lost the leadership connection (%s)", exc.__class__.__name__)
            self.release()
        try:
            conn = self.runtime.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except Exception:
            log.exception("scheduler: cannot connect to try for leadership")
            return False
        try:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}))
        except Exception:
            log.exception("scheduler: trying the leadership lock failed")
            got = False
        if got:
            self.conn = conn
        else:
            conn.close()
        return got

    def release(self) -> None:
        """Drop the lock by closing its session."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            # Closing returns the connection to the pool, which would keep a session lock alive.
            conn.invalidate()
        except Exception:
            log.debug("scheduler: closing the lock connection failed", exc_info=True)
        finally:
            conn.close()


class _FileLock:
    """A non-blocking flock on a file in the data directory."""

    def __init__(self, runtime: Runtime) -> None:
        self.path = runtime.settings.resolved_data_dir / "scheduler.lock"
        self.fh: IO[str] | None = None

    def acquire(self) -> bool:
        """Keep or take the lock; False while another process holds it."""
        if self.fh is not None:
            return True
        if fcntl is None:  # pragma: no cover - no flock: single-process platforms only
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self.fh = fh
        return True

    def release(self) -> None:
        """Unlock and close the lock file."""
        fh, self.fh = self.fh, None
        if fh is not None:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()


class Scheduler:
    """Elects itself leader when it can; the leader's ``tick`` does the periodic work."""

    def __init__(
        self,
        runtime: Runtime,
        instance: str | None = None,
        *,
        now: Callable[[], datetime] = utcnow,
        tz: tzinfo | None = None,
        dispatcher: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.instance = (instance or instance_name("scheduler"))[:128]
        self.now = now
        # Cron fields are read in the server's zone unless told otherwise.
        self.tz = tz
        self._dispatcher = dispatcher
        self._lock: _PostgresLock | _FileLock = (
            _FileLock(runtime) if runtime.db.is_sqlite else _PostgresLock(runtime)
        )
        self.is_leader = False

    # ---- leadership -----------------------------------------------------------------------
    def try_lead(self) -> bool:
        """Become (or stay) leader if the lock is free; returns whether this instance leads."""
        was = self.is_leader
        self.is_leader = self._lock.acquire()
        if self.is_leader != was:
            log.info("scheduler %s is %s", self.instance, "the leader" if self.is_leader else "a standby")
        return self.is_leader

    def close(self) -> None:
        """Give up leadership (a standby takes over on its next tick)."""
        self._lock.release()
        self.is_leader = False

    # ---- work ------------------------------------------------------------------------------
    def tick(self) -> dict[str, Any]:
        """One round: try for leadership, do the leader's work, write the heartbeat."""
        summary: dict[str, Any] = {"leader": self.try_lead()}
        if self.is_leader:
            for name, step in (("reaped", self._reap), ("stuck_publications", self._recover_publications),
                               ("publication_jobs", self._watch_publications),
                               ("backup", self._periodic_backup), ("automation", self._automation),
                               ("redispatched", self._redispatch)):
                try:
                    summary[name] = step()
                except Exception:
                    log.exception("scheduler: %s step failed", name)
        try:
            write_heartbeat(
                self.runtime.db, component="scheduler", instance=self.instance,
                detail={"leader": self.is_leader},
            )
        except Exception:
            log.exception("scheduler: heartbeat failed")
        return summary

    def run_forever(self, stop_event: threading.Event) -> None:
        """Tick every ``scheduler_interval_seconds`` until ``stop_event`` is set."""
        interval = self.runtime.settings.scheduler_interval_seconds
        log.info("scheduler %s running every %ss", self.instance, interval)
        try:
            while not stop_event.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("scheduler tick failed")
                stop_event.wait(interval)
        finally:
            self.close()

    def _reap(self) -> int:
        return reap_expired(self.runtime)

    def _recover_publications(self) -> int:
        """Publications left in ``sending`` by a job that ran out of attempts become ``unknown`` (reconciled)."""
        from ainfluencer.services.publishing import recover_stuck

        return recover_stuck(self.runtime)

    def _watch_publications(self) -> dict[str, int]:
        """Every waiting publication has a live job, or a person is told why not (see ensure_live_jobs)."""
        from ainfluencer.services.publishing import ensure_live_jobs

        return ensure_live_jobs(self.runtime)

    def _automation(self) -> dict[str, Any]:
        """Fire due automation rules (each slot at most once; see services.automation.tick)."""
        from ainfluencer.services.automation import tick

        return tick(self.runtime, self.now())

    def _periodic_backup(self) -> str | None:
        """Enqueue the backup for the latest cron slot not yet fired; never one from before first start."""
        now = self.now()
        local_now = now.astimezone(self.tz or server_zone())
        with self.runtime.db.session() as s:
            state = s.get(AppSetting, BACKUP_SLOT_KEY)
            if state is None or not state.value.get("slot"):
                # First run: start counting from now, so a fresh install does not fire a past slot.
                if state is None:
                    s.add(AppSetting(key=BACKUP_SLOT_KEY, value={"slot": now.astimezone(UTC).isoformat()}))
                else:
                    state.value = {"slot": now.astimezone(UTC).isoformat()}
                return None
            last = datetime.fromisoformat(state.value["slot"])
            it = croniter(self.runtime.settings.backup_cron, last.astimezone(local_now.tzinfo))
            slot: datetime | None = None
            nxt = it.get_next(datetime)
            while nxt <= local_now:  # several missed slots (downtime) make one backup, not many
                slot = nxt
                nxt = it.get_next(datetime)
            if slot is None:
                return None
            slot_utc = slot.astimezone(UTC)
            key = f"backup:{slot_utc.isoformat()}"
            enqueue(s, "backup", {}, idempotency_key=key, max_attempts=3)
            state.value = {"slot": slot_utc.isoformat()}
            log.info("scheduler: enqueued the backup for %s", slot_utc.isoformat())
            return key

    def _redispatch(self) -> int:
        """Celery mode: send due queued jobs whose message is missing or long overdue."""
        dispatcher = self._get_dispatcher()
        if dispatcher is None:
            return 0
        now = utcnow()
        with self.runtime.db.session() as s:
            ids = list(
                s.scalars(
                    select(Job.id)
                    .where(
                        Job.status == JobStatus.queued,
                        Job.run_at <= now,
                        or_(Job.dispatched_at.is_(None), Job.dispatched_at < now - REDISPATCH_AFTER),
                    )
                    .order_by(Job.run_at, Job.id)
                    .limit(REDISPATCH_BATCH)
                )
            )
        if ids:
            log.info("scheduler: re-dispatching %s job(s)", len(ids))
            dispatcher(ids)
        return len(ids)

    def _get_dispatcher(self) -> Callable[[list[int]], None] | None:
        if self._dispatcher is None and self.runtime.settings.effective_executor == "celery":
            from ainfluencer.jobs.celery_app import CeleryDispatcher, make_celery

            self._dispatcher = CeleryDispatcher(make_celery(self.runtime.settings), self.runtime.db)
        return self._dispatcher
