"""Bluesky adapter against a local XRPC server (a PDS subset), driven through the atproto SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _servers_a import Drop, Reply, write_image
from fake_bluesky import (
    ACCOUNT_PASSWORD,
    APP_PASSWORD,
    DID,
    HANDLE,
    POST,
    FakeBluesky,
    rate_limited,
    xrpc_error,
)
from pydantic import SecretStr

from ainfluencer.platforms.base import (
    Credentials,
    MediaItem,
    MediaKind,
    PlatformAuthError,
    PlatformError,
    PlatformPermanentError,
    PlatformTransientError,
    PostRequest,
    PublishState,
)
from ainfluencer.platforms.bluesky.adapter import BlueskyAdapter
from ainfluencer.platforms.counting import grapheme_count
from ainfluencer.platforms.registry import adapter_class

pytestmark = [
    pytest.mark.nodb,
    # atproto's uploadBlob hands raw bytes to httpx as data=, which httpx deprecates; not ours to change
    pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"),
]

CREATE = "com.atproto.repo.createRecord"
UPLOAD = "com.atproto.repo.uploadBlob"
SESSION = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with FakeBluesky() as server:
        yield server


def fresh_adapter(fake: FakeBluesky, password: str = APP_PASSWORD) -> BlueskyAdapter:
    creds = Credentials(
        extra={"handle": HANDLE, "service": fake.url}, secret_extra={"app_password": SecretStr(password)}
    )
    return BlueskyAdapter(creds)


def connected(fake: FakeBluesky) -> BlueskyAdapter:
    """An adapter holding the session a connect produced (as the core would store it)."""
    info = asyncio.run(fresh_adapter(fake).connect())
    assert info.credentials is not None
    fake.log.clear()
    return BlueskyAdapter(info.credentials)


def image(tmp: Path, size: int = 4096, alt: str = "Nova at the beach", name: str = "") -> MediaItem:
    path = write_image(tmp / (name or f"img-{size}.jpg"), size)
    return MediaItem(path=path, kind=MediaKind.image, mime_type="image/jpeg", alt_text=alt, width=1200, height=800)


TEXT = "✨ Morning swim #nova https://example.com/beach-day"


# -- publish table ----------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    post: Callable[[Path], PostRequest]
    setup: Callable[[FakeBluesky], Any] = lambda f: None
    faults: list[tuple[str, Any]] = field(default_factory=list)  # (xrpc method, effect)
    error: type[PlatformError] | None = None
    retry_after: tuple[float, float] | None = None
    check: Callable[[FakeBluesky, BlueskyAdapter, Any], None] | None = None
    no_traffic: bool = False


def _text(text: str = TEXT, **options: Any) -> Callable[[Path], PostRequest]:
    return lambda tmp: PostRequest(text=text, marker="pub-1", options=options)


def _images(
    n: int = 1, size: int = 4096, alt: str = "Nova at the beach", text: str = "Beach day"
) -> Callable[[Path], PostRequest]:
    return lambda tmp: PostRequest(
        text=text, marker="pub-1", media=[image(tmp, size, alt, name=f"i{i}.jpg") for i in range(n)]
    )


def _record(fake: FakeBluesky, result: Any) -> dict[str, Any]:
    rkey = result.platform_post_id.rsplit("/", 1)[1]
    assert result.platform_post_id == f"at://{DID}/{POST}/{rkey}"
    assert result.url == f"https://bsky.app/profile/{DID}/post/{rkey}"
    return fake.records[rkey]


def _rich_text_ok(fake: FakeBluesky, adapter: BlueskyAdapter, result: Any) -> None:
    record = _record(fake, result)
    assert record["text"] == TEXT and record["langs"] == ["en"]
    assert record["labels"] == {
        "$type": "com.atproto.label.defs#selfLabels",
        "values": [{"$type": "com.atproto.label.defs#selfLabel", "val": "graphic-media"}],
    }
    encoded = TEXT.encode()
    spans = {}
    for facet in record["facets"]:
        index, feature = facet["index"], facet["features"][0]
        spans[feature["$type"]] = (encoded[index["byteStart"] : index["byteEnd"]].decode(), feature)
    assert spans["app.bsky.richtext.facet#tag"][0] == "#nova"
    assert spans["app.bsky.richtext.facet#tag"][1]["tag"] == "nova"
    assert spans["app.bsky.richtext.facet#link"][0] == "https://example.com/beach-day"
    tag = next(f for f in record["facets"] if f["features"][0]["$type"].endswith("#tag"))
    assert tag["index"]["byteStart"] == len("✨ Morning swim ".encode())  # bytes, not characters
    assert "embed" not in record
    assert fake.calls(SESSION) == []  # the stored session was reused


def _images_ok(fake: FakeBluesky, adapter: BlueskyAdapter, result: Any) -> None:
    record = _record(fake, result)
    uploads = fake.calls(UPLOAD)
    assert len(uploads) == 2 and all(u.headers["content-type"] == "image/jpeg" for u in uploads)
    images = record["embed"]["images"]
    assert record["embed"]["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in images] == ["Nova at the beach"] * 2
    assert images[0]["aspectRatio"]["width"] == 1200
    assert {i["image"]["ref"]["$link"] for i in images} <= set(fake.blobs)
    assert images[0]["image"]["size"] == 4096 and images[0]["image"]["mimeType"] == "image/jpeg"
    assert "labels" not in record  # no AI label exists; nothing invented


def _refreshed_ok(fake: FakeBluesky, adapter: BlueskyAdapter, result: Any) -> None:
    _record(fake, result)
    names = [r.path.removeprefix("/xrpc/") for r in fake.log]
    assert names == [CREATE, REFRESH, CREATE]  # ExpiredToken -> refreshSession -> the same request again
    assert adapter.credentials.access_token is not None
    assert adapter.credentials.access_token.get_secret_value() in fake.access  # the renewed token was kept


def _relogin_ok(fake: FakeBluesky, adapter: BlueskyAdapter, result: Any) -> None:
    _record(fake, result)
    names = [r.path.removeprefix("/xrpc/") for r in fake.log]
    assert names == [CREATE, REFRESH, SESSION, CREATE]
    assert fake.calls(SESSION)[0].json["password"] == APP_PASSWORD


ROWS = [
    Row("text-facets-langs-labels", _text(langs=["en"], self_labels=["graphic-media"]), check=_rich_text_ok),
    Row("images-alt-text", _images(2), check=_images_ok),
    Row("expired-token-refreshes", _text(), setup=FakeBluesky.expire_access_tokens, check=_refreshed_ok),
    Row(
        "refresh-revoked-signs-in-again",
        _text(),
        setup=lambda f: (f.expire_access_tokens(), f.revoke_refresh_tokens()),
        check=_relogin_ok,
    ),
    Row(
        "app-password-revoked",
        _text(),
        setup=lambda f: (f.expire_access_tokens(), f.revoke_refresh_tokens(), f.app_passwords.clear()),
        error=PlatformAuthError,
    ),
    Row(
        "401-invalid-token",
        _text(),
        faults=[(CREATE, xrpc_error(401, "InvalidToken", "Bad token"))],
        check=lambda f, a, r: _record(f, r),
    ),
    Row(
        "403-takedown",
        _text(),
        faults=[(CREATE, xrpc_error(403, "AccountTakedown", "Account has been taken down"))],
        error=PlatformAuthError,
    ),
    Row(
        "429-reset",
        _text(),
        faults=[(CREATE, lambda: rate_limited(42))],
        error=PlatformTransientError,
        retry_after=(35, 43),
    ),
    Row("500", _text(), faults=[(CREATE, xrpc_error(500, "InternalServerError"))], error=PlatformTransientError),
    Row("502", _text(), faults=[(CREATE, Reply(502, "<html>bad gateway</html>"))], error=PlatformTransientError),
    Row(
        "400-invalid-request",
        _text(),
        faults=[(CREATE, xrpc_error(400, "InvalidRequest", "Invalid record"))],
        error=PlatformPermanentError,
    ),
    Row("malformed-200", _text(), faults=[(CREATE, Reply(200, {"unexpected": True}))], error=PlatformTransientError),
    Row(
        "blob-too-large-from-server",
        _images(size=8192),
        setup=lambda f: setattr(f, "blob_limit", 4096),
        error=PlatformPermanentError,
    ),
    Row(
        "413-from-proxy",
        _images(),
        faults=[(UPLOAD, Reply(413, "<html>Request Entity Too Large</html>"))],
        error=PlatformPermanentError,
    ),
    Row("image-too-large-precheck", _images(size=1_000_001), error=PlatformPermanentError, no_traffic=True),
    Row("drop-mid-upload", _images(size=900_000), faults=[(UPLOAD, Drop(32 * 1024))], error=PlatformTransientError),
    Row("text-over-300-graphemes", _text("a" * 301), error=PlatformPermanentError, no_traffic=True),
    Row("five-images", _images(5), error=PlatformPermanentError, no_traffic=True),
    Row("unknown-self-label", _text(self_labels=["ai-generated"]), error=PlatformPermanentError, no_traffic=True),
    Row("too-many-langs", _text(langs=["en", "de", "fr", "es"]), error=PlatformPermanentError, no_traffic=True),
    Row(
        "video-not-offered",
        lambda tmp: PostRequest(
            text="clip", media=[MediaItem(write_image(tmp / "v.mp4", 100), MediaKind.video, "video/mp4")]
        ),
        error=PlatformPermanentError,
        no_traffic=True,
    ),
    Row(
        "missing-file",
        lambda tmp: PostRequest(text="x", media=[MediaItem(tmp / "gone.jpg", MediaKind.image, "image/jpeg")]),
        error=PlatformPermanentError,
        no_traffic=True,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_publish(row: Row, fake: FakeBluesky, tmp_path: Path) -> None:
    adapter = connected(fake)
    row.setup(fake)
    for method, effect in row.faults:
        fake.fault(rf"^/xrpc/{method}$", effect)
    post = row.post(tmp_path)
    if row.error is None:
        result = asyncio.run(adapter.publish(post))
        assert result.state is PublishState.published
        assert row.check is not None
        row.check(fake, adapter, result)
        return
    with pytest.raises(row.error) as info:
        asyncio.run(adapter.publish(post))
    if row.retry_after is not None:
        assert isinstance(info.value, PlatformTransientError) and info.value.retry_after is not None
        assert row.retry_after[0] <= info.value.retry_after <= row.retry_after[1]
    if row.no_traffic:
        assert fake.log == []
    if row.id == "drop-mid-upload":
        assert fake.calls(UPLOAD)[0].dropped
    assert APP_PASSWORD not in str(info.value) + info.value.platform_message


# -- connect, sessions ------------------------------------------------------------------------------


def test_connect_with_app_password(fake: FakeBluesky) -> None:
    info = asyncio.run(fresh_adapter(fake).connect())
    assert info.platform_account_id == DID
    assert info.handle == f"@{HANDLE}" and info.display_name == "Nova"
    assert info.profile_url == f"https://bsky.app/profile/{HANDLE}"
    creds = info.credentials
    assert creds is not None and creds.access_token is not None and creds.refresh_token is not None
    assert creds.extra["did"] == DID and creds.expires_at is not None and creds.expires_at > datetime.now(UTC)
    login = fake.calls(SESSION)[0].json
    assert login == {"identifier": HANDLE, "password": APP_PASSWORD}


CONNECT_FAILURES = [
    ("wrong-app-password", "nope-nope-nope-nope", None, PlatformAuthError),
    ("account-password-refused", ACCOUNT_PASSWORD, None, PlatformAuthError),
    ("session-rate-limited", APP_PASSWORD, rate_limited(120), PlatformTransientError),
    ("pds-down", APP_PASSWORD, Reply(503, "unavailable"), PlatformTransientError),
]


@pytest.mark.parametrize(
    ("password", "effect", "expected"), [c[1:] for c in CONNECT_FAILURES], ids=[c[0] for c in CONNECT_FAILURES]
)
def test_connect_failures(
    fake: FakeBluesky, password: str, effect: Reply | None, expected: type[PlatformError]
) -> None:
    if effect is not None:
        fake.fault(rf"^/xrpc/{SESSION}$", effect)
    with pytest.raises(expected) as info:
        asyncio.run(fresh_adapter(fake, password).connect())
    if password == ACCOUNT_PASSWORD:
        assert "app password" in info.value.message


def test_session_about_to_expire_is_refreshed_before_the_call(tmp_path: Path) -> None:
    with FakeBluesky(access_ttl=60) as fake:  # the SDK renews 15 minutes before expiry
        adapter = connected(fake)
        before = adapter.credentials.access_token
        result = asyncio.run(adapter.publish(PostRequest(text="hello", marker="m")))
        assert result.state is PublishState.published
        names = [r.path.removeprefix("/xrpc/") for r in fake.log]
        assert names == [REFRESH, CREATE]
        assert adapter.credentials.access_token != before


def test_refresh(fake: FakeBluesky) -> None:
    adapter = connected(fake)
    old_refresh = adapter.credentials.refresh_token
    creds = asyncio.run(adapter.refresh())
    assert creds.refresh_token is not None and creds.refresh_token != old_refresh
    assert [r.path.removeprefix("/xrpc/") for r in fake.log] == [REFRESH]
    fake.revoke_refresh_tokens()
    fake.app_passwords.clear()
    with pytest.raises(PlatformAuthError):
        asyncio.run(adapter.refresh())


# -- reconcile and delete ---------------------------------------------------------------------------


def test_find_published_by_text_within_the_window(fake: FakeBluesky, tmp_path: Path) -> None:
    adapter = connected(fake)
    since = datetime.now(UTC)
    fake.add_post("Same words", since - timedelta(hours=3))  # before the window
    post = PostRequest(text="Same words", marker="pub-5", media=[image(tmp_path)])
    published = asyncio.run(adapter.publish(post))
    for i in range(120):  # push ours past the first page of listRecords
        fake.add_post(f"later {i}", datetime.now(UTC))
    found = asyncio.run(adapter.find_published(post, since=since))
    assert found is not None and found.platform_post_id == published.platform_post_id
    assert len(fake.calls("com.atproto.repo.listRecords")) == 2
    assert asyncio.run(adapter.find_published(PostRequest(text="Same words"), since=since)) is None  # no image
    assert asyncio.run(adapter.find_published(PostRequest(text="never"), since=since)) is None


def test_delete(fake: FakeBluesky) -> None:
    adapter = connected(fake)
    result = asyncio.run(adapter.publish(PostRequest(text="short-lived", marker="m")))
    asyncio.run(adapter.delete(result.platform_post_id))
    assert fake.records == {}
    body = fake.calls("com.atproto.repo.deleteRecord")[0].json
    assert (
        body["repo"] == DID and body["collection"] == POST and body["rkey"] == result.platform_post_id.rsplit("/", 1)[1]
    )
    asyncio.run(adapter.delete(result.platform_post_id))  # already gone: fine
    with pytest.raises(PlatformPermanentError):
        asyncio.run(adapter.delete("https://bsky.app/not-an-at-uri"))


# -- text counting and capabilities ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("e\u0301", 1),  # e + combining acute
        ("👩‍👩‍👧‍👦", 1),  # ZWJ family
        ("👍🏽", 1),  # skin tone
        ("🇩🇪🇫🇷", 2),  # two flags
        ("❤️", 1),  # variation selector
        ("a\r\nb", 3),
    ],
)
def test_grapheme_count(text: str, expected: int) -> None:
    assert grapheme_count(text) == expected


def test_300_emoji_graphemes_still_hit_the_byte_limit(fake: FakeBluesky) -> None:
    adapter = connected(fake)
    assert grapheme_count("👩‍👩‍👧‍👦" * 300) == 300
    with pytest.raises(PlatformPermanentError, match="bytes"):
        asyncio.run(adapter.publish(PostRequest(text="👩‍👩‍👧‍👦" * 300)))


def test_capabilities_and_registry() -> None:
    caps = BlueskyAdapter.capabilities
    assert adapter_class("bluesky") is BlueskyAdapter
    assert (caps.max_text_chars, caps.text_counting, caps.max_media, caps.max_image_bytes) == (
        300,
        "graphemes",
        4,
        1_000_000,
    )
    assert caps.supports_ai_label is False and caps.connect_method == "app_password"
    assert caps.media_kinds == frozenset({MediaKind.image})
