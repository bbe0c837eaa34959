"""Facebook Pages through the Graph API (httpx), plus the Graph client Instagram shares.

- Connect: the user token from Facebook Login lists ``/me/accounts``; the Page named by
  ``credentials.extra["page_id"]`` (or the only Page) yields a *Page* access token, which is what
  gets stored; ``/{page-id}?fields=id,name`` is the live check. A stored Page token is recognised
  (``/me`` is the Page itself) so re-checking an account does not need the user token again.
- Publish: text and links to ``/{page-id}/feed``; one photo to ``/{page-id}/photos`` (multipart
  ``source``, ``alt_text_custom``); several photos are uploaded unpublished and attached to one
  feed post; a video goes through the resumable ``start``/``transfer``/``finish`` phases of
  ``/{page-id}/videos`` on the graph-video host and is processed asynchronously.
- AI label: the Graph API has no AI-content field for Page posts, so ``supports_ai_label`` is
  False. Meta labels content from the C2PA/IPTC metadata it detects on upload, which our
  provenance step adds; the disclosure line stays in the Page's about text.
- Reconciliation: no idempotency key exists; ``find_published`` reads ``/{page-id}/posts`` (and
  ``/{page-id}/videos`` for video posts) since ``since`` and matches the text.
  ``reconcile_proves_absence`` is True for text, link and photo posts: the Page's own posts edge
  lists what the Page published (photo posts included) as soon as the create call returns, and it
  is paged to the end of the window. Video posts are only *found* this way: a video appears in
  the Page's lists once Facebook has processed it, so not finding one proves nothing, and
  ``find_published`` raises :class:`ReconcileUndecided` (a person decides). So does an empty text
  (nothing to match) and a window longer than ``RECONCILE_MAX_PAGES`` pages. Graph also refuses an
  identical status message twice in a row (code 506), a second guard against a duplicate.
- Errors: the Graph error JSON decides (code 190/102 auth; 4/17/32/613/80001+ rate limits with
  ``X-Business-Use-Case-Usage``/``X-App-Usage`` ``estimated_time_to_regain_access`` minutes as
  ``retry_after``; 1/2 or ``is_transient`` transient; 100/368/506 and the rest permanent; 5xx
  and network failures transient).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
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
from ainfluencer.platforms.facebook.oauth import GRAPH_VERSION
from ainfluencer.platforms.facebook.rules import POST

log = logging.getLogger(__name__)

GRAPH_URL = "https://graph.facebook.com"
GRAPH_VIDEO_URL = "https://graph-video.facebook.com"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(300.0, connect=10.0)

AUTH_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
# 9 is Instagram's "publishing limit reached" (subcode 2207042): it lifts as the 24 h window rolls.
RATE_LIMIT_CODES = frozenset({4, 9, 17, 32, 613, *range(80001, 80015)})
TRANSIENT_CODES = frozenset({-2, -1, 1, 2})
TRANSIENT_SUBCODES = frozenset({2207027, 2207032, 2207003, 2207001})  # IG: media not ready / retry later
RECONCILE_MAX_PAGES = 10  # posts edge pages (100 each) read back to ``since`` before giving up
RATE_LIMIT_DEFAULT_WAIT = 300.0  # Graph counts usage over a rolling hour; used when headers give no estimate
USAGE_HEADERS = ("x-business-use-case-usage", "x-app-usage", "x-page-usage", "x-ad-account-usage")


def _regain_minutes(value: Any) -> list[float]:
    """Every ``estimated_time_to_regain_access`` (minutes) found in a usage header's JSON."""
    found: list[float] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "estimated_time_to_regain_access" and isinstance(inner, int | float):
                found.append(float(inner))
            else:
                found.extend(_regain_minutes(inner))
    elif isinstance(value, list):
        for inner in value:
            found.extend(_regain_minutes(inner))
    return found


def usage_retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    """Seconds until Graph lifts throttling, from the usage headers (None when they do not say)."""
    minutes: list[float] = []
    for name in USAGE_HEADERS:
        raw = headers.get(name)
        if raw:
            try:
                minutes.extend(_regain_minutes(json.loads(raw)))
            except ValueError:
                continue
    best = max(minutes, default=0.0)
    return best * 60 if best > 0 else None


def graph_error(status: int, body: Any, headers: httpx.Headers | dict[str, str], *, network: str) -> PlatformError:
    """Map a Graph API error response onto the three adapter error kinds."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        if status >= 500 or status in (408, 429):
            return PlatformTransientError(f"{network} is having trouble (HTTP {status}).", status=status,
                                          retry_after=usage_retry_after(headers))
        if status == 413:
            return PlatformPermanentError(f"{network} rejected the file as too large.", status=status)
        return PlatformPermanentError(f"{network} rejected the request (HTTP {status}).", status=status,
                                      platform_message=str(body)[:300])
    code = int(err.get("code") or 0)
    subcode = err.get("error_subcode")
    message = str(err.get("error_user_msg") or err.get("message") or "")
    if subcode:
        message = f"{message} (code {code}, subcode {subcode})"
    elif code:
        message = f"{message} (code {code})"
    if code in AUTH_CODES:
        return PlatformAuthError(f"{network} rejected the access token; reconnect the account.",
                                 platform_message=message, status=status)
    if code in RATE_LIMIT_CODES:
        return PlatformTransientError(f"{network} rate limit reached.", platform_message=message, status=status,
                                      retry_after=usage_retry_after(headers) or RATE_LIMIT_DEFAULT_WAIT)
    if code in TRANSIENT_CODES or subcode in TRANSIENT_SUBCODES or err.get("is_transient") or status >= 500:
        return PlatformTransientError(f"{network} had a temporary problem.", platform_message=message,
                                      status=status, retry_after=usage_retry_after(headers))
    if code in PERMISSION_CODES:
        return PlatformAuthError(f"{network} denied a permission this needs; reconnect and grant it.",
                                 platform_message=message, status=status)
    if status == 413:
        return PlatformPermanentError(f"{network} rejected the file as too large.", platform_message=message,
                                      status=status)
    return PlatformPermanentError(f"{network} rejected the request.", platform_message=message, status=status)


class GraphClient:
    """The one choke point for Graph API traffic: timeout, error mapping, redacted logging."""

    def __init__(self, *, network: str, base_url: str, version: str, client: httpx.AsyncClient | None = None,
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT) -> None:
        self.network = network
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (an injected one belongs to the caller)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The injected client, or a lazily created one with the default timeout."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    def url(self, path: str, *, base_url: str | None = None, versioned: bool = True) -> str:
        """Absolute (by default versioned) URL for a Graph path."""
        root = (base_url or self.base_url).rstrip("/")
        return f"{root}/{self.version}/{path.lstrip('/')}" if versioned else f"{root}/{path.lstrip('/')}"

    async def request(self, method: str, path: str, *, token: str, params: dict[str, Any] | None = None,
                      data: dict[str, Any] | None = None, files: dict[str, Any] | None = None,
                      base_url: str | None = None, time_limit: httpx.Timeout | float | None = None,
                      versioned: bool = True) -> dict[str, Any]:
        """Send one Graph request; return the JSON body or raise a PlatformError."""
        url = self.url(path, base_url=base_url, versioned=versioned)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        form = {k: v for k, v in (data or {}).items() if v is not None}
        if method == "GET" or method == "DELETE":
            query["access_token"] = token
        else:
            form["access_token"] = token
        log.debug("%s %s %s", self.network, method, url)  # never the query: it carries the token
        try:
            resp = await self.client.request(method, url, params=query, data=form or None, files=files,
                                             timeout=time_limit or self.timeout)
        except httpx.TimeoutException as exc:
            raise PlatformTransientError(f"{self.network} did not answer in time.",
                                         platform_message=type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise PlatformTransientError(f"Could not reach {self.network} (network).",
                                         platform_message=type(exc).__name__) from exc
        try:
            body: Any = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400 or (isinstance(body, dict) and "error" in body):
            raise graph_error(resp.status_code, body, resp.headers, network=self.network)
        if not isinstance(body, dict):
            raise PlatformTransientError(f"{self.network} sent an unexpected response.",
                                         platform_message=resp.text[:300], status=resp.status_code)
        return body

    async def paged(self, path: str, *, token: str, params: dict[str, Any], max_pages: int = 5,
                    complete: bool = False) -> list[dict[str, Any]]:
        """Items of a Graph edge, following ``paging.cursors.after`` up to ``max_pages``.

        With ``complete`` a listing longer than ``max_pages`` raises :class:`ReconcileUndecided`
        instead of returning a partial list.
        """
        items: list[dict[str, Any]] = []
        query = dict(params)
        for _ in range(max_pages):
            body = await self.request("GET", path, token=token, params=query)
            items.extend(body.get("data") or [])
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return items
            query["after"] = after
        if complete:
            raise ReconcileUndecided(f"{self.network} listed more than {len(items)} items in the window; the "
                                     "listing was not read to the end.")
        return items


def read_range(path: Path, offset: int, length: int) -> bytes:
    """``length`` bytes of a file from ``offset`` (blocking; run it in a thread)."""
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def normalize_text(text: str) -> str:
    """Text as compared during reconciliation: whitespace folded."""
    return " ".join(text.split())


def _ts(since: datetime) -> int:
    return int((since.astimezone(UTC) - timedelta(minutes=5)).timestamp())


class FacebookPageAdapter(PlatformAdapter):
    """A Facebook Page through the Graph API; see the module docstring."""

    name = "facebook"
    display_name = "Facebook Page"
    reconcile_proves_absence = True  # text/photo posts; video posts raise ReconcileUndecided
    GRAPH_VERSION = GRAPH_VERSION
    capabilities = Capabilities(
        max_text_chars=POST.max_length,
        text_counting=POST.counting,
        media_kinds=frozenset({MediaKind.image, MediaKind.video}),
        max_media=10,  # photos attached to one post; a video goes alone
        max_image_bytes=10 * 1024 * 1024,
        max_video_bytes=10 * 1024**3,
        max_video_seconds=240 * 60,
        min_video_seconds=1,
        video_codecs=frozenset({"h264", "hevc", "vp9"}),
        supports_alt_text=True,
        max_alt_text_chars=1000,
        supports_first_comment=True,
        supports_ai_label=False,
        async_processing=True,  # videos
        connect_method="oauth2",
        rate_limits=(RateLimit("api", 200, 3600),),
        notes=("No AI-content field for Page posts in the Graph API; Meta reads the C2PA/IPTC provenance we "
               "embed. Page rate limits scale with the Page's engaged users (Business Use Case limits)."),
    )

    def __init__(self, credentials: Credentials, **transport: Any) -> None:
        super().__init__(credentials, **transport)
        self.graph = GraphClient(network=self.display_name, base_url=transport.get("base_url") or GRAPH_URL,
                                 version=transport.get("version") or self.GRAPH_VERSION,
                                 client=transport.get("client"), timeout=transport.get("timeout", DEFAULT_TIMEOUT))
        self.video_base_url: str = transport.get("video_base_url") or transport.get("base_url") or GRAPH_VIDEO_URL

    async def aclose(self) -> None:
        """Release the HTTP client this adapter created, if any."""
        await self.graph.aclose()

    def _token(self) -> str:
        token = self.credentials.access_token
        if not token:
            raise PlatformAuthError("No Facebook access token stored; reconnect the account.")
        return token.get_secret_value()

    def _page_id(self) -> str:
        page_id = self.credentials.extra.get("page_id")
        if not page_id:
            raise PlatformPermanentError("No Facebook Page chosen for this account; reconnect and pick a Page.")
        return page_id

    async def connect(self) -> AccountInfo:
        """Exchange the user token for the chosen Page's token, then live-check the Page."""
        token = self._token()
        wanted = self.credentials.extra.get("page_id")
        me = await self.graph.request("GET", "me", token=token, params={"fields": "id,name"})
        if wanted and str(me.get("id")) == wanted:
            page_token = token  # already a Page token
        else:
            pages = await self.graph.paged("me/accounts", token=token,
                                           params={"fields": "id,name,access_token,tasks", "limit": 100})
            if not pages:
                raise PlatformPermanentError("This Facebook login manages no Pages; grant access to a Page.")
            if wanted:
                chosen = next((p for p in pages if str(p.get("id")) == wanted), None)
                if chosen is None:
                    raise PlatformPermanentError(f"Page {wanted} is not among the Pages this login manages.")
            elif len(pages) == 1:
                chosen = pages[0]
            else:
                names = ", ".join(f"{p.get('name')} ({p.get('id')})" for p in pages)
                raise PlatformPermanentError(f"Choose which Page to connect: {names}.")
            if not chosen.get("access_token"):
                raise PlatformAuthError("Facebook returned no Page token; grant pages_manage_posts.")
            page_token = str(chosen["access_token"])
            wanted = str(chosen["id"])
        page = await self.graph.request("GET", wanted, token=page_token, params={"fields": "id,name,link,username"})
        handle = str(page.get("username") or page.get("name") or "")
        self.credentials = Credentials(
            access_token=SecretStr(page_token), refresh_token=None, expires_at=None,
            extra={**self.credentials.extra, "page_id": str(page["id"]), "handle": handle},
            secret_extra=dict(self.credentials.secret_extra),
        )
        return AccountInfo(platform_account_id=str(page["id"]), handle=handle, display_name=str(page.get("name", "")),
                           profile_url=str(page.get("link") or f"https://www.facebook.com/{page['id']}"),
                           credentials=self.credentials)

    def validate(self, post: PostRequest) -> None:
        """Refuse what the Page endpoints would refuse, before any upload."""
        cap = self.capabilities
        if POST.length(post.text) > POST.max_length:
            raise PlatformPermanentError(f"Post is {POST.length(post.text)} characters; Facebook allows "
                                         f"{POST.max_length}.")
        if not post.text.strip() and not post.media:
            raise PlatformPermanentError("A Facebook post needs text or media.")
        videos = [m for m in post.media if m.kind == MediaKind.video]
        if videos and len(post.media) > 1:
            raise PlatformPermanentError("A Facebook video is posted on its own, not with other media.")
        if len(post.media) > cap.max_media:
            raise PlatformPermanentError(f"At most {cap.max_media} photos per Facebook post.")
        for m in post.media:
            if m.kind not in cap.media_kinds:
                raise PlatformPermanentError(f"Facebook Pages take images and videos, not {m.kind}.")
            try:
                size = m.path.stat().st_size
            except OSError as exc:
                raise PlatformPermanentError(f"Media file {m.path.name} cannot be read.") from exc
            limit = cap.max_video_bytes if m.kind == MediaKind.video else cap.max_image_bytes
            if size > limit:
                raise PlatformPermanentError(f"{m.path.name} is {size} bytes; Facebook accepts at most {limit}.")
            if m.kind == MediaKind.video and m.duration_seconds and m.duration_seconds > cap.max_video_seconds:
                raise PlatformPermanentError("Facebook Page videos are at most 240 minutes.")

    async def publish(self, post: PostRequest) -> PublishResult:
        """Post text, photos or a video to the Page."""
        self.validate(post)
        page, token = self._page_id(), self._token()
        if post.media and post.media[0].kind == MediaKind.video:
            return await self._publish_video(post, page, token)
        if len(post.media) == 1:
            body = await self._photo(page, token, post.media[0], caption=post.text, published=True)
            post_id = str(body.get("post_id") or body.get("id") or "")
        else:
            data: dict[str, Any] = {"message": post.text or None, "link": post.options.get("link")}
            for i, item in enumerate(post.media):
                photo = await self._photo(page, token, item, caption="", published=False)
                data[f"attached_media[{i}]"] = json.dumps({"media_fbid": str(photo["id"])})
            body = await self.graph.request("POST", f"{page}/feed", token=token, data=data)
            post_id = str(body.get("id") or "")
        if not post_id:
            raise PlatformPermanentError("Facebook accepted the post but returned no id.", platform_message=str(body))
        detail = await self._first_comment(post, post_id, token)
        return PublishResult(state=PublishState.published, platform_post_id=post_id, url=self._url(post_id),
                             detail=detail, raw=body)

    async def _photo(self, page: str, token: str, item: MediaItem, *, caption: str, published: bool) -> dict[str, Any]:
        data = {"caption": caption or None, "published": "true" if published else "false",
                "alt_text_custom": item.alt_text or None}
        content = await asyncio.to_thread(item.path.read_bytes)
        files = {"source": (item.path.name, content, item.mime_type)}
        return await self.graph.request("POST", f"{page}/photos", token=token, data=data, files=files,
                                        time_limit=UPLOAD_TIMEOUT)

    async def _publish_video(self, post: PostRequest, page: str, token: str) -> PublishResult:
        """Resumable upload: start -> transfer chunks at the offsets Graph names -> finish."""
        item = post.media[0]
        size = item.path.stat().st_size
        path = f"{page}/videos"
        start = await self.graph.request("POST", path, token=token, base_url=self.video_base_url,
                                         data={"upload_phase": "start", "file_size": str(size)})
        session, video_id = str(start["upload_session_id"]), str(start["video_id"])
        offset, end = int(start["start_offset"]), int(start["end_offset"])
        while offset < end:
            chunk = await asyncio.to_thread(read_range, item.path, offset, end - offset)
            step = await self.graph.request(
                "POST", path, token=token, base_url=self.video_base_url, time_limit=UPLOAD_TIMEOUT,
                data={"upload_phase": "transfer", "upload_session_id": session, "start_offset": str(offset)},
                files={"video_file_chunk": (item.path.name, chunk, "application/octet-stream")})
            offset, end = int(step["start_offset"]), int(step["end_offset"])
        finish = await self.graph.request("POST", path, token=token, base_url=self.video_base_url, data={
            "upload_phase": "finish", "upload_session_id": session, "description": post.text or None,
            "title": post.title or None})
        if not finish.get("success", False):
            raise PlatformPermanentError("Facebook did not accept the finished upload.", platform_message=str(finish))
        return PublishResult(state=PublishState.processing, platform_post_id=video_id,
                             url=f"https://www.facebook.com/{page}/videos/{video_id}", raw=finish)

    async def _first_comment(self, post: PostRequest, post_id: str, token: str) -> str:
        if not post.first_comment:
            return ""
        # The post exists now: a failed comment must not fail (and so re-send) the publication.
        try:
            await self.graph.request("POST", f"{post_id}/comments", token=token, data={"message": post.first_comment})
        except PlatformError as exc:
            log.warning("facebook first comment failed for %s: %s", post_id, exc.message)
            return f"first comment not posted: {exc.platform_message or exc.message}"
        return ""

    @staticmethod
    def _url(post_id: str) -> str:
        return f"https://www.facebook.com/{post_id}"

    async def check_status(self, platform_post_id: str) -> PublishResult:
        """Feed posts (``page_post``) are live at once; videos report ``status.video_status``."""
        if "_" in platform_post_id:
            return PublishResult(state=PublishState.published, platform_post_id=platform_post_id,
                                 url=self._url(platform_post_id))
        body = await self.graph.request("GET", platform_post_id, token=self._token(),
                                        params={"fields": "id,status,permalink_url"})
        status = body.get("status") or {}
        video_status = status.get("video_status", "")
        url = body.get("permalink_url") or ""
        if url.startswith("/"):
            url = "https://www.facebook.com" + url
        if video_status == "ready":
            return PublishResult(state=PublishState.published, platform_post_id=platform_post_id, url=url, raw=body)
        if video_status == "error" or (status.get("processing_phase") or {}).get("status") == "error":
            errors = (status.get("processing_phase") or {}).get("errors") or status
            return PublishResult(state=PublishState.failed, platform_post_id=platform_post_id,
                                 detail=f"video processing failed: {errors}", raw=body)
        return PublishResult(state=PublishState.processing, platform_post_id=platform_post_id,
                             detail=video_status, raw=body)

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Match the post text among the Page's posts (and videos) since ``since``."""
        page, token = self._page_id(), self._token()
        wanted = normalize_text(post.text)
        if not wanted:
            raise ReconcileUndecided("A Facebook post without text cannot be told apart from others.")
        is_video = any(m.kind == MediaKind.video for m in post.media)
        if is_video:
            videos = await self.graph.paged(f"{page}/videos", token=token, params={
                "fields": "id,description,created_time", "since": _ts(since), "limit": 100})
            for v in videos:
                if normalize_text(v.get("description", "")) == wanted:
                    return PublishResult(state=PublishState.processing, platform_post_id=str(v["id"]),
                                         detail="found by description; check status", raw=v)
            raise ReconcileUndecided("No video with this description is listed yet, but Facebook lists videos "
                                     "only after processing them, so that proves nothing.")
        posts = await self.graph.paged(f"{page}/posts", token=token, params={
            "fields": "id,message,created_time,permalink_url", "since": _ts(since), "limit": 100},
            max_pages=RECONCILE_MAX_PAGES, complete=True)
        for p in posts:
            if normalize_text(p.get("message", "")) == wanted:
                return PublishResult(state=PublishState.published, platform_post_id=str(p["id"]),
                                     url=str(p.get("permalink_url") or self._url(str(p["id"]))),
                                     detail="found by text", raw=p)
        return None

    async def delete(self, platform_post_id: str) -> None:
        """Delete a post or video; one that is already gone counts as deleted."""
        try:
            await self.graph.request("DELETE", platform_post_id, token=self._token())
        except PlatformPermanentError as exc:
            # code 100 with subcode 33: "object does not exist" — it is already gone.
            if "subcode 33" not in exc.platform_message and exc.status != 404:
                raise
