"""X (formerly Twitter): API v2 through tweepy's ``Client``, OAuth 2.0 with PKCE, v2 media upload.

How the pieces fit
- Posts, deletes, the live check and the timeline read go through ``tweepy.Client`` with the
  account's OAuth 2.0 *user* access token passed as the client's bearer token (tweepy's documented
  way to use OAuth 2.0 user context: ``user_auth=False`` on every call).
- tweepy 4.17's ``Client`` has no media upload and hard-codes ``https://api.twitter.com``; its v1.1
  ``API.media_upload`` needs OAuth 1.0a and the retired v1.1 endpoint. Media therefore goes to the
  v2 endpoint ``POST /2/media/upload`` (one multipart request for images; ``INIT`` / ``APPEND`` /
  ``FINALIZE`` then ``STATUS`` polling for video and GIF) and alt text to ``POST /2/media/metadata``,
  sent with the same bearer token through the *same* ``requests`` session tweepy uses.
- That session (:class:`XSession`) is the one choke point: default timeout, redacted debug log, and
  an optional base-URL rewrite (``transport={"base_url": "http://127.0.0.1:port"}``) that maps
  ``https://api.twitter.com``, ``https://api.x.com`` and ``https://upload.twitter.com`` onto a local
  server for tests. Without ``base_url`` production traffic is untouched.

Network facts the core plans around
- No AI-content flag exists for posts in API v2, so ``supports_ai_label`` is False; the disclosure
  stays in the profile bio, and the image carries our IPTC/C2PA provenance.
- No client idempotency key exists either: ``find_published`` reads the account's timeline since
  ``since`` and matches the post text (URLs removed, HTML entities decoded, whitespace folded).
  ``reconcile_proves_absence`` is True: ``GET /2/users/:id/tweets`` returns the account's own
  posts (newest first, ``start_time`` bounded, paged with ``next_token``) shortly after they are
  created, and X itself refuses an identical text a second time ("duplicate content", 403), so
  a lagging timeline cannot turn into a double post. It cannot decide
  (:class:`ReconcileUndecided`) when the text is empty or only URLs (nothing left to match) or the
  window holds more than ``RECONCILE_MAX_PAGES`` pages; a refused read (429, no read access on
  the API tier) stays an error, so the publication waits for a person rather than being re-sent.
- Text is limited to 280 *weighted* characters (CJK and emoji count 2, every URL counts 23).
- Refresh tokens rotate (each is single-use), so this adapter never refreshes on its own: a 401
  raises :class:`PlatformAuthError` and the caller runs :meth:`XAdapter.refresh` and stores the
  returned credentials before retrying.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
import tweepy
from pydantic import SecretStr

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
from ainfluencer.platforms.counting import x_weighted_length
from ainfluencer.platforms.x.rules import POST

log = logging.getLogger(__name__)
RECONCILE_MAX_PAGES = 5  # timeline pages (100 posts each) read back to ``since``

T = TypeVar("T")

API_URL = "https://api.x.com"
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_PATH = "/2/oauth2/token"  # noqa: S105 - a URL path, not a secret
DEFAULT_SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
_REWRITTEN_HOSTS = ("https://api.twitter.com", "https://api.x.com", "https://upload.twitter.com")

MAX_WEIGHTED_CHARS = 280
URL_WEIGHT = 23
_URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)
# twitter-text v3: code points in these ranges weigh 1, everything else 2 (out of 280).
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
DUPLICATE_MESSAGE = "duplicate content"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_GIF_BYTES = 15 * 1024 * 1024
MAX_VIDEO_BYTES = 512 * 1024 * 1024


def weighted_length(text: str) -> int:
    """X's weighted length of ``text`` (twitter-text v3 rules: URLs 23, CJK/emoji 2, Latin 1)."""
    return x_weighted_length(text)


def normalize_text(text: str) -> str:
    """Text as compared during reconciliation: URLs dropped, entities decoded, whitespace folded."""
    return " ".join(_URL_RE.sub(" ", html.unescape(text)).split())


class XSession(requests.Session):
    """The requests session tweepy and the media calls share: timeout, redacted log, optional base URL."""

    def __init__(self, *, base_url: str | None = None, timeout: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Send one request, rewriting the X hosts when a base URL is configured."""
        target = url.decode() if isinstance(url, bytes) else url
        if self.base_url:
            for host in _REWRITTEN_HOSTS:
                if target.startswith(host):
                    target = self.base_url + target[len(host) :]
                    break
        kwargs.setdefault("timeout", self.timeout)
        log.debug("x %s %s", method, target.split("?", 1)[0])  # never the headers: they carry the token
        return super().request(method, target, *args, **kwargs)


def _raise_for_status(resp: Any) -> Any:
    """Raise the tweepy exception tweepy's own Client would raise for this response."""
    code = resp.status_code
    if 200 <= code < 300:
        return resp
    if code == 400:
        raise tweepy.BadRequest(resp)
    if code == 401:
        raise tweepy.Unauthorized(resp)
    if code == 403:
        raise tweepy.Forbidden(resp)
    if code == 404:
        raise tweepy.NotFound(resp)
    if code == 429:
        reset = resp.headers.get("x-rate-limit-reset")
        raise tweepy.TooManyRequests(resp, reset_time=int(reset) if reset and reset.isdigit() else None)
    if code >= 500:
        raise tweepy.TwitterServerError(resp)
    raise tweepy.HTTPException(resp)


def _retry_after(resp: Any) -> float | None:
    headers = getattr(resp, "headers", None) or {}
    now = time.time()
    # A spent 24-hour user cap outlasts the 15-minute window: wait for whichever reset is later.
    resets = []
    for name, remaining in (("x-rate-limit-reset", "x-rate-limit-remaining"),
                            ("x-user-limit-24hour-reset", "x-user-limit-24hour-remaining")):
        value = headers.get(name)
        if value and str(value).isdigit() and headers.get(remaining, "0") in ("0", 0):
            resets.append(int(value))
    if not resets and headers.get("x-rate-limit-reset", "").isdigit():
        resets.append(int(headers["x-rate-limit-reset"]))
    if not resets:
        retry = headers.get("retry-after", "")
        return float(retry) if retry.isdigit() else None
    return max(0.0, max(resets) - now)


def map_error(exc: BaseException) -> PlatformError:
    """Map a tweepy/requests failure onto the three adapter error kinds."""
    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, tweepy.HTTPException):
        resp = exc.response
        status = getattr(resp, "status_code", None)
        message = "; ".join(str(m) for m in exc.api_messages) or str(exc)
        if isinstance(exc, tweepy.Unauthorized):
            return PlatformAuthError("X rejected the access token; refresh or reconnect.",
                                     platform_message=message, status=status)
        if isinstance(exc, tweepy.TooManyRequests):
            retry = (max(0.0, exc.reset_time - time.time()) if exc.reset_time else None)
            header_retry = _retry_after(resp)
            if header_retry is not None:
                retry = header_retry if retry is None else max(retry, header_retry)
            return PlatformTransientError("X rate limit reached.", retry_after=retry,
                                          platform_message=message, status=status)
        if isinstance(exc, tweepy.TwitterServerError):
            return PlatformTransientError("X is having trouble (server error).", retry_after=_retry_after(resp),
                                          platform_message=message, status=status)
        if isinstance(exc, tweepy.Forbidden):
            if DUPLICATE_MESSAGE in message.lower():
                return PlatformPermanentError("X refused a duplicate post.", platform_message=message, status=status)
            if "authentication" in message.lower() or "token" in message.lower():
                return PlatformAuthError("X refused this token for the action; reconnect with the needed scopes.",
                                         platform_message=message, status=status)
            return PlatformPermanentError("X refused the request.", platform_message=message, status=status)
        if status in (408, 409):
            return PlatformTransientError("X asked to try again.", platform_message=message, status=status)
        if status == 413:
            return PlatformPermanentError("X rejected the media as too large.", platform_message=message,
                                          status=status)
        return PlatformPermanentError("X rejected the request.", platform_message=message, status=status)
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return PlatformTransientError("Could not reach X (network).", platform_message=str(exc))
    if isinstance(exc, requests.RequestException | OSError):
        return PlatformTransientError("Network error talking to X.", platform_message=str(exc))
    if isinstance(exc, ValueError | KeyError | TypeError):  # a 2xx whose body is not what X documents
        return PlatformTransientError("X sent an unexpected response.", platform_message=repr(exc)[:300])
    raise exc


def authorization_url(client_id: str, redirect_uri: str, scopes: Sequence[str] = DEFAULT_SCOPES,
                      *, authorize_url: str = AUTHORIZE_URL) -> tuple[str, str, str]:
    """Start OAuth 2.0 with PKCE: (URL to send the user to, code_verifier to keep, state to check)."""
    verifier = secrets.token_urlsafe(64)[:128]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(24)
    query = urlencode({
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
    return f"{authorize_url}?{query}", verifier, state


def _token_request(session: requests.Session, data: dict[str, str], client_id: str,
                   client_secret: str | None) -> dict[str, Any]:
    auth = (client_id, client_secret) if client_secret else None
    if not client_secret:
        data = {**data, "client_id": client_id}  # public client: id in the body, no secret
    resp = session.post(API_URL + TOKEN_PATH, data=data, auth=auth)
    if resp.status_code in (400, 401):
        try:
            body = resp.json()
        except ValueError:
            body = {}
        message = body.get("error_description") or body.get("error") or resp.text[:300]
        raise PlatformAuthError("X refused the authorization grant; reconnect the account.",
                                platform_message=str(message), status=resp.status_code)
    _raise_for_status(resp)
    payload: dict[str, Any] = resp.json()
    return payload


def _credentials_from_token(payload: dict[str, Any], *, base: Credentials | None = None) -> Credentials:
    expires_in = payload.get("expires_in")
    refresh = payload.get("refresh_token")
    return Credentials(
        access_token=SecretStr(payload["access_token"]),
        refresh_token=SecretStr(refresh) if refresh else (base.refresh_token if base else None),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(expires_in)) if expires_in else None,
        extra=dict(base.extra) if base else {},
        secret_extra=dict(base.secret_extra) if base else {},
    )


async def exchange_code(*, code: str, code_verifier: str, client_id: str, redirect_uri: str,
                        client_secret: str | None = None, **transport: Any) -> Credentials:
    """Finish OAuth 2.0 with PKCE: trade the callback's code for access and refresh tokens."""
    session = transport.get("session") or XSession(base_url=transport.get("base_url"),
                                                   timeout=float(transport.get("timeout", 30)))
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier}
    try:
        payload = await asyncio.to_thread(_token_request, session, data, client_id, client_secret)
    except Exception as exc:
        raise map_error(exc) from exc
    creds = _credentials_from_token(payload)
    creds.extra["client_id"] = client_id
    if client_secret:
        creds.secret_extra["client_secret"] = SecretStr(client_secret)
    return creds


class XAdapter(PlatformAdapter):
    """X API v2 through tweepy; see the module docstring for the transport and reconciliation."""

    name = "x"
    display_name = "X"
    reconcile_proves_absence = True  # own timeline, and X refuses duplicate text
    capabilities = Capabilities(
        max_text_chars=POST.max_length,
        text_counting=POST.counting,
        media_kinds=frozenset({MediaKind.image, MediaKind.gif, MediaKind.video}),
        max_media=4,  # up to 4 images, or exactly one video or GIF
        max_image_bytes=MAX_IMAGE_BYTES,
        max_video_bytes=MAX_VIDEO_BYTES,
        max_video_seconds=140,
        min_video_seconds=0.5,
        video_codecs=frozenset({"h264"}),
        supports_alt_text=True,
        max_alt_text_chars=1000,
        supports_first_comment=True,  # posted as a self-reply
        supports_ai_label=False,
        needs_public_media_url=False,
        async_processing=False,  # video processing is awaited inside publish (STATUS polling)
        connect_method="oauth2_pkce",
        rate_limits=(RateLimit("post", 100, 15 * 60), RateLimit("post", 2400, 24 * 3600)),
        daily_post_cap=2400,
        notes=("No AI-content flag in API v2; disclosure lives in the bio. 280 weighted characters "
               "(URLs 23). Posting caps also depend on the developer tier (Free: 17 posts/24 h per user)."),
    )

    def __init__(self, credentials: Credentials, **transport: Any) -> None:
        super().__init__(credentials, **transport)
        self.session: requests.Session = transport.get("session") or XSession(
            base_url=transport.get("base_url"), timeout=float(transport.get("timeout", 30)))
        self.chunk_size = int(transport.get("chunk_size", 4 * 1024 * 1024))
        self.media_timeout = float(transport.get("media_timeout", 600))
        self.max_poll_interval = float(transport.get("max_poll_interval", 30))
        self.client = tweepy.Client(bearer_token=self._token(), return_type=dict)
        self.client.session = self.session

    # -- plumbing -------------------------------------------------------------------------------

    def _token(self) -> str:
        token = self.credentials.access_token
        return token.get_secret_value() if token else ""

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call in a worker thread and map its failure."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            raise map_error(exc) from exc

    def _api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A raw v2 call (media endpoints) with the user's bearer token; raises tweepy exceptions."""
        headers = {"Authorization": f"Bearer {self._token()}", "User-Agent": self.client.user_agent}
        resp = _raise_for_status(self.session.request(method, API_URL + path, headers=headers, **kwargs))
        if not resp.content:
            return {}
        body: dict[str, Any] = resp.json()
        return body

    # -- contract -------------------------------------------------------------------------------

    async def connect(self) -> AccountInfo:
        """Live-check the token with ``GET /2/users/me``."""
        body = await self._call(self.client.get_me, user_auth=False, user_fields=["username", "name"])
        data = (body or {}).get("data") or {}
        if not data.get("id"):
            raise PlatformPermanentError("X returned no account for this token.", platform_message=str(body))
        username = data.get("username", "")
        self.credentials.extra.update({"user_id": str(data["id"]), "handle": username})
        return AccountInfo(
            platform_account_id=str(data["id"]),
            handle=username,
            display_name=data.get("name", ""),
            profile_url=f"https://x.com/{username}" if username else "",
            credentials=self.credentials,
        )

    def validate(self, post: PostRequest) -> None:
        """Refuse what X would refuse, before any upload."""
        if POST.length(post.text) > POST.max_length:
            raise PlatformPermanentError(
                f"Post is {POST.length(post.text)} weighted characters; X allows {POST.max_length}.")
        if not post.text.strip() and not post.media:
            raise PlatformPermanentError("An X post needs text or media.")
        kinds = [m.kind for m in post.media]
        if len(post.media) > 4:
            raise PlatformPermanentError("X allows at most 4 images per post.")
        if (MediaKind.video in kinds or MediaKind.gif in kinds) and len(kinds) > 1:
            raise PlatformPermanentError("X allows one video or GIF per post, not mixed with other media.")
        for m in post.media:
            try:
                size = m.path.stat().st_size
            except OSError as exc:
                raise PlatformPermanentError(f"Media file {m.path.name} cannot be read.") from exc
            limit = {MediaKind.image: MAX_IMAGE_BYTES, MediaKind.gif: MAX_GIF_BYTES}.get(m.kind, MAX_VIDEO_BYTES)
            if size > limit:
                raise PlatformPermanentError(f"{m.path.name} is {size} bytes; X accepts at most {limit} for {m.kind}.")
            cap = self.capabilities
            if m.kind == MediaKind.video and m.duration_seconds is not None and not (
                cap.min_video_seconds <= m.duration_seconds <= cap.max_video_seconds):
                raise PlatformPermanentError(
                    f"Video is {m.duration_seconds:.1f}s; X accepts {cap.min_video_seconds}-{cap.max_video_seconds}s.")

    async def publish(self, post: PostRequest) -> PublishResult:
        """Upload media (if any), create the post, and the optional self-reply."""
        self.validate(post)
        media_ids = [await self._call(self._upload, m) for m in post.media]
        body = await self._call(self.client.create_tweet, text=post.text or None,
                                media_ids=media_ids or None, user_auth=False)
        data = (body or {}).get("data") or {}
        tweet_id = str(data.get("id", ""))
        if not tweet_id:
            raise PlatformPermanentError("X accepted the post but returned no id.", platform_message=str(body))
        detail = ""
        if post.first_comment:
            # The post exists now: a failed reply must not fail (and so re-send) the publication.
            try:
                await self._call(self.client.create_tweet, text=post.first_comment,
                                 in_reply_to_tweet_id=tweet_id, user_auth=False)
            except PlatformError as exc:
                log.warning("x first comment failed for %s: %s", tweet_id, exc.message)
                detail = f"first comment not posted: {exc.platform_message or exc.message}"
        return PublishResult(state=PublishState.published, platform_post_id=tweet_id,
                             url=self._url(tweet_id), detail=detail, raw=data)

    def _url(self, tweet_id: str) -> str:
        handle = self.credentials.extra.get("handle")
        return f"https://x.com/{handle}/status/{tweet_id}" if handle else f"https://x.com/i/web/status/{tweet_id}"

    def _upload(self, item: MediaItem) -> str:
        """Upload one file; simple for images, chunked + STATUS for video and GIF (blocking)."""
        if item.kind == MediaKind.image:
            with item.path.open("rb") as fh:
                body = self._api("POST", "/2/media/upload",
                                 files={"media": (item.path.name, fh, item.mime_type)},
                                 data={"media_category": "tweet_image", "media_type": item.mime_type})
            media_id = str(body["data"]["id"])
        else:
            media_id = self._chunked_upload(item.path, item.mime_type,
                                            "tweet_video" if item.kind == MediaKind.video else "tweet_gif")
        if item.alt_text and item.kind != MediaKind.video:
            self._api("POST", "/2/media/metadata",
                      json={"id": media_id, "metadata": {"alt_text": {"text": item.alt_text[:1000]}}})
        return media_id

    def _chunked_upload(self, path: Path, mime: str, category: str) -> str:
        total = path.stat().st_size
        init = self._api("POST", "/2/media/upload", data={
            "command": "INIT", "media_type": mime, "total_bytes": str(total), "media_category": category})
        media_id = str(init["data"]["id"])
        with path.open("rb") as fh:
            segment = 0
            while chunk := fh.read(self.chunk_size):
                self._api("POST", "/2/media/upload", data={
                    "command": "APPEND", "media_id": media_id, "segment_index": str(segment)},
                    files={"media": ("chunk", chunk, "application/octet-stream")})
                segment += 1
        final = self._api("POST", "/2/media/upload", data={"command": "FINALIZE", "media_id": media_id})
        info = (final.get("data") or {}).get("processing_info")
        deadline = time.monotonic() + self.media_timeout
        while info and info.get("state") in ("pending", "in_progress"):
            if time.monotonic() > deadline:
                raise PlatformTransientError("X is still processing the video; try again later.")
            time.sleep(min(float(info.get("check_after_secs") or 1), self.max_poll_interval))
            status = self._api("GET", "/2/media/upload", params={"command": "STATUS", "media_id": media_id})
            info = (status.get("data") or {}).get("processing_info")
        if info and info.get("state") == "failed":
            error = info.get("error") or {}
            raise PlatformPermanentError("X could not process the media.",
                                         platform_message=str(error.get("message") or error or info))
        return media_id

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Look for a post with the same text on the account's timeline since ``since``."""
        wanted = normalize_text(post.text)
        if not wanted:
            raise ReconcileUndecided("This post has no text left to match once links are removed.")
        user_id = self.credentials.extra.get("user_id") or (await self.connect()).platform_account_id
        start = (since - timedelta(seconds=5)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        token: str | None = None
        for _ in range(RECONCILE_MAX_PAGES):  # a publication is reconciled within minutes of sending
            kwargs: dict[str, Any] = {"start_time": start, "max_results": 100, "user_auth": False,
                                      "tweet_fields": ["created_at"], "exclude": ["retweets"]}
            if token:
                kwargs["pagination_token"] = token
            body = await self._call(self.client.get_users_tweets, user_id, **kwargs)
            for tweet in (body or {}).get("data") or []:
                if normalize_text(tweet.get("text", "")) == wanted:
                    tid = str(tweet["id"])
                    return PublishResult(state=PublishState.published, platform_post_id=tid,
                                         url=self._url(tid), detail="found by text", raw=tweet)
            token = ((body or {}).get("meta") or {}).get("next_token")
            if not token:
                return None
        raise ReconcileUndecided(f"More than {RECONCILE_MAX_PAGES * 100} posts since this one was sent; the "
                                 "timeline was not read to the end.")

    async def delete(self, platform_post_id: str) -> None:
        """Delete a post; one that is already gone counts as deleted."""
        try:
            await self._call(self.client.delete_tweet, platform_post_id, user_auth=False)
        except PlatformPermanentError as exc:
            if exc.status != 404:
                raise

    async def refresh(self) -> Credentials:
        """Trade the (single-use) refresh token for new tokens; the caller must store the result."""
        if not self.credentials.refresh_token:
            raise PlatformAuthError("No X refresh token stored; reconnect the account.")
        client_id = self.credentials.extra.get("client_id", "")
        if not client_id:
            raise PlatformAuthError("The X client id is missing from the account; reconnect the account.")
        secret = self.credentials.secret_extra.get("client_secret")
        data = {"grant_type": "refresh_token", "refresh_token": self.credentials.refresh_token.get_secret_value()}
        payload = await self._call(_token_request, self.session, data, client_id,
                                   secret.get_secret_value() if secret else None)
        self.credentials = _credentials_from_token(payload, base=self.credentials)
        self.client.bearer_token = self._token()
        return self.credentials

    # Module-level OAuth helpers, reachable from the class as the registry hands it out.
    authorization_url = staticmethod(authorization_url)
    exchange_code = staticmethod(exchange_code)
