"""Publish jobs belong to the person who caused them, and no waiting publication is left without a job."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fake_network import FakeNet
from fastapi.testclient import TestClient
from publishing_helpers import World, connect, drain, make_character, pub_row
from sqlalchemy import select

from ainfluencer.db.models import Job, JobStatus, User, utcnow
from ainfluencer.db.models_publishing import AccountStatus, PublicationEvent, PublicationStatus, SocialAccount
from ainfluencer.jobs.scheduler import Scheduler
from ainfluencer.services import publishing


@pytest.fixture
def mia_net() -> Iterator[FakeNet]:
    """A second FakeNet identity for the member's own account."""
    with FakeNet(account_id="fn-mia", handle="@mia") as server:
        yield server


def _member_post(world: World, member: User, net: FakeNet, *, when: timedelta = timedelta(0)) -> tuple[int, int]:
    """A member's character, account and one publication; returns (publication id, its publish job id)."""
    character_id = make_character(world.runtime, member, name="Mia", handle="mia")
    account_id = connect(world.runtime, member, character_id, net)
    spec = publishing.PostSpec(targets=[publishing.TargetSpec(account_id=account_id)], text="Mia says hi",
                               scheduled_at=utcnow() + when if when else None)
    with world.runtime.db.session() as s:
        u = s.get(User, member.id)
        assert u is not None
        pub = publishing.create_publications(s, runtime=world.runtime, user=u, spec=spec)[0]
        job = s.scalar(select(Job).where(Job.idempotency_key == publishing.publish_job_key(pub.id, 1)))
        assert job is not None and job.user_id == member.id  # the job names who caused it
        return pub.id, job.id


def _job(world: World, job_id: int) -> Job:
    with world.runtime.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def _events(world: World, publication_id: int) -> list[PublicationEvent]:
    with world.runtime.db.session() as s:
        return list(s.scalars(select(PublicationEvent).where(PublicationEvent.publication_id == publication_id)
                              .order_by(PublicationEvent.id)))


def test_member_cannot_touch_another_users_publish_job_and_a_cancelled_one_is_requeued(
    world: World, make_user: Callable[..., User], make_token: Callable[..., str], client: TestClient, mia_net: FakeNet,
) -> None:
    mia = make_user("mia@example.com", owner=False)
    bob = make_user("bob@example.com", owner=False)
    pub_id, job_id = _member_post(world, mia, mia_net)
    as_bob = {"Authorization": f"Bearer {make_token(bob)}"}
    as_mia = {"Authorization": f"Bearer {make_token(mia)}"}
    as_owner = {"Authorization": f"Bearer {make_token(world.user)}"}

    # Another member: the job does not exist for him, in any route, and nothing changes.
    for method, url in (("GET", f"/api/v1/jobs/{job_id}"), ("POST", f"/api/v1/jobs/{job_id}/cancel"),
                        ("POST", f"/api/v1/jobs/{job_id}/retry")):
        r = client.request(method, url, headers=as_bob)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (url, r.text)
    listed = client.get("/api/v1/jobs", headers=as_bob).json()
    assert listed["count"] == 0 and listed["data"] == []
    assert _job(world, job_id).status == JobStatus.queued
    # The member who caused it sees it; the owner role sees every job.
    assert [j["id"] for j in client.get("/api/v1/jobs", headers=as_mia).json()["data"]] == [job_id]
    assert job_id in [j["id"] for j in client.get("/api/v1/jobs", headers=as_owner).json()["data"]]

    # The owner may cancel it: that used to leave the publication waiting forever with no job.
    r = client.post(f"/api/v1/jobs/{job_id}/cancel", headers=as_owner)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert publishing.ensure_live_jobs(world.runtime, grace=timedelta(0)) == {
        "requeued": 1, "reconciling": 0, "to_person": 0}
    last = _events(world, pub_id)[-1]
    assert last.actor == "watch" and f"#{job_id} is cancelled" in last.detail["message"]
    assert publishing.ensure_live_jobs(world.runtime, grace=timedelta(0))["requeued"] == 0  # one live job: done
    drain(world.runtime)
    assert pub_row(world.runtime, pub_id).status == PublicationStatus.published
    assert len(mia_net.posts) == 1


def test_a_publication_whose_job_keeps_vanishing_goes_to_a_person(
    world: World, make_user: Callable[..., User], mia_net: FakeNet,
) -> None:
    mia = make_user("mia@example.com", owner=False)
    pub_id, _ = _member_post(world, mia, mia_net, when=timedelta(hours=3))
    for _ in range(publishing.WATCH_MAX_REQUEUES):
        with world.runtime.db.session() as s:
            s.query(Job).filter(Job.kind == "publish").update({"status": JobStatus.failed, "last_error": "lost"})
        assert publishing.ensure_live_jobs(world.runtime, grace=timedelta(0))["requeued"] == 1
        assert pub_row(world.runtime, pub_id).status == PublicationStatus.planned
    with world.runtime.db.session() as s:
        s.query(Job).filter(Job.kind == "publish").update({"status": JobStatus.failed, "last_error": "lost"})
    assert publishing.ensure_live_jobs(world.runtime, grace=timedelta(0))["to_person"] == 1
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == PublicationStatus.failed and publishing.needs_person(pub)
    assert "Stuck" in pub.last_error and "lost" in pub.last_error and "retry" in publishing.allowed_actions(pub)
    assert len(mia_net.posts) == 0


def test_an_unknown_publication_without_a_checker_gets_one_and_the_scheduler_runs_the_sweep(
    world: World, make_user: Callable[..., User], mia_net: FakeNet,
) -> None:
    mia = make_user("mia@example.com", owner=False)
    pub_id, _ = _member_post(world, mia, mia_net, when=timedelta(hours=3))
    with world.runtime.db.session() as s:
        s.query(Job).filter(Job.kind == "publish").update({"status": JobStatus.cancelled})
        pub = s.get(publishing.Publication, pub_id)
        assert pub is not None
        pub.status, pub.updated_at = PublicationStatus.unknown, utcnow() - timedelta(hours=1)
    summary = Scheduler(world.runtime, "test-scheduler").tick()
    assert summary["publication_jobs"] == {"requeued": 0, "reconciling": 1, "to_person": 0}
    with world.runtime.db.session() as s:
        job = s.scalar(select(Job).where(Job.kind == "publish.reconcile"))
        assert job is not None and job.status == JobStatus.queued and job.user_id == mia.id


def test_an_account_that_needs_reconnecting_is_refused_when_the_post_is_made(
    world: World, make_token: Callable[..., str], client: TestClient,
) -> None:
    with world.runtime.db.session() as s:
        account = s.get(SocialAccount, world.account_id)
        assert account is not None
        account.status, account.last_error = AccountStatus.needs_reconnect, "the token was revoked"
    r = client.post("/api/v1/publications", headers={"Authorization": f"Bearer {make_token(world.user)}"},
                    json={"text": "hi", "targets": [{"account_id": world.account_id}]})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "targets.0.account_id" and "reconnect" in err["message"]
    assert "the token was revoked" in err["message"]
