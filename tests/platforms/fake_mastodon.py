"""A local Mastodon REST API (docs.joinmastodon.org/methods) for Mastodon.py to talk to.

Covers what the adapter uses: instance info, verify/update credentials, v2 media upload with
asynchronous processing (202, then 206 on ``GET /api/v1/media/:id`` until processed), statuses
with ``Idempotency-Key``, the account's statuses with ``Link`` pagination, and delete.
"""

from __future__ import annotations

import html
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from _servers_a import FakeServer, Received, Reply

TOKEN = "mastodon-test-token-0123456789abcdef"
ACCOUNT_ID = "109000000000000001"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_html(text: str) -> str:
    """Roughly what Mastodon renders from a plain-text status: paragraphs, <br />, linked URLs and tags."""

    def link(match: re.Match[str]) -> str:
        url = match.group(0)
        scheme, _, rest = url.partition("://")
        shown, hidden = rest[:30], rest[30:]
        return (
            f'<a href="{html.escape(url)}" rel="nofollow noopener" target="_blank">'
            f'<span class="invisible">{scheme}://</span><span class="ellipsis">{html.escape(shown)}</span>'
            f'<span class="invisible">{html.escape(hidden)}</span></a>'
        )

    def tag(match: re.Match[str]) -> str:
        name = match.group(1)
        return f'<a href="https://mastodon.test/tags/{name}" class="mention hashtag" rel="tag">#<span>{name}</span></a>'

    paragraphs = []
    for para in text.split("\n\n"):
        escaped = html.escape(para, quote=False)
        escaped = re.sub(r"https?://[^\s<]+", link, escaped)
        escaped = re.sub(r"(?<![\w/])#(\w+)", tag, escaped)
        paragraphs.append("<p>" + escaped.replace("\n", "<br />") + "</p>")
    return "".join(paragraphs)


class FakeMastodon(FakeServer):
    """One instance with one account (``TOKEN``)."""

    def __init__(self, *, process_polls: int = 0, image_limit: int = 16 * 1024 * 1024) -> None:
        super().__init__(self.handle)
        self.process_polls = process_polls  # 206 answers before an upload is processed
        self.image_limit = image_limit
        self.account: dict[str, Any] = {
            "id": ACCOUNT_ID,
            "username": "nova",
            "acct": "nova",
            "display_name": "Nova (virtual)",
            "locked": False,
            "bot": False,
            "discoverable": True,
            "group": False,
            "created_at": "2024-01-01T00:00:00.000Z",
            "note": "<p>Virtual character · AI-generated content</p>",
            "url": "https://mastodon.test/@nova",
            "uri": "https://mastodon.test/users/nova",
            "avatar": "https://mastodon.test/avatars/original/missing.png",
            "avatar_static": "https://mastodon.test/avatars/original/missing.png",
            "header": "https://mastodon.test/headers/original/missing.png",
            "header_static": "https://mastodon.test/headers/original/missing.png",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": 0,
            "last_status_at": None,
            "emojis": [],
            "fields": [],
        }
        self.statuses: dict[str, dict[str, Any]] = {}  # id -> status, ids increase with time
        self.media: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, int] = {}  # media id -> 206 answers still to give
        self.idempotency: dict[str, str] = {}  # key -> status id
        self._ids = itertools.count(110000000000000000)

    def add_status(self, text: str, created_at: datetime, *, media_count: int = 0) -> dict[str, Any]:
        """Put an older status on the account (for reconciliation tests)."""
        status_id = str(next(self._ids))
        status = self._status(
            status_id, text, created_at, [self._media_json(str(next(self._ids)), "") for _ in range(media_count)]
        )
        self.statuses[status_id] = status
        return status

    # -- JSON shapes ----------------------------------------------------------------------------
    def _media_json(self, media_id: str, description: str | None, *, processed: bool = True) -> dict[str, Any]:
        url = f"https://mastodon.test/system/media/{media_id}.jpg" if processed else None
        return {
            "id": media_id,
            "type": "image",
            "url": url,
            "preview_url": url,
            "remote_url": None,
            "text_url": None,
            "meta": {},
            "description": description,
            "blurhash": "UFBWY:8_0Jxv8_%M",
        }

    def _status(
        self, status_id: str, text: str, created_at: datetime, media: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": status_id,
            "created_at": _iso(created_at),
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": f"https://mastodon.test/users/nova/statuses/{status_id}",
            "url": f"https://mastodon.test/@nova/{status_id}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
            "content": to_html(text),
            "reblog": None,
            "application": {"name": "AInfluencer", "website": None},
            "account": self.account,
            "media_attachments": media,
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
            **extra,
        }

    # -- dispatch -----------------------------------------------------------------------------------
    def handle(self, req: Received) -> Reply:
        path, method = req.path.rstrip("/") or "/", req.method
        if path == "/api/v1/instance":
            return Reply(200, {"uri": "mastodon.test", "title": "Test", "version": "4.3.0", "urls": {}})
        if path == "/api/v2/instance":
            return Reply(
                200, {"domain": "mastodon.test", "title": "Test", "version": "4.3.0", "api_versions": {"mastodon": 2}}
            )
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"error": "The access token is invalid"})
        if path == "/api/v1/accounts/verify_credentials" and method == "GET":
            return Reply(200, self.account)
        if path == "/api/v1/accounts/update_credentials" and method == "PATCH":
            if req.field("bot") is not None:
                self.account["bot"] = req.field("bot") in ("1", "true", "True")
            return Reply(200, self.account)
        if path in ("/api/v2/media", "/api/v1/media") and method == "POST":
            return self._upload(req)
        if (m := re.fullmatch(r"/api/v1/media/(\d+)", path)) and method == "GET":
            return self._media_status(m.group(1))
        if path == "/api/v1/statuses" and method == "POST":
            return self._post_status(req)
        if (m := re.fullmatch(r"/api/v1/accounts/(\d+)/statuses", path)) and method == "GET":
            return self._account_statuses(req, m.group(1))
        if (m := re.fullmatch(r"/api/v1/statuses/(\d+)", path)) and method == "DELETE":
            status = self.statuses.pop(m.group(1), None)
            if status is None:
                return Reply(404, {"error": "Record not found"})
            return Reply(200, status)
        return Reply(404, {"error": "Record not found"})

    def _upload(self, req: Received) -> Reply:
        upload = req.files.get("file")
        if upload is None:
            return Reply(422, {"error": "Validation failed: File can't be blank"})
        if len(upload.data) > self.image_limit:
            return Reply(422, {"error": "Validation failed: File file size must be less than 16 MB"})
        media_id = str(next(self._ids))
        processed = self.process_polls == 0
        self.media[media_id] = self._media_json(media_id, req.field("description"), processed=processed)
        if processed:
            return Reply(200, self.media[media_id])
        self.pending[media_id] = self.process_polls
        return Reply(202, self.media[media_id])

    def _media_status(self, media_id: str) -> Reply:
        if media_id not in self.media:
            return Reply(404, {"error": "Record not found"})
        left = self.pending.get(media_id, 0)
        if left > 0:
            self.pending[media_id] = left - 1
            return Reply(206, self.media[media_id])
        self.media[media_id] = self._media_json(media_id, self.media[media_id]["description"])
        return Reply(200, self.media[media_id])

    def _post_status(self, req: Received) -> Reply:
        key = req.headers.get("idempotency-key")
        if key and key in self.idempotency and self.idempotency[key] in self.statuses:
            return Reply(200, self.statuses[self.idempotency[key]])  # what Mastodon does with a repeated key
        text = req.field("status") or ""
        media_ids = req.form.get("media_ids[]", [])
        if not text.strip() and not media_ids:
            return Reply(422, {"error": "Validation failed: Text can't be blank"})
        if len(text) > 500:
            return Reply(422, {"error": "Validation failed: Text character limit of 500 exceeded"})
        media = []
        for media_id in media_ids:
            attachment = self.media.get(media_id)
            if attachment is None:
                return Reply(422, {"error": "Validation failed: Media attachments are invalid"})
            if attachment["url"] is None:
                return Reply(
                    422, {"error": "Cannot attach files that have not finished processing. Try again in a moment!"}
                )
            media.append(attachment)
        status_id = str(next(self._ids))
        status = self._status(
            status_id,
            text,
            datetime.now(UTC),
            media,
            visibility=req.field("visibility") or "public",
            language=req.field("language") or "en",
        )
        self.statuses[status_id] = status
        if key:
            self.idempotency[key] = status_id
        return Reply(200, status)

    def _account_statuses(self, req: Received, account_id: str) -> Reply:
        if account_id != ACCOUNT_ID:
            return Reply(404, {"error": "Record not found"})
        limit = int(req.q("limit") or 20)
        max_id = req.q("max_id")
        ordered = sorted(self.statuses.values(), key=lambda s: int(s["id"]), reverse=True)
        if max_id:
            ordered = [s for s in ordered if int(s["id"]) < int(max_id)]
        page = ordered[:limit]
        headers = {}
        if len(ordered) > limit:
            base = f"http://{req.headers.get('host')}{req.path}"
            next_url = f"{base}?limit={limit}&max_id={page[-1]['id']}"
            prev_url = f"{base}?min_id={page[0]['id']}"
            headers["Link"] = f'<{next_url}>; rel="next", <{prev_url}>; rel="prev"'
        return Reply(200, page, headers)


def rate_limited(seconds: int = 30) -> Reply:
    """A 429 as Mastodon sends it, with the X-RateLimit-* headers."""
    reset = datetime.now(UTC) + timedelta(seconds=seconds)
    return Reply(
        429,
        {"error": "Too many requests"},
        {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": _iso(reset)},
    )
