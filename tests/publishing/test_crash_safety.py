"""Kill the worker at every step of a publish, in a loop; FakeNet's own log must show no duplicate and no loss.

A real worker process (``runner.run_one`` in a subprocess) publishes; it is SIGKILLed

- ``before_claim``, ``after_claim``, ``after_response`` (answer received, nothing committed) and
  ``after_commit`` through the ``AINF_TEST_CRASH_AT`` hook (a no-op unless set), and
- ``mid_request`` while FakeNet holds the request (before it creates the post, which it then does
  anyway, as a server that keeps processing would) and ``mid_response`` (post created, answer
  held back) by this test, from outside.

Then the lease runs out, the reaper re-queues the job, and jobs run until nothing is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from publishing_helpers import World, drain, expire_leases, pub_row, publish

from ainfluencer.db.models_publishing import PublicationStatus
from ainfluencer.runtime import Runtime

HERE = Path(__file__).parent
S = PublicationStatus
HOOK_POINTS = ["before_claim", "after_claim", "after_response", "after_commit"]
HELD_POINTS = {"mid_request": "hold", "mid_response": "hold_after"}
ROUNDS = 2

WORKER = """
import sys
sys.path.insert(0, sys.argv[3])
import fakenet
from pathlib import Path
from ainfluencer.config import Settings
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime

settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2], redis_url="", executor="embedded")
rt = Runtime.build(settings)
rt.platforms = rt.platforms.with_platforms(*fakenet.PLATFORMS)
while runner.run_one(rt, worker="doomed-worker") is not None:
    pass
"""


def run_worker(runtime: Runtime, *, crash_at: str = "") -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AINF_")}
    if crash_at:
        env["AINF_TEST_CRASH_AT"] = crash_at
    return subprocess.Popen(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", WORKER, str(runtime.settings.data_dir), runtime.settings.database_url, str(HERE)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def wait_dead(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill_the_worker_at_every_step(world: World) -> None:
    rt, net = world.runtime, world.net
    expected: dict[int, str] = {}
    for round_no in range(ROUNDS):
        for point in HOOK_POINTS + list(HELD_POINTS):
            pub_id = publish(world, f"round {round_no} killed at {point}")
            if point in HELD_POINTS:
                net.rearm()
                net.fault("POST", "/v1/posts", HELD_POINTS[point])
                proc = run_worker(rt)
                deadline = time.monotonic() + 60
                while not net.held.is_set():
                    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                    assert time.monotonic() < deadline, "the worker never reached the network"
                    time.sleep(0.02)
                os.kill(proc.pid, signal.SIGKILL)
                assert wait_dead(proc) == -signal.SIGKILL
                net.release()  # the server finishes its work with nobody listening
                deadline = time.monotonic() + 10
                while f"ainf:{pub_id}:1" not in net.markers():
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            else:
                proc = run_worker(rt, crash_at=point)
                code = wait_dead(proc)
                assert code == -signal.SIGKILL, (point, proc.stderr.read().decode() if proc.stderr else "")
            state = pub_row(rt, pub_id).status
            if point == "before_claim":
                assert state == S.due
            elif point == "after_commit":
                assert state == S.published
            else:
                assert state == S.sending, (point, state)
            expire_leases(rt)  # the dead worker's lease runs out; the reaper (in drain) re-queues the job
            drain(rt)
            pub = pub_row(rt, pub_id)
            assert pub.status == S.published, (point, pub.status, pub.last_error)
            assert pub.idempotency_key is not None
            expected[pub_id] = pub.idempotency_key

    markers = net.markers()
    duplicates = {m: n for m, n in markers.items() if n > 1}
    lost = [pid for pid, marker in expected.items() if markers.get(marker, 0) == 0]
    assert duplicates == {}, duplicates
    assert lost == [], lost
    assert len(markers) == len(expected) == ROUNDS * (len(HOOK_POINTS) + len(HELD_POINTS))
    for pid, marker in expected.items():  # each row points at the network's own post
        post = net.posts_for(marker)[0]
        assert pub_row(rt, pid).platform_post_id == post["id"]


def test_hook_is_inert_without_the_variable(world: World) -> None:
    pub_id = publish(world, "no crash")
    assert wait_dead(run_worker(world.runtime)) == 0
    assert pub_row(world.runtime, pub_id).status == S.published
