"""Schemas of the publishing API: accounts, publications and webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

# ---- accounts ---------------------------------------------------------------------------------


class CredentialsIn(BaseModel):
    """Credentials for a live check; secret values are never echoed back."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr | None = Field(None, description="access token, bot token or app password")
    refresh_token: SecretStr | None = None
    expires_at: datetime | None = None
    extra: dict[str, str] = Field(default_factory=dict,
                                  description="non-secret ids: chat_id, page_id, instance_url, handle ...; "
                                              "Telegram: api_url, a self-hosted Bot API server")
    secret_extra: dict[str, SecretStr] = Field(default_factory=dict, description="e.g. client_secret")


class AccountConnect(BaseModel):
    """Connect a platform account to a character (checked live before it is saved)."""

    model_config = ConfigDict(extra="forbid")

    character_id: int
    platform: str = Field(min_length=1, max_length=32)
    credentials: CredentialsIn


class AccountReconnect(BaseModel):
    """New credentials for the same platform account."""

    model_config = ConfigDict(extra="forbid")

    credentials: CredentialsIn


class RateBudgetPublic(BaseModel):
    """One token bucket: how many publishes are available now."""

    scope: str
    capacity: float
    available: float
    refill_per_s: float
    full_in_s: float


class AccountPublic(BaseModel):
    """A connected account (never its tokens)."""

    id: int
    character_id: int
    platform: str
    platform_name: str
    platform_account_id: str
    handle: str
    display_name: str
    profile_url: str
    status: str
    is_bot_flagged: bool | None
    token_expires_at: datetime | None
    last_checked_at: datetime | None
    last_error: str
    rate_limited_until: datetime | None
    extra: dict[str, Any]
    capabilities: dict[str, Any]
    rate_budget: list[RateBudgetPublic]
    created_at: datetime


class AccountsPublic(BaseModel):
    """A list of accounts."""

    data: list[AccountPublic]
    count: int


class PlatformPublic(BaseModel):
    """A network the install can publish to, with its capability data."""

    name: str
    display_name: str
    capabilities: dict[str, Any]


class PlatformsPublic(BaseModel):
    """Every registered network."""

    data: list[PlatformPublic]


class ChatDiscovery(BaseModel):
    """Ask a bot token which chats it has seen (Telegram)."""

    model_config = ConfigDict(extra="forbid")

    platform: str = "telegram"
    token: SecretStr
    api_url: str = Field("", max_length=500, description="the bot's own Bot API server (default the public one, "
                         "https://api.telegram.org); pass the same value as credentials.extra.api_url when connecting")


class ChatsPublic(BaseModel):
    """Chats a bot has seen in its pending updates."""

    data: list[dict[str, Any]]


# ---- publications -----------------------------------------------------------------------------


class MediaIn(BaseModel):
    """One vault asset to attach, named by its ``asset_id`` (never by a file path).

    Upload or generate the file into the vault first (``POST /api/v1/assets``), approve it, then pass the
    ``asset_id`` that ``GET /api/v1/assets`` shows. The server reads the file, its type and size from the
    asset; an asset you may not see, or one that is not approved, is refused with a 422 naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    asset_id: int = Field(description="the vault asset's id (``asset_id`` in ``GET /api/v1/assets``)")
    kind: Literal["image", "video", "gif"] | None = Field(
        None, description="how to send it when the file's type does not say (default: from the asset)")
    alt_text: str = Field("", max_length=5000, description="text for people who use screen readers")


class TargetIn(BaseModel):
    """One account; any field set here replaces the shared one for this network (a variant)."""

    model_config = ConfigDict(extra="forbid")

    account_id: int
    text: str | None = Field(None, max_length=100_000)
    title: str | None = Field(None, max_length=200)
    media: list[MediaIn] | None = Field(None, max_length=20)
    options: dict[str, Any] | None = None
    first_comment: str | None = Field(None, max_length=10_000)
    tags: list[str] | None = Field(None, max_length=100)


class PublicationCreate(BaseModel):
    """Publish to one or many accounts now (``scheduled_at`` empty) or at a time with an offset."""

    model_config = ConfigDict(extra="forbid")

    targets: list[TargetIn] = Field(min_length=1, max_length=50)
    character_id: int | None = Field(None, description="when set, every account must belong to this character")
    text: str = Field("", max_length=100_000)
    title: str = Field("", max_length=200)
    media: list[MediaIn] = Field(default_factory=list, max_length=20)
    options: dict[str, Any] = Field(default_factory=dict)
    first_comment: str = Field("", max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=100)
    ai_generated: bool = True
    scheduled_at: datetime | None = None


class PublicationReschedule(BaseModel):
    """A new time (with offset)."""

    model_config = ConfigDict(extra="forbid")

    scheduled_at: datetime


class PublicationMarkPublished(BaseModel):
    """A person confirms the post exists on the network."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field("", max_length=1000)
    platform_post_id: str = Field("", max_length=255)


class PublicationEventPublic(BaseModel):
    """One step of a publication's history."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    from_status: str
    to_status: str
    actor: str
    detail: dict[str, Any]


class PublicationPublic(BaseModel):
    """A publication's state."""

    id: int
    group_key: str
    character_id: int
    account_id: int
    platform: str
    account_handle: str
    status: str
    needs_person: bool
    actions: list[str]
    text: str
    title: str
    media: list[dict[str, Any]]
    options: dict[str, Any]
    ai_generated: bool
    scheduled_at: datetime
    idempotency_key: str | None
    generation: int
    attempts: int
    next_attempt_at: datetime | None
    platform_post_id: str
    url: str
    last_error: str
    platform_message: str
    sending_started_at: datetime | None
    published_at: datetime | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class PublicationDetail(PublicationPublic):
    """A publication with its history."""

    events: list[PublicationEventPublic]


class PublicationsPublic(BaseModel):
    """A page of publications."""

    data: list[PublicationPublic]
    count: int


# ---- webhooks ---------------------------------------------------------------------------------

WebhookEvent = Literal["publication.published", "publication.failed", "publication.unknown"]


class WebhookCreate(BaseModel):
    """A URL told about publication outcomes, signed with a secret shown once."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=1000)
    events: list[WebhookEvent] | None = None
    description: str = Field("", max_length=200)
    active: bool = True


class WebhookUpdate(BaseModel):
    """Change a webhook."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=1000)
    events: list[WebhookEvent] | None = None
    description: str | None = Field(None, max_length=200)
    active: bool | None = None


class WebhookPublic(BaseModel):
    """A webhook (never its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    """The new webhook with its signing secret: store it now, it is not shown again."""

    secret: str
    signature_header: str = "X-AInfluencer-Signature"
    timestamp_header: str = "X-AInfluencer-Timestamp"


class WebhooksPublic(BaseModel):
    """The caller's webhooks."""

    data: list[WebhookPublic]


class WebhookDeliveryPublic(BaseModel):
    """One delivery attempt series."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    event: str
    status: str
    attempts: int
    response_status: int | None = Field(description="the endpoint's HTTP status (its body is never stored)")
    duration_ms: int | None = Field(None, description="how long the last attempt took")
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveriesPublic(BaseModel):
    """Latest deliveries of a webhook."""

    data: list[WebhookDeliveryPublic]
