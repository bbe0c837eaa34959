"""Mastodon adapter, driven through Mastodon.py: against a local fake of the REST API, then against
the third-party ``mastodon_mock`` server (connect, OAuth, post, reconcile, delete)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from _servers_a import Drop, Reply, write_image
from fake_mastodon import ACCOUNT_ID, TOKEN, FakeMastodon, rate_limited
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
from ainfluencer.platforms.mastodon.adapter import (
    MastodonAdapter,
    auth_url,
    exchange_code,
    html_to_text,
    register_app,
    same_text,
    status_length,
)
from ainfluencer.platforms.registry import adapter_class

pytestmark = pytest.mark.nodb


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with FakeMastodon() as server:
        yield server


def adapter(url: str, token: str = TOKEN, **transport: Any) -> MastodonAdapter:
    creds = Credentials(access_token=SecretStr(token), extra={"instance_url": url})
    return MastodonAdapter(creds, poll_interval=0.01, request_timeout=10, **transport)


def image(tmp: Path, size: int = 4096, alt: str = "A sunset over the sea", name: str = "") -> MediaItem:
    path = write_image(tmp / (name or f"img-{size}.jpg"), size)
    return MediaItem(path=path, kind=MediaKind.image, mime_type="image/jpeg", alt_text=alt)


# -- publish table ----------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    post: Callable[[Path], PostRequest]
    faults: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path regex, effect)
    server: dict[str, Any] = field(default_factory=dict)  # FakeMastodon options
    transport: dict[str, Any] = field(default_factory=dict)
    error: type[PlatformError] | None = None
    retry_after: tuple[float, float] | None = None
    check: Callable[[FakeMastodon, Any], None] | None = None
    no_traffic: str = ""  # a path that must not have been requested ("" = anything at all)


def _text(text: str = "Morning light #nova https://example.com/a/very/long/path/to/the/gallery", **options: Any):
    return lambda tmp: PostRequest(text=text, marker="pub-42", options=options)


def _images(n: int = 1, size: int = 4096, alt: str = "A sunset over the sea", text: str = "Gallery"):
    return lambda tmp: PostRequest(
        text=text, marker="pub-42", media=[image(tmp, size, alt, name=f"i{i}.jpg") for i in range(n)]
    )


def _text_ok(fake: FakeMastodon, result: Any) -> None:
    call = fake.requests("^/api/v1/statuses$", "POST")[0]
    assert call.headers["idempotency-key"] == "pub-42"
    assert call.field("visibility") == "unlisted"
    assert result.platform_post_id in fake.statuses
    assert result.url == f"https://mastodon.test/@nova/{result.platform_post_id}"


def _image_ok(fake: FakeMastodon, result: Any) -> None:
    upload = fake.requests("/api/v2/media", "POST")[0]
    assert upload.field("description") == "A sunset over the sea"
    assert upload.files["file"].content_type == "image/jpeg" and len(upload.files["file"].data) == 4096
    status = fake.requests("^/api/v1/statuses$", "POST")[0]
    assert status.form["media_ids[]"] == [fake.statuses[result.platform_post_id]["media_attachments"][0]["id"]]


def _processing_ok(fake: FakeMastodon, result: Any) -> None:
    polls = fake.requests(r"^/api/v1/media/\d+$", "GET")
    assert len(polls) == 3  # 206, 206, then 200 with a url
    assert fake.statuses[result.platform_post_id]["media_attachments"][0]["url"]


ROWS = [
    Row("text", _text(visibility="unlisted"), check=_text_ok),
    Row("image-alt-text", _images(), check=_image_ok),
    Row("async-processing-206", _images(), server={"process_polls": 2}, check=_processing_ok),
    Row(
        "still-processing",
        _images(),
        server={"process_polls": 1000},
        transport={"processing_timeout": 0.2},
        error=PlatformTransientError,
        no_traffic="^/api/v1/statuses$",
    ),
    Row(
        "401",
        _text(),
        faults=[("POST", "^/api/v1/statuses$", Reply(401, {"error": "The access token was revoked"}))],
        error=PlatformAuthError,
    ),
    Row(
        "403-suspended",
        _text(),
        faults=[("POST", "^/api/v1/statuses$", Reply(403, {"error": "Your login is currently disabled"}))],
        error=PlatformAuthError,
    ),
    Row(
        "429-reset",
        _text(),
        faults=[("POST", "^/api/v1/statuses$", lambda: rate_limited(30))],
        error=PlatformTransientError,
        retry_after=(20, 32),
    ),
    Row(
        "500",
        _text(),
        faults=[("POST", "^/api/v1/statuses$", Reply(500, {"error": "boom"}))],
        error=PlatformTransientError,
    ),
    Row(
        "503-upload",
        _images(),
        faults=[("POST", "/api/v2/media", Reply(503, "<html>down</html>"))],
        error=PlatformTransientError,
    ),
    Row(
        "422-validation",
        _text(),
        faults=[("POST", "^/api/v1/statuses$", Reply(422, {"error": "Validation failed: Text can't be blank"}))],
        error=PlatformPermanentError,
    ),
    Row(
        "malformed-200",
        _text(),
        faults=[("POST", "^/api/v1/statuses$", Reply(200, "<html>not json</html>"))],
        error=PlatformTransientError,
    ),
    Row("text-too-long", _text("x" * 501), error=PlatformPermanentError, no_traffic=""),
    Row("short-urls-count-23", _text("y" * 480 + " http://a.co"), error=PlatformPermanentError, no_traffic=""),
    Row("image-too-large-precheck", _images(size=16 * 1024 * 1024 + 1), error=PlatformPermanentError, no_traffic=""),
    Row("image-too-large-server-422", _images(size=8192), server={"image_limit": 4096}, error=PlatformPermanentError),
    Row(
        # Mastodon.py would recurse without end if its lazy version check failed inside media_post
        "instance-info-503",
        _images(),
        faults=[("GET", r"^/api/v1/instance/?$", Reply(503, "down"))],
        error=PlatformTransientError,
    ),
    Row(
        "drop-mid-upload",
        _images(size=3_000_000),
        faults=[("POST", "/api/v2/media", Drop(64 * 1024))],
        error=PlatformTransientError,
    ),
    Row("five-images", _images(5), error=PlatformPermanentError, no_traffic=""),
    Row("alt-text-too-long", _images(alt="a" * 1501), error=PlatformPermanentError, no_traffic=""),
    Row("bad-visibility", _text(visibility="everyone"), error=PlatformPermanentError, no_traffic=""),
    Row(
        "missing-file",
        lambda tmp: PostRequest(text="x", media=[MediaItem(tmp / "gone.jpg", MediaKind.image, "image/jpeg")]),
        error=PlatformPermanentError,
        no_traffic="/api/v2/media",
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_publish(row: Row, tmp_path: Path) -> None:
    with FakeMastodon(**row.server) as fake:
        for method, path, effect in row.faults:
            fake.fault(path, effect, method=method)
        post = row.post(tmp_path)
        a = adapter(fake.url, **row.transport)
        if row.error is None:
            result = asyncio.run(a.publish(post))
            assert result.state is PublishState.published
            assert row.check is not None
            row.check(fake, result)
            return
        with pytest.raises(row.error) as info:
            asyncio.run(a.publish(post))
        if row.retry_after is not None:
            assert isinstance(info.value, PlatformTransientError) and info.value.retry_after is not None
            assert row.retry_after[0] <= info.value.retry_after <= row.retry_after[1]
        if row.no_traffic == "":
            if row.id in {
                "text-too-long",
                "short-urls-count-23",
                "image-too-large-precheck",
                "five-images",
                "alt-text-too-long",
                "bad-visibility",
            }:
                assert fake.log == []
        elif row.no_traffic:
            assert fake.requests(row.no_traffic, "POST") == []
        if row.id == "drop-mid-upload":
            assert fake.requests("/api/v2/media")[0].dropped
        assert TOKEN not in str(info.value) + info.value.platform_message


def test_repeated_publish_reuses_the_idempotency_key(fake: FakeMastodon) -> None:
    a = adapter(fake.url)
    post = PostRequest(text="Only once, please", marker="pub-7")
    first = asyncio.run(a.publish(post))
    second = asyncio.run(a.publish(post))  # e.g. a retry after a timeout whose answer was lost
    assert first.platform_post_id == second.platform_post_id
    assert len(fake.statuses) == 1
    assert [r.headers["idempotency-key"] for r in fake.requests("^/api/v1/statuses$", "POST")] == ["pub-7", "pub-7"]


def test_status_length_counts_links_as_23() -> None:
    assert status_length("see https://example.com/" + "x" * 100) == len("see ") + 23
    assert status_length("hi @nova@mastodon.social") == len("hi @nova")


def test_status_length_counts_grapheme_clusters_like_the_preview() -> None:
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # five code points, one user-perceived character
    assert status_length(family * 3) == 3
    assert status_length("caf\u0065\u0301") == 4  # e + combining acute is one character


# -- connect and bot flag -------------------------------------------------------------------------


def test_connect_reports_the_bot_flag_and_sets_it(fake: FakeMastodon) -> None:
    a = adapter(fake.url + "/")
    info = asyncio.run(a.connect())
    host = urlsplit(fake.url).netloc
    assert info.platform_account_id == f"{ACCOUNT_ID}@{host}"
    assert info.handle == f"@nova@{host}"
    assert info.is_bot_flagged is False
    assert info.credentials is not None and info.credentials.extra["account_id"] == ACCOUNT_ID
    assert asyncio.run(a.ensure_bot_flag()) is True
    assert fake.account["bot"] is True
    patch = fake.requests("update_credentials", "PATCH")[0]
    assert patch.field("bot") in ("1", "True", "true")
    assert asyncio.run(a.ensure_bot_flag()) is True  # already flagged: no second PATCH
    assert len(fake.requests("update_credentials", "PATCH")) == 1


CONNECT_FAILURES = [
    ("revoked-token", "wrong-token", None, PlatformAuthError),
    ("account-gone-404", TOKEN, Reply(404, {"error": "Record not found"}), PlatformAuthError),
    ("instance-down-502", TOKEN, Reply(502, "bad gateway"), PlatformTransientError),
    ("rate-limited", TOKEN, rate_limited(10), PlatformTransientError),
]


@pytest.mark.parametrize(
    ("token", "effect", "expected"), [c[1:] for c in CONNECT_FAILURES], ids=[c[0] for c in CONNECT_FAILURES]
)
def test_connect_failures(fake: FakeMastodon, token: str, effect: Reply | None, expected: type[PlatformError]) -> None:
    if effect is not None:
        fake.fault("verify_credentials", effect)
    with pytest.raises(expected):
        asyncio.run(adapter(fake.url, token=token).connect())


def test_a_token_naming_a_local_file_is_refused_without_traffic(fake: FakeMastodon, tmp_path: Path) -> None:
    secret_file = tmp_path / "token.txt"
    secret_file.write_text("local secret\n")
    with pytest.raises(PlatformAuthError):
        asyncio.run(adapter(fake.url, token=str(secret_file)).connect())
    assert fake.log == []


# -- reconciliation -----------------------------------------------------------------------------


def test_find_published_matches_the_visible_text(fake: FakeMastodon, tmp_path: Path) -> None:
    a = adapter(fake.url)
    since = datetime.now(UTC)
    text = "Line one #nova\n\nSecond <para> & more https://example.com/a/really/long/url/for/the/ellipsis"
    fake.add_status(text, since - timedelta(hours=2))  # same text, but before the window
    post = PostRequest(text=text, marker="pub-9", media=[image(tmp_path)])
    published = asyncio.run(a.publish(post))
    for i in range(45):  # push ours onto the second page
        fake.add_status(f"later {i}", datetime.now(UTC))
    found = asyncio.run(a.find_published(post, since=since))
    assert found is not None and found.platform_post_id == published.platform_post_id
    assert len(fake.requests(rf"/accounts/{ACCOUNT_ID}/statuses")) == 2
    # Without media the same text is another post; an unknown text is not there.
    assert asyncio.run(a.find_published(PostRequest(text=text), since=since)) is None
    assert asyncio.run(a.find_published(PostRequest(text="never posted"), since=since)) is None


def test_find_published_stops_at_since(fake: FakeMastodon) -> None:
    old = fake.add_status("Old post", datetime.now(UTC) - timedelta(days=3))
    a = adapter(fake.url)
    assert asyncio.run(a.find_published(PostRequest(text="Old post"), since=datetime.now(UTC))) is None
    found = asyncio.run(a.find_published(PostRequest(text="Old post"), since=datetime.now(UTC) - timedelta(days=4)))
    assert found is not None and found.platform_post_id == old["id"]


def test_html_to_text() -> None:
    assert html_to_text("<p>a &amp; b<br />c</p><p>d</p>") == "a & b\nc\nd"
    assert same_text(
        '<p>go <a href="x"><span class="invisible">https://</span><span>ex.com/</span></a></p>', "go https://ex.com/"
    )


# -- delete -------------------------------------------------------------------------------------


def test_delete(fake: FakeMastodon) -> None:
    a = adapter(fake.url)
    result = asyncio.run(a.publish(PostRequest(text="bye", marker="pub-3")))
    asyncio.run(a.delete(result.platform_post_id))
    assert fake.statuses == {}
    asyncio.run(a.delete(result.platform_post_id))  # already gone: fine
    fake.fault("/api/v1/statuses/", Reply(401, {"error": "The access token is invalid"}), method="DELETE")
    with pytest.raises(PlatformAuthError):
        asyncio.run(a.delete("123"))


def test_capabilities_and_registry() -> None:
    caps = MastodonAdapter.capabilities
    assert adapter_class("mastodon") is MastodonAdapter
    assert (caps.max_text_chars, caps.max_media, caps.max_alt_text_chars) == (500, 4, 1500)
    assert caps.supports_ai_label is False and "bot" in caps.notes


# -- the third-party mastodon_mock server ----------------------------------------------------------


@pytest.fixture(scope="module")
def mock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from mastodon_mock.config import DatabaseConfig, MastodonMockConfig, StreamingConfig
    from mastodon_mock.testing.seed import DEFAULT_TEST_SEED
    from mastodon_mock.testing.server import MockServer

    config = MastodonMockConfig(
        database=DatabaseConfig(path=":memory:"),
        seed=DEFAULT_TEST_SEED,
        streaming=StreamingConfig(heartbeat_seconds=0.2),
        media_storage_path=str(tmp_path_factory.mktemp("mastodon_mock_media")),
    )
    with MockServer(config=config, host="127.0.0.1") as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        yield server


def test_mastodon_mock_connect_post_reconcile_delete(mock_server: Any, tmp_path: Path) -> None:
    a = adapter(mock_server.base_url, token="alice_token")
    info = asyncio.run(a.connect())
    assert info.handle.startswith("@alice@") and info.is_bot_flagged is False
    assert asyncio.run(a.ensure_bot_flag()) is True
    assert asyncio.run(adapter(mock_server.base_url, token="alice_token").connect()).is_bot_flagged is True

    since = datetime.now(UTC)
    post = PostRequest(text="Hello from a virtual character #nova", marker="mock-pub-1", media=[image(tmp_path)])
    result = asyncio.run(a.publish(post))
    again = asyncio.run(a.publish(post))  # mastodon_mock honours Idempotency-Key too
    assert again.platform_post_id == result.platform_post_id

    client = mock_server.client("alice")
    status = client.status(result.platform_post_id)
    assert status.media_attachments[0].description == "A sunset over the sea"

    found = asyncio.run(a.find_published(post, since=since))
    assert found is not None and found.platform_post_id == result.platform_post_id
    assert asyncio.run(a.find_published(PostRequest(text="not there"), since=since)) is None

    asyncio.run(a.delete(result.platform_post_id))
    assert asyncio.run(a.find_published(post, since=since)) is None


def test_mastodon_mock_oauth_flow(mock_server: Any) -> None:
    base = mock_server.base_url
    redirect = "http://127.0.0.1:9/callback"  # never fetched: the test reads the code off the redirect
    app = asyncio.run(register_app(base, redirect, website="https://ainfluencer.invalid"))
    assert app.client_id and app.client_secret.get_secret_value()
    url = asyncio.run(auth_url(app, redirect, state="s-123"))
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == base and parts.path == "/oauth/authorize"
    query = parse_qs(parts.query)
    assert query["client_id"] == [app.client_id] and query["state"] == ["s-123"] and query["scope"] == ["read write"]

    # The user's browser: pick the account on the instance's authorisation page.
    answer = httpx.post(
        f"{base}/oauth/authorize",
        data={"username": "bob", "redirect_uri": redirect, "client_id": app.client_id, "state": "s-123"},
        follow_redirects=False,
    )
    location = urlsplit(answer.headers["location"])
    assert parse_qs(location.query)["state"] == ["s-123"]
    code = parse_qs(location.query)["code"][0]

    creds = asyncio.run(exchange_code(app, code, redirect))
    assert creds.extra["instance_url"] == base and creds.access_token is not None
    info = asyncio.run(MastodonAdapter(creds).connect())
    assert info.handle.startswith("@bob@")

    with pytest.raises(PlatformAuthError):
        asyncio.run(exchange_code(app, "not-a-code", redirect))


def test_mastodon_mock_rate_limit_fault(mock_server: Any) -> None:
    base = mock_server.base_url
    rule = httpx.post(
        f"{base}/api/v1/_mock/faults",
        json={"match": {"methods": ["POST"], "path": "/api/v1/statuses"}, "effect": {"type": "ratelimit"}, "count": 1},
    )
    rule.raise_for_status()
    with pytest.raises(PlatformTransientError) as info:
        asyncio.run(adapter(base, token="carol_token").publish(PostRequest(text="too fast", marker="rl-1")))
    # The mock resets its window in 300 s; Mastodon.py corrects for the server clock (1 s Date resolution).
    assert info.value.retry_after is not None and 250 <= info.value.retry_after <= 310
