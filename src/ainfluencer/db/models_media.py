"""Media rows: the vault's assets and tags, character appearances, consented reference photos.

An asset's file lives under ``settings.media_dir`` at ``path`` (relative, POSIX separators), laid
out ``<character-handle-or-id>/<yyyy>/<mm>/<sha256[:2]>/<sha256>.<ext>`` where ``sha256`` is the
hash of the stored bytes (after metadata stripping, AI labelling and C2PA signing), so a file can
always be checked against its row. ``source_sha256`` is the hash of the bytes as they arrived; the
vault uses it to recognise the same upload or backend output a second time.

Review states: draft → in_review → approved | rejected → archived (see ``services.vault.TRANSITIONS``).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ainfluencer.db.models import Base, utcnow


class AssetKind(enum.StrEnum):
    """What a file is."""

    image = "image"
    audio = "audio"
    video = "video"


class ReviewState(enum.StrEnum):
    """Where an asset stands in the approval workflow."""

    draft = "draft"
    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    archived = "archived"


class AssetSource(enum.StrEnum):
    """How an asset entered the vault."""

    generated = "generated"
    upload = "upload"
    reference = "reference"


class Asset(Base):
    """One generated or uploaded file with what made it, its scores and its provenance."""

    __tablename__ = "assets"
    __table_args__ = (
        Index("ix_assets_character_created", "character_id", "created_at"),
        Index("ix_assets_review_created", "review_state", "created_at"),
        Index("ix_assets_kind_created", "kind", "created_at"),
        Index("ix_assets_folder", "folder"),
        Index("ix_assets_created_at", "created_at"),
        Index("ix_assets_sha256", "sha256"),
        Index("ix_assets_source_sha256", "source_sha256"),
        Index("ix_assets_created_by", "created_by"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int | None] = mapped_column(
        ForeignKey("characters.id", ondelete="SET NULL"), default=None
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    kind: Mapped[AssetKind] = mapped_column(Enum(AssetKind, native_enum=False, length=16))
    source: Mapped[AssetSource] = mapped_column(
        Enum(AssetSource, native_enum=False, length=16), default=AssetSource.upload
    )
    sha256: Mapped[str] = mapped_column(String(64))
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    path: Mapped[str] = mapped_column(String(500))
    original_name: Mapped[str] = mapped_column(String(255), default="")
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_s: Mapped[float | None] = mapped_column(Float, default=None)
    prompt: Mapped[str] = mapped_column(Text, default="")
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    caption: Mapped[str] = mapped_column(Text, default="")
    backend: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    generation_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    face_similarity: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    technical_score: Mapped[float | None] = mapped_column(Float, default=None)
    phash: Mapped[str] = mapped_column(String(32), default="")
    gate_decision: Mapped[str] = mapped_column(String(16), default="")
    gate_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    review_state: Mapped[ReviewState] = mapped_column(
        Enum(ReviewState, native_enum=False, length=16), default=ReviewState.in_review
    )
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(default=None)
    folder: Mapped[str] = mapped_column(String(200), default="")
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tags: Mapped[list[AssetTag]] = relationship(
        back_populates="asset", cascade="all, delete-orphan", order_by="AssetTag.tag", lazy="selectin"
    )

    @property
    def tag_names(self) -> list[str]:
        """The asset's tags, sorted."""
        return sorted(t.tag for t in self.tags)

    @property
    def ext(self) -> str:
        """The stored file's extension (without the dot)."""
        return self.path.rsplit(".", 1)[-1] if "." in self.path else ""

    def __repr__(self) -> str:
        return f"<Asset id={self.id} kind={self.kind} state={self.review_state} sha={self.sha256[:12]}>"


class AssetTag(Base):
    """A free-form tag on an asset (stored lower-case)."""

    __tablename__ = "asset_tags"
    __table_args__ = (
        UniqueConstraint("asset_id", "tag", name="uq_asset_tags_asset_id_tag"),
        Index("ix_asset_tags_tag", "tag"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(64))

    asset: Mapped[Asset] = relationship(back_populates="tags")


APPEARANCE_FIELDS: tuple[str, ...] = (
    "face",
    "hair",
    "eyes",
    "skin_tone",
    "body_type",
    "style",
    "clothing",
    "settings",
    "aesthetic",
)


class Appearance(Base):
    """A named look of a character ("canonical", "gym", "evening"): what feeds image prompts.

    The character's canonical face (``is_canonical``) holds the identity embedding every generated
    image is scored against; other appearances change clothes, settings and mood, not the face.
    """

    __tablename__ = "appearances"
    __table_args__ = (
        UniqueConstraint("character_id", "name", name="uq_appearances_character_id_name"),
        Index("ix_appearances_character_id", "character_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    face: Mapped[str] = mapped_column(String(500), default="")
    hair: Mapped[str] = mapped_column(String(300), default="")
    eyes: Mapped[str] = mapped_column(String(200), default="")
    skin_tone: Mapped[str] = mapped_column(String(200), default="")
    body_type: Mapped[str] = mapped_column(String(300), default="")
    style: Mapped[str] = mapped_column(String(500), default="")
    clothing: Mapped[str] = mapped_column(String(500), default="")
    settings: Mapped[str] = mapped_column(String(500), default="")
    aesthetic: Mapped[str] = mapped_column(String(500), default="")
    negative_prompt: Mapped[str] = mapped_column(String(1000), default="")
    is_canonical: Mapped[bool] = mapped_column(Boolean, default=False)
    canonical_asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), default=None
    )
    face_embedding: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Appearance id={self.id} character={self.character_id} name={self.name!r}>"


class ReferencePhoto(Base):
    """An uploaded photo of a real person, kept only with the consent statement recorded for it.

    It is used for the consistency of this one character and never published (SCOPE.md).
    """

    __tablename__ = "reference_photos"
    __table_args__ = (Index("ix_reference_photos_character_id", "character_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), unique=True)
    subject_name: Mapped[str] = mapped_column(String(200), default="")
    consent_statement: Mapped[str] = mapped_column(Text)
    consented_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    consented_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    asset: Mapped[Asset] = relationship()


class CharacterMediaSettings(Base):
    """A character's image defaults: quality-gate thresholds and the image backend/model to use."""

    __tablename__ = "character_media_settings"

    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"), primary_key=True)
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    image_backend: Mapped[str] = mapped_column(String(64), default="")
    image_model: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # issue 4, voice: the engine and its settings (services.studio_av.VoiceConfig); {} means the defaults.
    # Voice clips and videos are jobs whose results are vault assets, so they need no table of their own.
    voice: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

