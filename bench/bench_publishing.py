"""Publishing: dispatch rate and lateness on SQLite with the embedded worker, and a kill-loop soak.

Every publication goes to FakeNet (tests/publishing/fake_network.py) running in its own process,
whose own log is what duplicates and losses are counted against.

- ``dispatch_per_s_sqlite``: N publications due at once, embedded executor (the ``ainfluencer up``
  default of 4 threads) drains them; publications per second from start to the last one published.
- ``dispatch_p99_late_ms``: a paced run at half that rate; p99 of published_at - scheduled_at.
- ``soak_duplicates`` / ``soak_lost``: worker processes SIGKILLed at random moments while they
  publish, re-started after each kill (lease expired, reaper, recovery) until every publication is
  settled; then FakeNet's log is compared with the publications.
- ``dispatch_per_s_postgres`` (optional, when PostgreSQL and Redis answer): the same as the first
  line with Celery workers on PostgreSQL + Redis.

Sizes: BENCH_PUBLISH_N (default 10000), BENCH_SOAK_N (default 1000); a name carries the count when it
differs from the default (e.g. ``dispatch_per_s_sqlite_n2000``).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from bench.harness import emit

ROOT = Path(__file__).resolve().parents[1]
FAKES = ROOT / "tests" / "publishing"
sys.path.insert(0, str(FAKES))

import fake_network  # noqa: E402

from ainfluencer.config import Settings  # noqa: E402
from ainfluencer.db import migrate  # noqa: E402
from ainfluencer.db.models import Character, Job, JobStatus, User, utcnow  # noqa: E402
from ainfluencer.db.models_publishing import Publication, PublicationStatus  # noqa: E402
from ainfluencer.runtime import Runtime  # noqa: E402

N_DISPATCH = int(os.environ.get("BENCH_PUBLISH_N", "10000"))
N_SOAK = int(os.environ.get("BENCH_SOAK_N", "1000"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
S = PublicationStatus
SETTLED = (S.published, S.failed, S.cancelled)

SOAK_WORKER = """
import sys
sys.path.insert(0, sys.argv[3])
import threading
from datetime import timedelta
from pathlib import Path
from ainfluencer.config import Settings
from ainfluencer.jobs.embedded import EmbeddedExecutor
from ainfluencer.jobs.retry import RetryPolicy
from ainfluencer.runtime import Runtime
from ainfluencer.services import publishing

publishing.RECONCILE_DELAY = timedelta(0)
publishing.BACKOFF = RetryPolicy(base_seconds=0.2, max_seconds=1.0)
settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2], redis_url="", executor="embedded",
                    log_level="ERROR", extra_platforms=["fakenet"])
rt = Runtime.build(settings.model_copy(update={"job_lease_seconds": 3}))
EmbeddedExecutor(rt, "soak-worker", 4, poll_seconds=0.1,
                 policy=RetryPolicy(base_seconds=0.2, max_seconds=1.0)).start()
threading.Event().wait()
"""

CELERY_WORKER = """
import sys
sys.path.insert(0, sys.argv[1])
from ainfluencer.config import Settings
from ainfluencer.jobs.celery_app import run_worker

settings = Settings(data_dir=sys.argv[2], database_url=sys.argv[3], redis_url=sys.argv[4], executor="celery",
                    log_level="ERROR", extra_platforms=["fakenet"])
run_worker(settings, concurrency=int(sys.argv[5]))
"""


@contextlib.contextmanager
def fakenet(latency: float = 0.0) -> Iterator[str]:
    """FakeNet in its own process; yields its URL."""
    proc = subprocess.Popen([sys.executable, str(FAKES / "fake_network.py"), "--latency", str(latency)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        if not url.startswith("http://"):
            raise RuntimeError("FakeNet did not start")
        yield url
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def markers(url: str) -> dict[str, int]:
    """FakeNet's own count of posts per marker."""
    result: dict[str, int] = httpx.get(url + "/_fake/markers", timeout=30).json()["markers"]
    return result


def build_runtime(data_dir: Path, database_url: str = "", **overrides: Any) -> Runtime:
    settings = Settings(data_dir=data_dir, database_url=database_url, redis_url="", executor="embedded",
                        log_level="WARNING", extra_platforms=["fakenet"])
    rt = Runtime.build(settings.model_copy(update=overrides) if overrides else settings)
    migrate.upgrade(rt.db)
    return rt


def setup_account(rt: Runtime, url: str) -> tuple[int, int]:
    """An owner, a character and a connected FakeNet account; returns (user id, account id)."""
    from ainfluencer.services import accounts, auth

    with rt.db.session() as s:
        user = auth.create_user(s, email="bench@example.com", password="benchmark password", owner=True,
                                verified=True)
        character = Character(user_id=user.id, name="Bench", handle="bench")
        s.add(character)
        s.flush()
        user_id, character_id = user.id, character.id
    creds = accounts.credentials_from_input(access_token=fake_network.TOKEN, extra={"base_url": url})
    with rt.db.session() as s:
        u = s.get(User, user_id)
        assert u is not None
        account = accounts.connect_account(s, runtime=rt, user=u, character_id=character_id, platform="fakenet",
                                           credentials=creds)
        return user_id, account.id


def create(rt: Runtime, user_id: int, account_id: int, times: list[datetime | None], tag: str) -> float:
    """Create publications through the service in batches; returns seconds per publication."""
    from ainfluencer.services import publishing

    t0 = time.perf_counter()
    for start in range(0, len(times), 250):
        with rt.db.session() as s:
            user = s.get(User, user_id)
            assert user is not None
            for i, at in enumerate(times[start:start + 250], start):
                spec = publishing.PostSpec(targets=[publishing.TargetSpec(account_id=account_id)],
                                           text=f"{tag} post {i}", scheduled_at=at)
                publishing.create_publications(s, runtime=rt, user=user, spec=spec)
    return (time.perf_counter() - t0) / max(1, len(times))


def count(rt: Runtime, statuses: tuple[PublicationStatus, ...]) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(Publication).where(Publication.status.in_(statuses))) or 0


def wait_settled(rt: Runtime, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while count(rt, SETTLED) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count(rt, SETTLED)} of {total} publications settled in {timeout:.0f}s")
        time.sleep(0.1)


def suffix(n: int, default: int) -> str:
    return "" if n == default else f"_n{n}"


def bench_dispatch_sqlite(url: str) -> float:
    """Drain N due publications with the embedded executor; emits rate and paced p99 lateness."""
    from ainfluencer.jobs.embedded import EmbeddedExecutor

    with tempfile.TemporaryDirectory(prefix="ainf-bench-pub-") as tmp:
        rt = build_runtime(Path(tmp))
        try:
            user_id, account_id = setup_account(rt, url)
            per_create = create(rt, user_id, account_id, [None] * N_DISPATCH, "burst")
            executor = EmbeddedExecutor(rt, "bench-worker")
            t0 = time.perf_counter()
            executor.start()
            try:
                wait_settled(rt, N_DISPATCH, timeout=3600)
                elapsed = time.perf_counter() - t0
            finally:
                executor.stop(timeout=30)
            published = count(rt, (S.published,))
            if published != N_DISPATCH:
                raise RuntimeError(f"{N_DISPATCH - published} publications did not publish")
            rate = N_DISPATCH / elapsed
            emit(f"dispatch_per_s_sqlite{suffix(N_DISPATCH, 10000)}", rate, "pub/s")

            # Paced: arrivals at half the measured rate, all created before the worker starts.
            paced_n = min(2000, max(200, int(rate * 20)))
            gap = 1.0 / (rate * 0.5)
            start = utcnow() + timedelta(seconds=paced_n * per_create * 1.5 + 3)
            create(rt, user_id, account_id, [start + timedelta(seconds=i * gap) for i in range(paced_n)], "paced")
            executor = EmbeddedExecutor(rt, "bench-worker-2")
            executor.start()
            try:
                wait_settled(rt, N_DISPATCH + paced_n, timeout=paced_n * gap + 600)
            finally:
                executor.stop(timeout=30)
            with rt.db.session() as s:
                rows = s.execute(select(Publication.scheduled_at, Publication.published_at)
                                 .where(Publication.text.like("paced post %"))).all()
            late = sorted(max(0.0, (p - sch).total_seconds() * 1000) for sch, p in rows if p is not None)
            p99 = late[min(len(late) - 1, int(round(0.99 * (len(late) - 1))))]
            emit("dispatch_p99_late_ms", p99, "ms")
            print(f"# dispatch: {N_DISPATCH} burst in {elapsed:.1f}s; paced {paced_n} at {1 / gap:.0f}/s, "
                  f"p50 late {late[len(late) // 2]:.0f} ms", flush=True)
            return rate
        finally:
            rt.close()


def bench_soak(url: str) -> None:
    """Kill workers at random moments until N publications are settled; count duplicates and losses."""
    from ainfluencer.jobs import runner
    from ainfluencer.services import publishing

    with tempfile.TemporaryDirectory(prefix="ainf-bench-soak-") as tmp:
        rt = build_runtime(Path(tmp), job_lease_seconds=3)
        kills = 0
        try:
            user_id, account_id = setup_account(rt, url)
            create(rt, user_id, account_id, [None] * N_SOAK, "soak")
            env = {k: v for k, v in os.environ.items() if not k.startswith("AINF_")}
            rng = random.Random(5)  # noqa: S311 - kill timing, not crypto
            deadline = time.monotonic() + 1800
            while count(rt, SETTLED) < N_SOAK:
                if time.monotonic() > deadline:
                    raise RuntimeError("soak did not finish in 30 minutes")
                proc = subprocess.Popen([sys.executable, "-c", SOAK_WORKER, str(rt.settings.data_dir), "",
                                         str(FAKES)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(1.2, 3.0))  # about a second of start-up, then a random slice of work
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                with rt.db.session() as s:  # the dead worker's leases run out
                    s.execute(update(Job).where(Job.status == JobStatus.running)
                              .values(lease_until=utcnow() - timedelta(seconds=1)))
                runner.reap_expired(rt)
                publishing.recover_stuck(rt, older_than=timedelta(0))
            seen = markers(url)
            with rt.db.session() as s:
                rows = s.execute(select(Publication.idempotency_key, Publication.status)).all()
            keys = {key for key, _ in rows}
            duplicates = sum(n - 1 for m, n in seen.items() if n > 1)
            lost = sum(1 for key, status in rows if status != S.published or seen.get(key or "", 0) == 0)
            strays = sum(n for m, n in seen.items() if m not in keys)
            emit(f"soak_duplicates{suffix(N_SOAK, 1000)}", duplicates, "count")
            emit(f"soak_lost{suffix(N_SOAK, 1000)}", lost, "count")
            with rt.db.session() as s:
                trips = s.scalar(select(func.count()).select_from(publishing.PublicationEvent)
                                 .where(publishing.PublicationEvent.to_status == "unknown")) or 0
            print(f"# soak: {N_SOAK} publications, {kills} workers killed, {trips} went through unknown, "
                  f"{strays} stray posts", flush=True)
        finally:
            rt.close()


def bench_dispatch_postgres(url: str) -> None:
    """Optional: Celery workers on PostgreSQL + Redis drain N due publications."""
    import redis
    import sqlalchemy as sa

    from ainfluencer.jobs import queue
    from ainfluencer.jobs.celery_app import CeleryDispatcher, make_celery

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text("DROP DATABASE IF EXISTS ainf_bench_pub WITH (FORCE)"))
            c.execute(sa.text("CREATE DATABASE ainf_bench_pub"))
    except Exception as exc:
        print(f"# dispatch_per_s_postgres skipped: {type(exc).__name__}: {exc}", flush=True)
        return
    db_url = sa.engine.make_url(PG_URL).set(database="ainf_bench_pub").render_as_string(hide_password=False)
    redis.Redis.from_url(REDIS_URL).flushdb()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="ainf-bench-pg-") as tmp:
        rt = build_runtime(Path(tmp), db_url)
        try:
            user_id, account_id = setup_account(rt, url)
            create(rt, user_id, account_id, [utcnow() + timedelta(days=1)] * N_DISPATCH, "celery")
            settings = rt.settings.model_copy(update={"redis_url": REDIS_URL, "executor": "celery"})
            dispatcher = CeleryDispatcher(make_celery(settings), rt.db)
            env = {k: v for k, v in os.environ.items() if not k.startswith("AINF_")}
            for _ in range(2):
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", CELERY_WORKER, str(FAKES), tmp, db_url, REDIS_URL, "8"], env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(6)  # worker start-up
            now = utcnow()
            with rt.db.session() as s:  # everything becomes due at once
                s.execute(update(Publication).values(scheduled_at=now, status=S.due))
                s.execute(update(Job).where(Job.kind == "publish").values(run_at=now))
                ids = list(s.scalars(select(Job.id).where(Job.kind == "publish")))
            t0 = time.perf_counter()
            queue.add_dispatcher(dispatcher)
            try:
                for start in range(0, len(ids), 1000):
                    dispatcher(ids[start:start + 1000])
                wait_settled(rt, N_DISPATCH, timeout=3600)
            finally:
                queue.remove_dispatcher(dispatcher)
            elapsed = time.perf_counter() - t0
            emit(f"dispatch_per_s_postgres{suffix(N_DISPATCH, 10000)}", N_DISPATCH / elapsed, "pub/s")
            print(f"# postgres: 2 Celery workers x 8 threads, {N_DISPATCH} in {elapsed:.1f}s", flush=True)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
            rt.close()
            with admin.connect() as c:
                c.execute(sa.text("DROP DATABASE IF EXISTS ainf_bench_pub WITH (FORCE)"))
            admin.dispose()


def main() -> None:
    """Run the publishing benchmarks."""
    import logging

    logging.disable(logging.WARNING)
    try:
        with fakenet() as url:
            bench_dispatch_sqlite(url)
        with fakenet(latency=0.03) as url:
            bench_soak(url)
        if os.environ.get("BENCH_SKIP_POSTGRES") != "1":
            with fakenet() as url:
                bench_dispatch_postgres(url)
    finally:
        logging.disable(logging.NOTSET)


if __name__ == "__main__":
    main()
