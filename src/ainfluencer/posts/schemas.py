"""Request and response shapes of /api/v1/posts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["submit", "approve", "request_changes", "reject", "reopen", "schedule"]


class VariantIn(BaseModel):
    """Per-network overrides; a missing field inherits the shared one."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, max_length=70_000)
    title: str | None = Field(None, max_length=200)
    first_comment: str | None = Field(None, max_length=5_000)
    asset_ids: list[int] | None = Field(None, description="vault asset ids for this network only")
    alt_texts: dict[int, str] | None = None


class PostCreate(BaseModel):
    """A new post (a draft unless ``submit`` is true)."""

    model_config = ConfigDict(extra="forbid")

    character_id: int
    text: str = Field("", max_length=70_000)
    title: str = Field("", max_length=200)
    first_comment: str = Field("", max_length=5_000)
    variants: dict[str, VariantIn] = Field(default_factory=dict, description="by network name, e.g. \"x\"")
    asset_ids: list[int] = Field(default_factory=list, description="approved vault asset ids (never file paths)")
    alt_texts: dict[int, str] = Field(default_factory=dict, description="alt text by asset id")
    account_ids: list[int] = Field(default_factory=list)
    scheduled_at: datetime | None = Field(None, description="desired time with UTC offset; null: when scheduled")
    timezone: str = Field("", max_length=64, description="IANA zone the time is shown in (default: yours)")
    require_alt_text: bool = True
    submit: bool = Field(False, description="send it to review at once")


class PostUpdate(BaseModel):
    """Changes to a post; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, max_length=70_000)
    title: str | None = Field(None, max_length=200)
    first_comment: str | None = Field(None, max_length=5_000)
    variants: dict[str, VariantIn] | None = None
    asset_ids: list[int] | None = None
    alt_texts: dict[int, str] | None = None
    account_ids: list[int] | None = None
    scheduled_at: datetime | None = None
    clear_scheduled_at: bool = False
    timezone: str | None = Field(None, max_length=64)
    require_alt_text: bool | None = None


class PostAction(BaseModel):
    """A review step; ``note`` is required to request changes and becomes a comment."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=5_000)


class PostBulk(BaseModel):
    """One action on many posts."""

    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=200)
    action: Action
    note: str = Field("", max_length=5_000)


class PostBulkResult(BaseModel):
    """Which posts moved and why the others did not."""

    done: list[int]
    refused: dict[int, str]


class PostEventPublic(BaseModel):
    """One step of a post's life."""

    model_config = ConfigDict(from_attributes=True)

    action: str
    from_status: str
    to_status: str
    actor_id: int | None
    actor: str
    note: str
    at: datetime


class PostCommentCreate(BaseModel):
    """A comment on a post."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=5_000)


class PostCommentPublic(BaseModel):
    """A comment."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int | None
    body: str
    created_at: datetime


class PostPublic(BaseModel):
    """A post and what can be done with it now."""

    id: int
    character_id: int
    status: str
    actions: list[str]
    text: str
    title: str
    first_comment: str
    variants: dict[str, Any]
    asset_ids: list[int]
    alt_texts: dict[str, str]
    account_ids: list[int]
    scheduled_at: datetime | None
    timezone: str
    require_alt_text: bool
    source: str
    generated_text_id: int | None
    automation_run_id: int | None
    publication_ids: list[int]
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class PostDetail(PostPublic):
    """A post with its history and comments."""

    events: list[PostEventPublic]
    comments: list[PostCommentPublic]


class PostsPublic(BaseModel):
    """A page of posts."""

    data: list[PostPublic]
    count: int
