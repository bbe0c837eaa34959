"""Helpers shared by the publishing tests (imported by name; conftest holds the fixtures)."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fake_network import REFRESH, TOKEN, FakeNet
from sqlalchemy import select, update

from ainfluencer.db.models import Character, Job, JobStatus, User, utcnow
from ainfluencer.db.models_media import Asset, AssetKind, ReviewState
from ainfluencer.db.models_publishing import Publication, SocialAccount
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, publishing


@dataclass
class World:
    """A signed-up owner, a character and one FakeNet account."""

    runtime: Runtime
    user: User
    character_id: int
    account_id: int
    net: FakeNet

    def media_file(self, name: str, size: int = 2048, data: bytes | None = None) -> str:
        """Write a file into the media folder; returns its path relative to it."""
        path = self.runtime.settings.media_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else b"\xff\xd8\xff" + b"0" * (size - 3))
        return name

    def media_asset(self, name: str, size: int = 2048, *, kind: AssetKind = AssetKind.image, mime: str = "",
                    review_state: ReviewState = ReviewState.approved, shared: bool = False) -> int:
        """A vault asset over a file in the media folder (approved; the world's character's unless ``shared``)."""
        rel = self.media_file(name, size=size)
        with self.runtime.db.session() as s:
            asset = Asset(character_id=None if shared else self.character_id, created_by=self.user.id, kind=kind,
                          sha256=hashlib.sha256(name.encode()).hexdigest(), path=rel, original_name=name,
                          mime=mime or mimetypes.guess_type(name)[0] or "application/octet-stream", size=size,
                          review_state=review_state)
            s.add(asset)
            s.flush()
            return asset.id


def make_character(runtime: Runtime, user: User, name: str = "Nova", handle: str = "nova") -> int:
    """A character row owned by ``user``."""
    with runtime.db.session() as s:
        character = Character(user_id=user.id, name=name, handle=handle)
        s.add(character)
        s.flush()
        return character.id


def connect(runtime: Runtime, user: User, character_id: int, net: FakeNet, *, platform: str = "fakenet",
            refresh: bool = False, token: str = TOKEN) -> int:
    """Connect a FakeNet account through the service (live check included)."""
    creds = accounts.credentials_from_input(access_token=token, refresh_token=REFRESH if refresh else None,
                                            extra={"base_url": net.url})
    with runtime.db.session() as s:
        u = s.get(User, user.id)
        assert u is not None
        return accounts.connect_account(s, runtime=runtime, user=u, character_id=character_id, platform=platform,
                                        credentials=creds).id


def publish(world: World, text: str = "Hello from a virtual character", *, account_id: int | None = None,
            **kwargs: Any) -> int:
    """Create one publication through the service; returns its id."""
    spec = publishing.PostSpec(targets=[publishing.TargetSpec(account_id=account_id or world.account_id)],
                               text=text, **kwargs)
    with world.runtime.db.session() as s:
        u = s.get(User, world.user.id)
        assert u is not None
        return publishing.create_publications(s, runtime=world.runtime, user=u, spec=spec)[0].id


def time_travel(runtime: Runtime) -> None:
    """Make every queued job due now (the clock jumps past backoffs and schedules)."""
    with runtime.db.session() as s:
        s.execute(update(Job).where(Job.status == JobStatus.queued).values(run_at=utcnow() - timedelta(seconds=1)))


def expire_leases(runtime: Runtime) -> None:
    """Pretend the leases of running jobs ran out (their worker is dead)."""
    with runtime.db.session() as s:
        s.execute(update(Job).where(Job.status == JobStatus.running)
                  .values(lease_until=utcnow() - timedelta(seconds=1)))


def drain(runtime: Runtime, *, travel: bool = True, kinds: tuple[str, ...] = ("publish", "publish.reconcile",
          "publish.check"), rounds: int = 100) -> int:
    """Run due publishing jobs in this process until none is left; returns how many ran."""
    ran = 0
    for _ in range(rounds):
        if travel:
            time_travel(runtime)
        runner.reap_expired(runtime)
        job_id = runner.claim_next(runtime, worker="test-worker", kinds=list(kinds))
        if job_id is None:
            return ran
        runner.execute(runtime, job_id, worker="test-worker")
        ran += 1
    raise AssertionError("jobs kept coming: a publication loops")


def pub_row(runtime: Runtime, publication_id: int) -> Publication:
    """A fresh copy of a publication."""
    with runtime.db.session() as s:
        pub = s.get(Publication, publication_id)
        assert pub is not None
        return pub


def account_row(runtime: Runtime, account_id: int) -> SocialAccount:
    """A fresh copy of an account."""
    with runtime.db.session() as s:
        account = s.get(SocialAccount, account_id)
        assert account is not None
        return account


def jobs_of(runtime: Runtime, kind: str) -> list[Job]:
    """Every job of one kind, oldest first."""
    with runtime.db.session() as s:
        return list(s.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))
