"""Mastodon: an account on the user's own instance, through the REST API (Mastodon.py).

Mastodon.py is synchronous, so every call runs in a worker thread (``asyncio.to_thread``) through
one choke point, :meth:`MastodonAdapter._call`, which sets an explicit timeout, asks the SDK to
*throw* on 429 instead of sleeping, and maps errors to the three kinds.

Decisions
- AI label: the Mastodon API has no AI-content flag (``supports_ai_label`` False). What it has is
  the account-level ``bot`` flag ("automated account"): ``connect`` reports it as
  ``AccountInfo.is_bot_flagged`` and :meth:`MastodonAdapter.ensure_bot_flag` sets it. The
  disclosure line stays in the profile note and, where the core adds it, the text.
- Idempotency: ``status_post`` sends our marker as ``Idempotency-Key``; Mastodon keeps the key for
  about an hour and answers a repeated POST with the status it already created.
- Reconciliation: nothing invisible can be attached to a status, so ``find_published`` pages
  through the account's own recent statuses (newest first, back to ``since`` minus two minutes of
  clock skew) and matches the visible text (HTML reduced to text, whitespace folded) and the number
  of attachments. ``reconcile_proves_absence`` is True: ``GET /api/v1/accounts/:id/statuses`` is
  read from the instance's own database (no search index, no lag), includes the account's
  unlisted and private statuses, and is paged until a status older than the window. It cannot
  decide, and says so (:class:`ReconcileUndecided`), when the window holds more than
  ``MAX_SCAN_PAGES`` pages, when the text is empty (nothing to match) or carries @-mentions (the
  HTML shows ``@user`` for ``@user@instance``). A re-send also carries the same Idempotency-Key,
  which the instance honours for about an hour.
- Media: uploaded with ``media_post`` (alt text as ``description``); while the instance is still
  processing (202 on upload, 206 on ``GET /api/v1/media/:id``, ``url`` null) the adapter polls,
  because attaching unprocessed media fails with 422.
- Errors: 401, 403 and (for ``connect``) 404 -> auth; 429 (``X-RateLimit-Reset``), network errors
  and 5xx -> transient; 4xx validation (422, 413 ...) -> permanent.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any, TypeVar
from urllib.parse import urlparse

import requests
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonFileNotFoundError,
    MastodonIllegalArgumentError,
    MastodonIOError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
    MastodonVersionError,
)
from pydantic import SecretStr

from ainfluencer.logging_setup import redact
from ainfluencer.platforms.base import (
    AccountInfo,
    Capabilities,
    Credentials,
    MediaItem,
    MediaKind,
    PlatformAdapter,
    PlatformAuthError,
    PlatformError,
    PlatformPermanentError,
    PlatformTransientError,
    PostRequest,
    PublishResult,
    PublishState,
    RateLimit,
    ReconcileUndecided,
)
from ainfluencer.platforms.counting import graphemes
from ainfluencer.platforms.mastodon.rules import POST

log = logging.getLogger(__name__)
T = TypeVar("T")

SCOPES = ["read", "write"]  # write covers write:statuses, write:media and write:accounts (bot flag)
USER_AGENT = "AInfluencer (+https://github.com/ainfluencer)"
REQUEST_TIMEOUT = 60.0
URL_CHARS = 23  # Mastodon counts every link as 23 characters
VISIBILITIES = frozenset({"public", "unlisted", "private", "direct"})
CLOCK_SKEW = timedelta(minutes=2)
MAX_SCAN_PAGES = 10
_MENTION_RE = re.compile(r"(?<![\w/])@\w")

_URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)
_MENTION_RE = re.compile(r"(?<![\w@])@(\w+)@[\w.-]+\w", re.UNICODE)


def status_length(text: str) -> int:
    """Characters as Mastodon's StatusLengthValidator counts them (grapheme clusters).

    Links count 23 and remote mentions only their username.
    """
    text = _URL_RE.sub("x" * URL_CHARS, text)
    text = _MENTION_RE.sub(r"@\1", text)
    return len(graphemes(text))


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "p"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> str:
    """The visible text of a status' HTML ``content``."""
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    return html.unescape("".join(parser.parts)).strip()


def _fold(text: str) -> str:
    return " ".join(text.split())


def same_text(content_html: str, text: str) -> bool:
    """Whether a status' HTML shows ``text`` (whitespace-insensitive)."""
    return _fold(html_to_text(content_html)) == _fold(text)


def _refuse_path_like(value: str, what: str) -> None:
    # Mastodon.py treats an access token or client id that names an existing file as that file and
    # reads the secret from it; a stored credential must never make it read local files.
    if value and os.path.isfile(value):
        raise PlatformAuthError(f"The stored Mastodon {what} is not valid; reconnect the account.")


def _retry_after(client: Mastodon | None) -> float | None:
    reset = getattr(client, "ratelimit_reset", None) if client is not None else None
    if reset is None:
        return None
    return max(0.0, float(reset) - time.time())


def map_error(exc: MastodonError, *, client: Mastodon | None = None, verifying: bool = False) -> PlatformError:
    """The one PlatformError kind a Mastodon.py exception stands for."""
    args = exc.args
    status = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    detail = args[3] if len(args) > 3 and args[3] else (args[2] if len(args) > 2 else "")
    message = redact(str(detail or (args[0] if args else exc)))
    if isinstance(exc, MastodonRatelimitError):
        wait = _retry_after(client)
        return PlatformTransientError(
            "Mastodon rate limit reached." + (f" Retry in {wait:.0f} s." if wait is not None else ""),
            retry_after=wait,
            platform_message=message,
            status=429,
        )
    if isinstance(exc, MastodonNetworkError):  # before MastodonIOError, its parent
        return PlatformTransientError("Network error talking to the Mastodon instance.", platform_message=message)
    if isinstance(exc, MastodonFileNotFoundError | MastodonIllegalArgumentError):
        return PlatformPermanentError("Mastodon.py refused the request.", platform_message=message)
    if isinstance(exc, MastodonIOError):
        return PlatformPermanentError("A media file could not be read.", platform_message=message)
    if isinstance(exc, MastodonUnauthorizedError):
        return PlatformAuthError("The Mastodon token was rejected or revoked.", platform_message=message, status=401)
    if isinstance(exc, MastodonNotFoundError) and verifying:
        return PlatformAuthError("The Mastodon account was not found.", platform_message=message, status=404)
    if isinstance(exc, MastodonServerError):
        return PlatformTransientError("The Mastodon instance had an error.", platform_message=message, status=status)
    if isinstance(exc, MastodonAPIError):
        if status == 403:
            return PlatformAuthError(
                "The Mastodon instance refused this account (suspended, disabled or missing scope).",
                platform_message=message,
                status=403,
            )
        if status is None:  # an unparsable answer, not a refusal: worth one more try later
            return PlatformTransientError("Unexpected answer from the Mastodon instance.", platform_message=message)
        if status == 429:
            return PlatformTransientError(
                "Mastodon rate limit reached.", retry_after=_retry_after(client), platform_message=message, status=429
            )
        if status in (408, 425) or status >= 500:
            return PlatformTransientError(
                "The Mastodon instance had an error.", platform_message=message, status=status
            )
        return PlatformPermanentError(
            "The Mastodon instance refused the request.", platform_message=message, status=status
        )
    return PlatformPermanentError("Mastodon.py failed.", platform_message=message)


def _detect_version(client: Mastodon) -> None:
    """Learn the server's version up front (GET /api/v1/instance), so Mastodon.py never guesses it later.

    Mastodon.py 2.x detects the version lazily inside ``media_post`` and recurses without end when
    that instance request fails; asking first with ``fail_hard`` turns such a failure into an
    ordinary, mappable error.
    """
    try:
        client.retrieve_mastodon_version(fail_hard=True)
    except MastodonVersionError as exc:
        if (client.mastodon_major, client.mastodon_minor, client.mastodon_patch) != (1, 0, 0):
            return  # v1 answered; only the optional v2 document failed
        if isinstance(exc.__cause__, MastodonError):
            raise exc.__cause__ from exc
        raise


def _media_limit(item: MediaItem) -> int:
    caps = MastodonAdapter.capabilities
    return caps.max_image_bytes if item.kind is MediaKind.image else caps.max_video_bytes


def _check_media_files(media: Sequence[MediaItem]) -> None:
    """Refuse missing or oversized files before any upload (runs in a worker thread)."""
    for item in media:
        try:
            size, limit = item.path.stat().st_size, _media_limit(item)
        except OSError as exc:
            raise PlatformPermanentError(f"Cannot read media file {item.path.name}: {exc.strerror}") from exc
        if size > limit:
            raise PlatformPermanentError(
                f"{item.path.name} is {size} bytes; Mastodon accepts at most {limit} bytes for a {item.kind.value} "
                "(default instance limits)."
            )


class MastodonAdapter(PlatformAdapter):
    """An account on a Mastodon instance (OAuth app registered on that instance)."""

    name = "mastodon"
    display_name = "Mastodon"
    reconcile_proves_absence = True  # the account's statuses are read from the instance's database
    capabilities = Capabilities(
        # Defaults of a stock Mastodon 4.3+ instance, as /api/v2/instance reports them
        # (configuration.statuses / configuration.media_attachments); instances may differ.
        max_text_chars=POST.max_length,
        text_counting=POST.counting,
        media_kinds=frozenset({MediaKind.image, MediaKind.video, MediaKind.gif}),
        max_media=4,
        max_image_bytes=16 * 1024 * 1024,  # image_size_limit 16777216
        max_video_bytes=99 * 1024 * 1024,  # video_size_limit 103809024
        supports_alt_text=True,
        max_alt_text_chars=1500,  # description_limit
        supports_first_comment=False,
        supports_ai_label=False,
        supports_delete=True,
        connect_method="oauth2",
        rate_limits=(
            # docs.joinmastodon.org/api/rate-limits: per account
            RateLimit("api", 300, 300),
            RateLimit("media", 30, 1800),
            RateLimit("delete", 30, 1800),
        ),
        notes=(
            "No AI-content label in the API: mark the account as a bot (ensure_bot_flag) and keep the "
            "disclosure in the profile. Links count as 23 characters. Up to 4 images, or one video/GIF alone. "
            "Instance admins may change text and media limits. The publication marker is sent as "
            "Idempotency-Key (kept about an hour); reconciliation matches text in the account's recent posts."
        ),
    )

    def __init__(self, credentials: Credentials, **transport: Any) -> None:
        super().__init__(credentials, **transport)
        self._api: Mastodon | None = None
        self._version_known = False

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def instance_url(self) -> str:
        """The instance's base URL (``credentials.extra['instance_url']``)."""
        url = self.credentials.extra.get("instance_url", "").strip().rstrip("/")
        if not url:
            raise PlatformPermanentError("No Mastodon instance URL is stored for this account.")
        return url

    def _client(self) -> Mastodon:
        if self._api is None:
            token = self.credentials.access_token
            if token is None or not token.get_secret_value():
                raise PlatformAuthError("No Mastodon access token is stored for this account.")
            _refuse_path_like(token.get_secret_value(), "access token")
            self._api = Mastodon(
                access_token=token.get_secret_value(),
                api_base_url=self.instance_url,
                ratelimit_method="throw",  # never sleep inside a worker; the core schedules the retry
                request_timeout=self.transport.get("request_timeout", REQUEST_TIMEOUT),
                session=self.transport.get("session"),
                user_agent=USER_AGENT,
            )
        return self._api

    async def _call(self, op: str, fn: Callable[..., T], *args: Any, verifying: bool = False, **kwargs: Any) -> T:
        """The choke point: run one SDK call in a thread and map its failure."""
        client = self._api
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except MastodonError as exc:
            raise _logged(op, map_error(exc, client=client, verifying=verifying)) from exc

    # -- contract -----------------------------------------------------------------------------
    async def connect(self) -> AccountInfo:
        """Verify the token (verify_credentials); reports the account's bot flag."""
        client = self._client()
        account = await self._call("connect", client.account_verify_credentials, verifying=True)
        host = urlparse(self.instance_url).netloc
        credentials = Credentials(
            access_token=self.credentials.access_token,
            refresh_token=self.credentials.refresh_token,
            expires_at=self.credentials.expires_at,
            extra={
                **self.credentials.extra,
                "instance_url": self.instance_url,
                "account_id": str(account.id),
                "handle": f"@{account.username}@{host}",
            },
            secret_extra=dict(self.credentials.secret_extra),
        )
        return AccountInfo(
            platform_account_id=f"{account.id}@{host}",
            handle=f"@{account.username}@{host}",
            display_name=account.display_name or account.username,
            profile_url=account.url or "",
            is_bot_flagged=bool(account.bot),
            credentials=credentials,
        )

    async def ensure_bot_flag(self) -> bool:
        """Mark the account as automated ("bot") if it is not yet; returns the flag as the instance now reports."""
        client = self._client()
        account = await self._call("bot_flag", client.account_verify_credentials, verifying=True)
        if account.bot:
            return True
        updated = await self._call("bot_flag", client.account_update_credentials, bot=True)
        return bool(updated.bot)

    async def publish(self, post: PostRequest) -> PublishResult:
        """Upload media (with alt text), wait for processing, then post the status with Idempotency-Key."""
        self._validate(post)
        await asyncio.to_thread(_check_media_files, post.media)
        client = self._client()
        if post.media and not self._version_known:
            await self._call("instance", _detect_version, client)
            self._version_known = True
        media_ids: list[Any] = []
        for item in post.media:
            attachment = await self._call(
                "upload",
                client.media_post,
                str(item.path),
                mime_type=item.mime_type or None,
                description=item.alt_text or None,
                file_name=item.path.name,
            )
            attachment = await self._wait_processed(client, attachment)
            media_ids.append(attachment.id)
        visibility = post.options.get("visibility")
        status = await self._call(
            "post",
            client.status_post,
            post.text,
            media_ids=media_ids or None,
            idempotency_key=post.marker or None,
            visibility=visibility,
            language=post.options.get("language"),
            sensitive=bool(post.options.get("sensitive", False)),
            spoiler_text=post.options.get("spoiler_text"),
        )
        return _result(status)

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Page back through the account's own statuses to ``since`` and match text + attachment count."""
        if not post.text.strip():
            raise ReconcileUndecided("A Mastodon status without text cannot be told apart from others.")
        if _MENTION_RE.search(post.text):
            raise ReconcileUndecided("Mastodon rewrites @-mentions in the visible text, so this status cannot "
                                     "be matched reliably.")
        client = self._client()
        account_id = self.credentials.extra.get("account_id")
        if not account_id:
            account = await self._call("reconcile", client.account_verify_credentials, verifying=True)
            account_id = str(account.id)
        cutoff = since - CLOCK_SKEW
        page: Any = await self._call("reconcile", client.account_statuses, account_id, limit=40, exclude_reblogs=True)
        for _ in range(MAX_SCAN_PAGES):
            if not page:
                return None
            for status in page:
                created = status.created_at
                if isinstance(created, datetime) and created.tzinfo is not None and created < cutoff:
                    return None
                if same_text(status.content or "", post.text) and len(status.media_attachments or []) == len(
                    post.media
                ):
                    return _result(status, detail="found by text among the account's recent statuses")
            page = await self._call("reconcile", client.fetch_next, page)
        if not page:
            return None
        raise ReconcileUndecided(f"More than {MAX_SCAN_PAGES * 40} statuses since the post was sent; the listing "
                                 "was not read to the end.")

    async def delete(self, platform_post_id: str) -> None:
        """Delete the status; one that is already gone counts as deleted."""
        client = self._client()
        try:
            await self._call("delete", client.status_delete, platform_post_id)
        except PlatformPermanentError as exc:
            if exc.status != 404:
                raise

    # -- helpers ------------------------------------------------------------------------------
    @classmethod
    def _validate(cls, post: PostRequest) -> None:
        caps = cls.capabilities
        if not post.text.strip() and not post.media:
            raise PlatformPermanentError("A Mastodon status needs text or media.")
        length = status_length(post.text)
        if length > caps.max_text_chars:
            raise PlatformPermanentError(f"Status is {length} characters; Mastodon allows {caps.max_text_chars}.")
        if len(post.media) > caps.max_media:
            raise PlatformPermanentError(f"{len(post.media)} files; Mastodon allows {caps.max_media} per status.")
        if len(post.media) > 1 and any(item.kind is not MediaKind.image for item in post.media):
            raise PlatformPermanentError("Mastodon takes either up to 4 images or one video/GIF alone.")
        for item in post.media:
            if item.kind not in caps.media_kinds:
                raise PlatformPermanentError(f"Mastodon does not take {item.kind.value} attachments.")
            if len(item.alt_text) > caps.max_alt_text_chars:
                raise PlatformPermanentError(
                    f"Alt text of {item.path.name} is {len(item.alt_text)} characters; "
                    f"Mastodon allows {caps.max_alt_text_chars}."
                )
        visibility = post.options.get("visibility")
        if visibility is not None and visibility not in VISIBILITIES:
            raise PlatformPermanentError(f"Unknown Mastodon visibility {visibility!r}.")

    async def _wait_processed(self, client: Mastodon, attachment: Any) -> Any:
        """Poll ``GET /api/v1/media/:id`` until the instance has processed the upload."""
        interval = float(self.transport.get("poll_interval", 1.0))
        deadline = time.monotonic() + float(self.transport.get("processing_timeout", 300.0))
        while getattr(attachment, "url", None) is None:
            if time.monotonic() > deadline:
                raise PlatformTransientError("The Mastodon instance is still processing the media; try again later.")
            await asyncio.sleep(interval)
            attachment = await self._call("media_status", client.media, attachment.id)
        return attachment


def _result(status: Any, *, detail: str = "") -> PublishResult:
    created = status.get("created_at")
    return PublishResult(
        state=PublishState.published,
        platform_post_id=str(status.id),
        url=status.get("url") or status.get("uri") or "",
        detail=detail,
        raw={
            "id": str(status.id),
            "uri": status.get("uri"),
            "created_at": created.isoformat() if isinstance(created, datetime) else created,
            "visibility": status.get("visibility"),
        },
    )


# -- OAuth app on the user's instance ---------------------------------------------------------


@dataclass(frozen=True)
class MastodonApp:
    """An OAuth application registered on one instance."""

    instance_url: str
    client_id: str
    client_secret: SecretStr


def _allow_http(instance_url: str) -> bool:
    # Only an instance the user configured over plain HTTP (a local test instance) may use HTTP OAuth URLs.
    return urlparse(instance_url).scheme == "http"


async def _oauth_call(op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except MastodonIllegalArgumentError as exc:
        # log_in wraps every failure of the token endpoint in this; the original is its context.
        inner = exc.__context__
        if isinstance(inner, MastodonError) and not isinstance(inner, MastodonIllegalArgumentError):
            mapped = map_error(inner)
            if isinstance(mapped, PlatformTransientError):
                raise mapped from exc
        raise PlatformAuthError(f"The instance refused the {op} request.", platform_message=redact(str(exc))) from exc
    except MastodonAPIError as exc:
        if len(exc.args) < 2 and "scope" in str(exc).lower():  # log_in: fewer scopes granted than asked
            raise PlatformAuthError("The instance granted fewer permissions than needed.") from exc
        raise _logged(op, map_error(exc)) from exc
    except MastodonError as exc:
        raise _logged(op, map_error(exc)) from exc
    except (KeyError, TypeError, ValueError) as exc:  # create_app reads client_id from whatever JSON came back
        raise PlatformPermanentError(f"The instance gave an unexpected answer to the {op} request.") from exc


def _logged(op: str, mapped: PlatformError) -> PlatformError:
    log.info("mastodon %s failed: %s (%s)", op, type(mapped).__name__, mapped.platform_message)
    return mapped


async def register_app(
    instance_url: str,
    redirect_uri: str,
    *,
    app_name: str = "AInfluencer",
    website: str | None = None,
    scopes: Sequence[str] = SCOPES,
    session: requests.Session | None = None,
) -> MastodonApp:
    """Register our OAuth app on the user's instance (POST /api/v1/apps)."""
    base = instance_url.strip().rstrip("/")
    client_id, client_secret = await _oauth_call(
        "app registration",
        Mastodon.create_app,
        app_name,
        scopes=list(scopes),
        redirect_uris=redirect_uri,
        website=website,
        api_base_url=base,
        request_timeout=REQUEST_TIMEOUT,
        session=session,
        user_agent=USER_AGENT,
    )
    return MastodonApp(instance_url=base, client_id=client_id, client_secret=SecretStr(client_secret))


async def auth_url(
    app: MastodonApp,
    redirect_uri: str,
    *,
    state: str,
    scopes: Sequence[str] = SCOPES,
    session: requests.Session | None = None,
) -> str:
    """The instance's authorisation page URL to send the user to (reads the OAuth server metadata)."""
    api = Mastodon(
        api_base_url=app.instance_url, session=session, request_timeout=REQUEST_TIMEOUT, user_agent=USER_AGENT
    )
    _refuse_path_like(app.client_id, "client id")
    url: str = await _oauth_call(
        "authorisation URL",
        api.auth_request_url,
        client_id=app.client_id,
        redirect_uris=redirect_uri,
        scopes=list(scopes),
        state=state,
        allow_http=_allow_http(app.instance_url),
    )
    return url


async def exchange_code(
    app: MastodonApp,
    code: str,
    redirect_uri: str,
    *,
    scopes: Sequence[str] = SCOPES,
    session: requests.Session | None = None,
) -> Credentials:
    """Trade the authorisation code for an access token; returns credentials ready for ``connect``."""
    _refuse_path_like(app.client_id, "client id")
    api = Mastodon(
        client_id=app.client_id,
        client_secret=app.client_secret.get_secret_value(),
        api_base_url=app.instance_url,
        session=session,
        request_timeout=REQUEST_TIMEOUT,
        user_agent=USER_AGENT,
    )
    token: str = await _oauth_call(
        "token",
        api.log_in,
        code=code,
        redirect_uri=redirect_uri,
        scopes=list(scopes),
        allow_http=_allow_http(app.instance_url),
    )
    return Credentials(
        access_token=SecretStr(token),
        extra={"instance_url": app.instance_url, "client_id": app.client_id},
        secret_extra={"client_secret": app.client_secret},
    )
