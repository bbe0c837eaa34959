"""The Bluesky adapter and the publishing stack against a real local PDS (``@atproto/pds`` + ``@did-plc/server``).

What the records look like is read back with the official atproto SDK (``getRecord``, ``getBlob``,
``listRecords``), never through the adapter, so a record the PDS stored differently from what the
adapter meant shows up here. The servers come from ``conftest.py`` (see there and docs/testing.md).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from atproto import Client, models
from atproto_client.exceptions import BadRequestError
from pds_servers import LocalPds, PdsAccount, outbound_fetches
from PIL import Image

from ainfluencer.db.models import Character, User
from ainfluencer.db.models_publishing import AccountStatus, Publication, PublicationStatus, SocialAccount
from ainfluencer.platforms.base import (
    Credentials,
    MediaItem,
    MediaKind,
    PlatformAuthError,
    PostRequest,
    PublishState,
)
from ainfluencer.platforms.bluesky.adapter import POST_COLLECTION, BlueskyAdapter
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, publishing

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),  # the first run installs the PDS with npm and compiles better-sqlite3
    # atproto's uploadBlob hands raw bytes to httpx as data=, which httpx deprecates; not ours to change
    pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"),
]


TEXT = "Golden hour at the harbour ✨ #nova https://example.com/harbour"


def png_bytes(width: int = 96, height: int = 64) -> bytes:
    """A small real PNG made with Pillow."""
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), (240, 120, 40))
    image.putpixel((0, 0), (1, 2, 3))  # not a flat colour: a re-encode would show
    image.save(out, format="PNG")
    return out.getvalue()


def app_password_credentials(local_pds: LocalPds, account: PdsAccount, password: str = "") -> Credentials:
    """What a person types into the connect form: handle, app password and the PDS address."""
    return accounts.credentials_from_input(
        extra={"handle": account.handle, "service": local_pds.url},
        secret_extra={"app_password": password or account.app_password},
    )


def sdk(local_pds: LocalPds) -> Client:
    """An unauthenticated SDK client: records and blobs of a repo are public."""
    return Client(base_url=local_pds.url)


def get_post(local_pds: LocalPds, uri: str) -> Any:
    did, collection, rkey = uri.removeprefix("at://").split("/")
    assert collection == POST_COLLECTION
    return sdk(local_pds).com.atproto.repo.get_record(
        models.ComAtprotoRepoGetRecord.Params(repo=did, collection=collection, rkey=rkey)
    )


def get_blob(local_pds: LocalPds, did: str, cid: str) -> bytes:
    data: bytes = sdk(local_pds).com.atproto.sync.get_blob(models.ComAtprotoSyncGetBlob.Params(did=did, cid=cid))
    return data


def run(coro_factory: Callable[[], Any]) -> Any:
    return asyncio.run(coro_factory())


def test_pds_outbound_fetch_guard_spots_other_hosts(tmp_path: Path) -> None:
    log = tmp_path / "pds.log"
    log.write_text(
        '{"msg":"fetch","uri":"http://localhost:4000/did%3Aplc%3Aabc"}\n'
        '{"msg":"request completed"}\nnot json\n'
        '{"msg":"fetch","uri":"https://plc.directory/did%3Aplc%3Aabc"}\n',
        encoding="utf-8",
    )
    assert outbound_fetches(log, allowed="http://localhost:4000/") == ["https://plc.directory/did%3Aplc%3Aabc"]


# -- the adapter alone ----------------------------------------------------------------------------


def test_pds_publish_text_and_image_read_back_find_and_delete(
    local_pds: LocalPds, pds_account: PdsAccount, tmp_path: Path
) -> None:
    data = png_bytes()
    path = tmp_path / "harbour.png"
    path.write_bytes(data)
    post = PostRequest(
        text=TEXT,
        marker="ainf:1:1",
        media=[
            MediaItem(
                path=path, kind=MediaKind.image, mime_type="image/png", alt_text="Nova on the harbour wall",
                width=96, height=64,
            )
        ],
        options={"langs": ["en"], "self_labels": ["graphic-media"]},
    )
    since = datetime.now(UTC)
    adapter = BlueskyAdapter(app_password_credentials(local_pds, pds_account))
    assert run(lambda: adapter.find_published(post, since=since)) is None  # nothing posted yet

    result = run(lambda: adapter.publish(post))

    assert result.state == PublishState.published
    uri = result.platform_post_id
    rkey = uri.rsplit("/", 1)[1]
    assert uri == f"at://{pds_account.did}/{POST_COLLECTION}/{rkey}"
    assert result.url == f"https://bsky.app/profile/{pds_account.did}/post/{rkey}"
    # the session the sign-in produced is kept for the next call (createSession is rate limited)
    creds = adapter.credentials
    assert creds.extra["did"] == pds_account.did and creds.extra["handle"] == pds_account.handle
    assert creds.access_token is not None and creds.refresh_token is not None

    stored = get_post(local_pds, uri)
    assert stored.cid == result.raw["cid"]
    record = stored.value
    assert record.text == TEXT
    assert record.langs == ["en"]
    assert [label.val for label in record.labels.values] == ["graphic-media"]  # only what was asked for
    tags = [f.tag for facet in record.facets for f in facet.features if hasattr(f, "tag")]
    links = [f.uri for facet in record.facets for f in facet.features if hasattr(f, "uri")]
    assert tags == ["nova"] and links == ["https://example.com/harbour"]
    encoded = TEXT.encode()  # facet offsets are UTF-8 byte offsets; "✨" is three bytes
    slices = {encoded[facet.index.byte_start : facet.index.byte_end] for facet in record.facets}
    assert slices == {b"#nova", b"https://example.com/harbour"}
    [image] = record.embed.images
    assert image.alt == "Nova on the harbour wall"
    assert (image.aspect_ratio.width, image.aspect_ratio.height) == (96, 64)
    assert image.image.mime_type == "image/png" and image.image.size == len(data)
    assert get_blob(local_pds, pds_account.did, image.image.ref.link) == data  # the very bytes we sent

    # reconciliation finds it by text and image count, with the stored session alone (no app password to sign in)
    again = BlueskyAdapter(replace(adapter.credentials, secret_extra={}))
    found = run(lambda: again.find_published(post, since=since))
    assert found is not None and found.platform_post_id == uri
    text_only = PostRequest(text=TEXT, marker="ainf:1:1")
    assert run(lambda: again.find_published(text_only, since=since)) is None  # same text, no image: not ours

    run(lambda: again.delete(uri))
    with pytest.raises(BadRequestError) as gone:
        get_post(local_pds, uri)
    assert gone.value.response is not None and gone.value.response.content.error == "RecordNotFound"
    assert run(lambda: again.find_published(post, since=since)) is None
    run(lambda: again.delete(uri))  # deleting twice is not an error


def test_pds_refresh_renews_the_session(local_pds: LocalPds, pds_account: PdsAccount) -> None:
    adapter = BlueskyAdapter(app_password_credentials(local_pds, pds_account))
    first = run(lambda: adapter.publish(PostRequest(text="Before the refresh", marker="ainf:2:1")))
    before = adapter.credentials.refresh_token
    assert before is not None

    creds = run(adapter.refresh)

    assert creds.refresh_token is not None and creds.refresh_token.get_secret_value() != before.get_secret_value()
    after = BlueskyAdapter(creds)
    second = run(lambda: after.publish(PostRequest(text="After the refresh", marker="ainf:3:1")))
    assert get_post(local_pds, first.platform_post_id).value.text == "Before the refresh"
    assert get_post(local_pds, second.platform_post_id).value.text == "After the refresh"


def test_pds_refuses_the_account_password(local_pds: LocalPds, pds_account: PdsAccount) -> None:
    adapter = BlueskyAdapter(app_password_credentials(local_pds, pds_account, password=pds_account.password))
    with pytest.raises(PlatformAuthError, match="account password"):
        run(adapter.connect)


def test_pds_refuses_a_wrong_app_password(local_pds: LocalPds, pds_account: PdsAccount) -> None:
    adapter = BlueskyAdapter(app_password_credentials(local_pds, pds_account, password="aaaa-bbbb-cccc-dddd"))
    with pytest.raises(PlatformAuthError, match="refused the handle or app password"):
        run(lambda: adapter.publish(PostRequest(text="never", marker="ainf:4:1")))


# -- through the services: connect, create publications, run the publish job -----------------------


def _connect(runtime: Runtime, user: User, local_pds: LocalPds, account: PdsAccount) -> int:
    character_id = _character(runtime, user)
    with runtime.db.session() as s:
        u = s.get(User, user.id)
        assert u is not None
        return accounts.connect_account(
            s, runtime=runtime, user=u, character_id=character_id, platform="bluesky",
            credentials=app_password_credentials(local_pds, account),
        ).id


def _character(runtime: Runtime, user: User) -> int:
    with runtime.db.session() as s:
        character = Character(user_id=user.id, name="Nova", handle="nova")
        s.add(character)
        s.flush()
        return character.id


def test_pds_connect_account_stores_the_did_and_session(
    runtime: Runtime, make_user: Callable[..., User], local_pds: LocalPds, pds_account: PdsAccount
) -> None:
    user = make_user(owner=True)
    account_id = _connect(runtime, user, local_pds, pds_account)
    with runtime.db.session() as s:
        account = s.get(SocialAccount, account_id)
        assert account is not None
        assert account.platform_account_id == pds_account.did
        assert account.handle == f"@{pds_account.handle}" and account.status == AccountStatus.healthy
        creds = accounts.load_credentials(s, runtime.secrets, account)
    assert creds.secret_extra["app_password"].get_secret_value() == pds_account.app_password
    assert creds.access_token is not None and creds.extra["did"] == pds_account.did


def test_pds_full_publication_through_the_publish_job(
    runtime: Runtime, make_user: Callable[..., User], local_pds: LocalPds, pds_account: PdsAccount
) -> None:
    user = make_user(owner=True)
    account_id = _connect(runtime, user, local_pds, pds_account)
    data = png_bytes(120, 80)
    media_dir = runtime.settings.media_dir
    media_dir.mkdir(parents=True, exist_ok=True)
    (media_dir / "studio.png").write_bytes(data)
    spec = publishing.PostSpec(
        targets=[publishing.TargetSpec(account_id=account_id)],
        text="Fresh from the studio #nova",
        media=[publishing.MediaSpec(path="studio.png", alt_text="Nova in the studio", width=120, height=80)],
        options={"langs": ["en"]},
    )
    with runtime.db.session() as s:
        u = s.get(User, user.id)
        assert u is not None
        [pub] = publishing.create_publications(s, runtime=runtime, user=u, spec=spec)
        pub_id, seq = pub.id, pub.dispatch_seq

    summary = publishing.run_publish(runtime, pub_id, seq, worker="pds-test")

    assert summary["status"] == "published", summary
    with runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        assert pub is not None
        assert pub.status == PublicationStatus.published and pub.attempts == 1
        uri, url = pub.platform_post_id, pub.url
    assert uri.startswith(f"at://{pds_account.did}/{POST_COLLECTION}/")
    assert url == f"https://bsky.app/profile/{pds_account.did}/post/{uri.rsplit('/', 1)[1]}"
    record = get_post(local_pds, uri).value
    assert record.text == "Fresh from the studio #nova" and record.langs == ["en"]
    assert record.labels is None  # Bluesky has no AI label; the disclosure lives in the text and profile
    [image] = record.embed.images
    assert image.alt == "Nova in the studio" and image.image.mime_type == "image/png"
    assert get_blob(local_pds, pds_account.did, image.image.ref.link) == data
    # the same dispatch running again (a redelivered job) does not post a second time
    assert "skipped" in publishing.run_publish(runtime, pub_id, seq, worker="pds-test")
    listed = sdk(local_pds).com.atproto.repo.list_records(
        models.ComAtprotoRepoListRecords.Params(repo=pds_account.did, collection=POST_COLLECTION)
    )
    assert [r.uri for r in listed.records] == [uri]
