"""An Instagram publication end to end: the Graph fake really fetches the media from the link it is given."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from fake_graph import FakeGraph
from public_media_helpers import (
    BUCKET_FOR_TESTS,
    INSTAGRAM_TIMING,
    S3_KEY_ID,
    S3_REGION,
    S3_SECRET,
    drain,
    live_app,
    local_s3,
    s3_test_client,
)
from pydantic import SecretStr

from ainfluencer.db.models import Character, User
from ainfluencer.db.models_publishing import Publication, PublicationStatus
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, publishing


@pytest.fixture
def graph(runtime: Runtime) -> Iterator[FakeGraph]:
    with FakeGraph() as fake:
        fake.fetch_media = True
        runtime.platforms = runtime.platforms.with_transport("instagram", base_url=fake.url, **INSTAGRAM_TIMING)
        yield fake


def _publish(runtime: Runtime, user: User, graph: FakeGraph, media: list[str], **kw: object) -> Publication:
    with runtime.db.session() as s:
        character = Character(user_id=user.id, name="Nova", handle="nova")
        s.add(character)
        s.flush()
        owner = s.get(User, user.id)
        assert owner is not None
        account = accounts.connect_account(
            s, runtime=runtime, user=owner, character_id=character.id, platform="instagram",
            credentials=accounts.credentials_from_input(access_token="user-token",
                                                        extra={"page_id": graph.page_id}))
        spec = publishing.PostSpec(targets=[publishing.TargetSpec(account_id=account.id)], text="Market day 🌿",
                                   media=[publishing.MediaSpec(path=m) for m in media], **kw)  # type: ignore[arg-type]
        pub_id = publishing.create_publications(s, runtime=runtime, user=owner, spec=spec)[0].id
    drain(runtime)
    with runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        assert pub is not None
        s.expunge(pub)
        return pub


def _file(runtime: Runtime, name: str, data: bytes) -> bytes:
    path = runtime.settings.media_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def test_public_media_instagram_fetches_signed_links(runtime: Runtime, app, graph: FakeGraph,  # type: ignore[no-untyped-def]
                                                      make_user: Callable[..., User]) -> None:
    user = make_user(owner=True)
    photo = _file(runtime, "nova/one.jpg", b"\xff\xd8\xff\xe0" + os.urandom(150_000))
    second = _file(runtime, "nova/two.jpg", b"\xff\xd8\xff\xe0" + os.urandom(90_000))
    with live_app(app) as base:
        runtime.settings.public_media_base_url = base
        pub = _publish(runtime, user, graph, ["nova/one.jpg", "nova/two.jpg"])
    assert pub.status == PublicationStatus.published, pub.last_error
    assert pub.url.startswith("https://www.instagram.com/p/")
    assert [f["bytes"] for f in graph.fetched] == [photo, second]
    assert all(f["url"].startswith(base + "/m/") and f["content_type"] == "image/jpeg" for f in graph.fetched)
    assert len(graph.publish_calls()) == 1


def test_public_media_instagram_video_is_fetched_in_ranges(runtime: Runtime, app, graph: FakeGraph,  # type: ignore[no-untyped-def]
                                                           make_user: Callable[..., User]) -> None:
    user = make_user(owner=True)
    graph.container_polls["video"] = 0
    clip = _file(runtime, "nova/reel.mp4", b"\x00\x00\x00\x18ftypmp42" + os.urandom(200_000))
    with live_app(app) as base:
        runtime.settings.public_media_base_url = base
        pub = _publish(runtime, user, graph, ["nova/reel.mp4"])
    assert pub.status == PublicationStatus.published, pub.last_error
    (fetch,) = graph.fetched
    assert fetch["ranged"] and fetch["bytes"] == clip and fetch["content_type"] == "video/mp4"
    assert fetch["requests"] == 1 + -(-len(clip) // graph.fetch_chunk)  # one HEAD, then 206 ranges


def test_public_media_instagram_dead_link_is_refused_by_the_network(runtime: Runtime, graph: FakeGraph,
                                                                    make_user: Callable[..., User]) -> None:
    user = make_user(owner=True)
    _file(runtime, "nova/one.jpg", b"\xff\xd8\xff\xe0" + b"1" * 1000)
    runtime.settings.public_media_base_url = "http://127.0.0.1:9"  # nothing listens: Meta cannot fetch
    pub = _publish(runtime, user, graph, ["nova/one.jpg"])
    assert pub.status == PublicationStatus.failed
    assert "could not be fetched" in (pub.platform_message or pub.last_error)
    assert graph.fetched == [] and graph.publish_calls() == []


def test_public_media_instagram_without_public_media_stops_clearly(runtime: Runtime, graph: FakeGraph,
                                                                   make_user: Callable[..., User]) -> None:
    user = make_user(owner=True)
    _file(runtime, "nova/one.jpg", b"\xff\xd8\xff\xe0" + b"1" * 1000)
    pub = _publish(runtime, user, graph, ["nova/one.jpg"])
    assert pub.status == PublicationStatus.failed
    assert "AINF_PUBLIC_MEDIA_BASE_URL" in pub.last_error
    assert graph.server.requests("POST", r"/v21.0/\d+/media") == []  # nothing was sent


def test_public_media_instagram_fetches_from_s3(runtime: Runtime, graph: FakeGraph,
                                                make_user: Callable[..., User]) -> None:
    user = make_user(owner=True)
    photo = _file(runtime, "nova/s3.jpg", b"\xff\xd8\xff\xe0" + os.urandom(40_000))
    with local_s3() as endpoint:
        s3_test_client(endpoint).create_bucket(Bucket=BUCKET_FOR_TESTS)
        settings = runtime.settings
        settings.s3_endpoint_url, settings.s3_bucket, settings.s3_region = endpoint, BUCKET_FOR_TESTS, S3_REGION
        settings.s3_access_key_id, settings.s3_secret_access_key = S3_KEY_ID, SecretStr(S3_SECRET)
        pub = _publish(runtime, user, graph, ["nova/s3.jpg"])
        assert pub.status == PublicationStatus.published, pub.last_error
        (fetch,) = graph.fetched
        assert fetch["url"].startswith(f"{endpoint}/{BUCKET_FOR_TESTS}/") and fetch["bytes"] == photo
        keys = [o["Key"] for o in s3_test_client(endpoint).list_objects_v2(Bucket=BUCKET_FOR_TESTS)["Contents"]]
        assert len(keys) == 1 and keys[0].startswith(settings.s3_prefix)
