"""Reconciliation through the publishing service with a real adapter (Facebook Pages) against its fake:
present -> published with the URL, absent -> sent again exactly once, listing fails -> unknown for a person."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from _servers_b import Drop, Request, Response
from fake_graph import FakeGraph, graph_error
from sqlalchemy import update

from ainfluencer.db.models import Character, Job, JobStatus, User, utcnow
from ainfluencer.db.models_publishing import Publication, PublicationStatus
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, publishing

FEED = r"/v21.0/\d+/feed"
LISTING = r"/v21.0/\d+/posts"


@pytest.fixture
def graph(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        runtime.platforms = runtime.platforms.with_transport("facebook", base_url=fake.url)  # the real adapter
        monkeypatch.setattr(publishing, "RECONCILE_DELAY", timedelta(0))
        yield fake


def _drain(runtime: Runtime) -> None:
    for _ in range(60):
        with runtime.db.session() as s:
            s.execute(update(Job).where(Job.status == JobStatus.queued).values(run_at=utcnow() - timedelta(seconds=1)))
        job_id = runner.claim_next(runtime, worker="t", kinds=["publish", "publish.reconcile", "publish.check"])
        if job_id is None:
            return
        runner.execute(runtime, job_id, worker="t")
    raise AssertionError("jobs kept coming")


def _send(runtime: Runtime, user: User, graph: FakeGraph, text: str) -> Publication:
    with runtime.db.session() as s:
        character = Character(user_id=user.id, name="Nova", handle="nova")
        s.add(character)
        s.flush()
        owner = s.get(User, user.id)
        assert owner is not None
        account = accounts.connect_account(
            s, runtime=runtime, user=owner, character_id=character.id, platform="facebook",
            credentials=accounts.credentials_from_input(access_token="page-token", extra={"page_id": graph.page_id}))
        spec = publishing.PostSpec(targets=[publishing.TargetSpec(account_id=account.id)], text=text)
        pub_id = publishing.create_publications(s, runtime=runtime, user=owner, spec=spec)[0].id
    _drain(runtime)
    with runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        assert pub is not None
        s.expunge(pub)
        return pub


def _created_then_500(graph: FakeGraph) -> Callable[[Request], Response]:
    def reply(req: Request) -> Response:  # the post is made, the answer is lost
        pid = f"{graph.page_id}_{graph._id()}"
        graph.posts[pid] = {"id": pid, "message": req.form.get("message", ""), "attached": [],
                            "created_time": graph._now()}
        return Response(500, b"<html>upstream timeout</html>")
    return reply


CASES = [
    # id, faults, expected status, posts on the Page, feed calls, needs a person
    ("present", [("POST", FEED, "created_then_500", 1)], PublicationStatus.published, 1, 1, False),
    ("absent", [("POST", FEED, Drop(), 1)], PublicationStatus.published, 1, 2, False),
    ("listing fails", [("POST", FEED, Drop(), 1),
                       ("GET", LISTING, graph_error(2, "Service temporarily unavailable", transient=True,
                                                    status=503), 50)],
     PublicationStatus.unknown, 0, 1, True),
]


@pytest.mark.parametrize(("faults", "status", "posts", "feed_calls", "person"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_reconcile_service_table(runtime: Runtime, make_user: Callable[..., User], graph: FakeGraph,
                                 faults: list[tuple[str, str, Any, int]], status: PublicationStatus, posts: int,
                                 feed_calls: int, person: bool) -> None:
    for method, path, reply, times in faults:
        graph.server.fault(method, path, _created_then_500(graph) if reply == "created_then_500" else reply,
                           times=times)
    pub = _send(runtime, make_user(owner=True), graph, "Harbour lights at dusk")
    assert pub.status == status, pub.last_error
    assert len(graph.posts) == posts  # never twice, never lost
    assert len(graph.server.requests("POST", FEED)) == feed_calls
    assert pub.awaiting_person is person
    if status == PublicationStatus.published:
        assert pub.url.startswith("https://www.facebook.com/") and pub.platform_post_id in graph.posts
    else:
        assert "could not be checked" in pub.last_error or "Mark published" in pub.last_error
