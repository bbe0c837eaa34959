"""Pydantic schemas of the REST API (ORM models live in db/models.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """What went wrong, in words a person can act on."""

    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """Every error response has this shape."""

    error: ErrorBody


class UserPublic(BaseModel):
    """The signed-in user."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    role: str
    email_verified: bool
    timezone: str
    created_at: datetime


class MePublic(UserPublic):
    """The caller, with the scopes of the token used."""

    scopes: list[str]
    token_name: str | None = None


class TokenCreate(BaseModel):
    """A new personal API token."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[Literal["read", "write"]] = Field(default=["read"], min_length=1)
    expires_days: int | None = Field(default=None, ge=1, le=3650)


class TokenPublic(BaseModel):
    """A token as listed (never the secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    auto_approve: bool = Field(False, description="what an assistant creates through MCP with this token lands "
                                                  "approved instead of in review (granted by the owner only)")


class TokenUpdate(BaseModel):
    """Change a token: grant or withdraw auto-approval (the owner, signed in; never with an API token)."""

    model_config = ConfigDict(extra="forbid")

    auto_approve: bool


class TokenCreated(TokenPublic):
    """The token just created; ``token`` is shown only this once."""

    token: str


class TokensPublic(BaseModel):
    """A list of tokens."""

    data: list[TokenPublic]
    count: int


class JobCreate(BaseModel):
    """Start a job of a kind users may start directly."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["selftest", "backup"]
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class JobPublic(BaseModel):
    """A job's visible state."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    attempts: int
    max_attempts: int
    progress: int
    progress_message: str
    last_error: str
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any]
    idempotency_key: str | None


class JobsPublic(BaseModel):
    """A page of jobs."""

    data: list[JobPublic]
    count: int
