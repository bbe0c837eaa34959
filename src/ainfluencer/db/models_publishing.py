"""Publishing rows: connected accounts, publications and their audit trail, rate buckets, webhooks.

A publication's life (see ``services/publishing.py`` for the transitions and who makes them):

    planned ─┐
    due ─────┼─> sending ─> published
    retry_wait ┘      │
                      ├─> retry_wait   (nothing reached the network: connect error, 429, local rate limit)
                      ├─> failed       (the network refused for good, or the account needs reconnecting)
                      └─> unknown      (the request may have reached the network: crash, timeout, 5xx)
    unknown ─> published | retry_wait (reconciled against the network) | stays for a person
    failed | unknown ─> due (one-click retry, new marker generation)
    planned | due | retry_wait | failed | unknown ─> cancelled

``sending`` is committed with the durable ``idempotency_key`` *before* the network call, so a crash
in ``sending`` is always noticed and reconciled, never blindly re-sent.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ainfluencer.db.models import Base, Character, utcnow


class AccountStatus(enum.StrEnum):
    """Health of a connected account as the last live check or publish saw it."""

    healthy = "healthy"
    needs_reconnect = "needs_reconnect"
    error = "error"
    disconnected = "disconnected"


class PublicationStatus(enum.StrEnum):
    """Where a publication stands; see the module docstring for the transitions."""

    planned = "planned"
    due = "due"
    sending = "sending"
    published = "published"
    retry_wait = "retry_wait"
    failed = "failed"
    unknown = "unknown"
    cancelled = "cancelled"


CLAIMABLE = (PublicationStatus.planned, PublicationStatus.due, PublicationStatus.retry_wait)
FINAL = (PublicationStatus.published, PublicationStatus.cancelled)


class SocialAccount(Base):
    """One platform identity connected for a character; its tokens live in stored_secrets."""

    __tablename__ = "social_accounts"
    __table_args__ = (
        UniqueConstraint("platform", "platform_account_id"),
        Index("ix_social_accounts_character_platform", "character_id", "platform"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    platform_account_id: Mapped[str] = mapped_column(String(255))
    handle: Mapped[str] = mapped_column(String(255), default="")
    display_name: Mapped[str] = mapped_column(String(255), default="")
    profile_url: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[AccountStatus] = mapped_column(
        Enum(AccountStatus, native_enum=False, length=24), default=AccountStatus.healthy
    )
    is_bot_flagged: Mapped[bool | None] = mapped_column(Boolean, default=None)
    token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    rate_limited_until: Mapped[datetime | None] = mapped_column(default=None)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # non-secret ids only
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    character: Mapped[Character] = relationship()

    def __repr__(self) -> str:
        return f"<SocialAccount id={self.id} {self.platform}:{self.handle!r} status={self.status}>"


class Publication(Base):
    """One text + media set to one account at one time; the row is the truth of its state."""

    __tablename__ = "publications"
    __table_args__ = (
        Index("ix_publications_status_scheduled", "status", "scheduled_at"),
        Index("ix_publications_account_scheduled", "account_id", "scheduled_at"),
        Index("ix_publications_character_scheduled", "character_id", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_key: Mapped[str] = mapped_column(String(36), default="", index=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("social_accounts.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ai_generated: Mapped[bool] = mapped_column(Boolean, default=True)
    scheduled_at: Mapped[datetime] = mapped_column()
    status: Mapped[PublicationStatus] = mapped_column(
        Enum(PublicationStatus, native_enum=False, length=16), default=PublicationStatus.planned
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(120), unique=True, default=None)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    dispatch_seq: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)  # raised by a manual retry
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    awaiting_person: Mapped[bool] = mapped_column(Boolean, default=False)  # unknown and not resolvable by machine
    platform_post_id: Mapped[str] = mapped_column(String(255), default="")
    url: Mapped[str] = mapped_column(String(1000), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    platform_message: Mapped[str] = mapped_column(Text, default="")
    sending_started_at: Mapped[datetime | None] = mapped_column(default=None)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[SocialAccount] = relationship()

    def __repr__(self) -> str:
        return f"<Publication id={self.id} account={self.account_id} status={self.status}>"


class PublicationEvent(Base):
    """One state change of a publication: the audit trail shown to people."""

    __tablename__ = "publication_events"
    __table_args__ = (Index("ix_publication_events_publication_at", "publication_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_status: Mapped[str] = mapped_column(String(16), default="")
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64), default="system")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RateBucket(Base):
    """A token bucket per account and documented limit, persisted so limits survive restarts."""

    __tablename__ = "rate_buckets"
    __table_args__ = (UniqueConstraint("account_id", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("social_accounts.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(64))  # "<limit scope>/<window>s", e.g. "post/900s"
    capacity: Mapped[float] = mapped_column(Float)
    refill_per_s: Mapped[float] = mapped_column(Float)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Base):
    """An endpoint told about publication outcomes; its signing secret lives in stored_secrets."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), default=None)
    url: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event sent (or being sent) to one webhook."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")  # our own words only, never the response body
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
