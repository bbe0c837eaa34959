"""Helpers shared by the calendar tests (imported by name; conftest holds the fixtures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fake_network import FakeNet
from publishing_helpers import connect, make_character
from sqlalchemy import update

from ainfluencer.db.models import Character, User
from ainfluencer.db.models_calendar import PostingSlot, PublicationMetric
from ainfluencer.db.models_media import Asset, AssetKind, ReviewState
from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount
from ainfluencer.runtime import Runtime
from ainfluencer.services import publishing

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000


@dataclass
class Cal:
    """A signed-up owner, one character and two FakeNet accounts (plain and capped at 3 posts a day)."""

    runtime: Runtime
    user: User
    character_id: int
    account_id: int
    capped_id: int
    net: FakeNet

    def session(self) -> Any:
        """A database session (commits on exit)."""
        return self.runtime.db.session()

    def character(self, s: Any) -> Character:
        """The character, in session ``s``."""
        c = s.get(Character, self.character_id)
        assert c is not None
        return c

    def account(self, s: Any, account_id: int | None = None) -> SocialAccount:
        """An account, in session ``s``."""
        a = s.get(SocialAccount, account_id or self.account_id)
        assert a is not None
        return a

    def owner(self, s: Any) -> User:
        """The owner, in session ``s``."""
        u = s.get(User, self.user.id)
        assert u is not None
        return u


def make_world(runtime: Runtime, user: User, net: FakeNet, *, timezone: str = "UTC") -> Cal:
    """Character (in ``timezone``) with a FakeNet account and a capped FakeNet account."""
    character_id = make_character(runtime, user)
    with runtime.db.session() as s:
        c = s.get(Character, character_id)
        assert c is not None
        c.timezone = timezone
    account_id = connect(runtime, user, character_id, net)
    capped_id = connect(runtime, user, character_id, net, platform="fakenet_capped")
    return Cal(runtime=runtime, user=user, character_id=character_id, account_id=account_id, capped_id=capped_id,
               net=net)


def add_slot(world: Cal, weekdays: list[int], hour: int, minute: int = 0, **kw: Any) -> int:
    """A posting slot row for the world's character."""
    with world.session() as s:
        slot = PostingSlot(character_id=world.character_id, weekdays=weekdays, hour=hour, minute=minute, **kw)
        s.add(slot)
        s.flush()
        return slot.id


def schedule(world: Cal, at: datetime, *, account_id: int | None = None, text: str = "Planned post") -> int:
    """A planned publication through the publishing service; returns its id."""
    spec = publishing.PostSpec(targets=[publishing.TargetSpec(account_id=account_id or world.account_id)],
                               text=text, scheduled_at=at)
    with world.session() as s:
        return publishing.create_publications(s, runtime=world.runtime, user=world.owner(s), spec=spec)[0].id


def mark_published(world: Cal, publication_id: int, at: datetime, *, likes: int = 0, comments: int = 0,
                   shares: int = 0, views: int = 0, collected_at: datetime | None = None) -> None:
    """Pretend a publication went out at ``at`` and record one metrics reading for it."""
    with world.session() as s:
        s.execute(update(Publication).where(Publication.id == publication_id).values(
            status=PublicationStatus.published, published_at=at, scheduled_at=at))
        s.add(PublicationMetric(publication_id=publication_id, likes=likes, comments=comments, shares=shares,
                                views=views, collected_at=collected_at or at))


def add_asset(world: Cal, *, state: ReviewState = ReviewState.approved, caption: str = "A sunny day",
              mime: str = "image/jpeg", name: str | None = None, prompt: str = "") -> int:
    """An asset row with a real file in the media folder."""
    with world.session() as s:
        count = s.query(Asset).count()
        rel = f"nova/{name or f'asset{count + 1}.jpg'}"
        path = world.runtime.settings.media_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JPEG)
        asset = Asset(character_id=world.character_id, created_by=world.user.id, kind=AssetKind.image,
                      sha256=f"{count + 1:064d}", path=rel, original_name=path.name, mime=mime, size=len(JPEG),
                      caption=caption, prompt=prompt, review_state=state)
        s.add(asset)
        s.flush()
        return asset.id


def pub(world: Cal, publication_id: int) -> Publication:
    """A fresh copy of a publication."""
    with world.session() as s:
        row = s.get(Publication, publication_id)
        assert row is not None
        return row
