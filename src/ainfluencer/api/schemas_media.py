"""Pydantic schemas of the vault (assets) and studio (appearances, reference photos, generation) API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ainfluencer.db.models_media import ReviewState

BatchAction = Literal["approve", "reject", "archive", "review", "draft", "tag", "untag", "move", "delete"]


class AssetPublic(BaseModel):
    """One vault asset: the file's facts, what made it, its scores and provenance, and where it stands."""

    id: int
    asset_id: int = Field(description="the reference to attach this file to a post: "
                                      "``media: [{\"asset_id\": ...}]`` in ``POST /api/v1/publications`` and "
                                      "``asset_ids`` in compose (the same number as ``id``)")
    character_id: int | None
    kind: str
    source: str
    mime: str
    size: int
    width: int | None
    height: int | None
    duration_s: float | None
    sha256: str
    original_name: str
    prompt: str
    negative_prompt: str
    caption: str
    backend: str
    model: str
    seed: int | None
    cost_usd: float
    generation_ms: int | None
    params: dict[str, Any]
    scores: dict[str, Any]
    face_similarity: float | None
    technical_score: float | None
    gate_decision: str = Field(description="pass, flag or reject ('' when no gate ran)")
    gate_reasons: list[str]
    provenance: dict[str, Any]
    provenance_verified: bool = Field(description="the C2PA manifest read back valid against this install's CA")
    review_state: str
    reviewed_by: int | None
    reviewed_at: datetime | None
    folder: str
    tags: list[str]
    job_id: int | None
    created_at: datetime
    file_url: str


class AssetUploaded(AssetPublic):
    """The stored upload; ``duplicate`` is true when the same file was already in the vault (nothing new stored)."""

    duplicate: bool = False


class AssetsPublic(BaseModel):
    """A page of assets."""

    data: list[AssetPublic]
    count: int


class AssetUpdate(BaseModel):
    """Change tags (replaces them), folder, caption or review state."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] | None = Field(default=None, max_length=30)
    folder: str | None = Field(default=None, max_length=200)
    caption: str | None = Field(default=None, max_length=5000)
    review_state: ReviewState | None = None


class AssetBatch(BaseModel):
    """One action on many assets."""

    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=500)
    action: BatchAction
    tags: list[str] = Field(default_factory=list, max_length=30)
    folder: str | None = Field(default=None, max_length=200)


class BatchPublic(BaseModel):
    """What a batch action did."""

    action: str
    done: list[int]
    skipped: dict[int, str]


class FolderCount(BaseModel):
    """A folder label and how many assets it holds."""

    folder: str
    count: int


class AppearanceFields(BaseModel):
    """What a character looks like in one appearance; everything feeds the image prompt."""

    model_config = ConfigDict(extra="forbid")

    face: str | None = Field(default=None, max_length=500)
    hair: str | None = Field(default=None, max_length=300)
    eyes: str | None = Field(default=None, max_length=200)
    skin_tone: str | None = Field(default=None, max_length=200)
    body_type: str | None = Field(default=None, max_length=300)
    style: str | None = Field(default=None, max_length=500)
    clothing: str | None = Field(default=None, max_length=500)
    settings: str | None = Field(default=None, max_length=500)
    aesthetic: str | None = Field(default=None, max_length=500)
    negative_prompt: str | None = Field(default=None, max_length=1000)


class AppearanceCreate(AppearanceFields):
    """A new named appearance ('canonical', 'gym', 'evening')."""

    name: str = Field(min_length=1, max_length=60)


class AppearanceUpdate(AppearanceFields):
    """Changes to an appearance (fields left out stay as they are)."""

    name: str | None = Field(default=None, min_length=1, max_length=60)


class AppearancePublic(BaseModel):
    """An appearance as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    character_id: int
    name: str
    face: str
    hair: str
    eyes: str
    skin_tone: str
    body_type: str
    style: str
    clothing: str
    settings: str
    aesthetic: str
    negative_prompt: str
    is_canonical: bool
    canonical_asset_id: int | None
    has_face_embedding: bool
    created_at: datetime
    updated_at: datetime


class AppearancesPublic(BaseModel):
    """A character's appearances."""

    data: list[AppearancePublic]
    count: int


class CanonicalPick(BaseModel):
    """Which image becomes the canonical face (and on which appearance; default: the canonical one)."""

    model_config = ConfigDict(extra="forbid")

    asset_id: int
    appearance_id: int | None = None


class ReferencePhotoPublic(BaseModel):
    """A consented reference photo."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    character_id: int
    asset_id: int
    subject_name: str
    consent_statement: str
    consented_by: int | None
    consented_at: datetime
    file_url: str


class ReferencePhotosPublic(BaseModel):
    """A character's reference photos."""

    data: list[ReferencePhotoPublic]
    count: int


class GenerateImages(BaseModel):
    """Ask for images (purpose 'images') or candidate canonical faces (purpose 'faces')."""

    model_config = ConfigDict(extra="forbid")

    character_id: int
    purpose: Literal["images", "faces"] = "images"
    appearance_id: int | None = None
    brief: str = Field(default="", max_length=1000)
    style: str = Field(default="casual", max_length=32)
    count: int = Field(default=1, ge=1, le=16)
    width: int = Field(default=1024, ge=64, le=4096)
    height: int = Field(default=1024, ge=64, le=4096)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    steps: int | None = Field(default=None, ge=1, le=150)
    guidance: float | None = Field(default=None, ge=0, le=30)
    negative_prompt: str = Field(default="", max_length=1000)
    backend: str = Field(default="", max_length=64)
    model: str = Field(default="", max_length=200)


class StylePublic(BaseModel):
    """A style category and the words it adds to the prompt."""

    name: str
    prompt: str


class MediaSettingsPublic(BaseModel):
    """A character's quality-gate thresholds and preferred image backend/model."""

    character_id: int
    thresholds: dict[str, Any]
    image_backend: str
    image_model: str


class MediaSettingsUpdate(BaseModel):
    """Changes to a character's media settings."""

    model_config = ConfigDict(extra="forbid")

    thresholds: dict[str, Any] | None = None
    image_backend: str | None = Field(default=None, max_length=64)
    image_model: str | None = Field(default=None, max_length=200)


class ImageBackendOption(BaseModel):
    """Options of one configured image backend (no secrets)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, max_length=500)
    model: str | None = Field(default=None, max_length=200)
    device: str | None = Field(default=None, max_length=20)
    models_dir: str | None = Field(default=None, max_length=500)
    face_method: str | None = Field(default=None, max_length=20)


class ImageBackendsUpdate(BaseModel):
    """Owner: the image backends to use, in order, with options and API keys (stored encrypted)."""

    model_config = ConfigDict(extra="forbid")

    order: list[str] = Field(default_factory=list, max_length=10)
    backends: dict[str, ImageBackendOption] = Field(default_factory=dict)
    api_keys: dict[str, str] = Field(default_factory=dict, description="write-only; never returned")


class ImageBackendsPublic(BaseModel):
    """The image-backend configuration and what each registered backend can do."""

    order: list[str]
    backends: dict[str, dict[str, Any]]
    has_api_key: dict[str, bool]
    known: list[dict[str, Any]]
