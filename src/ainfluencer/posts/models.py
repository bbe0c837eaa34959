"""Post rows: a draft with its per-network variants, its review trail and comments.

A post names media by vault asset id only; the publishing service resolves the files when the
post is scheduled. ``status`` moves draft → in_review → approved (or changes_requested / rejected)
→ scheduled → published; every move writes a ``post_events`` row with who and when.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ainfluencer.db.models import Base, utcnow


class PostStatus(enum.StrEnum):
    """Where a post stands in review and publishing."""

    draft = "draft"
    in_review = "in_review"
    changes_requested = "changes_requested"
    approved = "approved"
    rejected = "rejected"
    scheduled = "scheduled"
    published = "published"


class Post(Base):
    """One post for one character: shared text, per-network variants, assets by id, accounts and a time."""

    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_character_status", "character_id", "status"),
        Index("ix_posts_status_updated", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    status: Mapped[PostStatus] = mapped_column(Enum(PostStatus, native_enum=False, length=24),
                                               default=PostStatus.draft)
    text: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    first_comment: Mapped[str] = mapped_column(Text, default="")
    # {"<platform>": {"text", "title", "first_comment", "asset_ids", "alt_texts"}}; missing keys inherit
    variants: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    asset_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    alt_texts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # asset id (as text) -> alt text
    account_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)  # UTC; None: as soon as scheduled
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    require_alt_text: Mapped[bool] = mapped_column(default=True)
    source: Mapped[str] = mapped_column(String(24), default="manual")  # manual | writing | automation
    generated_text_id: Mapped[int | None] = mapped_column(
        ForeignKey("generated_texts.id", ondelete="SET NULL"), default=None)
    automation_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_runs.id", ondelete="SET NULL"), default=None)
    group_key: Mapped[str] = mapped_column(String(64), default="")  # the publications' group once scheduled
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PostEvent(Base):
    """One step of a post's life: who moved it from which state to which, when, and why."""

    __tablename__ = "post_events"
    __table_args__ = (Index("ix_post_events_post_at", "post_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(24), default="")
    to_status: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    actor: Mapped[str] = mapped_column(String(80), default="")  # "user:3", "rule:7", "system"
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class PostComment(Base):
    """A comment on a post by a person reviewing or writing it."""

    __tablename__ = "post_comments"
    __table_args__ = (Index("ix_post_comments_post_at", "post_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
