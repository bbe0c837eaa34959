"""Bluesky: an AT Protocol account signed in with a handle and an *app password* (atproto SDK).

Uses the SDK's ``AsyncClient``: ``com.atproto.server.createSession`` to sign in,
``com.atproto.repo.uploadBlob`` for images, ``com.atproto.repo.createRecord`` of an
``app.bsky.feed.post`` record (image embed with alt text, link/hashtag facets at UTF-8 byte
offsets, ``langs``, self-labels), ``listRecords`` to reconcile and ``deleteRecord`` to delete.

Decisions
- AI label: Bluesky's self-label values (``com.atproto.label.defs#selfLabels``) are content
  warnings for adult or graphic media only (``!no-unauthenticated``, ``porn``, ``sexual``,
  ``nudity``, ``graphic-media``). There is no standard value for AI-generated content, and an
  invented value would be ignored by the app view, so ``supports_ai_label`` is False and the
  disclosure stays in the text and in the profile description. Self-labels asked for in
  ``post.options["self_labels"]`` are checked against that list and written to the record.
- Sessions: the access/refresh JWTs live in ``Credentials.access_token``/``refresh_token`` and
  are reused, because ``createSession`` is limited to 30 per 5 minutes per handle. The SDK
  refreshes an access token shortly before it expires; when the PDS still answers
  ``ExpiredToken``/``InvalidToken``, the adapter refreshes (``refreshSession``) and, failing that,
  signs in again with the app password, then repeats the request once. Renewed tokens are written
  back to ``self.credentials``.
- An account password (session scope ``com.atproto.access``) is refused: only app passwords
  (``com.atproto.appPass*``) are accepted.
- Reconciliation: ``app.bsky.feed.post`` record keys are TIDs, so a key cannot be derived from the
  marker. ``find_published`` lists the account's own post records (newest first) back to ``since``
  minus two minutes and matches the exact text and the number of images.
  ``reconcile_proves_absence`` is True: ``com.atproto.repo.listRecords`` reads the account's repo
  on its own PDS, the authoritative copy that ``createRecord`` writes in the same transaction (no
  app-view or firehose lag), and the record text is exactly the text we sent. It cannot decide
  (:class:`ReconcileUndecided`) when the window holds more than ``MAX_SCAN_PAGES`` pages or the
  text is empty.
- Media: images only (≤ 1,000,000 bytes each, ≤ 4, lexicon ``app.bsky.embed.images``); video needs
  Bluesky's separate video service and is not offered.
- Errors: 401/403, ``ExpiredToken``/``InvalidToken``/``AuthenticationRequired`` -> auth; 429
  (``ratelimit-reset``/``Retry-After``), 5xx and network failures -> transient; 400
  ``InvalidRequest``/``BlobTooLarge`` and 413 -> permanent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from atproto_client import AsyncClient, models
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import (
    LoginRequiredError,
    ModelError,
    RateLimitExceededError,
    RequestErrorBase,
)
from atproto_client.models.common import XrpcError
from atproto_client.request import AsyncRequest
from atproto_client.utils import facet_detection
from atproto_core.exceptions import AtProtocolError
from atproto_core.uri import AtUri
from atproto_server.auth.jwt import get_jwt_payload
from atproto_server.exceptions import InvalidTokenError
from pydantic import SecretStr, ValidationError

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
from ainfluencer.platforms.bluesky.rules import POST

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_SERVICE = "https://bsky.social"
POST_COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES = POST.max_length  # lexicon app.bsky.feed.post#text maxGraphemes
MAX_TEXT_BYTES = 3000  # lexicon app.bsky.feed.post#text maxLength (UTF-8 bytes)
MAX_LANGS = 3
SELF_LABEL_VALUES = frozenset({"!no-unauthenticated", "porn", "sexual", "nudity", "graphic-media"})
SESSION_EXPIRED_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
AUTH_ERRORS = frozenset({"AuthenticationRequired", "AuthFactorTokenRequired", "AccountTakedown", "AccountDeactivated"})
CLOCK_SKEW = timedelta(minutes=2)
MAX_SCAN_PAGES = 10
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class SessionExpiredError(PlatformAuthError):
    """The access session is no longer accepted; a refresh or a new sign-in may fix it."""


def _xrpc_error(exc: RequestErrorBase) -> tuple[int | None, str, str]:
    response = exc.response
    if response is None:
        return None, "", str(exc)
    content = response.content
    if isinstance(content, XrpcError):
        return response.status_code, content.error or "", content.message or content.error or ""
    return response.status_code, "", str(exc)


def _rate_limit_wait(exc: RequestErrorBase) -> float | None:
    if isinstance(exc, RateLimitExceededError):
        if exc.retry_after is not None:
            return exc.retry_after
        if exc.reset_at is not None:
            return max(0.0, (exc.reset_at - datetime.now(UTC)).total_seconds())
    return None


def map_error(exc: BaseException) -> PlatformError:
    """The one PlatformError kind an atproto SDK (or httpx) exception stands for."""
    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, LoginRequiredError | InvalidTokenError):
        return SessionExpiredError("The Bluesky session is missing or unreadable.", platform_message=redact(str(exc)))
    if isinstance(exc, RequestErrorBase):
        status, error, message = _xrpc_error(exc)
        message = redact(message)
        if status is None:  # transport failure (timeout, connection dropped)
            return PlatformTransientError("Network error talking to Bluesky.", platform_message=message)
        if error in SESSION_EXPIRED_ERRORS:
            return SessionExpiredError("The Bluesky session expired.", platform_message=message, status=status)
        if error in AUTH_ERRORS or status in (401, 403):
            return PlatformAuthError("Bluesky refused the credentials.", platform_message=message, status=status)
        if status == 429:
            wait = _rate_limit_wait(exc)
            return PlatformTransientError(
                "Bluesky rate limit reached." + (f" Retry in {wait:.0f} s." if wait is not None else ""),
                retry_after=wait,
                platform_message=message,
                status=429,
            )
        if status == 413 or error == "BlobTooLarge":
            return PlatformPermanentError(
                "Bluesky refused the file as too large.", platform_message=message, status=status
            )
        if status in (408, 425) or status >= 500:
            return PlatformTransientError("Bluesky had a server error.", platform_message=message, status=status)
        return PlatformPermanentError("Bluesky refused the request.", platform_message=message, status=status)
    if isinstance(exc, httpx.TransportError):  # the SDK lets some transport errors through unwrapped
        return PlatformTransientError("Network error talking to Bluesky.", platform_message=redact(str(exc)))
    if isinstance(exc, ModelError):  # an answer the SDK could not read
        return PlatformTransientError("Unexpected answer from Bluesky.", platform_message=redact(str(exc)))
    return PlatformPermanentError("The Bluesky request failed.", platform_message=redact(str(exc)))


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _field(obj: Any, name: str, alias: str = "") -> Any:
    if isinstance(obj, dict):
        return obj.get(alias or name)
    return getattr(obj, name, None)


def post_url(did: str, uri: str) -> str:
    """The bsky.app link of a post record."""
    return f"https://bsky.app/profile/{did}/post/{AtUri.from_str(uri).rkey}"


def _read_images(media: Sequence[MediaItem]) -> list[bytes]:
    """Read the images, refusing what the lexicon refuses (runs in a worker thread)."""
    limit = BlueskyAdapter.capabilities.max_image_bytes
    blobs: list[bytes] = []
    for item in media:
        try:
            size = item.path.stat().st_size
            if size > limit:
                raise PlatformPermanentError(
                    f"{item.path.name} is {size} bytes; Bluesky accepts images up to {limit} bytes."
                )
            blobs.append(item.path.read_bytes())
        except OSError as exc:
            raise PlatformPermanentError(f"Cannot read media file {item.path.name}: {exc.strerror}") from exc
    return blobs


class BlueskyAdapter(PlatformAdapter):
    """A Bluesky (AT Protocol) account, signed in with an app password."""

    name = "bluesky"
    display_name = "Bluesky"
    reconcile_proves_absence = True  # listRecords reads the repo on its own PDS
    capabilities = Capabilities(
        # Lexicons app.bsky.feed.post (text: 300 graphemes / 3000 bytes) and app.bsky.embed.images
        # (≤ 4 images, blob maxSize 1,000,000); alt text: the Bluesky app's 2000-character limit.
        max_text_chars=POST.max_length,
        text_counting=POST.counting,
        media_kinds=frozenset({MediaKind.image}),
        max_media=4,
        max_image_bytes=1_000_000,
        supports_alt_text=True,
        max_alt_text_chars=2000,
        supports_first_comment=False,
        supports_ai_label=False,
        supports_delete=True,
        connect_method="app_password",
        rate_limits=(
            # docs.bsky.app/docs/advanced-guides/rate-limits: 5000 points/h, 35000/day, a create costs 3.
            RateLimit("post", 1666, 3600),
            RateLimit("post_daily", 11666, 86400),
            RateLimit("session", 30, 300),  # createSession per handle
            RateLimit("api", 3000, 300),  # per IP, all routes
        ),
        notes=(
            "No AI-content label exists (self-labels are adult/graphic content warnings only): keep the "
            "disclosure in the text and profile. Images only, each at most 1,000,000 bytes. Sign in with an "
            "app password, never the account password. Reconciliation matches the exact text among the "
            "account's recent post records (record keys are TIDs, so the marker cannot be the key)."
        ),
    )

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def service_url(self) -> str:
        """The PDS or entryway the account signs in at."""
        return str(self.transport.get("base_url") or self.credentials.extra.get("service") or DEFAULT_SERVICE)

    @property
    def _identifier(self) -> str:
        handle = self.credentials.extra.get("handle", "").strip().lstrip("@")
        if not handle:
            raise PlatformAuthError("No Bluesky handle is stored for this account.")
        return handle

    def _new_client(self) -> AsyncClient:
        client = AsyncClient(
            base_url=self.service_url, request=AsyncRequest(timeout=self.transport.get("timeout", TIMEOUT))
        )
        client.on_session_change(self._on_session_change)
        return client

    def _on_session_change(self, event: SessionEvent, session: Session) -> None:
        """Keep renewed tokens in ``self.credentials`` so the caller can store them."""
        self._store_session(session)

    def _store_session(self, session: Session) -> None:
        expires = None
        try:
            exp = get_jwt_payload(session.access_jwt).exp
            expires = datetime.fromtimestamp(exp, tz=UTC) if exp else None
        except InvalidTokenError:
            pass
        creds = self.credentials
        creds.access_token = SecretStr(session.access_jwt)
        creds.refresh_token = SecretStr(session.refresh_jwt)
        creds.expires_at = expires
        creds.extra = {
            **creds.extra,
            "did": session.did,
            "handle": session.handle,
            "pds_endpoint": session.pds_endpoint or "",
        }

    async def _sign_in(self, client: AsyncClient) -> None:
        """Sign in (createSession) with the app password; refuses a session made with the account password."""
        password = self.credentials.secret_extra.get("app_password")
        if password is None or not password.get_secret_value():
            raise PlatformAuthError("No Bluesky app password is stored; reconnect the account.")
        try:
            await client.login(self._identifier, password.get_secret_value(), fetch_bsky_profile=False)
        except (AtProtocolError, httpx.TransportError) as exc:
            mapped = map_error(exc)
            if isinstance(mapped, PlatformAuthError):  # wrong password is not an expired session
                raise PlatformAuthError(
                    "Bluesky refused the handle or app password.", platform_message=mapped.platform_message, status=401
                ) from None
            raise mapped from None
        session = client._session  # the SDK exposes the current session only as this attribute
        scope = ""
        if session is not None:
            try:
                scope = get_jwt_payload(session.access_jwt).scope or ""
            except InvalidTokenError:
                scope = ""
        if scope == "com.atproto.access":
            raise PlatformAuthError(
                "This is the account password. Create an app password in Bluesky (Settings → App passwords) and use it."
            )

    async def _open(self) -> AsyncClient:
        """A client with a session: the stored tokens when there are any, otherwise a new sign-in."""
        client = self._new_client()
        creds = self.credentials
        did = creds.extra.get("did", "")
        if creds.access_token is not None and creds.refresh_token is not None and did:
            session = Session(
                handle=creds.extra.get("handle", did),
                did=did,
                access_jwt=creds.access_token.get_secret_value(),
                refresh_jwt=creds.refresh_token.get_secret_value(),
                pds_endpoint=creds.extra.get("pds_endpoint") or self.service_url,
            )
            await client.login(session_string=session.encode(), fetch_bsky_profile=False)
        else:
            await self._sign_in(client)
        return client

    async def _renew(self, client: AsyncClient) -> None:
        """After ExpiredToken: refreshSession, else sign in again with the app password."""
        session = client._session
        if session is not None and session.refresh_jwt:
            try:
                fresh = await client.com.atproto.server.refresh_session(
                    headers={"Authorization": f"Bearer {session.refresh_jwt}"}, ignore_session_check=True
                )
            except (AtProtocolError, httpx.TransportError) as exc:
                mapped = map_error(exc)
                if not isinstance(mapped, PlatformAuthError):
                    raise mapped from None
            else:
                refreshed = Session(
                    handle=fresh.handle,
                    did=fresh.did,
                    access_jwt=fresh.access_jwt,
                    refresh_jwt=fresh.refresh_jwt,
                    pds_endpoint=session.pds_endpoint,
                )
                await client.login(session_string=refreshed.encode(), fetch_bsky_profile=False)
                self._store_session(refreshed)
                return
        await self._sign_in(client)

    async def _run(self, op: str, action: Callable[[AsyncClient], Awaitable[T]]) -> T:
        """The choke point: open a session, run ``action``, renew once on an expired session, map errors."""
        client: AsyncClient | None = None
        try:
            client = await self._open()
            try:
                return await self._mapped(action(client))
            except SessionExpiredError:
                log.info("bluesky %s: session expired, renewing", op)
                await self._renew(client)
                return await self._mapped(action(client))
        except PlatformError as exc:
            log.info("bluesky %s failed: %s (%s)", op, type(exc).__name__, exc.platform_message)
            raise
        finally:
            if client is not None:
                await client.request.close()

    @staticmethod
    async def _mapped(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (AtProtocolError, httpx.TransportError) as exc:
            raise map_error(exc) from None
        except ValidationError as exc:  # our own record did not fit the lexicon models
            raise PlatformPermanentError(
                "The post does not fit Bluesky's post format.", platform_message=str(exc)
            ) from None

    # -- contract -----------------------------------------------------------------------------
    async def connect(self) -> AccountInfo:
        """Sign in with handle + app password and read the profile."""
        # connect always proves the app password itself, on a copy: a failed check leaves the caller's tokens
        self.credentials = replace(
            self.credentials,
            access_token=None,
            refresh_token=None,
            expires_at=None,
            extra=dict(self.credentials.extra),
            secret_extra=dict(self.credentials.secret_extra),
        )

        async def profile(client: AsyncClient) -> Any:
            try:
                return await client.app.bsky.actor.get_profile(models.AppBskyActorGetProfile.Params(actor=_did(client)))
            except RequestErrorBase as exc:
                status, _, message = _xrpc_error(exc)
                if status in (404, 501) or (status == 400 and message.startswith("No service configured")):
                    return None  # a PDS without app.bsky (no app view configured): the profile is optional
                raise

        me = await self._run("connect", profile)
        did = self.credentials.extra["did"]
        handle = self.credentials.extra.get("handle", self._identifier)
        return AccountInfo(
            platform_account_id=did,
            handle=f"@{handle}",
            display_name=(getattr(me, "display_name", None) or handle) if me is not None else handle,
            profile_url=f"https://bsky.app/profile/{handle}",
            is_bot_flagged=None,  # Bluesky has no automated-account flag
            credentials=self.credentials,
        )

    async def refresh(self) -> Credentials:
        """Renew the session (refreshSession) with the stored refresh token (or sign in again with the app password)."""

        async def noop(client: AsyncClient) -> None:
            await self._renew(client)

        await self._run("refresh", noop)
        return self.credentials

    async def publish(self, post: PostRequest) -> PublishResult:
        """Upload images, then create the post record (facets, langs, self-labels, alt text)."""
        langs, labels = self._validate(post)
        blobs = await asyncio.to_thread(_read_images, post.media)

        async def create(client: AsyncClient) -> Any:
            images = []
            for item, data in zip(post.media, blobs, strict=True):
                uploaded = await client.com.atproto.repo.upload_blob(data, headers={"Content-Type": item.mime_type})
                aspect = (
                    models.AppBskyEmbedDefs.AspectRatio(width=item.width, height=item.height)
                    if item.width and item.height
                    else None
                )
                images.append(
                    models.AppBskyEmbedImages.Image(alt=item.alt_text, image=uploaded.blob, aspect_ratio=aspect)
                )
            record = models.AppBskyFeedPost.Record(
                text=post.text,
                created_at=_iso_now(),
                facets=facet_detection.detect_facets(post.text) or None,
                langs=langs or None,
                embed=models.AppBskyEmbedImages.Main(images=images) if images else None,
                labels=(
                    models.ComAtprotoLabelDefs.SelfLabels(
                        values=[models.ComAtprotoLabelDefs.SelfLabel(val=value) for value in labels]
                    )
                    if labels
                    else None
                ),
            )
            did = _did(client)
            return await client.com.atproto.repo.create_record(
                models.ComAtprotoRepoCreateRecord.Data(repo=did, collection=POST_COLLECTION, record=record)
            )

        created = await self._run("publish", create)
        did = self.credentials.extra.get("did", "")
        return PublishResult(
            state=PublishState.published,
            platform_post_id=created.uri,
            url=post_url(did, created.uri),
            raw={"uri": created.uri, "cid": created.cid},
        )

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """List the account's post records back to ``since`` and match the exact text and image count."""
        if not post.text.strip():
            raise ReconcileUndecided("A Bluesky post without text cannot be told apart from others.")
        cutoff = since - CLOCK_SKEW
        undecided = object()

        async def scan(client: AsyncClient) -> Any:
            did = _did(client)
            cursor: str | None = None
            for _ in range(MAX_SCAN_PAGES):
                page = await client.com.atproto.repo.list_records(
                    models.ComAtprotoRepoListRecords.Params(
                        repo=did, collection=POST_COLLECTION, limit=100, cursor=cursor
                    )
                )
                for entry in page.records:
                    value = entry.value
                    created = _parse_time(_field(value, "created_at", "createdAt"))
                    if created is not None and created < cutoff:
                        return None
                    if _field(value, "text") == post.text and _image_count(value) == len(post.media):
                        return entry
                cursor = page.cursor
                if not cursor or not page.records:
                    return None
            return undecided

        found = await self._run("reconcile", scan)
        if found is undecided:
            raise ReconcileUndecided(f"More than {MAX_SCAN_PAGES * 100} posts since this one was sent; the "
                                     "listing was not read to the end.")
        if found is None:
            return None
        did = self.credentials.extra.get("did", "")
        return PublishResult(
            state=PublishState.published,
            platform_post_id=found.uri,
            url=post_url(did, found.uri),
            detail="found by text among the account's recent post records",
            raw={"uri": found.uri, "cid": found.cid},
        )

    async def delete(self, platform_post_id: str) -> None:
        """Delete the post record (deleteRecord; deleting a missing record succeeds on the PDS)."""
        try:
            uri = AtUri.from_str(platform_post_id)
        except AtProtocolError as exc:
            raise PlatformPermanentError(f"Not an AT URI: {platform_post_id!r}") from exc

        async def remove(client: AsyncClient) -> None:
            await client.com.atproto.repo.delete_record(
                models.ComAtprotoRepoDeleteRecord.Data(repo=uri.hostname, collection=uri.collection, rkey=uri.rkey)
            )

        await self._run("delete", remove)

    # -- helpers ------------------------------------------------------------------------------
    @classmethod
    def _validate(cls, post: PostRequest) -> tuple[list[str], list[str]]:
        caps = cls.capabilities
        if not post.text.strip() and not post.media:
            raise PlatformPermanentError("A Bluesky post needs text or images.")
        graphemes = POST.length(post.text)
        if graphemes > POST.max_length:
            raise PlatformPermanentError(f"Text is {graphemes} characters; Bluesky allows {POST.max_length}.")
        if len(post.text.encode()) > MAX_TEXT_BYTES:
            raise PlatformPermanentError(f"Text is longer than Bluesky's {MAX_TEXT_BYTES} bytes.")
        if len(post.media) > caps.max_media:
            raise PlatformPermanentError(f"{len(post.media)} images; Bluesky allows {caps.max_media}.")
        for item in post.media:
            if item.kind is not MediaKind.image:
                raise PlatformPermanentError(f"Bluesky posts here carry images only, not {item.kind.value}.")
            if len(item.alt_text) > caps.max_alt_text_chars:
                raise PlatformPermanentError(
                    f"Alt text of {item.path.name} is {len(item.alt_text)} characters; "
                    f"Bluesky allows {caps.max_alt_text_chars}."
                )
        langs = [str(lang) for lang in post.options.get("langs", [])]
        if len(langs) > MAX_LANGS:
            raise PlatformPermanentError(f"Bluesky takes at most {MAX_LANGS} languages per post.")
        labels = [str(label) for label in post.options.get("self_labels", [])]
        unknown = sorted(set(labels) - SELF_LABEL_VALUES)
        if unknown:
            raise PlatformPermanentError(
                f"Unknown Bluesky self-label(s) {', '.join(unknown)}; allowed: {', '.join(sorted(SELF_LABEL_VALUES))}."
            )
        return langs, labels


def _did(client: AsyncClient) -> str:
    session = client._session
    if session is None:
        raise LoginRequiredError
    return session.did


def _image_count(value: Any) -> int:
    embed = _field(value, "embed")
    if embed is None:
        return 0
    images = _field(embed, "images")
    return len(images) if isinstance(images, list) else 0
