"""Scheduler: leader election, cron slots fired exactly once, the reaper and re-dispatch."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from ainfluencer.db.models import AppSetting, Heartbeat, Job, JobStatus, utcnow
from ainfluencer.jobs import runner
from ainfluencer.jobs.scheduler import BACKUP_SLOT_KEY, Scheduler
from ainfluencer.runtime import Runtime


class Clock:
    """A hand-driven clock."""

    def __init__(self, start: datetime) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value


def _backup_jobs(rt: Runtime) -> list[Job]:
    with rt.db.session() as s:
        return list(s.scalars(select(Job).where(Job.kind == "backup").order_by(Job.id)))


def _beat(rt: Runtime, instance: str) -> Heartbeat | None:
    with rt.db.session() as s:
        return s.get(Heartbeat, ("scheduler", instance))


def test_only_one_leader_and_standby_takes_over(runtime: Runtime) -> None:
    first, second = Scheduler(runtime, "sched-a"), Scheduler(runtime, "sched-b")
    try:
        assert first.tick()["leader"] is True
        assert second.tick()["leader"] is False
        assert first.tick()["leader"] is True, "the leader keeps its lock across ticks"
        assert second.tick()["leader"] is False, "the standby keeps trying, and keeps failing"
        assert _beat(runtime, "sched-a").detail == {"leader": True}  # type: ignore[union-attr]
        assert _beat(runtime, "sched-b").detail == {"leader": False}  # type: ignore[union-attr]

        first.close()  # the leader goes away
        assert second.tick()["leader"] is True
        assert first.tick()["leader"] is False
    finally:
        first.close()
        second.close()


def test_sqlite_leadership_is_a_file_lock(runtime: Runtime) -> None:
    if not runtime.db.is_sqlite:
        pytest.skip("SQLite only")
    sched = Scheduler(runtime, "solo")
    try:
        assert sched.try_lead()
        assert Path(runtime.settings.resolved_data_dir / "scheduler.lock").exists()
    finally:
        sched.close()


def test_postgres_leader_loses_lock_when_its_connection_breaks(runtime: Runtime) -> None:
    if runtime.db.is_sqlite:
        pytest.skip("PostgreSQL only")
    first, second = Scheduler(runtime, "pg-a"), Scheduler(runtime, "pg-b")
    try:
        assert first.tick()["leader"] and not second.tick()["leader"]
        lock_conn = first._lock.conn  # type: ignore[union-attr]
        assert lock_conn is not None
        pid = lock_conn.scalar(text("SELECT pg_backend_pid()"))
        with runtime.db.engine.connect() as c:  # an admin kills the leader's session
            assert c.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        # The lock died with the session: the standby wins, the old leader notices and stands by.
        assert second.tick()["leader"] is True
        assert first.tick()["leader"] is False
        assert second.tick()["leader"] is True
    finally:
        first.close()
        second.close()


def test_backup_enqueued_exactly_once_per_slot(runtime: Runtime, helpers: Any) -> None:
    assert runtime.settings.backup_cron == "0 3 * * *"
    clock = Clock(datetime(2026, 11, 25, 2, 59, tzinfo=UTC))
    sched = Scheduler(runtime, "cron", now=clock, tz=UTC)
    try:
        sched.tick()
        assert _backup_jobs(runtime) == [], "first run starts from now"
        with runtime.db.session() as s:
            state = s.get(AppSetting, BACKUP_SLOT_KEY)
            assert state is not None and state.value["slot"] == "2026-11-25T02:59:00+00:00"

        clock.value = datetime(2026, 11, 25, 3, 0, 30, tzinfo=UTC)
        assert sched.tick()["backup"] == "backup:2026-11-25T03:00:00+00:00"
        clock.value += timedelta(minutes=5)
        assert sched.tick()["backup"] is None
        jobs = _backup_jobs(runtime)
        assert [j.idempotency_key for j in jobs] == ["backup:2026-11-25T03:00:00+00:00"]
    finally:
        sched.close()

    # A restarted (or newly elected) scheduler remembers the slot it fired.
    again = Scheduler(runtime, "cron-2", now=clock, tz=UTC)
    try:
        again.tick()
        assert len(_backup_jobs(runtime)) == 1
        # Down for three days: one backup for the latest missed slot, not three.
        clock.value = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
        assert again.tick()["backup"] == "backup:2026-11-28T03:00:00+00:00"
        assert len(_backup_jobs(runtime)) == 2
    finally:
        again.close()

    # The enqueued job really backs up.
    assert runner.run_one(runtime, worker="w") == JobStatus.succeeded
    result = helpers.job_row(runtime, _backup_jobs(runtime)[0].id).result
    assert Path(result["path"]).exists() and result["size"] > 0


def test_first_run_does_not_fire_a_past_slot(runtime: Runtime) -> None:
    clock = Clock(datetime(2026, 11, 25, 3, 0, 1, tzinfo=UTC))  # one second after a slot
    sched = Scheduler(runtime, "late", now=clock, tz=UTC)
    try:
        sched.tick()
        clock.value += timedelta(hours=12)
        sched.tick()
        assert _backup_jobs(runtime) == []
    finally:
        sched.close()


def test_standby_does_no_work(runtime: Runtime) -> None:
    clock = Clock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    leader, standby = Scheduler(runtime, "l", now=clock, tz=UTC), Scheduler(runtime, "s", now=clock, tz=UTC)
    try:
        leader.tick()
        clock.value = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
        assert standby.tick() == {"leader": False}
        assert _backup_jobs(runtime) == []
    finally:
        leader.close()
        standby.close()


def test_tick_runs_the_reaper(runtime: Runtime, helpers: Any) -> None:
    job_id = helpers.enqueue_job(runtime, "selftest", {"steps": 1, "step_seconds": 0})
    assert runner.claim(runtime, job_id, worker="dead-worker")
    with runtime.db.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1)))
    sched = Scheduler(runtime, "reaper")
    try:
        assert sched.tick()["reaped"] == 1
    finally:
        sched.close()
    assert helpers.status_of(runtime, job_id) == JobStatus.queued


def test_redispatch_sends_due_undispatched_jobs(runtime: Runtime, helpers: Any) -> None:
    sent: list[list[int]] = []
    due = helpers.enqueue_job(runtime, "selftest")
    later = helpers.enqueue_job(runtime, "selftest", run_at=utcnow() + timedelta(hours=1))
    recent = helpers.enqueue_job(runtime, "selftest")
    stale = helpers.enqueue_job(runtime, "selftest")
    with runtime.db.session() as s:
        s.execute(update(Job).where(Job.id == recent).values(dispatched_at=utcnow()))
        s.execute(update(Job).where(Job.id == stale).values(dispatched_at=utcnow() - timedelta(minutes=5)))
    sched = Scheduler(runtime, "redispatch", dispatcher=sent.append)
    try:
        assert sched.tick()["redispatched"] == 2
    finally:
        sched.close()
    assert sent == [[due, stale]]
    assert later not in sent[0]


def test_run_forever_stops_and_releases(runtime: Runtime, helpers: Any) -> None:
    stop = threading.Event()
    sched = Scheduler(runtime, "loop")
    t = threading.Thread(target=sched.run_forever, args=(stop,))
    t.start()
    helpers.wait_for(lambda: _beat(runtime, "loop"))
    stop.set()
    t.join(timeout=20)
    assert not t.is_alive()
    other = Scheduler(runtime, "next")
    try:
        assert other.try_lead(), "leadership is released on exit"
    finally:
        other.close()
