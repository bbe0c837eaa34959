"""FakeNet's adapter: the test network, packaged the way every network is (see ``fakenet/__init__.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
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

from .rules import POST


class FakeNetAdapter(PlatformAdapter):
    """Speaks FakeNet; ``credentials.extra['base_url']`` points it at a server (test-only adapter)."""

    name = "fakenet"
    display_name = "FakeNet"
    capabilities = Capabilities(
        max_text_chars=POST.max_length,
        media_kinds=frozenset({MediaKind.image, MediaKind.video}),
        max_media=2,
        max_image_bytes=64 * 1024,
        max_video_bytes=256 * 1024,
        supports_alt_text=True,
        max_alt_text_chars=100,
        connect_method="token",
        rate_limits=(),
    )
    reconcile_proves_absence = True
    timeout = 5.0

    def validate(self, post: PostRequest) -> None:
        """FakeNet's own rules beyond the capability data: length, and JPEG-only images."""
        if POST.length(post.text) > POST.max_length:
            raise PlatformPermanentError(
                f"Text is {POST.length(post.text)} characters; FakeNet allows {POST.max_length}.")
        for item in post.media:
            if item.kind == MediaKind.image and item.mime_type not in ("image/jpeg", "image/jpg"):
                raise PlatformPermanentError(f"{item.path.name}: FakeNet takes JPEG images only.")

    async def _request(self, method: str, path: str, *, json_body: Any = None, marker: str = "",
                       auth: bool = True) -> httpx.Response:
        base = self.credentials.extra.get("base_url", "").rstrip("/")
        headers = {}
        if auth and self.credentials.access_token is not None:
            headers["Authorization"] = f"Bearer {self.credentials.access_token.get_secret_value()}"
        if marker:
            headers["Idempotency-Key"] = marker
        try:
            async with httpx.AsyncClient(timeout=self.transport.get("timeout", self.timeout), verify=False) as c:
                resp = await c.request(method, base + path, json=json_body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise PlatformTransientError("FakeNet cannot be reached.") from exc
        except httpx.HTTPError as exc:  # timeouts after sending, dropped connections
            raise PlatformTransientError(f"FakeNet connection failed: {type(exc).__name__}.") from exc
        if resp.status_code < 400:
            return resp
        try:
            message = str(resp.json().get("error", ""))
        except ValueError:
            message = resp.text[:200]
        if resp.status_code == 401:
            raise PlatformAuthError("FakeNet rejected the token.", platform_message=message, status=401)
        if resp.status_code == 429:
            header = resp.headers.get("Retry-After")
            raise PlatformTransientError("FakeNet rate limit reached.", platform_message=message, status=429,
                                         retry_after=float(header) if header else None)
        if resp.status_code >= 500:
            raise PlatformTransientError("FakeNet had an error.", platform_message=message, status=resp.status_code)
        raise PlatformPermanentError("FakeNet refused the request.", platform_message=message,
                                     status=resp.status_code)

    async def connect(self) -> AccountInfo:
        """GET /v1/me."""
        me = (await self._request("GET", "/v1/me")).json()
        return AccountInfo(platform_account_id=me["id"], handle=me["handle"], display_name=me["name"],
                           profile_url=f"https://fakenet.test/{me['handle'].lstrip('@')}", credentials=self.credentials)

    async def publish(self, post: PostRequest) -> PublishResult:
        """POST /v1/posts with the marker as Idempotency-Key."""
        self.validate(post)
        media = [{"name": m.path.name, "size": m.path.stat().st_size, "alt": m.alt_text} for m in post.media]
        body = (await self._request("POST", "/v1/posts", json_body={"text": post.text, "media": media},
                                    marker=post.marker)).json()
        return _result(body)

    async def check_status(self, platform_post_id: str) -> PublishResult:
        """GET /v1/posts/<id>."""
        return _result((await self._request("GET", f"/v1/posts/{platform_post_id}")).json())

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """GET /v1/posts?marker=...: the marker makes absence certain."""
        found = (await self._request("GET", f"/v1/posts?marker={post.marker}")).json()["data"]
        return _result(found[0], detail="found by marker") if found else None

    async def delete(self, platform_post_id: str) -> None:
        """DELETE /v1/posts/<id>."""
        await self._request("DELETE", f"/v1/posts/{platform_post_id}")

    async def refresh(self) -> Credentials:
        """Trade the refresh token for new tokens (stored by the core)."""
        if self.credentials.refresh_token is None:
            raise PlatformAuthError("No FakeNet refresh token; reconnect.")
        try:
            body = (await self._request("POST", "/v1/oauth/token", auth=False, json_body={
                "refresh_token": self.credentials.refresh_token.get_secret_value()})).json()
        except PlatformError as exc:
            if exc.status == 401:
                raise PlatformAuthError("FakeNet refused the refresh token.", status=401) from exc
            raise
        self.credentials = Credentials(
            access_token=SecretStr(body["access_token"]), refresh_token=SecretStr(body["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
            extra=dict(self.credentials.extra), secret_extra=dict(self.credentials.secret_extra),
        )
        return self.credentials


class FakeNetLimitedAdapter(FakeNetAdapter):
    """FakeNet with a documented limit of 2 posts an hour."""

    name = "fakenet_limited"
    capabilities = Capabilities(
        max_text_chars=280, media_kinds=frozenset({MediaKind.image}), max_media=2, max_image_bytes=64 * 1024,
        rate_limits=(RateLimit("post", 2, 3600), RateLimit("delete", 1, 3600)),
    )


class FakeNetBlindAdapter(FakeNetAdapter):
    """FakeNet whose API cannot look posts up (like the Telegram Bot API): None means "cannot tell"."""

    name = "fakenet_blind"
    reconcile_proves_absence = False

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Cannot search: always None."""
        return None


def _result(post: dict[str, Any], detail: str = "") -> PublishResult:
    state = PublishState.processing if post.get("state") == "processing" else PublishState.published
    return PublishResult(state=state, platform_post_id=post["id"], url=post["url"], detail=detail, raw=post)
