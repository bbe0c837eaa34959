"""Calendar rows (issue 5): posting slots, per-account calendar settings, engagement history.

A posting slot is a weekday set plus a local time of day, read in the character's time zone, so a
09:00 slot stays 09:00 local across daylight-saving changes (the UTC instant moves instead).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ainfluencer.db.models import Base, utcnow


class PostingSlot(Base):
    """A recurring time a character posts: weekdays (0 = Monday) at ``hour:minute`` local time.

    ``account_id`` narrows the slot to one account and ``platform`` to one network; both empty
    means the slot applies to every account of the character.
    """

    __tablename__ = "posting_slots"
    __table_args__ = (Index("ix_posting_slots_character_account", "character_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("social_accounts.id", ondelete="CASCADE"), default=None)
    platform: Mapped[str] = mapped_column(String(32), default="")
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    hour: Mapped[int] = mapped_column(Integer)
    minute: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str] = mapped_column(String(80), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        at = f"{self.hour:02d}:{self.minute:02d}"
        return f"<PostingSlot id={self.id} character={self.character_id} {self.weekdays} {at}>"


class AccountCalendarSettings(Base):
    """Per-account scheduling preferences: minimum gap between posts and an optional own daily cap."""

    __tablename__ = "account_calendar_settings"

    account_id: Mapped[int] = mapped_column(ForeignKey("social_accounts.id", ondelete="CASCADE"), primary_key=True)
    min_gap_minutes: Mapped[int] = mapped_column(Integer, default=30)
    max_per_day: Mapped[int | None] = mapped_column(Integer, default=None)  # below the network's cap, if set
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PublicationMetric(Base):
    """One engagement reading of a published publication (analytics fills it; best-time reads it)."""

    __tablename__ = "publication_metrics"
    __table_args__ = (Index("ix_publication_metrics_publication_collected", "publication_id", "collected_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id", ondelete="CASCADE"))
    likes: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    views: Mapped[int] = mapped_column(Integer, default=0)
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)
