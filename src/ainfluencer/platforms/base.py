"""The platform adapter contract.

One module per network (``platforms/telegram.py``, ``platforms/x.py`` ...) defines a subclass of
:class:`PlatformAdapter` and registers it in ``platforms/registry.py``. The core never branches on
a platform's name: it reads the class's :class:`Capabilities` to trim, split or refuse content
before anything is queued, and it handles every failure through the three error kinds below.

Rules every adapter follows
- All network traffic goes through one choke point with an explicit timeout, error
  classification and redacted logging (never log a token).
- ``connect`` performs a live check with the credentials *before* they are saved and returns the
  platform's own account id, which the core uses to refuse duplicate accounts.
- ``publish`` receives a ``marker`` (our durable idempotency key for the publication). Adapters
  put it where the platform lets them (client-side ids, idempotency headers, or a hidden field)
  and ``find_published`` uses it (or the returned id) to reconcile a publication whose outcome is
  unknown after a crash, so nothing is ever blindly re-sent. Only an adapter whose listing is
  complete and current sets ``reconcile_proves_absence``; then None means "not there, re-send".
- The AI-content label is set wherever the API has one (``Capabilities.supports_ai_label``), and
  the disclosure line stays in profiles/descriptions.
- Errors map to exactly one of :class:`PlatformAuthError` (reconnect or refresh needed),
  :class:`PlatformTransientError` (retry with backoff, honour ``retry_after``) and
  :class:`PlatformPermanentError` (stop, show the platform's message).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ainfluencer.logging_setup import register_secret


class PlatformError(Exception):
    """Base of adapter failures; ``platform_message`` is the network's own words."""

    def __init__(self, message: str, *, platform_message: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.platform_message = platform_message
        self.status = status


class PlatformAuthError(PlatformError):
    """Credentials rejected or expired: refresh the token or reconnect the account."""


class PlatformTransientError(PlatformError):
    """Worth retrying later (rate limit, 5xx, network drop); ``retry_after`` seconds when known."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class PlatformPermanentError(PlatformError):
    """The request itself is wrong (validation, media rejected, too large): do not retry."""


class ReconcileUndecided(PlatformPermanentError):
    """``find_published`` looked but cannot say either way (listing too long, post not identifiable).

    Raised instead of returning None by adapters with ``reconcile_proves_absence``: the core then
    leaves the publication for a person rather than re-sending it.
    """


class MediaKind(StrEnum):
    """Kinds of media a post can carry."""

    image = "image"
    video = "video"
    gif = "gif"


@dataclass(frozen=True)
class RateLimit:
    """A documented limit: ``requests`` per ``per_seconds`` for ``scope`` (e.g. 'post', 'api')."""

    scope: str
    requests: int
    per_seconds: int


@dataclass(frozen=True)
class Capabilities:
    """What a network accepts, as data the core plans around."""

    max_text_chars: int
    text_counting: str = "chars"  # "chars" | "graphemes" | "x_weighted"
    media_kinds: frozenset[MediaKind] = frozenset()
    max_media: int = 0
    max_image_bytes: int = 0
    max_video_bytes: int = 0
    max_video_seconds: float = 0
    min_video_seconds: float = 0
    video_codecs: frozenset[str] = frozenset()
    requires_media: bool = False
    supports_alt_text: bool = False
    max_alt_text_chars: int = 0
    supports_first_comment: bool = False
    supports_ai_label: bool = False
    supports_delete: bool = True
    needs_public_media_url: bool = False
    async_processing: bool = False
    connect_method: str = "token"  # "token" | "oauth2_pkce" | "oauth2" | "app_password"
    rate_limits: tuple[RateLimit, ...] = ()
    daily_post_cap: int | None = None
    notes: str = ""


@dataclass
class Credentials:
    """What the secrets service stores for an account; secret values mask themselves."""

    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    expires_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)  # non-secret ids: chat id, page id, instance URL, handle
    secret_extra: dict[str, SecretStr] = field(default_factory=dict)  # e.g. app password, client secret


@dataclass
class AccountInfo:
    """The identity a live check found."""

    platform_account_id: str
    handle: str
    display_name: str = ""
    profile_url: str = ""
    is_bot_flagged: bool | None = None
    credentials: Credentials | None = None  # possibly refreshed/enriched during connect


@dataclass
class MediaItem:
    """One file to attach."""

    path: Path
    kind: MediaKind
    mime_type: str
    alt_text: str = ""
    public_url: str = ""  # for networks that fetch media themselves (Instagram)
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class PostRequest:
    """One publication to one account."""

    text: str
    media: list[MediaItem] = field(default_factory=list)
    marker: str = ""  # our idempotency key, stable across retries of the same publication
    ai_generated: bool = True
    first_comment: str = ""
    title: str = ""  # video networks
    tags: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # per-network extras (post type: reel/story/short ...)


class PublishState(StrEnum):
    """Where a publication stands on the network."""

    published = "published"
    processing = "processing"  # accepted, network still processing (Instagram container, YouTube upload)
    failed = "failed"


@dataclass
class PublishResult:
    """What the network said."""

    state: PublishState
    platform_post_id: str = ""
    url: str = ""
    detail: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class PlatformAdapter(abc.ABC):
    """One network. Subclasses set ``name``, ``display_name`` and ``capabilities``."""

    name: str = ""
    display_name: str = ""
    capabilities: Capabilities
    #: The ``credentials.extra`` key holding a per-account API server URL ("" when the network has
    #: none). The core checks it like any outbound destination a person typed, before connecting.
    server_url_key: str = ""
    #: True when ``find_published`` returning None *proves* the post is not on the network (the
    #: listing it reads is complete and current back to ``since``), so the core may re-send. Such an
    #: adapter raises :class:`ReconcileUndecided` (or a transient error) whenever it cannot be sure.
    reconcile_proves_absence: bool = False

    def __init__(self, credentials: Credentials, **transport: Any) -> None:
        """``transport`` injects clients/base URLs so tests can point the SDK at a local server."""
        self.credentials = credentials
        # Whatever an SDK logs about its requests, the credentials it was handed are masked.
        for value in (credentials.access_token, credentials.refresh_token, *credentials.secret_extra.values()):
            if value is not None:
                register_secret(value.get_secret_value())
        self.transport = transport

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.credentials.extra.get('handle', '')!r}>"

    @abc.abstractmethod
    async def connect(self) -> AccountInfo:
        """Live-check the credentials and return the platform's account identity."""

    @abc.abstractmethod
    async def publish(self, post: PostRequest) -> PublishResult:
        """Publish; must raise one of the three PlatformError kinds on failure."""

    async def check_status(self, platform_post_id: str) -> PublishResult:
        """Poll an asynchronous publication (override where ``async_processing``)."""
        return PublishResult(state=PublishState.published, platform_post_id=platform_post_id)

    @abc.abstractmethod
    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Reconcile an unknown outcome: the post carrying ``post.marker`` (or None if it is not there)."""

    @abc.abstractmethod
    async def delete(self, platform_post_id: str) -> None:
        """Remove a published post."""

    async def refresh(self) -> Credentials:
        """Refresh an expiring token; networks without refresh raise PlatformAuthError."""
        raise PlatformAuthError(f"{self.display_name} tokens cannot be refreshed; reconnect the account.")
