"""Instagram professional accounts through the Graph API content-publishing endpoints (httpx).

- Connect: with Facebook Login, the Page's ``instagram_business_account`` (``/{page-id}?fields=
  instagram_business_account{id,username}``); with Instagram Login (``extra["login"] ==
  "instagram"``, host graph.instagram.com), ``/me?fields=user_id,username``.
- Publish is two-step and asynchronous: create a container (``POST /{ig-user-id}/media`` with
  ``image_url`` + caption, ``media_type=REELS`` + ``video_url``, ``media_type=STORIES``, or child
  containers with ``is_carousel_item=true`` and then a ``CAROUSEL`` container), then
  ``media_publish`` once the container's ``status_code`` is ``FINISHED``. When it is still
  ``IN_PROGRESS`` ``publish`` returns ``processing`` with the container id, and ``check_status``
  publishes it later.
- Never twice: before ``media_publish`` the container is read again; ``PUBLISHED`` means done (no
  second call), and a process-wide guard keeps two concurrent ``check_status`` calls for one
  container from both publishing. A lost ``media_publish`` response therefore heals on the next
  ``check_status`` instead of posting again.
- Media must be at a public URL Meta can fetch (``MediaItem.public_url``); without one publishing
  stops with an actionable :class:`PlatformPermanentError` (``needs_public_media_url``).
- AI label: the API has no AI-content field, so ``supports_ai_label`` is False; Meta reads the
  C2PA/IPTC provenance in the file, and the disclosure stays in the bio.
- Limits: caption 2,200 characters, 30 hashtags, 20 @-mentions, carousel 2-10 items, reels 3 s to
  15 min, stories video <= 60 s, JPEG images <= 8 MB, 100 API-published posts per 24 h
  (``/{ig-user-id}/content_publishing_limit``, see :meth:`InstagramAdapter.quota_usage`).
- Reconciliation: no idempotency key; ``find_published`` matches the caption among
  ``/{ig-user-id}/media`` since ``since``. ``reconcile_proves_absence`` stays False: the media
  edge can trail a fresh ``media_publish`` (Meta documents no consistency for it), stories and
  captionless posts cannot be matched, and a finished container may still be published by a
  ``media_publish`` whose answer was lost, so not finding the caption proves nothing. The API
  cannot delete feed media, so ``supports_delete`` is False.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
)
from ainfluencer.platforms.facebook.adapter import (
    DEFAULT_TIMEOUT,
    GRAPH_URL,
    GRAPH_VERSION,
    GraphClient,
    normalize_text,
)
from ainfluencer.platforms.instagram.rules import CAPTION

log = logging.getLogger(__name__)

INSTAGRAM_GRAPH_URL = "https://graph.instagram.com"
MAX_CAPTION_CHARS = CAPTION.max_length
MAX_HASHTAGS = 30
MAX_MENTIONS = 20
MAX_CAROUSEL = 10
REEL_MIN_SECONDS, REEL_MAX_SECONDS = 3.0, 15 * 60.0
STORY_MAX_VIDEO_SECONDS = 60.0
DAILY_PUBLISH_LIMIT = 100
_HASHTAG_RE = re.compile(r"(?<!\w)#\w+")
_MENTION_RE = re.compile(r"(?<!\w)@[\w.]+")
NO_PUBLIC_URL = ("Instagram fetches media from a public URL, and this file has none. Set the public base URL "
                 "(AINF_PUBLIC_MEDIA_BASE_URL: this server's public HTTPS address) or configure S3-compatible "
                 "storage (AINF_S3_BUCKET and its keys), then retry.")

# Containers being published right now in this process: a second check_status waits its turn.
_publishing: set[str] = set()
_publishing_lock = threading.Lock()


@dataclass(frozen=True)
class QuotaUsage:
    """API-published posts in the rolling window and the account's allowance."""

    used: int
    total: int
    window_seconds: int

    @property
    def remaining(self) -> int:
        """Posts still allowed in the current window."""
        return max(0, self.total - self.used)


class InstagramAdapter(PlatformAdapter):
    """Instagram content publishing through the Graph API; see the module docstring."""

    name = "instagram"
    display_name = "Instagram"
    GRAPH_VERSION = GRAPH_VERSION
    capabilities = Capabilities(
        max_text_chars=MAX_CAPTION_CHARS,
        text_counting="chars",
        media_kinds=frozenset({MediaKind.image, MediaKind.video}),
        max_media=MAX_CAROUSEL,
        max_image_bytes=8 * 1024 * 1024,
        max_video_bytes=300 * 1024 * 1024,
        max_video_seconds=REEL_MAX_SECONDS,
        min_video_seconds=REEL_MIN_SECONDS,
        video_codecs=frozenset({"h264", "hevc"}),
        requires_media=True,
        supports_alt_text=True,  # image posts take ``alt_text``
        max_alt_text_chars=1000,
        supports_first_comment=True,
        supports_ai_label=False,
        supports_delete=False,
        needs_public_media_url=True,
        async_processing=True,
        connect_method="oauth2",
        rate_limits=(RateLimit("post", DAILY_PUBLISH_LIMIT, 24 * 3600), RateLimit("api", 200, 3600)),
        daily_post_cap=DAILY_PUBLISH_LIMIT,
        notes=("Professional (business/creator) accounts only. Media is fetched by Meta from a public URL. "
               "30 hashtags and 20 mentions per caption; JPEG only for images; no AI-content field."),
    )

    def __init__(self, credentials: Credentials, **transport: Any) -> None:
        super().__init__(credentials, **transport)
        default_base = INSTAGRAM_GRAPH_URL if credentials.extra.get("login") == "instagram" else GRAPH_URL
        self.graph = GraphClient(network=self.display_name, base_url=transport.get("base_url") or default_base,
                                 version=transport.get("version") or self.GRAPH_VERSION,
                                 client=transport.get("client"), timeout=transport.get("timeout", DEFAULT_TIMEOUT))
        self.child_wait_s = float(transport.get("child_wait_s", 60))  # carousel video children
        self.poll_interval_s = float(transport.get("poll_interval_s", 3))
        self.publish_wait_s = float(transport.get("publish_wait_s", 10))  # images are usually ready in seconds
        self._published: dict[str, str] = {}  # container id -> media id, for this instance

    # -- plumbing -------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release the HTTP client this adapter created, if any."""
        await self.graph.aclose()

    def _token(self) -> str:
        token = self.credentials.access_token
        if not token:
            raise PlatformAuthError("No Instagram access token stored; reconnect the account.")
        return token.get_secret_value()

    def _ig_user(self) -> str:
        ig = self.credentials.extra.get("ig_user_id")
        if not ig:
            raise PlatformPermanentError("This Instagram account is not connected yet; connect it first.")
        return ig

    async def _get(self, path: str, **params: Any) -> dict[str, Any]:
        return await self.graph.request("GET", path, token=self._token(), params=params)

    async def _post(self, path: str, **data: Any) -> dict[str, Any]:
        return await self.graph.request("POST", path, token=self._token(), data=data)

    # -- contract -------------------------------------------------------------------------------

    async def connect(self) -> AccountInfo:
        """Find the professional account (via the Page or Instagram Login) and live-check it."""
        extra = self.credentials.extra
        if extra.get("login") == "instagram":
            me = await self._get("me", fields="user_id,username,name,account_type")
            ig_id, username, name = str(me.get("user_id") or me.get("id") or ""), me.get("username", ""), me.get(
                "name", "")
        else:
            page_id = extra.get("page_id")
            if not page_id:
                raise PlatformPermanentError("Choose the Facebook Page linked to the Instagram account.")
            page = await self._get(page_id, fields="instagram_business_account{id,username,name}")
            account = page.get("instagram_business_account") or {}
            if not account.get("id"):
                raise PlatformPermanentError("This Page has no linked Instagram professional account; link one in "
                                             "the Page settings (Linked accounts → Instagram).")
            ig_id, username, name = str(account["id"]), account.get("username", ""), account.get("name", "")
        if not ig_id:
            raise PlatformPermanentError("Instagram returned no account id for this login.")
        self.credentials.extra.update({"ig_user_id": ig_id, "handle": username})
        return AccountInfo(platform_account_id=ig_id, handle=username, display_name=name,
                           profile_url=f"https://www.instagram.com/{username}/" if username else "",
                           credentials=self.credentials)

    def post_type(self, post: PostRequest) -> str:
        """``feed`` (image), ``reel`` (single video), ``story`` or ``carousel``."""
        requested = str(post.options.get("post_type") or "").lower()
        if requested == "story":
            return "story"
        if len(post.media) > 1:
            return "carousel"
        if requested == "reel" or (post.media and post.media[0].kind == MediaKind.video):
            return "reel"
        return "feed"

    def validate(self, post: PostRequest) -> str:
        """Refuse what Instagram would refuse, before any container is created; returns the post type.

        Public URLs are not required here: the core checks content when a post is planned, and the
        publishing step attaches the URLs (services/public_media.py) just before :meth:`publish`.
        """
        kind = self.post_type(post)
        if not post.media:
            raise PlatformPermanentError("An Instagram post needs at least one image or video.")
        if CAPTION.length(post.text) > CAPTION.max_length:
            raise PlatformPermanentError(
                f"Caption is {CAPTION.length(post.text)} characters; Instagram allows {CAPTION.max_length}.")
        if len(_HASHTAG_RE.findall(post.text)) > MAX_HASHTAGS:
            raise PlatformPermanentError(f"Instagram allows at most {MAX_HASHTAGS} hashtags per caption.")
        if len(_MENTION_RE.findall(post.text)) > MAX_MENTIONS:
            raise PlatformPermanentError(f"Instagram allows at most {MAX_MENTIONS} @-mentions per caption.")
        if kind == "carousel" and len(post.media) > MAX_CAROUSEL:
            raise PlatformPermanentError(f"An Instagram carousel holds at most {MAX_CAROUSEL} items.")
        if kind == "story" and len(post.media) != 1:
            raise PlatformPermanentError("An Instagram story is one image or one video.")
        cap = self.capabilities
        for m in post.media:
            if m.kind not in cap.media_kinds:
                raise PlatformPermanentError(f"Instagram takes images and videos, not {m.kind}.")
            if m.kind == MediaKind.image and m.mime_type not in ("image/jpeg", "image/jpg"):
                raise PlatformPermanentError("Instagram publishes JPEG images only; convert the image first.")
            limit = cap.max_video_bytes if m.kind == MediaKind.video else cap.max_image_bytes
            try:
                size = m.path.stat().st_size
            except OSError:
                size = 0  # the file may live only in object storage; Meta measures what it fetches
            if size > limit:
                raise PlatformPermanentError(f"{m.path.name} is {size} bytes; Instagram accepts at most {limit}.")
            if m.kind == MediaKind.video and m.duration_seconds is not None:
                low, high = (0.0, STORY_MAX_VIDEO_SECONDS) if kind == "story" else (REEL_MIN_SECONDS,
                                                                                     REEL_MAX_SECONDS)
                if not low <= m.duration_seconds <= high:
                    raise PlatformPermanentError(
                        f"Video is {m.duration_seconds:.1f} s; Instagram {kind}s take {low:g}-{high:g} s.")
        return kind

    async def publish(self, post: PostRequest) -> PublishResult:
        """Create the container(s); publish at once when ready, else return ``processing``."""
        missing = [m.path.name for m in post.media if not m.public_url]
        if missing:
            raise PlatformPermanentError(NO_PUBLIC_URL, platform_message=f"no public URL for: {', '.join(missing)}")
        kind = self.validate(post)
        ig = self._ig_user()
        if kind == "carousel":
            children = [await self._create(ig, self._media_fields(m, carousel_item=True)) for m in post.media]
            await self._wait_children(children)
            container = await self._create(ig, {"media_type": "CAROUSEL", "children": ",".join(children),
                                                "caption": post.text or None})
        elif kind == "story":
            fields = self._media_fields(post.media[0])
            fields["media_type"] = "STORIES"
            container = await self._create(ig, fields)
        else:
            fields = self._media_fields(post.media[0])
            fields["caption"] = post.text or None
            if kind == "reel":
                fields.update({"media_type": "REELS", "share_to_feed": "true"})
            container = await self._create(ig, fields)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_wait_s
        result = await self.check_status(container)
        while result.state == PublishState.processing and loop.time() < deadline:
            await asyncio.sleep(self.poll_interval_s)
            result = await self.check_status(container)
        if result.state == PublishState.failed:
            raise PlatformPermanentError(f"Instagram could not process the media: {result.detail}",
                                         platform_message=result.detail)
        if result.state == PublishState.published and post.first_comment and result.platform_post_id:
            result.detail = await self._first_comment(result.platform_post_id, post.first_comment)
        return result

    @staticmethod
    def _media_fields(item: MediaItem, *, carousel_item: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if item.kind == MediaKind.video:
            fields["video_url"] = item.public_url
            if carousel_item:
                fields["media_type"] = "VIDEO"
        else:
            fields["image_url"] = item.public_url
            if item.alt_text:
                fields["alt_text"] = item.alt_text[:1000]
        if carousel_item:
            fields["is_carousel_item"] = "true"
        return fields

    async def _create(self, ig: str, fields: dict[str, Any]) -> str:
        body = await self._post(f"{ig}/media", **fields)
        container = str(body.get("id") or "")
        if not container:
            raise PlatformTransientError("Instagram created no container.", platform_message=str(body))
        return container

    async def _wait_children(self, children: list[str]) -> None:
        """Carousel children (videos take a while) must be FINISHED before the parent is created."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.child_wait_s
        pending = list(children)
        while pending:
            still = []
            for child in pending:
                status = await self._get(child, fields="status_code,status")
                code = status.get("status_code")
                if code in ("ERROR", "EXPIRED"):
                    raise PlatformPermanentError(f"Instagram could not process a carousel item ({code}).",
                                                 platform_message=str(status.get("status", "")))
                if code != "FINISHED":
                    still.append(child)
            pending = still
            if pending:
                if loop.time() > deadline:
                    raise PlatformTransientError("Instagram is still processing the carousel videos.",
                                                 retry_after=60)
                await asyncio.sleep(self.poll_interval_s)

    async def check_status(self, platform_post_id: str) -> PublishResult:
        """Poll a container; publish it exactly once when it is FINISHED."""
        container = platform_post_id
        if container in self._published:
            return self._published_result(container, self._published[container])
        with _publishing_lock:
            if container in _publishing:
                return PublishResult(state=PublishState.processing, platform_post_id=container,
                                     detail="being published by another worker", raw={"container_id": container})
            _publishing.add(container)
        try:
            status = await self._get(container, fields="status_code,status,id")
            code = status.get("status_code", "")
            if code == "PUBLISHED":
                # Published earlier (our lost response, or another worker): never publish again.
                return PublishResult(state=PublishState.published, platform_post_id=self._published.get(container, ""),
                                     detail="container already published; media id via find_published",
                                     raw={"container_id": container, **status})
            if code == "FINISHED":
                body = await self._post(f"{self._ig_user()}/media_publish", creation_id=container)
                media_id = str(body.get("id") or "")
                if not media_id:
                    raise PlatformTransientError("Instagram published but returned no media id.",
                                                 platform_message=str(body))
                self._published[container] = media_id
                return await self._describe(container, media_id)
            if code in ("ERROR", "EXPIRED"):
                detail = "container expired (not published within 24 h)" if code == "EXPIRED" else str(
                    status.get("status") or "processing error")
                return PublishResult(state=PublishState.failed, platform_post_id=container, detail=detail,
                                     raw={"container_id": container, **status})
            return PublishResult(state=PublishState.processing, platform_post_id=container, detail=code,
                                 raw={"container_id": container, **status})
        finally:
            with _publishing_lock:
                _publishing.discard(container)

    async def _describe(self, container: str, media_id: str) -> PublishResult:
        try:
            media = await self._get(media_id, fields="id,permalink,timestamp")
        except PlatformError:  # the post is live; a missing permalink is not a failure
            media = {"id": media_id}
        return PublishResult(state=PublishState.published, platform_post_id=media_id,
                             url=str(media.get("permalink") or ""), raw={"container_id": container, **media})

    @staticmethod
    def _published_result(container: str, media_id: str) -> PublishResult:
        return PublishResult(state=PublishState.published, platform_post_id=media_id,
                             raw={"container_id": container, "id": media_id})

    async def _first_comment(self, media_id: str, text: str) -> str:
        try:
            await self._post(f"{media_id}/comments", message=text)
        except PlatformError as exc:
            log.warning("instagram first comment failed for %s: %s", media_id, exc.message)
            return f"first comment not posted: {exc.platform_message or exc.message}"
        return ""

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Match the caption among the account's media since ``since`` (stories carry no caption)."""
        ig = self._ig_user()
        wanted = normalize_text(post.text)
        if not wanted:
            return None
        cutoff = since.astimezone(UTC).timestamp() - 300
        items = await self.graph.paged(f"{ig}/media", token=self._token(), params={
            "fields": "id,caption,timestamp,permalink,media_type", "since": int(cutoff), "limit": 50})
        for item in items:
            stamp = item.get("timestamp", "")
            if stamp and datetime.fromisoformat(stamp.replace("+0000", "+00:00")).timestamp() < cutoff:
                continue
            if normalize_text(item.get("caption", "")) == wanted:
                return PublishResult(state=PublishState.published, platform_post_id=str(item["id"]),
                                     url=str(item.get("permalink", "")), detail="found by caption", raw=item)
        return None

    async def delete(self, platform_post_id: str) -> None:
        """The Instagram API cannot delete published media; say so plainly."""
        raise PlatformPermanentError("Instagram's API cannot delete posts; delete it in the Instagram app.")

    async def quota_usage(self) -> QuotaUsage:
        """API-published posts in the last 24 h against the allowance (``content_publishing_limit``)."""
        body = await self._get(f"{self._ig_user()}/content_publishing_limit", fields="quota_usage,config")
        data = (body.get("data") or [{}])[0]
        config = data.get("config") or {}
        return QuotaUsage(used=int(data.get("quota_usage") or 0),
                          total=int(config.get("quota_total") or DAILY_PUBLISH_LIMIT),
                          window_seconds=int(config.get("quota_duration") or 86400))

    async def refresh(self) -> Credentials:
        """Instagram Login tokens are refreshed (60 more days); Facebook Login tokens are not."""
        if self.credentials.extra.get("login") != "instagram":
            return await super().refresh()
        body = await self.graph.request("GET", "refresh_access_token", token=self._token(), versioned=False,
                                        params={"grant_type": "ig_refresh_token"})
        token = body.get("access_token")
        if not token:
            raise PlatformAuthError("Instagram did not refresh the token; reconnect the account.")
        self.credentials.access_token = SecretStr(str(token))
        expires = body.get("expires_in")
        if expires:
            self.credentials.expires_at = datetime.now(UTC) + timedelta(seconds=int(expires))
        return self.credentials
