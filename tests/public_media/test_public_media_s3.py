"""S3-compatible storage against a real local S3 endpoint (moto's server on 127.0.0.1), driven by boto3."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from public_media_helpers import S3_KEY_ID, S3_REGION, S3_SECRET, local_s3, s3_test_client

from ainfluencer.config import Settings
from ainfluencer.platforms.base import MediaItem, MediaKind, PlatformPermanentError
from ainfluencer.platforms.instagram.adapter import InstagramAdapter
from ainfluencer.platforms.telegram.adapter import TelegramAdapter
from ainfluencer.runtime import Runtime
from ainfluencer.services import public_media
from ainfluencer.services.public_media import PublicMediaUnavailable

BUCKET = "ainf-public"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with local_s3() as endpoint:
        s3_test_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint


def _settings(tmp_path: Path, endpoint: str, **more: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path / "data", "s3_endpoint_url": endpoint, "s3_bucket": BUCKET,
                                 "s3_region": S3_REGION, "s3_access_key_id": S3_KEY_ID,
                                 "s3_secret_access_key": S3_SECRET, "s3_prefix": "test/", **more}
    return Settings(**values)  # type: ignore[arg-type]


def _file(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.nodb
def test_public_media_s3_upload_presign_and_fetch(tmp_path: Path, s3_endpoint: str) -> None:
    settings = _settings(tmp_path, s3_endpoint)
    data = os.urandom(50_000)
    path = _file(settings.media_dir, "nova/photo.jpg", data)
    client = public_media.s3_client(settings, S3_SECRET)

    first = public_media.upload_and_presign(settings=settings, path=path, client=client)
    assert first.uploaded is True
    assert first.key.startswith("test/") and first.key.endswith(".jpg") and len(first.key) == len("test/") + 64 + 4
    assert "X-Amz-Signature=" in first.url and "X-Amz-Expires=3600" in first.url
    assert first.url.startswith(s3_endpoint + "/" + BUCKET + "/")

    # What Instagram does: a plain GET of the presigned URL, no credentials.
    got = httpx.get(first.url, timeout=10)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    # And with boto3, behind the service: the object is there under its content address.
    stored = s3_test_client(s3_endpoint).get_object(Bucket=BUCKET, Key=first.key)
    assert stored["Body"].read() == data and stored["ContentType"] == "image/jpeg"

    # Same bytes under another name: same key, no second upload.
    copy = _file(settings.media_dir, "nova/again.jpg", data)
    second = public_media.upload_and_presign(settings=settings, path=copy, client=client)
    assert second.key == first.key and second.uploaded is False
    assert httpx.get(second.url, timeout=10).content == data

    assert public_media.delete_uploaded(settings=settings, keys=[first.key, "elsewhere/x"], client=client) == 1
    assert httpx.get(first.url, timeout=10).status_code == 404


@pytest.mark.nodb
def test_public_media_s3_refusals_and_outages(tmp_path: Path, s3_endpoint: str) -> None:
    path = _file(tmp_path / "data" / "media", "a.jpg", b"\xff\xd8\xff" + b"a" * 100)
    wrong_bucket = _settings(tmp_path, s3_endpoint, s3_bucket="no-such-bucket")
    with pytest.raises(PlatformPermanentError, match="check AINF_S3_BUCKET"):
        public_media.upload_and_presign(settings=wrong_bucket, path=path,
                                        client=public_media.s3_client(wrong_bucket, S3_SECRET))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = _settings(tmp_path, dead)
    with pytest.raises(PublicMediaUnavailable) as caught:
        public_media.upload_and_presign(settings=down, path=path, client=public_media.s3_client(down, S3_SECRET))
    assert caught.value.not_sent is True  # the publishing core may retry: nothing reached the network


def test_public_media_attach_uses_s3_then_signed_links(runtime: Runtime, s3_endpoint: str) -> None:
    settings = runtime.settings
    photo = _file(settings.media_dir, "nova/p.jpg", b"\xff\xd8\xff" + os.urandom(2000))
    given = MediaItem(photo, MediaKind.image, "image/jpeg", public_url="https://cdn.example.com/kept.jpg")

    # Nothing configured: left empty, so the adapter's own clear error stands.
    items = [MediaItem(photo, MediaKind.image, "image/jpeg"), given]
    public_media.attach_public_urls(runtime, InstagramAdapter.__new__(InstagramAdapter), items)
    assert items[0].public_url == "" and items[1].public_url == "https://cdn.example.com/kept.jpg"

    # Signed links when only a base URL is set.
    settings.public_media_base_url = "https://studio.example.com"
    public_media.attach_public_urls(runtime, InstagramAdapter.__new__(InstagramAdapter), items)
    assert items[0].public_url.startswith("https://studio.example.com/m/")
    assert items[1].public_url == "https://cdn.example.com/kept.jpg"

    # Networks that upload the file themselves get nothing.
    telegram_items = [MediaItem(photo, MediaKind.image, "image/jpeg")]
    public_media.attach_public_urls(runtime, TelegramAdapter.__new__(TelegramAdapter), telegram_items)
    assert telegram_items[0].public_url == ""

    # S3 wins when a bucket is set; the secret comes from the secrets service here.
    settings.s3_endpoint_url, settings.s3_bucket, settings.s3_region = s3_endpoint, BUCKET, S3_REGION
    settings.s3_access_key_id = S3_KEY_ID
    public_media.store_s3_secret(runtime, S3_SECRET)
    assert public_media.s3_secret(runtime) == S3_SECRET
    fresh = [MediaItem(photo, MediaKind.image, "image/jpeg")]
    public_media.attach_public_urls(runtime, InstagramAdapter.__new__(InstagramAdapter), fresh)
    assert fresh[0].public_url.startswith(f"{s3_endpoint}/{BUCKET}/")
    assert httpx.get(fresh[0].public_url, timeout=10).content == photo.read_bytes()
