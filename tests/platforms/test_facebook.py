"""Facebook Page adapter against a local Graph API server, through an injected httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from _servers_b import Drop, Response
from fake_graph import FakeGraph, buc_header, graph_error
from pydantic import SecretStr

from ainfluencer.platforms.base import (
    Credentials,
    MediaItem,
    MediaKind,
    PlatformAuthError,
    PlatformPermanentError,
    PlatformTransientError,
    PostRequest,
    PublishState,
)
from ainfluencer.platforms.facebook.adapter import FacebookPageAdapter, usage_retry_after
from ainfluencer.platforms.registry import adapter_class

pytestmark = pytest.mark.nodb


@pytest.fixture
def fake():
    with FakeGraph() as f:
        yield f


def run(fake: FakeGraph, fn: Callable[[FacebookPageAdapter], Awaitable[Any]], *, token: str = "page-token",
        extra: dict[str, str] | None = None) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(timeout=5) as client:
            creds = Credentials(access_token=SecretStr(token),
                                extra={"page_id": fake.page_id} if extra is None else extra)
            adapter = FacebookPageAdapter(creds, client=client, base_url=fake.url, video_base_url=fake.url)
            return await fn(adapter)

    return asyncio.run(main())


@pytest.fixture
def media(tmp_path: Path) -> dict[str, MediaItem]:
    def image(name: str, alt: str = "") -> MediaItem:
        path = tmp_path / name
        path.write_bytes(b"\xff\xd8\xff\xe0" + name.encode() * 50)
        return MediaItem(path, MediaKind.image, "image/jpeg", alt_text=alt)

    vid = tmp_path / "clip.mp4"
    vid.write_bytes(bytes(range(250)) * 10)  # 2500 bytes -> 3 transfer phases of <= 1000
    big = tmp_path / "big.jpg"
    with big.open("wb") as fh:
        fh.truncate(11 * 1024 * 1024)
    return {"a": image("a.jpg", "Ava on a boat"), "b": image("b.jpg"),
            "video": MediaItem(vid, MediaKind.video, "video/mp4", duration_seconds=20),
            "big": MediaItem(big, MediaKind.image, "image/jpeg")}


def _post(media: dict[str, MediaItem], kw: dict[str, Any]) -> PostRequest:
    kw = dict(kw)
    kw["media"] = [media[k] for k in kw.get("media", [])]
    return PostRequest(marker="pub-1", **kw)


# ---------------------------------------------------------------- success rows

SUCCESS_ROWS = [
    ("text + link", {"text": "New look today", "options": {"link": "https://example.com/ava"}},
     lambda f, r: f.posts[r.platform_post_id]["link"] == "https://example.com/ava"),
    ("one photo with alt text", {"text": "Boat day", "media": ["a"]},
     lambda f, r: (f.posts[r.platform_post_id]["message"] == "Boat day"
                   and f.photos[f.posts[r.platform_post_id]["attached"][0]]["alt"] == "Ava on a boat")),
    ("two photos in one post", {"text": "Album", "media": ["a", "b"]},
     lambda f, r: (len(f.posts[r.platform_post_id]["attached"]) == 2
                   and not any(p["published"] for p in f.photos.values()))),
    ("first comment", {"text": "With a comment", "first_comment": "Link in bio"},
     lambda f, r: f.comments == [{"on": r.platform_post_id, "message": "Link in bio"}]),
]


@pytest.mark.parametrize(("post_kw", "check"), [row[1:] for row in SUCCESS_ROWS], ids=[r[0] for r in SUCCESS_ROWS])
def test_publish_success(fake, media, post_kw, check):
    result = run(fake, lambda a: a.publish(_post(media, post_kw)))
    assert result.state == PublishState.published
    assert result.platform_post_id.startswith(fake.page_id + "_")
    assert result.url == f"https://www.facebook.com/{result.platform_post_id}"
    assert check(fake, result)
    assert all(r.param("access_token") == "page-token" for r in fake.server.log)


def test_video_resumable_upload_then_processing(fake, media):
    post = PostRequest(text="Clip of the day", title="Clip", media=[media["video"]])

    async def flow(adapter: FacebookPageAdapter) -> list[Any]:
        result = await adapter.publish(post)
        return [result, await adapter.check_status(result.platform_post_id),
                await adapter.check_status(result.platform_post_id)]

    result, first, second = run(fake, flow)
    assert result.state == PublishState.processing
    video = fake.videos[result.platform_post_id]
    assert video["bytes"] == media["video"].path.read_bytes() and video["description"] == "Clip of the day"
    phases = [r.form["upload_phase"] for r in fake.server.requests("POST", rf"/v21.0/{fake.page_id}/videos")]
    assert phases == ["start", "transfer", "transfer", "transfer", "finish"]
    assert (first.state, second.state) == (PublishState.processing, PublishState.published)
    assert second.url.startswith("https://www.facebook.com/")


# ---------------------------------------------------------------- failure rows

FAILURE_ROWS = [
    ("190 expired token", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", f.expired()), PlatformAuthError, None),
    ("code 32 with business-use-case usage", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", graph_error(
         32, "Page request limit reached", status=403, headers=buc_header(7))),
     PlatformTransientError, lambda e: e.retry_after == 420),
    ("code 4 app limit without an estimate", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", graph_error(
         4, "(#4) Application request limit reached", status=403,
         headers={"X-App-Usage": json.dumps({"call_count": 100, "total_time": 20, "total_cputime": 10})})),
     PlatformTransientError, lambda e: e.retry_after == 300),
    ("code 2 temporary", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", graph_error(
         2, "An unexpected error has occurred. Please retry your request later.", transient=True, status=500)),
     PlatformTransientError, None),
    ("bare 502", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", Response(502, b"<html>Bad Gateway</html>")),
     PlatformTransientError, None),
    ("100 invalid parameter", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", graph_error(
         100, "(#100) Param link must be a valid URL")),
     PlatformPermanentError, lambda e: "valid URL" in e.platform_message),
    ("506 duplicate", {"text": "again"},
     lambda f: f.posts.update({"x": {"id": "x", "message": "again", "created_time": "2020-01-01T00:00:00+0000"}}),
     PlatformPermanentError, lambda e: "Duplicate" in e.platform_message),
    ("368 policy block", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", graph_error(
         368, "It looks like you were misusing this feature by going too fast.")),
     PlatformPermanentError, None),
    ("server 413 photo", {"text": "pic", "media": ["a"]},
     lambda f: setattr(f, "max_photo_bytes", 10), PlatformPermanentError, lambda e: e.status == 413),
    ("photo over 10 MB refused before upload", {"text": "pic", "media": ["big"]}, None,
     PlatformPermanentError, None),
    ("network drop mid video transfer", {"text": "clip", "media": ["video"]},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/videos", Drop(),
                              when=lambda r: r.form.get("start_offset") == "1000"),
     PlatformTransientError, None),
    ("malformed 200 body", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", Response(200, b"<html>oops</html>")),
     PlatformTransientError, None),
    ("permission missing (#200)", {"text": "hi"},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/feed", graph_error(
         200, "(#200) Requires pages_manage_posts permission")), PlatformAuthError, None),
]


@pytest.mark.parametrize(("post_kw", "setup", "error", "check"), [row[1:] for row in FAILURE_ROWS],
                         ids=[row[0] for row in FAILURE_ROWS])
def test_publish_failures(fake, media, post_kw, setup, error, check):
    if setup:
        setup(fake)
    with pytest.raises(error) as info:
        run(fake, lambda a: a.publish(_post(media, post_kw)))
    assert type(info.value) is error
    if check:
        assert check(info.value)
    if post_kw.get("media") == ["big"]:
        assert not fake.server.log, "refused from capabilities, before any upload"


# ---------------------------------------------------------------- connect, reconcile, delete


def test_connect_exchanges_user_token_for_page_token(fake):
    info = run(fake, lambda a: a.connect(), token="user-token")
    assert info.platform_account_id == fake.page_id and info.handle == "ava.virtual"
    assert info.credentials is not None and info.credentials.access_token is not None
    assert info.credentials.access_token.get_secret_value() == "page-token"
    assert info.credentials.extra["page_id"] == fake.page_id
    assert fake.server.requests("GET", "/v21.0/me/accounts")
    assert "page-token" not in repr(info.credentials)


def test_connect_follows_paging_and_recognises_page_tokens(fake):
    fake.accounts_page_size = 1
    info = run(fake, lambda a: a.connect(), token="user-token", extra={"page_id": fake.other_page_id})
    assert info.platform_account_id == fake.other_page_id
    assert len(fake.server.requests("GET", "/v21.0/me/accounts")) == 2
    fake.server.log.clear()
    again = run(fake, lambda a: a.connect(), token="page-token")
    assert again.platform_account_id == fake.page_id
    assert not fake.server.requests("GET", "/v21.0/me/accounts")


@pytest.mark.parametrize(("token", "extra", "error"), [
    ("user-token", {}, PlatformPermanentError),            # two Pages, none chosen
    ("user-token", {"page_id": "999"}, PlatformPermanentError),
    ("expired", {"page_id": "110000000000001"}, PlatformAuthError),
])
def test_connect_refusals(fake, token, extra, error):
    with pytest.raises(error):
        run(fake, lambda a: a.connect(), token=token, extra=extra)


def test_find_published_and_delete(fake, media):
    since = datetime.now(UTC) - timedelta(minutes=1)
    post = PostRequest(text="Sunset  with\nfriends", media=[media["a"]])
    published = run(fake, lambda a: a.publish(post))
    found = run(fake, lambda a: a.find_published(PostRequest(text="Sunset with friends"), since=since))
    assert found is not None and found.platform_post_id == published.platform_post_id
    assert run(fake, lambda a: a.find_published(PostRequest(text="other"), since=since)) is None
    video = run(fake, lambda a: a.publish(PostRequest(text="vid", media=[media["video"]])))
    found_video = run(fake, lambda a: a.find_published(PostRequest(text="vid", media=[media["video"]]), since=since))
    assert found_video is not None and found_video.platform_post_id == video.platform_post_id
    run(fake, lambda a: a.delete(published.platform_post_id))
    assert published.platform_post_id not in fake.posts
    run(fake, lambda a: a.delete(published.platform_post_id))  # already gone: no error


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-business-use-case-usage": json.dumps({"1": [{"estimated_time_to_regain_access": 3}],
                                                "2": [{"estimated_time_to_regain_access": 10}]})}, 600),
    ({"x-app-usage": json.dumps({"call_count": 90})}, None),
    ({"x-business-use-case-usage": "not json"}, None),
    ({}, None),
])
def test_usage_headers(headers, expected):
    assert usage_retry_after(headers) == expected


def test_default_client_is_created_and_closed(fake):
    async def main() -> str:
        adapter = FacebookPageAdapter(Credentials(access_token=SecretStr("page-token"),
                                                  extra={"page_id": fake.page_id}), base_url=fake.url)
        info = await adapter.connect()
        await adapter.aclose()
        return info.platform_account_id

    assert asyncio.run(main()) == fake.page_id


def test_registry_and_label():
    assert adapter_class("facebook") is FacebookPageAdapter
    assert FacebookPageAdapter.capabilities.supports_ai_label is False
    assert FacebookPageAdapter.GRAPH_VERSION == "v21.0"
