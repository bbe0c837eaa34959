"""Reconciliation per network, table-driven against the local fakes: present -> found with its URL,
absent -> None (and the adapter proves absence only where its listing is sound), listing fails or
cannot be read to the end -> an error, never a silent None."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from _servers_a import Reply
from _servers_b import Response
from fake_bluesky import FakeBluesky
from fake_graph import FakeGraph, graph_error
from fake_mastodon import FakeMastodon
from fake_x import FakeX
from pydantic import SecretStr
from test_bluesky import connected as bluesky_connected
from test_mastodon import adapter as mastodon_adapter
from test_x import make_adapter as x_adapter

from ainfluencer.platforms.base import (
    Credentials,
    PlatformAdapter,
    PlatformError,
    PlatformTransientError,
    PostRequest,
    PublishState,
    ReconcileUndecided,
)
from ainfluencer.platforms.facebook.adapter import FacebookPageAdapter
from ainfluencer.platforms.registry import adapter_class, platform_names
from ainfluencer.services.publishing import proves_absence

pytestmark = pytest.mark.nodb


@dataclass
class Net:
    """How to drive one network's fake for reconciliation."""

    name: str
    start: Callable[[], Any]
    make: Callable[[Any], PlatformAdapter]
    add_other: Callable[[Any, str], None]  # someone else's / an older post in the window
    fail_listing: Callable[[Any], None]
    url_prefix: str
    page: int  # posts per listing page the adapter asks for


def _fb_adapter(fake: FakeGraph) -> FacebookPageAdapter:
    creds = Credentials(access_token=SecretStr("page-token"), extra={"page_id": fake.page_id})
    return FacebookPageAdapter(creds, base_url=fake.url, client=httpx.AsyncClient(timeout=5))


def _fb_other(fake: FakeGraph, text: str) -> None:
    pid = f"{fake.page_id}_{fake._id()}"
    fake.posts[pid] = {"id": pid, "message": text, "attached": [], "created_time": fake._now()}


def _x_other(fake: FakeX, text: str) -> None:
    tid = fake._id()
    fake.tweets[tid] = {"id": tid, "text": text, "author_id": fake.user_id,
                        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")}


NETS = [
    Net("mastodon", FakeMastodon, lambda f: mastodon_adapter(f.url),
        lambda f, t: f.add_status(t, datetime.now(UTC)) and None,
        lambda f: f.fault(r"/api/v1/accounts/\d+/statuses", Reply(503, {"error": "unavailable"}), times=20),
        "https://mastodon.test/", 40),
    Net("bluesky", FakeBluesky, bluesky_connected,
        lambda f, t: f.add_post(t, datetime.now(UTC)) and None,
        lambda f: f.fault("/xrpc/com.atproto.repo.listRecords", Reply(502, "<html>bad gateway</html>"), times=20),
        "https://bsky.app/profile/", 100),
    Net("facebook", FakeGraph, _fb_adapter, _fb_other,
        lambda f: f.server.fault("GET", r"/v21.0/\d+/posts", graph_error(2, "Service temporarily unavailable",
                                                                          transient=True, status=500), times=20),
        "https://www.facebook.com/", 100),
    Net("x", FakeX, x_adapter, _x_other,
        lambda f: f.server.fault("GET", r"/2/users/\d+/tweets", Response(503, {"title": "Service Unavailable"}),
                                 times=20),
        "https://x.com/", 100),
]


@pytest.fixture(params=NETS, ids=[n.name for n in NETS])
def net(request: pytest.FixtureRequest) -> Iterator[tuple[Net, Any]]:
    spec: Net = request.param
    with spec.start() as fake:
        yield spec, fake


def _find(adapter: PlatformAdapter, post: PostRequest, since: datetime) -> Any:
    return asyncio.run(adapter.find_published(post, since=since))


def test_reconcile_present_is_found_with_its_url(net: tuple[Net, Any]) -> None:
    spec, fake = net
    since = datetime.now(UTC) - timedelta(seconds=5)
    post = PostRequest(text="Sunrise run along the harbour", marker="ainf:41:1")
    published = asyncio.run(spec.make(fake).publish(post))
    for i in range(3):
        spec.add_other(fake, f"another post {i}")
    found = _find(spec.make(fake), post, since)  # a new worker after a crash knows only the post and the time
    assert found is not None and found.state == PublishState.published
    assert found.platform_post_id == published.platform_post_id
    assert found.url.startswith(spec.url_prefix)


def test_reconcile_absent_is_proven_across_pages(net: tuple[Net, Any]) -> None:
    spec, fake = net
    since = datetime.now(UTC) - timedelta(seconds=5)
    for i in range(spec.page + 5):  # more than one page of the account's own posts in the window
        spec.add_other(fake, f"post number {i}")
    adapter = spec.make(fake)
    assert _find(adapter, PostRequest(text="Never sent", marker="ainf:42:1"), since) is None
    assert proves_absence(adapter) is True


def test_reconcile_listing_failure_is_an_error_not_absence(net: tuple[Net, Any]) -> None:
    spec, fake = net
    since = datetime.now(UTC) - timedelta(seconds=5)
    adapter = spec.make(fake)
    spec.fail_listing(fake)
    with pytest.raises(PlatformTransientError):
        _find(adapter, PostRequest(text="Anything", marker="ainf:43:1"), since)


def test_reconcile_cannot_identify_an_empty_text(net: tuple[Net, Any]) -> None:
    spec, fake = net
    with pytest.raises(ReconcileUndecided):
        _find(spec.make(fake), PostRequest(text="  ", marker="ainf:44:1"), datetime.now(UTC))


def test_reconcile_too_long_a_window_is_undecided(net: tuple[Net, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    spec, fake = net
    module = type(spec.make(fake)).__module__
    name = "MAX_SCAN_PAGES" if spec.name in ("mastodon", "bluesky") else "RECONCILE_MAX_PAGES"
    monkeypatch.setattr(f"{module}.{name}", 1)
    since = datetime.now(UTC) - timedelta(seconds=5)
    for i in range(spec.page + 5):
        spec.add_other(fake, f"busy day {i}")
    with pytest.raises(ReconcileUndecided, match="not read to the end"):
        _find(spec.make(fake), PostRequest(text="Not among them", marker="ainf:45:1"), since)


def test_reconcile_flags_per_network() -> None:
    proven = {name for name in platform_names() if adapter_class(name).reconcile_proves_absence}
    assert proven == {"mastodon", "bluesky", "facebook", "x"}
    # Telegram cannot read a channel, YouTube's uploads playlist and Instagram's media list can lag.
    assert {"telegram", "youtube", "instagram"}.isdisjoint(proven)


def test_reconcile_mastodon_mentions_are_undecided() -> None:
    with FakeMastodon() as fake:
        with pytest.raises(ReconcileUndecided, match="mentions"):
            _find(mastodon_adapter(fake.url), PostRequest(text="Thanks @friend@other.social!"), datetime.now(UTC))
        assert fake.requests(r"/statuses") == []


def test_reconcile_facebook_video_absence_is_undecided(tmp_path: Any) -> None:
    from ainfluencer.platforms.base import MediaItem, MediaKind

    clip = tmp_path / "v.mp4"
    clip.write_bytes(b"v" * 100)
    with FakeGraph() as fake:
        post = PostRequest(text="A reel", media=[MediaItem(clip, MediaKind.video, "video/mp4")])
        with pytest.raises(ReconcileUndecided, match="only after processing"):
            _find(_fb_adapter(fake), post, datetime.now(UTC))


def test_reconcile_errors_are_platform_errors() -> None:
    assert issubclass(ReconcileUndecided, PlatformError)
