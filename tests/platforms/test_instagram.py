"""Instagram adapter against a local Graph API server: containers, async processing, publish once."""

from __future__ import annotations

import asyncio
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
from ainfluencer.platforms.instagram.adapter import NO_PUBLIC_URL, InstagramAdapter
from ainfluencer.platforms.registry import adapter_class

pytestmark = pytest.mark.nodb

MEDIA_BASE = "https://media.example.test/s"  # never fetched: the fake only records the URL


@pytest.fixture
def fake():
    with FakeGraph() as f:
        yield f


def run(fake: FakeGraph, fn: Callable[[InstagramAdapter], Awaitable[Any]], *, token: str = "user-token",
        extra: dict[str, str] | None = None, **transport: Any) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(timeout=5) as client:
            creds = Credentials(access_token=SecretStr(token), extra=dict(
                extra if extra is not None else {"page_id": fake.page_id, "ig_user_id": fake.ig_user_id}))
            options = {"client": client, "base_url": fake.url, "poll_interval_s": 0, "publish_wait_s": 0,
                       "child_wait_s": 5, **transport}
            return await fn(InstagramAdapter(creds, **options))

    return asyncio.run(main())


@pytest.fixture
def media(tmp_path: Path) -> dict[str, MediaItem]:
    def item(name: str, kind: MediaKind, mime: str, **kw: Any) -> MediaItem:
        path = tmp_path / name
        path.write_bytes(b"x" * 100)
        return MediaItem(path, kind, mime, public_url=f"{MEDIA_BASE}/{name}?sig=abc", **kw)

    return {
        "a": item("a.jpg", MediaKind.image, "image/jpeg", alt_text="Ava at the market"),
        "b": item("b.jpg", MediaKind.image, "image/jpeg"),
        "png": item("c.png", MediaKind.image, "image/png"),
        "reel": item("r.mp4", MediaKind.video, "video/mp4", duration_seconds=30),
        "short": item("s.mp4", MediaKind.video, "video/mp4", duration_seconds=2),
        "nourl": MediaItem(tmp_path / "a.jpg", MediaKind.image, "image/jpeg"),
    }


def _post(media: dict[str, MediaItem], kw: dict[str, Any]) -> PostRequest:
    kw = dict(kw)
    kw["media"] = [media[k] for k in kw.get("media", [])]
    return PostRequest(marker="pub-1", **kw)


def created(fake: FakeGraph) -> list[dict[str, str]]:
    return [r.form for r in fake.server.requests("POST", rf"/v21.0/{fake.ig_user_id}/media")]


# ---------------------------------------------------------------- success rows (published in publish)

SUCCESS_ROWS = [
    ("single image with caption and alt text", {"text": "Market day #ava", "media": ["a"]},
     lambda f: (created(f)[0]["image_url"].startswith(MEDIA_BASE) and created(f)[0]["caption"] == "Market day #ava"
                and created(f)[0]["alt_text"] == "Ava at the market")),
    ("story", {"text": "ignored for stories", "media": ["b"], "options": {"post_type": "story"}},
     lambda f: created(f)[0]["media_type"] == "STORIES" and "caption" not in created(f)[0]),
    ("carousel of images and a video", {"text": "Three looks", "media": ["a", "b", "reel"]},
     lambda f: (all(c["is_carousel_item"] == "true" for c in created(f)[:3])
                and created(f)[2]["media_type"] == "VIDEO"
                and created(f)[3]["media_type"] == "CAROUSEL"
                and created(f)[3]["children"].count(",") == 2 and created(f)[3]["caption"] == "Three looks")),
]


@pytest.mark.parametrize(("post_kw", "check"), [row[1:] for row in SUCCESS_ROWS], ids=[r[0] for r in SUCCESS_ROWS])
def test_publish_success(fake, media, post_kw, check):
    result = run(fake, lambda a: a.publish(_post(media, post_kw)))
    assert result.state == PublishState.published
    assert result.platform_post_id in fake.media
    assert result.url == f"https://www.instagram.com/p/{result.platform_post_id}/"
    assert len(fake.publish_calls()) == 1
    assert check(fake)


def test_reel_processing_then_published_exactly_once(fake, media):
    post = _post(media, {"text": "First reel", "media": ["reel"]})

    async def flow(adapter: InstagramAdapter) -> list[Any]:
        first = await adapter.publish(post)
        polls = [await adapter.check_status(first.platform_post_id) for _ in range(4)]
        return [first, *polls]

    first, *polls = run(fake, flow)
    assert first.state == PublishState.processing and first.platform_post_id in fake.containers
    assert created(fake)[0]["media_type"] == "REELS" and created(fake)[0]["share_to_feed"] == "true"
    assert [p.state for p in polls] == [PublishState.processing, PublishState.published, PublishState.published,
                                        PublishState.published]
    assert polls[1].platform_post_id == polls[3].platform_post_id in fake.media
    # A fresh worker polling the same container sees PUBLISHED and does not publish again.
    again = run(fake, lambda a: a.check_status(first.platform_post_id))
    assert again.state == PublishState.published
    assert len(fake.publish_calls()) == 1


def test_concurrent_status_checks_publish_once(fake, media):
    fake.container_polls["video"] = 0
    fake.container_polls["image"] = 1

    async def flow(adapter: InstagramAdapter) -> list[Any]:
        first = await adapter.publish(_post(media, {"text": "race", "media": ["a"]}))
        return await asyncio.gather(*(adapter.check_status(first.platform_post_id) for _ in range(5)))

    results = run(fake, flow)
    assert PublishState.published in {r.state for r in results}
    assert len(fake.publish_calls()) == 1


def test_lost_publish_response_heals_without_second_publish(fake, media):
    def publish_then_drop(req):
        fake.server.handler(req)  # Instagram did publish ...
        return Drop()  # ... but the answer never arrived

    fake.server.fault("POST", rf"/v21.0/{fake.ig_user_id}/media_publish", publish_then_drop)
    with pytest.raises(PlatformTransientError):
        run(fake, lambda a: a.publish(_post(media, {"text": "lost answer", "media": ["a"]})))
    container = next(iter(fake.containers))
    healed = run(fake, lambda a: a.check_status(container))
    assert healed.state == PublishState.published
    assert len(fake.media) == 1
    found = run(fake, lambda a: a.find_published(PostRequest(text="lost answer"),
                                                 since=datetime.now(UTC) - timedelta(minutes=1)))
    assert found is not None and found.platform_post_id in fake.media


# ---------------------------------------------------------------- failure rows

FAILURE_ROWS = [
    ("no public URL", {"text": "x", "media": ["nourl"]}, None, PlatformPermanentError,
     lambda e, f: e.message == NO_PUBLIC_URL and not f.server.log),
    ("caption over 2200", {"text": "a" * 2201, "media": ["a"]}, None, PlatformPermanentError, None),
    ("31 hashtags", {"text": " ".join(f"#t{i}" for i in range(31)), "media": ["a"]}, None,
     PlatformPermanentError, None),
    ("11 carousel items", {"text": "x", "media": ["a", "b"] * 5 + ["a"]}, None, PlatformPermanentError, None),
    ("PNG is not JPEG", {"text": "x", "media": ["png"]}, None, PlatformPermanentError, None),
    ("reel shorter than 3 s", {"text": "x", "media": ["short"]}, None, PlatformPermanentError, None),
    ("190 expired", {"text": "x", "media": ["a"]},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/media", f.expired()), PlatformAuthError, None),
    ("code 4 with usage header", {"text": "x", "media": ["a"]},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/media", graph_error(
         4, "Application request limit reached", status=403, headers=buc_header(2))),
     PlatformTransientError, lambda e, f: e.retry_after == 120),
    ("publishing limit reached (9/2207042)", {"text": "x", "media": ["a"]},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/media_publish", graph_error(
         9, "Application request limit reached", subcode=2207042, status=400)),
     PlatformTransientError, None),
    ("500 on create", {"text": "x", "media": ["a"]},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/media", Response(500, {"error": {
         "message": "An unknown error occurred", "type": "OAuthException", "code": 1, "is_transient": True}})),
     PlatformTransientError, None),
    ("network drop on create", {"text": "x", "media": ["a"]},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/media", Drop()), PlatformTransientError, None),
    ("invalid parameter", {"text": "x", "media": ["a"]},
     lambda f: f.server.fault("POST", r"/v21.0/\d+/media", graph_error(
         100, "Only photo or video can be accepted as media type.", subcode=2207052)),
     PlatformPermanentError, lambda e, f: "2207052" in e.platform_message),
    ("container ERROR", {"text": "x", "media": ["a"]},
     lambda f: (f.container_polls.update(image=1), setattr(f, "container_error", "ERROR")),
     PlatformPermanentError, lambda e, f: "2207026" in e.platform_message and not f.publish_calls()),
]


@pytest.mark.parametrize(("post_kw", "setup", "error", "check"), [row[1:] for row in FAILURE_ROWS],
                         ids=[row[0] for row in FAILURE_ROWS])
def test_publish_failures(fake, media, post_kw, setup, error, check):
    if setup:
        setup(fake)
    with pytest.raises(error) as info:
        run(fake, lambda a: a.publish(_post(media, post_kw)), publish_wait_s=1)
    assert type(info.value) is error
    if check:
        assert check(info.value, fake)


def test_expired_container_fails(fake, media):
    fake.container_polls["video"] = 1
    fake.container_error = "EXPIRED"
    first = run(fake, lambda a: a.publish(_post(media, {"text": "late", "media": ["reel"]})))
    status = run(fake, lambda a: a.check_status(first.platform_post_id))
    assert status.state == PublishState.failed and "expired" in status.detail
    assert not fake.publish_calls()


# ---------------------------------------------------------------- connect, quota, delete, refresh


def test_connect_through_page(fake):
    info = run(fake, lambda a: a.connect(), extra={"page_id": fake.page_id})
    assert (info.platform_account_id, info.handle) == (fake.ig_user_id, "ava.virtual")
    assert info.credentials is not None and info.credentials.extra["ig_user_id"] == fake.ig_user_id
    assert info.profile_url == "https://www.instagram.com/ava.virtual/"


def test_connect_with_instagram_login(fake):
    info = run(fake, lambda a: a.connect(), token="ig-token", extra={"login": "instagram"})
    assert info.platform_account_id == fake.ig_user_id


@pytest.mark.parametrize(("token", "extra", "error"), [
    ("user-token", {"page_id": "110000000000002"}, PlatformPermanentError),  # Page without Instagram
    ("user-token", {}, PlatformPermanentError),                              # no Page chosen
    ("expired", {"page_id": "110000000000001"}, PlatformAuthError),
])
def test_connect_refusals(fake, token, extra, error):
    with pytest.raises(error):
        run(fake, lambda a: a.connect(), token=token, extra=extra)


def test_quota_usage(fake):
    usage = run(fake, lambda a: a.quota_usage())
    assert (usage.used, usage.total, usage.window_seconds, usage.remaining) == (3, 100, 86400, 97)
    assert InstagramAdapter.capabilities.daily_post_cap == 100


def test_delete_is_refused_and_labels_documented(fake):
    with pytest.raises(PlatformPermanentError):
        run(fake, lambda a: a.delete("123"))
    cap = InstagramAdapter.capabilities
    assert cap.needs_public_media_url and not cap.supports_ai_label and not cap.supports_delete
    assert adapter_class("instagram") is InstagramAdapter


def test_facebook_login_tokens_do_not_refresh(fake):
    with pytest.raises(PlatformAuthError):
        run(fake, lambda a: a.refresh())
