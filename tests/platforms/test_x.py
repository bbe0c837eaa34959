"""X adapter against a local server speaking API v2, driven through tweepy's Client."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from _servers_b import Drop, Response
from fake_x import FakeX
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
from ainfluencer.platforms.x import adapter as xmod
from ainfluencer.platforms.x.adapter import XAdapter, XSession, weighted_length

pytestmark = pytest.mark.nodb


@pytest.fixture
def fake():
    with FakeX() as f:
        yield f


def make_adapter(fake: FakeX, token: str = "good-token", **kw: Any) -> XAdapter:
    creds = Credentials(access_token=SecretStr(token), refresh_token=SecretStr("refresh-1"),
                        extra={"client_id": fake.client_id})
    return XAdapter(creds, base_url=fake.url, timeout=5, chunk_size=1000, max_poll_interval=0, **kw)


@pytest.fixture
def media(tmp_path: Path) -> dict[str, MediaItem]:
    img = tmp_path / "ava.jpg"
    img.write_bytes(b"\xff\xd8\xff\xe0" + b"i" * 600)
    vid = tmp_path / "ava.mp4"
    vid.write_bytes(bytes(range(256)) * 14)  # 3584 bytes -> 4 APPEND segments of 1000
    big = tmp_path / "big.jpg"
    with big.open("wb") as fh:  # sparse: 6 MiB without writing them
        fh.truncate(6 * 1024 * 1024)
    return {
        "image": MediaItem(img, MediaKind.image, "image/jpeg", alt_text="Ava waving at the sea"),
        "video": MediaItem(vid, MediaKind.video, "video/mp4", duration_seconds=12),
        "big": MediaItem(big, MediaKind.image, "image/jpeg"),
    }


# ---------------------------------------------------------------- success rows


SUCCESS_ROWS = [
    # id, post kwargs (media by key), fake setup, check(fake, result)
    ("text", {"text": "Hello from Ava & friends <3"}, None,
     lambda f, r: f.tweets[r.platform_post_id]["text_raw"] == "Hello from Ava & friends <3"),
    ("image+alt", {"text": "Beach day", "media": ["image"]}, None,
     lambda f, r: (f.tweets[r.platform_post_id]["media_ids"]
                   and f.uploads[f.tweets[r.platform_post_id]["media_ids"][0]].alt_text == "Ava waving at the sea")),
    ("video chunked + processing", {"text": "Clip", "media": ["video"]},
     lambda f: setattr(f, "processing_polls", 2),
     lambda f, r: (len(f.server.requests("GET", "/2/media/upload")) == 3
                   and len(f.uploads[f.tweets[r.platform_post_id]["media_ids"][0]].segments) == 4)),
    ("first comment as self-reply", {"text": "Thread start", "first_comment": "More below"}, None,
     lambda f, r: any(t["reply_to"] == r.platform_post_id for t in f.tweets.values())),
]


@pytest.mark.parametrize(("post_kw", "setup", "check"), [row[1:] for row in SUCCESS_ROWS],
                         ids=[row[0] for row in SUCCESS_ROWS])
def test_publish_success(fake, media, post_kw, setup, check):
    if setup:
        setup(fake)
    kw = dict(post_kw)
    kw["media"] = [media[k] for k in kw.get("media", [])]
    adapter = make_adapter(fake)
    result = asyncio.run(adapter.publish(PostRequest(marker="pub-1", **kw)))
    assert result.state == PublishState.published
    assert result.platform_post_id in fake.tweets
    assert result.url.endswith(f"/status/{result.platform_post_id}")
    assert check(fake, result)


# ---------------------------------------------------------------- failure rows


def _reset_in(seconds: int) -> str:
    return str(int(time.time()) + seconds)


FAILURE_ROWS = [
    # id, post kwargs, fake setup, expected error, extra check(exc, fake)
    ("401 expired token", {"text": "hi"},
     lambda f: f.valid_tokens.clear(), PlatformAuthError, None),
    ("429 x-rate-limit-reset", {"text": "hi"},
     lambda f: f.server.fault("POST", "/2/tweets", Response(
         429, {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
         {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0", "x-rate-limit-reset": _reset_in(120)})),
     PlatformTransientError, lambda e, f: 100 <= e.retry_after <= 121),
    ("429 24-hour user cap", {"text": "hi"},
     lambda f: f.server.fault("POST", "/2/tweets", Response(
         429, {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
         {"x-rate-limit-remaining": "50", "x-rate-limit-reset": _reset_in(60),
          "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": _reset_in(3600)})),
     PlatformTransientError, lambda e, f: 3500 <= e.retry_after <= 3601),
    ("503", {"text": "hi"},
     lambda f: f.server.fault("POST", "/2/tweets", Response(503, {"title": "Service Unavailable"})),
     PlatformTransientError, None),
    ("400 validation", {"text": "hi"},
     lambda f: f.server.fault("POST", "/2/tweets", Response(400, {
         "errors": [{"parameters": {"reply_settings": ["x"]}, "message": "Invalid reply_settings"}],
         "title": "Invalid Request", "detail": "One or more parameters to your request was invalid."})),
     PlatformPermanentError, lambda e, f: "reply_settings" in e.platform_message),
    ("duplicate content", {"text": "Same again"},
     lambda f: f.tweets.update({"1": {"id": "1", "text": "Same again", "text_raw": "Same again", "media_ids": [],
                                      "reply_to": None, "created_at": "2020-01-01T00:00:00.000Z"}}),
     PlatformPermanentError, lambda e, f: "duplicate content" in e.platform_message),
    ("server 413 image", {"text": "pic", "media": ["image"]},
     lambda f: setattr(f, "max_image_bytes", 10), PlatformPermanentError, lambda e, f: e.status == 413),
    ("media too large (capabilities, no upload)", {"text": "pic", "media": ["big"]}, None,
     PlatformPermanentError, lambda e, f: not f.server.requests("POST", "/2/media/upload")),
    ("text over 280 weighted", {"text": "界" * 141}, None,
     PlatformPermanentError, lambda e, f: not f.server.log),
    ("network drop mid-upload", {"text": "clip", "media": ["video"]},
     lambda f: f.server.fault("POST", "/2/media/upload", Drop(), when=lambda r: r.form.get("segment_index") == "2"),
     PlatformTransientError, lambda e, f: not f.tweets),
    ("video processing failed", {"text": "clip", "media": ["video"]},
     lambda f: setattr(f, "fail_processing", True), PlatformPermanentError,
     lambda e, f: "codec" in e.platform_message and not f.tweets),
    ("malformed 200 body", {"text": "hi"},
     lambda f: f.server.fault("POST", "/2/tweets", Response(200, "<html>oops</html>")),
     PlatformTransientError, None),
]


@pytest.mark.parametrize(("post_kw", "setup", "error", "check"), [row[1:] for row in FAILURE_ROWS],
                         ids=[row[0] for row in FAILURE_ROWS])
def test_publish_failures(fake, media, post_kw, setup, error, check):
    if setup:
        setup(fake)
    kw = dict(post_kw)
    kw["media"] = [media[k] for k in kw.get("media", [])]
    with pytest.raises(error) as info:
        asyncio.run(make_adapter(fake).publish(PostRequest(marker="pub-2", **kw)))
    assert type(info.value) is error
    if check:
        assert check(info.value, fake)


# ---------------------------------------------------------------- connect, refresh, reconcile, delete


def test_connect_live_check(fake):
    adapter = make_adapter(fake)
    info = asyncio.run(adapter.connect())
    assert (info.platform_account_id, info.handle) == (fake.user_id, fake.username)
    assert info.profile_url == f"https://x.com/{fake.username}"
    assert fake.server.requests("GET", "/2/users/me")[0].bearer() == "good-token"
    with pytest.raises(PlatformAuthError):
        asyncio.run(make_adapter(fake, token="revoked").connect())


def test_expired_token_then_refresh_rotates_and_publishes(fake):
    fake.valid_tokens.clear()  # the stored access token expired
    adapter = make_adapter(fake, token="expired")
    with pytest.raises(PlatformAuthError):
        asyncio.run(adapter.publish(PostRequest(text="after refresh")))
    creds = asyncio.run(adapter.refresh())
    assert creds.access_token is not None and creds.access_token.get_secret_value() in fake.valid_tokens
    assert creds.refresh_token is not None and creds.refresh_token.get_secret_value() != "refresh-1"
    assert creds.expires_at is not None and creds.expires_at > datetime.now(UTC)
    assert creds.extra["client_id"] == fake.client_id
    token_req = fake.server.requests("POST", "/2/oauth2/token")[0]
    assert token_req.form["grant_type"] == "refresh_token" and token_req.form["client_id"] == fake.client_id
    result = asyncio.run(adapter.publish(PostRequest(text="after refresh")))
    assert result.platform_post_id in fake.tweets
    # The old refresh token was single-use: replaying it is an auth failure, not a retry.
    stale = make_adapter(fake)
    with pytest.raises(PlatformAuthError):
        asyncio.run(stale.refresh())


def test_find_published_matches_text_not_urls_or_entities(fake, media):
    post = PostRequest(text="Tom & Jerry <3", media=[media["image"]], marker="m-1")
    since = datetime.now(UTC) - timedelta(minutes=1)
    published = asyncio.run(make_adapter(fake).publish(post))
    fresh = make_adapter(fake)  # a new worker after a crash knows only the post and the time
    found = asyncio.run(fresh.find_published(post, since=since))
    assert found is not None and found.platform_post_id == published.platform_post_id
    assert asyncio.run(fresh.find_published(PostRequest(text="never sent"), since=since)) is None


def test_delete_is_idempotent(fake):
    adapter = make_adapter(fake)
    result = asyncio.run(adapter.publish(PostRequest(text="short-lived")))
    asyncio.run(adapter.delete(result.platform_post_id))
    assert result.platform_post_id not in fake.tweets
    asyncio.run(adapter.delete(result.platform_post_id))  # already gone: no error


def test_oauth_pkce_url_and_code_exchange(fake):
    url, verifier, state = xmod.authorization_url("client-123", "http://127.0.0.1:8000/cb")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith("https://x.com/i/oauth2/authorize?")
    assert q["state"] == state and q["code_challenge_method"] == "S256"
    assert q["code_challenge"] == base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert "offline.access" in q["scope"].split() and 43 <= len(verifier) <= 128
    creds = asyncio.run(xmod.exchange_code(code="auth-code", code_verifier=verifier, client_id="client-123",
                                           redirect_uri="http://127.0.0.1:8000/cb", client_secret="shh",
                                           base_url=fake.url))
    assert creds.access_token is not None and creds.access_token.get_secret_value() in fake.valid_tokens
    assert fake.server.requests("POST", "/2/oauth2/token")[0].headers["authorization"].startswith("Basic ")
    assert "shh" not in repr(creds)
    with pytest.raises(PlatformAuthError):
        asyncio.run(xmod.exchange_code(code="wrong", code_verifier=verifier, client_id="client-123",
                                       redirect_uri="http://127.0.0.1:8000/cb", base_url=fake.url))


@pytest.mark.parametrize(("text", "expected"), [
    ("hello", 5),
    ("界" * 140, 280),
    ("see https://example.com/a/very/long/path/that/is/longer/than/23", 4 + 23),
    ("👩‍👩‍👧‍👦", 2),
    ("café", 4),
])
def test_weighted_length(text, expected):
    assert weighted_length(text) == expected


def test_production_session_is_untouched():
    session = XSession()
    assert session.base_url is None
    adapter = XAdapter(Credentials(access_token=SecretStr("t")))
    assert adapter.client.session is adapter.session and adapter.session.base_url is None
    assert adapter_class("x") is XAdapter
    assert XAdapter.capabilities.supports_ai_label is False
