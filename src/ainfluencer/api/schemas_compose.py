"""Schemas of the compose API: the live per-network preview and starting an OAuth connect."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ComposeVariantIn(BaseModel):
    """Per-network overrides; omitted (or empty) fields inherit the shared ones."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, max_length=70000)
    title: str | None = Field(None, max_length=200)
    first_comment: str | None = Field(None, max_length=5000)
    asset_ids: list[int] | None = Field(None, max_length=20, description="vault assets for this network only")
    alt_texts: dict[int, str] = Field(default_factory=dict, description="alt text per asset id for this network")


class ComposeDraftIn(BaseModel):
    """A post for one or many accounts: shared fields, per-network variants, and when."""

    model_config = ConfigDict(extra="forbid")

    character_id: int | None = Field(None, description="when set, every account must belong to this character")
    account_ids: list[int] = Field(default_factory=list, max_length=50)
    text: str = Field("", max_length=70000)
    title: str = Field("", max_length=200)
    first_comment: str = Field("", max_length=5000)
    asset_ids: list[int] = Field(default_factory=list, max_length=20, description="approved vault assets")
    alt_texts: dict[int, str] = Field(default_factory=dict, description="alt text per asset id")
    variants: dict[str, ComposeVariantIn] = Field(default_factory=dict, description="by platform name (x, bluesky ...)")
    publish_now: bool = True
    local_time: str = Field("", max_length=40, description="wall-clock time like 2030-01-31T14:00 in `timezone`")
    timezone: str = Field("UTC", max_length=64, description="IANA zone name, e.g. Europe/Berlin")
    require_alt_text: bool = Field(True, description="treat images without alt text as a problem where supported")
    ai_generated: bool = True


class ComposeMediaPublic(BaseModel):
    """One attached asset as a target carries it."""

    asset_id: int
    kind: str
    name: str
    alt_text: str
    url: str


class ComposeTargetPublic(BaseModel):
    """One account's rendering: text as the network counts it, and its validation result."""

    account_id: int
    platform: str
    platform_name: str
    handle: str
    text: str
    title: str
    first_comment: str
    length: int = Field(description="text length as this network counts it")
    limit: int
    counting: str = Field(description="how the length is counted (characters, graphemes, weighted, bytes)")
    over: bool
    title_length: int | None
    title_limit: int | None
    media: list[ComposeMediaPublic]
    problems: list[str] = Field(description="everything that would stop this target; empty when it is ready")
    notes: list[str]
    ok: bool


class ComposePreviewPublic(BaseModel):
    """Every target's preview; ``ok`` only when nothing at all stands in the way."""

    ok: bool
    problems: list[str] = Field(description="problems of the whole post (schedule, accounts, assets)")
    scheduled_at: datetime | None = Field(description="UTC; null means now")
    targets: list[ComposeTargetPublic]


class OAuthStartIn(BaseModel):
    """Start an OAuth connect for a character (or a reconnect of one account)."""

    model_config = ConfigDict(extra="forbid")

    character_id: int
    instance_url: str = Field("", max_length=200, description="Mastodon only: the person's instance")
    account_id: int | None = Field(None, description="reconnect this account instead of connecting a new one")


class OAuthStartPublic(BaseModel):
    """Where to send the person's browser; the network returns it to ``redirect_uri`` (signed in to this app)."""

    authorize_url: str
    state: str
    expires_at: datetime
    redirect_uri: str
