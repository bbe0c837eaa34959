"""The creator's dashboard data: per character what goes out next, what waits for review, what needs a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ainfluencer.db.models import Character, User, utcnow
from ainfluencer.db.models_media import Appearance
from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount
from ainfluencer.posts import service as posts
from ainfluencer.posts.models import Post, PostStatus
from ainfluencer.services import accounts

UPCOMING = (PublicationStatus.planned, PublicationStatus.due, PublicationStatus.retry_wait,
            PublicationStatus.sending)
PER_CHARACTER = 3


@dataclass
class CharacterBoard:
    """One character's column on the dashboard."""

    character: Character
    avatar_asset_id: int | None
    next_up: list[Publication] = field(default_factory=list)
    in_review: int = 0
    drafts: int = 0
    needs_person: list[Publication] = field(default_factory=list)
    published: list[Publication] = field(default_factory=list)


@dataclass
class Board:
    """Everything the dashboard shows."""

    characters: list[CharacterBoard]
    review_posts: list[Post]
    in_review: int
    needs_person: int
    accounts: dict[int, SocialAccount]
    checked_at: datetime


def avatars(session: Session, character_ids: list[int]) -> dict[int, int]:
    """Character id → the vault asset of its canonical face (characters without one are left out)."""
    if not character_ids:
        return {}
    rows = session.execute(select(Appearance.character_id, Appearance.canonical_asset_id).where(
        Appearance.character_id.in_(character_ids), Appearance.is_canonical.is_(True),
        Appearance.canonical_asset_id.is_not(None)))
    return {cid: aid for cid, aid in rows if aid is not None}


def signature(session: Session, user: User) -> tuple[Any, ...]:
    """Changes whenever anything the dashboard shows changes (the live channel compares it)."""
    visible = accounts.visible_characters(user)
    p = session.execute(select(func.count(Post.id), func.max(Post.updated_at))
                        .join(Character, Character.id == Post.character_id).where(visible)).one()
    q = session.execute(select(func.count(Publication.id), func.max(Publication.updated_at))
                        .join(Character, Character.id == Publication.character_id).where(visible)).one()
    return (*p, *q)


def board(session: Session, *, user: User, now: datetime | None = None) -> Board:
    """Build the dashboard for ``user`` (scheduled posts whose publications are all out become published)."""
    now = now or utcnow()
    posts.sync_all_published(session)
    chars = list(session.scalars(select(Character).where(accounts.visible_characters(user))
                                 .order_by(Character.name)))
    faces = avatars(session, [c.id for c in chars])
    boards: dict[int, CharacterBoard] = {c.id: CharacterBoard(character=c, avatar_asset_id=faces.get(c.id))
                                         for c in chars}
    for cid, status, n in session.execute(select(Post.character_id, Post.status, func.count())
                                          .where(Post.character_id.in_(list(boards)))
                                          .group_by(Post.character_id, Post.status)):
        if status == PostStatus.in_review:
            boards[cid].in_review = n
        elif status in (PostStatus.draft, PostStatus.changes_requested):
            boards[cid].drafts += n
    seen_accounts: set[int] = set()
    for b in boards.values():
        b.next_up = list(session.scalars(
            select(Publication).where(Publication.character_id == b.character.id, Publication.status.in_(UPCOMING))
            .order_by(Publication.scheduled_at, Publication.id).limit(PER_CHARACTER)))
        b.needs_person = [p for p in session.scalars(
            select(Publication).where(Publication.character_id == b.character.id,
                                      Publication.status.in_((PublicationStatus.failed, PublicationStatus.unknown)))
            .order_by(Publication.updated_at.desc()).limit(20)) if p.status == PublicationStatus.failed
            or p.awaiting_person][:PER_CHARACTER]
        b.published = list(session.scalars(
            select(Publication).where(Publication.character_id == b.character.id,
                                      Publication.status == PublicationStatus.published)
            .order_by(Publication.published_at.desc(), Publication.id.desc()).limit(PER_CHARACTER)))
        seen_accounts.update(p.account_id for p in b.next_up + b.needs_person + b.published)
    found = {a.id: a for a in session.scalars(select(SocialAccount).where(SocialAccount.id.in_(seen_accounts)))}
    review, in_review = posts.list_posts(session, user=user, statuses=[PostStatus.in_review], limit=5)
    ordered = sorted(boards.values(), key=lambda b: (-(len(b.needs_person) + b.in_review + len(b.next_up)),
                                                     b.character.name.lower()))
    return Board(characters=ordered, review_posts=review, in_review=in_review,
                 needs_person=sum(len(b.needs_person) for b in boards.values()), accounts=found, checked_at=now)
