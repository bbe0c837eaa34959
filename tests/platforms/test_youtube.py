"""YouTube adapter against a local Data API v3 server, driven through google-api-python-client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _servers_b import Response
from fake_youtube import FakeYouTube, google_error
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
from ainfluencer.platforms.registry import adapter_class
from ainfluencer.platforms.youtube import adapter as ytmod
from ainfluencer.platforms.youtube.adapter import YouTubeAdapter, seconds_until_quota_reset

pytestmark = pytest.mark.nodb

CHUNK = 256 * 1024
VIDEO_BYTES = bytes(range(251)) * 2400  # 602,400 bytes -> 3 chunks of 256 KiB


@pytest.fixture
def fake():
    with FakeYouTube() as f:
        yield f


def make_adapter(fake: FakeYouTube, token: str = "good-token", refresh: str = "refresh-1", **kw: Any):
    creds = Credentials(access_token=SecretStr(token), refresh_token=SecretStr(refresh),
                        extra={"client_id": fake.client_id},
                        secret_extra={"client_secret": SecretStr(fake.client_secret)})
    options = {"base_url": fake.url, "token_uri": fake.url + "/token", "timeout": 5, "chunk_size": CHUNK,
               "retry_backoff": 0, **kw}
    return YouTubeAdapter(creds, **options)


@pytest.fixture
def video(tmp_path: Path) -> MediaItem:
    path = tmp_path / "clip.mp4"
    path.write_bytes(VIDEO_BYTES)
    return MediaItem(path, MediaKind.video, "video/mp4", duration_seconds=42, width=1080, height=1920)


def post_for(video: MediaItem, **kw: Any) -> PostRequest:
    base: dict[str, Any] = {"text": "Ava tries surfing for the first time", "title": "Surf day", "media": [video],
                            "marker": "pub-abc", "tags": ["surf", "virtual influencer"],
                            "options": {"disclosure": "Virtual character · AI-generated content"}}
    base.update(kw)
    return PostRequest(**base)


def uploaded_meta(fake: FakeYouTube) -> dict[str, Any]:
    return fake.server.requests("POST", "/upload/youtube/v3/videos")[-1].json


# ---------------------------------------------------------------- success rows

SUCCESS_ROWS = [
    ("regular video: AI label, marker tag, disclosure", {},
     None,
     lambda f, r, meta: (meta["status"] == {"privacyStatus": "public", "selfDeclaredMadeForKids": False,
                                            "containsSyntheticMedia": True}
                         and "ainf:pub-abc" in meta["snippet"]["tags"]
                         and meta["snippet"]["description"].endswith("Virtual character · AI-generated content")
                         and r.url == f"https://www.youtube.com/watch?v={r.platform_post_id}")),
    ("short: #Shorts added, shorts URL", {"options": {"post_type": "short"}},
     None,
     lambda f, r, meta: "#Shorts" in meta["snippet"]["description"] and "/shorts/" in r.url),
    ("thumbnail set after upload", {"options": {"thumbnail_path": "THUMB"}},
     None,
     lambda f, r, meta: f.thumbnails[r.platform_post_id].startswith(b"\x89PNG")),
    ("title from first line, trimmed to 100, no angle brackets",
     {"title": "", "text": "<b>" + "T" * 150 + "\nrest of the description"},
     None,
     lambda f, r, meta: meta["snippet"]["title"] == "b" + "T" * 99),
    ("long description trimmed, disclosure kept", {"text": "é" * 4000},
     None,
     lambda f, r, meta: (len(meta["snippet"]["description"].encode()) <= 5000
                         and meta["snippet"]["description"].endswith("AI-generated content"))),
    ("ai_generated False leaves the label off", {"ai_generated": False},
     None,
     lambda f, r, meta: meta["status"]["containsSyntheticMedia"] is False),
]


@pytest.mark.parametrize(("post_kw", "setup", "check"), [row[1:] for row in SUCCESS_ROWS],
                         ids=[row[0] for row in SUCCESS_ROWS])
def test_publish_success(fake, video, tmp_path, post_kw, setup, check):
    if setup:
        setup(fake)
    if post_kw.get("options", {}).get("thumbnail_path") == "THUMB":
        thumb = tmp_path / "thumb.png"
        thumb.write_bytes(b"\x89PNG\r\n\x1a\n" + b"p" * 100)
        post_kw = {**post_kw, "options": {"thumbnail_path": str(thumb)}}
    result = asyncio.run(make_adapter(fake).publish(post_for(video, **post_kw)))
    assert result.state == PublishState.processing
    stored = fake.videos[result.platform_post_id]
    assert stored["_bytes"] == VIDEO_BYTES
    assert len(fake.server.requests("PUT", "/upload/youtube/v3/videos")) == 3
    assert check(fake, result, uploaded_meta(fake))


def test_processing_until_published(fake, video):
    fake.polls_until_processed = 2
    adapter = make_adapter(fake)
    result = asyncio.run(adapter.publish(post_for(video)))
    states = [asyncio.run(adapter.check_status(result.platform_post_id)).state for _ in range(3)]
    assert states == [PublishState.processing, PublishState.processing, PublishState.published]
    assert asyncio.run(adapter.check_status("missing")).state == PublishState.failed


def test_network_drop_mid_upload_is_resumed(fake, video):
    fake.drop_after(1000)  # the 1st chunk arrives only in part, then the connection dies
    result = asyncio.run(make_adapter(fake).publish(post_for(video)))
    assert fake.videos[result.platform_post_id]["_bytes"] == VIDEO_BYTES
    puts = fake.server.requests("PUT", "/upload/youtube/v3/videos")
    queries = [p for p in puts if p.headers["content-range"].startswith("bytes */")]
    assert queries, "the client asked the server what it holds"
    # Resumed from byte 1000 the server confirmed, not from zero, and only one upload session.
    assert any(p.headers["content-range"].startswith("bytes 1000-") for p in puts)
    assert len(fake.server.requests("POST", "/upload/youtube/v3/videos")) == 1


def test_processing_result_found_by_marker_after_crash(fake, video):
    since = datetime.now(UTC) - timedelta(minutes=1)
    published = asyncio.run(make_adapter(fake).publish(post_for(video, marker="crash-1")))
    asyncio.run(make_adapter(fake).publish(post_for(video, marker="other", title="Other")))
    fresh = make_adapter(fake)
    found = asyncio.run(fresh.find_published(post_for(video, marker="crash-1"), since=since))
    assert found is not None and found.platform_post_id == published.platform_post_id
    assert found.state == PublishState.processing
    assert asyncio.run(fresh.find_published(post_for(video, marker="never"), since=since)) is None
    assert not fake.server.requests("GET", "/youtube/v3/search"), "no 100-unit search.list calls"


# ---------------------------------------------------------------- failure rows

FAILURE_ROWS = [
    ("401 and refresh refused", {}, lambda f: (f.valid_tokens.clear(), setattr(f, "refresh_token", "other")),
     PlatformAuthError, None),
    ("403 quotaExceeded -> until midnight PT", {},
     lambda f: f.server.fault("POST", "/upload/youtube/v3/videos", google_error(
         403, "quotaExceeded", "The request cannot be completed because you have exceeded your quota.")),
     PlatformTransientError, lambda e: abs(e.retry_after - seconds_until_quota_reset()) < 5),
    ("403 rateLimitExceeded", {},
     lambda f: f.server.fault("POST", "/upload/youtube/v3/videos", google_error(
         403, "rateLimitExceeded", "Rate limit exceeded", "usageLimits")),
     PlatformTransientError, lambda e: e.retry_after == 60),
    ("429 with Retry-After", {},
     lambda f: f.server.fault("POST", "/upload/youtube/v3/videos", Response(
         429, {"error": {"code": 429, "message": "Too many requests", "errors": [
             {"reason": "rateLimitExceeded", "message": "Too many requests"}]}}, {"Retry-After": "30"})),
     PlatformTransientError, lambda e: e.retry_after == 30),
    ("503 on session start", {},
     lambda f: f.server.fault("POST", "/upload/youtube/v3/videos", google_error(
         503, "backendError", "Backend Error", "global"), times=5),
     PlatformTransientError, None),
    ("400 invalid metadata", {},
     lambda f: f.server.fault("POST", "/upload/youtube/v3/videos", google_error(
         400, "invalidCategoryId", "The snippet.categoryId property specifies an invalid category ID.")),
     PlatformPermanentError, lambda e: "categoryId" in e.platform_message),
    ("403 uploadLimitExceeded", {},
     lambda f: f.server.fault("POST", "/upload/youtube/v3/videos", google_error(
         403, "uploadLimitExceeded", "The user has exceeded the number of videos they may upload.")),
     PlatformPermanentError, None),
    ("server 413 too large", {}, lambda f: setattr(f, "max_bytes", 1000), PlatformPermanentError,
     lambda e: e.status == 413),
    ("upload rejected (duplicate)", {}, lambda f: setattr(f, "reject_next_upload", "duplicate"),
     PlatformPermanentError, lambda e: "duplicate" in e.message),
    ("image is not a YouTube upload", {"media": "image"}, None, PlatformPermanentError, None),
    ("short longer than 3 minutes", {"options": {"post_type": "short"}, "duration": 200}, None,
     PlatformPermanentError, None),
    ("drops beyond the resume budget", {}, lambda f: f.drop_after(0, times=20), PlatformTransientError, None),
]


@pytest.mark.parametrize(("post_kw", "setup", "error", "check"), [row[1:] for row in FAILURE_ROWS],
                         ids=[row[0] for row in FAILURE_ROWS])
def test_publish_failures(fake, video, tmp_path, post_kw, setup, error, check):
    if setup:
        setup(fake)
    kw = dict(post_kw)
    if kw.pop("media", None) == "image":
        img = tmp_path / "a.jpg"
        img.write_bytes(b"\xff\xd8")
        kw["media"] = [MediaItem(img, MediaKind.image, "image/jpeg")]
    if "duration" in kw:
        video.duration_seconds = kw.pop("duration")
    adapter = make_adapter(fake, max_resume_attempts=2)
    with pytest.raises(error) as info:
        asyncio.run(adapter.publish(post_for(video, **kw)))
    assert type(info.value) is error
    if check:
        assert check(info.value)


def test_media_too_large_refused_before_upload(fake, tmp_path):
    big = tmp_path / "huge.mp4"
    try:
        with big.open("wb") as fh:
            fh.truncate(257 * 1024**3)  # sparse
    except OSError:
        pytest.skip("filesystem cannot hold a sparse 257 GiB file")
    with pytest.raises(PlatformPermanentError):
        asyncio.run(make_adapter(fake).publish(post_for(MediaItem(big, MediaKind.video, "video/mp4"))))
    assert not fake.server.log


# ---------------------------------------------------------------- auth, connect, delete


def test_expired_access_token_is_refreshed_transparently(fake, video):
    adapter = make_adapter(fake, token="expired-token")
    result = asyncio.run(adapter.publish(post_for(video)))
    assert result.platform_post_id in fake.videos
    token_calls = fake.server.requests("POST", "/token")
    assert len(token_calls) == 1 and token_calls[0].form["grant_type"] == "refresh_token"
    new = adapter.credentials.access_token
    assert new is not None and new.get_secret_value() in fake.valid_tokens
    assert new.get_secret_value().startswith("ya29.fresh-")
    assert adapter.credentials.expires_at is not None and adapter.credentials.expires_at > datetime.now(UTC)


def test_explicit_refresh(fake):
    creds = asyncio.run(make_adapter(fake, token="old").refresh())
    assert creds.access_token is not None and creds.access_token.get_secret_value() in fake.valid_tokens
    assert creds.refresh_token is not None and creds.refresh_token.get_secret_value() == "refresh-1"
    with pytest.raises(PlatformAuthError):
        asyncio.run(make_adapter(fake, refresh="revoked").refresh())


def test_connect_reads_channel(fake):
    adapter = make_adapter(fake)
    info = asyncio.run(adapter.connect())
    assert info.platform_account_id == fake.channel_id and info.handle == "@ava_virtual"
    assert adapter.credentials.extra["uploads_playlist_id"] == fake.uploads_playlist
    with pytest.raises(PlatformAuthError):
        asyncio.run(make_adapter(fake, token="bad", refresh="bad").connect())


def test_delete_is_idempotent(fake, video):
    adapter = make_adapter(fake)
    result = asyncio.run(adapter.publish(post_for(video)))
    asyncio.run(adapter.delete(result.platform_post_id))
    assert result.platform_post_id not in fake.videos
    asyncio.run(adapter.delete(result.platform_post_id))


@pytest.mark.parametrize(("now", "expected_hours"), [
    (datetime(2025, 6, 1, 7, 0, tzinfo=UTC), 24),       # 00:00 PDT -> a full day
    (datetime(2025, 6, 1, 19, 0, tzinfo=UTC), 12),      # 12:00 PDT
    (datetime(2025, 3, 9, 7, 0, tzinfo=UTC), 1),        # 23:00 PST on 8 March
    (datetime(2025, 3, 9, 8, 30, tzinfo=UTC), 22.5),    # 00:30 PST on 9 March: clocks spring forward today
    (datetime(2025, 11, 2, 7, 30, tzinfo=UTC), 24.5),   # 00:30 PDT on 2 November: clocks fall back today
])
def test_quota_reset_is_midnight_pacific(now, expected_hours):
    assert seconds_until_quota_reset(now) == pytest.approx(expected_hours * 3600)


def test_shipped_discovery_and_registry():
    adapter = YouTubeAdapter(Credentials(access_token=SecretStr("t")))
    service = adapter.service  # built offline from the document shipped with the SDK
    assert service._rootDesc["rootUrl"] == "https://youtube.googleapis.com/"
    assert adapter_class("youtube") is YouTubeAdapter
    assert YouTubeAdapter.capabilities.supports_ai_label is True
    assert ytmod.build_description("x" * 6000, disclosure="D").endswith("\n\nD")
