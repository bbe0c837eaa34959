"""YouTube: Data API v3 through google-api-python-client, resumable uploads, ``containsSyntheticMedia``.

How the SDK is pointed at a server
- The client is built from the discovery document *shipped* inside google-api-python-client
  (``static_discovery``: no discovery fetch at runtime). ``client_options={"api_endpoint": ...}``
  alone is not enough for tests: it moves the JSON endpoints but the media-upload URL is built from
  the document's ``rootUrl`` (``googleapiclient.discovery._media_path_url_from_info``). With
  ``transport={"base_url": ...}`` the adapter therefore loads the same shipped document, replaces
  ``rootUrl`` and builds from it, which moves both. Production uses the document unchanged.
- Auth is ``google.oauth2.credentials.Credentials`` (token, refresh token, ``token_uri``,
  client id/secret) inside ``google_auth_httplib2.AuthorizedHttp`` over an ``httplib2.Http`` with an
  explicit timeout. On a 401 AuthorizedHttp refreshes once against ``token_uri`` and retries; the new
  access token is copied back into ``adapter.credentials`` (Google refresh tokens do not rotate).

Publishing facts
- ``videos.insert`` with ``status.containsSyntheticMedia`` set from ``PostRequest.ai_generated``
  (``supports_ai_label`` True) and ``selfDeclaredMadeForKids`` False; title <= 100 characters, no
  ``<``/``>``; description <= 5000 bytes with the disclosure line kept when trimming.
- Uploads are resumable: a dropped connection is resumed from the byte the server confirms
  (``PUT`` with ``Content-Range: bytes */size`` -> ``308`` + ``Range``), not restarted.
- Shorts: vertical (height > width) and <= 180 s, with ``#Shorts`` added to the description when
  missing (``options["post_type"] == "short"``). YouTube decides Shorts classification itself.
- Reconciliation: the marker travels as a tag ``ainf:<marker>`` in ``snippet.tags``;
  ``find_published`` scans the channel's uploads playlist (1 quota unit a page, unlike
  ``search.list``) and checks the tags with ``videos.list``. ``reconcile_proves_absence`` stays
  False: the uploads playlist (and ``search.list``) is known to trail new uploads by minutes or
  more, and a resumable upload whose last response was lost may still become a video, so not
  finding the tag proves nothing; a person decides, and a re-upload costs 1,600 quota units.
- Processing is asynchronous: ``publish`` returns ``processing`` until ``check_status`` sees
  ``uploadStatus == processed``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import google.auth.exceptions
import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials as GoogleCredentials
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload
from pydantic import SecretStr

from ainfluencer.platforms.base import (
    AccountInfo,
    Capabilities,
    Credentials,
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
)
from ainfluencer.platforms.youtube.rules import DESCRIPTION, TITLE

log = logging.getLogger(__name__)

T = TypeVar("T")

TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret
SCOPES = (
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube.force-ssl",  # list, delete, comments
)
MAX_TITLE_CHARS = TITLE.max_length
MAX_DESCRIPTION_BYTES = DESCRIPTION.max_length  # UTF-8 bytes
MAX_TAGS_CHARS = 500
MARKER_TAG_PREFIX = "ainf:"
SHORTS_MAX_SECONDS = 180
CHUNK_GRANULE = 256 * 1024  # resumable chunks must be multiples of 256 KiB (except the last)
PACIFIC = ZoneInfo("America/Los_Angeles")
RATE_LIMIT_WAIT = 60.0  # Google sends no reset time for per-user rate limits

_QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_AUTH_REASONS = {"authError", "insufficientPermissions", "forbidden_insufficientPermissions"}
_NETWORK_ERRORS = (ConnectionError, socket.timeout, TimeoutError, OSError, httplib2.HttpLib2Error)


def seconds_until_quota_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight Pacific Time, when YouTube's daily quota resets."""
    now = (now or datetime.now(UTC)).astimezone(PACIFIC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    # Arithmetic in UTC so a DST change overnight is counted right.
    return (midnight.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def _error_reasons(exc: HttpError) -> tuple[list[str], str]:
    try:
        body = json.loads(exc.content.decode() if isinstance(exc.content, bytes) else exc.content)
        err = body.get("error") or {}
        reasons = [e.get("reason", "") for e in err.get("errors") or [] if isinstance(e, dict)]
        return reasons, str(err.get("message") or exc.reason)
    except (ValueError, AttributeError, TypeError):
        return [], str(getattr(exc, "reason", "") or exc)


def map_error(exc: BaseException) -> PlatformError:
    """Map a googleapiclient/google-auth/httplib2 failure onto the three adapter error kinds."""
    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, HttpError):
        status = exc.resp.status
        reasons, message = _error_reasons(exc)
        retry_header = exc.resp.get("retry-after", "")
        header_wait = float(retry_header) if str(retry_header).isdigit() else None
        if status == 401:
            return PlatformAuthError("YouTube rejected the credentials; reconnect the account.",
                                     platform_message=message, status=status)
        if _QUOTA_REASONS & set(reasons):
            return PlatformTransientError("YouTube API quota used up; it resets at midnight Pacific Time.",
                                          retry_after=seconds_until_quota_reset(), platform_message=message,
                                          status=status)
        if _RATE_REASONS & set(reasons) or status == 429:
            return PlatformTransientError("YouTube rate limit reached.", retry_after=header_wait or RATE_LIMIT_WAIT,
                                          platform_message=message, status=status)
        if "uploadLimitExceeded" in reasons:
            return PlatformPermanentError("This channel has reached YouTube's upload limit.",
                                          platform_message=message, status=status)
        if status == 403 and _AUTH_REASONS & set(reasons):
            return PlatformAuthError("The YouTube grant lacks a needed permission; reconnect the account.",
                                     platform_message=message, status=status)
        if status >= 500 or status == 408:
            return PlatformTransientError("YouTube is having trouble (server error).", retry_after=header_wait,
                                          platform_message=message, status=status)
        if status == 413:
            return PlatformPermanentError("YouTube rejected the file as too large.", platform_message=message,
                                          status=status)
        return PlatformPermanentError("YouTube rejected the request.", platform_message=message, status=status)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        return PlatformAuthError("Google refused to refresh the token; reconnect the account.",
                                 platform_message=str(exc))
    if isinstance(exc, google.auth.exceptions.TransportError):
        return PlatformTransientError("Could not reach Google's token endpoint.", platform_message=str(exc))
    if isinstance(exc, _NETWORK_ERRORS):
        return PlatformTransientError("Could not reach YouTube (network).", platform_message=repr(exc))
    if isinstance(exc, ValueError | KeyError | TypeError):  # a 2xx whose body is not what Google documents
        return PlatformTransientError("YouTube sent an unexpected response.", platform_message=repr(exc)[:300])
    raise exc


def _utf8_trim(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore").rstrip()


def build_description(text: str, *, disclosure: str = "", extra: str = "") -> str:
    """The description within 5000 bytes; the disclosure line (and ``extra``) survive trimming."""
    tail = "\n\n".join(p for p in (disclosure if disclosure and disclosure not in text else "", extra) if p)
    if not tail:
        return _utf8_trim(text, MAX_DESCRIPTION_BYTES)
    budget = MAX_DESCRIPTION_BYTES - len(tail.encode()) - 2
    return (_utf8_trim(text, max(0, budget)) + "\n\n" + tail).strip()


class _FileChunksUpload(MediaFileUpload):  # type: ignore[misc]
    """MediaFileUpload that hands each chunk over as bytes instead of a stream slice.

    httplib2 silently re-sends a request once when the connection dies before the response; with
    a stream body that second attempt sends nothing (the slice is spent) and hangs until the
    timeout. With bytes the re-send is correct, and the resumable protocol covers the rest.
    """

    def has_stream(self) -> bool:
        """Never stream: chunks are read with ``getbytes``."""
        return False


def _video_state(video: dict[str, Any]) -> tuple[PublishState, str]:
    status = video.get("status") or {}
    upload = status.get("uploadStatus", "")
    processing = (video.get("processingDetails") or {}).get("processingStatus", "")
    if upload == "processed":
        return PublishState.published, ""
    if upload == "failed" or processing in ("failed", "terminated"):
        return PublishState.failed, f"processing failed: {status.get('failureReason', processing)}"
    if upload == "rejected":
        return PublishState.failed, f"rejected: {status.get('rejectionReason', 'unknown')}"
    if upload == "deleted":
        return PublishState.failed, "the video was deleted"
    return PublishState.processing, processing or upload


class YouTubeAdapter(PlatformAdapter):
    """YouTube Data API v3; see the module docstring for transport, labels and reconciliation."""

    name = "youtube"
    display_name = "YouTube"
    capabilities = Capabilities(
        max_text_chars=DESCRIPTION.max_length,  # the description; the title comes from PostRequest.title
        text_counting=DESCRIPTION.counting,
        media_kinds=frozenset({MediaKind.video}),
        max_media=1,
        max_video_bytes=256 * 1024**3,
        max_video_seconds=12 * 3600,  # 15 min until the channel is verified
        min_video_seconds=1,
        video_codecs=frozenset({"h264", "hevc", "vp9", "av1", "mpeg4"}),
        requires_media=True,
        supports_alt_text=False,
        supports_first_comment=False,
        supports_ai_label=True,
        async_processing=True,
        connect_method="oauth2",
        rate_limits=(RateLimit("post", 100, 24 * 3600),),
        daily_post_cap=100,
        notes=("videos.insert has its own default bucket of 100 calls/day per Google Cloud project (reset at "
               "midnight PT). Shorts: vertical, <= 3 min, #Shorts. Unverified API projects upload as private "
               "until audited. containsSyntheticMedia is set for AI-generated content."),
    )

    def __init__(self, credentials: Credentials, **transport: Any) -> None:
        super().__init__(credentials, **transport)
        self.base_url: str | None = transport.get("base_url")
        self.token_uri: str = transport.get("token_uri") or TOKEN_URI
        self.timeout = float(transport.get("timeout", 60))
        chunk = int(transport.get("chunk_size", 8 * 1024 * 1024))
        self.chunk_size = max(CHUNK_GRANULE, chunk // CHUNK_GRANULE * CHUNK_GRANULE)
        self.max_resume_attempts = int(transport.get("max_resume_attempts", 5))
        self.retry_backoff = float(transport.get("retry_backoff", 1.0))
        self._http_factory: Callable[[], httplib2.Http] = transport.get("http_factory") or self._new_http
        secret = credentials.secret_extra.get("client_secret")
        self.google_credentials = GoogleCredentials(
            token=credentials.access_token.get_secret_value() if credentials.access_token else None,
            refresh_token=credentials.refresh_token.get_secret_value() if credentials.refresh_token else None,
            token_uri=self.token_uri,
            client_id=credentials.extra.get("client_id"),
            client_secret=secret.get_secret_value() if secret else None,
            scopes=list(SCOPES),
            expiry=(credentials.expires_at.astimezone(UTC).replace(tzinfo=None)
                    if credentials.expires_at else None),
        )
        self._service: Any = None

    # -- plumbing -------------------------------------------------------------------------------

    def _new_http(self) -> httplib2.Http:
        http = httplib2.Http(timeout=self.timeout)
        # As googleapiclient.http.build_http does: in the resumable protocol 308 means
        # "Resume Incomplete", not a redirect to follow.
        http.redirect_codes = http.redirect_codes - {308}
        return http

    @property
    def service(self) -> Any:
        """The discovery-built client (built once, from the shipped document)."""
        if self._service is None:
            doc = json.loads(get_static_doc("youtube", "v3") or "{}")
            if self.base_url:
                root = self.base_url.rstrip("/") + "/"
                doc["rootUrl"] = doc["mtlsRootUrl"] = root
            http = google_auth_httplib2.AuthorizedHttp(self.google_credentials, http=self._http_factory())
            self._service = build_from_document(doc, http=http)
        return self._service

    def _sync_credentials(self) -> None:
        """Copy a token google-auth refreshed behind the scenes back into ``self.credentials``."""
        token = self.google_credentials.token
        current = self.credentials.access_token.get_secret_value() if self.credentials.access_token else None
        if token and token != current:
            self.credentials.access_token = SecretStr(token)
            expiry = self.google_credentials.expiry
            self.credentials.expires_at = expiry.replace(tzinfo=UTC) if expiry else None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call in a worker thread and map its failure."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            raise map_error(exc) from exc
        finally:
            self._sync_credentials()

    async def _execute(self, request: Any) -> Any:
        return await self._call(request.execute)

    # -- contract -------------------------------------------------------------------------------

    async def connect(self) -> AccountInfo:
        """Live-check with ``channels.list(mine=True)`` and remember the uploads playlist."""
        body = await self._execute(self.service.channels().list(part="snippet,contentDetails", mine=True))
        items = (body or {}).get("items") or []
        if not items:
            raise PlatformPermanentError("This Google account has no YouTube channel; create one first.")
        channel = items[0]
        snippet = channel.get("snippet") or {}
        handle = snippet.get("customUrl", "")
        uploads = ((channel.get("contentDetails") or {}).get("relatedPlaylists") or {}).get("uploads", "")
        self.credentials.extra.update({"channel_id": channel["id"], "uploads_playlist_id": uploads,
                                       "handle": handle})
        return AccountInfo(
            platform_account_id=channel["id"],
            handle=handle,
            display_name=snippet.get("title", ""),
            profile_url=f"https://www.youtube.com/{handle}" if handle else
            f"https://www.youtube.com/channel/{channel['id']}",
            credentials=self.credentials,
        )

    def build_body(self, post: PostRequest) -> dict[str, Any]:
        """The ``videos.insert`` resource for a post (validates first)."""
        videos = [m for m in post.media if m.kind == MediaKind.video]
        if len(post.media) != 1 or len(videos) != 1:
            raise PlatformPermanentError("A YouTube upload needs exactly one video file.")
        video = videos[0]
        try:
            size = video.path.stat().st_size
        except OSError as exc:
            raise PlatformPermanentError(f"Media file {video.path.name} cannot be read.") from exc
        if size > self.capabilities.max_video_bytes:
            raise PlatformPermanentError(f"{video.path.name} is larger than YouTube's 256 GB limit.")
        is_short = post.options.get("post_type") == "short"
        if is_short:
            if video.duration_seconds is not None and video.duration_seconds > SHORTS_MAX_SECONDS:
                raise PlatformPermanentError(f"A Short is at most {SHORTS_MAX_SECONDS} s; this video is "
                                             f"{video.duration_seconds:.0f} s.")
            if video.width and video.height and video.height < video.width:
                raise PlatformPermanentError("A Short must be vertical or square (height >= width).")
        raw_title = (post.title or post.text.strip().splitlines()[0] if (post.title or post.text.strip()) else "")
        title = " ".join(raw_title.replace("<", "").replace(">", "").split())[:MAX_TITLE_CHARS].strip()
        if not title:
            raise PlatformPermanentError("A YouTube video needs a title.")
        shorts_tag = "#Shorts" if is_short and "#shorts" not in (title + post.text).lower() else ""
        description = build_description(post.text.replace("<", "").replace(">", ""),
                                        disclosure=str(post.options.get("disclosure", "")), extra=shorts_tag)
        tags = [t.strip().lstrip("#") for t in post.tags if t.strip()]
        if post.marker:
            marker_tag = MARKER_TAG_PREFIX + post.marker
            budget = MAX_TAGS_CHARS - len(marker_tag)
            kept: list[str] = []
            for tag in tags:  # YouTube counts a tag with spaces as if quoted
                cost = len(tag) + (2 if " " in tag else 0) + 1
                if cost > budget:
                    break
                kept.append(tag)
                budget -= cost
            tags = [*kept, marker_tag]
        snippet: dict[str, Any] = {"title": title, "description": description, "tags": tags,
                                   "categoryId": str(post.options.get("category_id", "22"))}
        status = {
            "privacyStatus": post.options.get("privacy", "public"),
            "selfDeclaredMadeForKids": False,
            "containsSyntheticMedia": bool(post.ai_generated),
        }
        return {"snippet": snippet, "status": status}

    async def publish(self, post: PostRequest) -> PublishResult:
        """Resumable upload of the video, then the optional thumbnail; returns ``processing``."""
        body = self.build_body(post)
        video = post.media[0]
        video_resource = await self._call(self._upload, body, str(video.path), video.mime_type)
        video_id = str(video_resource.get("id", ""))
        if not video_id:
            raise PlatformPermanentError("YouTube accepted the upload but returned no video id.")
        state, detail = _video_state(video_resource)
        if state == PublishState.failed:
            raise PlatformPermanentError(f"YouTube did not accept the video: {detail}",
                                         platform_message=json.dumps(video_resource.get("status", {})))
        thumb = post.options.get("thumbnail_path")
        if thumb:
            # The video exists now: a failed thumbnail must not fail (and so re-send) the publication.
            try:
                await self._execute(self.service.thumbnails().set(
                    videoId=video_id, media_body=MediaFileUpload(str(thumb), resumable=False)))
            except PlatformError as exc:
                log.warning("youtube thumbnail failed for %s: %s", video_id, exc.message)
                detail = f"thumbnail not set: {exc.platform_message or exc.message}"
        short = post.options.get("post_type") == "short"
        return PublishResult(state=state, platform_post_id=video_id, url=self._url(video_id, short=short),
                             detail=detail, raw=video_resource)

    @staticmethod
    def _url(video_id: str, *, short: bool = False) -> str:
        return f"https://www.youtube.com/shorts/{video_id}" if short else f"https://www.youtube.com/watch?v={video_id}"

    def _upload(self, body: dict[str, Any], path: str, mime: str) -> dict[str, Any]:
        """Drive the resumable upload; resume after drops and 5xx from the confirmed offset (blocking)."""
        media = _FileChunksUpload(path, mimetype=mime, chunksize=self.chunk_size, resumable=True)
        request = self.service.videos().insert(part="snippet,status", body=body, media_body=media,
                                               notifySubscribers=True)
        response: dict[str, Any] | None = None
        failures = 0
        progress = -1
        while response is None:
            try:
                _, response = request.next_chunk(num_retries=0)
            except HttpError as exc:
                if exc.resp.status < 500 or request.resumable_uri is None:
                    raise
                self._note_failure(failures := failures + 1, exc)
            except _NETWORK_ERRORS as exc:
                if request.resumable_uri is None:
                    raise  # the session was never opened: nothing to resume, retry later from scratch
                # next_chunk marked the request as in error; the next call asks the server which
                # bytes it holds (308 + Range) and continues from there.
                self._note_failure(failures := failures + 1, exc)
            if request.resumable_progress > progress:
                progress = request.resumable_progress
                failures = 0
        return response

    def _note_failure(self, failures: int, exc: BaseException) -> None:
        if failures > self.max_resume_attempts:
            raise exc
        log.info("youtube upload interrupted (%s); resuming, attempt %d", type(exc).__name__, failures)
        time.sleep(self.retry_backoff * 2 ** (failures - 1))

    async def check_status(self, platform_post_id: str) -> PublishResult:
        """Poll ``videos.list(part=status,processingDetails)``."""
        body = await self._execute(self.service.videos().list(part="status,processingDetails",
                                                              id=platform_post_id))
        items = (body or {}).get("items") or []
        if not items:
            return PublishResult(state=PublishState.failed, platform_post_id=platform_post_id,
                                 detail="video not found (deleted or never finished uploading)")
        state, detail = _video_state(items[0])
        return PublishResult(state=state, platform_post_id=platform_post_id, url=self._url(platform_post_id),
                             detail=detail, raw=items[0])

    async def _uploads_playlist(self) -> str:
        playlist = self.credentials.extra.get("uploads_playlist_id")
        if not playlist:
            await self.connect()
            playlist = self.credentials.extra.get("uploads_playlist_id", "")
        return playlist

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Find the upload carrying tag ``ainf:<marker>`` among the channel's uploads since ``since``."""
        if not post.marker:
            return None
        wanted = MARKER_TAG_PREFIX + post.marker
        playlist = await self._uploads_playlist()
        cutoff = since.astimezone(UTC) - timedelta(minutes=5)
        page_token: str | None = None
        for _ in range(5):
            listing = await self._execute(self.service.playlistItems().list(
                part="contentDetails,snippet", playlistId=playlist, maxResults=50, pageToken=page_token))
            ids, older = [], False
            for item in (listing or {}).get("items") or []:
                published = (item.get("snippet") or {}).get("publishedAt", "")
                if published and datetime.fromisoformat(published.replace("Z", "+00:00")) < cutoff:
                    older = True
                    continue
                ids.append((item.get("contentDetails") or {}).get("videoId") or
                           ((item.get("snippet") or {}).get("resourceId") or {}).get("videoId"))
            if ids:
                videos = await self._execute(self.service.videos().list(
                    part="snippet,status,processingDetails", id=",".join(i for i in ids if i)))
                for video in (videos or {}).get("items") or []:
                    if wanted in ((video.get("snippet") or {}).get("tags") or []):
                        state, detail = _video_state(video)
                        return PublishResult(state=state, platform_post_id=video["id"], url=self._url(video["id"]),
                                             detail=detail or "found by marker tag", raw=video)
            page_token = (listing or {}).get("nextPageToken")
            if older or not page_token:
                break
        return None

    async def delete(self, platform_post_id: str) -> None:
        """Delete a video; one that is already gone counts as deleted."""
        try:
            await self._execute(self.service.videos().delete(id=platform_post_id))
        except PlatformPermanentError as exc:
            if exc.status != 404:
                raise

    async def refresh(self) -> Credentials:
        """Refresh the access token against ``token_uri``; the refresh token stays the same."""
        if not self.google_credentials.refresh_token:
            raise PlatformAuthError("No Google refresh token stored; reconnect the account.")
        request = google_auth_httplib2.Request(self._http_factory())
        await self._call(self.google_credentials.refresh, request)
        return self.credentials
