"""Signed public media links: describe() per mode, GET/HEAD/Range through the app, expiry, tampering, traversal."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from public_media_helpers import live_app

from ainfluencer.config import Settings
from ainfluencer.runtime import Runtime
from ainfluencer.services import public_media

BASE = "https://studio.example.com"


def _media(runtime: Runtime, name: str = "nova/2026/11/ab/photo.jpg", data: bytes | None = None) -> Path:
    path = runtime.settings.media_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if data is not None else bytes(range(256)) * 40)
    return path


def _url_path(url: str) -> str:
    assert url.startswith(BASE + "/m/")
    return url[len(BASE):]


@pytest.fixture
def signed(runtime: Runtime) -> Runtime:
    runtime.settings.public_media_base_url = BASE
    return runtime


# ---- describe --------------------------------------------------------------------------------------


@pytest.mark.nodb
@pytest.mark.parametrize(("values", "mode", "says"), [
    ({}, "none", ["AINF_PUBLIC_MEDIA_BASE_URL", "AINF_S3_BUCKET", "Instagram posts stop"]),
    ({"public_media_base_url": BASE}, "signed_url", [f"{BASE}/m/", "1 hour"]),
    ({"public_url": BASE + "/", "public_media_ttl_seconds": 900}, "signed_url", [f"{BASE}/m/", "15 minutes"]),
    ({"public_media_base_url": "http://127.0.0.1:8000"}, "signed_url", ["private address", "cannot fetch"]),
    ({"public_media_base_url": "http://localhost:8000"}, "signed_url", ["not reachable from the internet"]),
    ({"public_media_base_url": "http://studio.example.com"}, "signed_url", ["https://"]),
    ({"public_media_base_url": "studio.example.com"}, "none", ["not a full http(s) address"]),
    ({"s3_bucket": "media", "s3_endpoint_url": "https://r2.example.com", "public_media_base_url": BASE}, "s3",
     ["bucket “media”", "https://r2.example.com", "presigned"]),
    ({"s3_bucket": "media"}, "s3", ["AWS S3"]),
])
def test_public_media_describe_modes(tmp_path: Path, values: dict[str, object], mode: str, says: list[str]) -> None:
    status = public_media.describe(Settings(data_dir=tmp_path, **values))  # type: ignore[arg-type]
    assert status.mode == mode
    assert status.ready is (mode != "none")
    for text in says:
        assert text in status.message, (text, status.message)


@pytest.mark.nodb
def test_public_media_describe_without_boto3_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(public_media, "s3_available", lambda: False)
    with_base = public_media.describe(Settings(data_dir=tmp_path, s3_bucket="media", public_media_base_url=BASE))
    assert with_base.mode == "signed_url" and "pip install 'ainfluencer[s3]'" in with_base.message
    alone = public_media.describe(Settings(data_dir=tmp_path, s3_bucket="media"))
    assert alone.mode == "none" and "boto3 is not installed" in alone.message


# ---- tokens ----------------------------------------------------------------------------------------


@pytest.mark.nodb
def test_public_media_token_round_trip_and_expiry() -> None:
    token = public_media.sign_token(secret="s" * 40, relative_path="a/b.jpg", ttl_seconds=60, now=1000.0)
    assert public_media.read_token(secret="s" * 40, token=token, now=1059.0) == "a/b.jpg"
    assert public_media.read_token(secret="s" * 40, token=token, now=1060.0) is None  # expired
    assert public_media.read_token(secret="t" * 40, token=token, now=1001.0) is None  # other secret
    assert public_media.read_token(secret="s" * 40, token=token[:-2] + "xx", now=1001.0) is None
    assert public_media.read_token(secret="s" * 40, token="not-a-token", now=1001.0) is None


# ---- through the app ----------------------------------------------------------------------------------


def test_public_media_get_head_range(signed: Runtime, client: TestClient) -> None:
    path = _media(signed)
    data = path.read_bytes()
    url = public_media.signed_url(settings=signed.settings, secret=signed.secret, path=path)
    route = _url_path(url)

    got = client.get(route)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["accept-ranges"] == "bytes"
    assert "noindex" in got.headers["x-robots-tag"]

    head = client.head(route)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["content-type"] == "image/jpeg"

    part = client.get(route, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.content == data[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(data)}"
    assert part.headers["content-length"] == "1024"

    tail = client.get(route, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]

    beyond = client.get(route, headers={"Range": f"bytes={len(data) + 5}-"})
    assert beyond.status_code == 416


def test_public_media_video_content_type_and_no_sign_in(signed: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    path = _media(signed, "nova/clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000)
    route = _url_path(public_media.signed_url(settings=signed.settings, secret=signed.secret, path=path))
    with TestClient(app, base_url="http://testserver") as anonymous:  # fresh client: no cookie, no token
        got = anonymous.get(route)
        assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
        assert got.content == path.read_bytes()
        assert anonymous.post(route).status_code == 405  # read-only


def test_public_media_expired_tampered_and_unknown_look_alike(signed: Runtime, client: TestClient) -> None:
    path = _media(signed)
    relative = path.relative_to(signed.settings.media_dir).as_posix()
    expired = public_media.sign_token(secret=signed.secret, relative_path=relative, ttl_seconds=3600,
                                      now=time.time() - 3601)
    good = public_media.sign_token(secret=signed.secret, relative_path=relative, ttl_seconds=3600)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    foreign = public_media.sign_token(secret="another-installation-" * 3, relative_path=relative, ttl_seconds=3600)
    missing = public_media.sign_token(secret=signed.secret, relative_path="nova/gone.jpg", ttl_seconds=3600)
    assert client.get(f"/m/{good}").status_code == 200
    bodies = []
    for token in (expired, tampered, foreign, missing, "garbage"):
        assert client.get(f"/m/{token}").status_code == 404, token  # a fetcher gets the HTML error page
        got = client.get(f"/m/{token}", headers={"Accept": "application/json"})
        assert got.status_code == 404, token
        bodies.append(got.json())
        assert client.head(f"/m/{token}").status_code == 404
    assert all(b == bodies[0] for b in bodies)  # no hint which check failed
    assert "expired" in bodies[0]["error"]["message"]


def test_public_media_never_leaves_the_media_folder(signed: Runtime, client: TestClient, tmp_path: Path) -> None:
    secret_file = signed.settings.resolved_data_dir / "outside.txt"
    secret_file.write_text("not for the internet")
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"\xff\xd8\xff" + b"x" * 100)
    link = signed.settings.media_dir / "nova" / "link.jpg"
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, link)
    # Even a correctly signed token cannot name a file outside the media folder.
    for relative in ("../outside.txt", "../../outside.txt", str(secret_file), "nova/link.jpg", "", ".", "nova"):
        token = public_media.sign_token(secret=signed.secret, relative_path=relative, ttl_seconds=3600)
        got = client.get(f"/m/{token}")
        assert got.status_code == 404, relative
        assert b"not for the internet" not in got.content
    for raw in ("/m/../outside.txt", "/m/..%2Foutside.txt", "/m/%2e%2e%2f%2e%2e%2foutside.txt"):
        got = client.get(raw)
        assert got.status_code == 404 and b"not for the internet" not in got.content
    with pytest.raises(ValueError, match="not inside the media folder"):
        public_media.signed_url(settings=signed.settings, secret=signed.secret, path=secret_file)


def test_public_media_signed_url_needs_a_base(runtime: Runtime) -> None:
    path = _media(runtime)
    with pytest.raises(ValueError, match="no public base URL"):
        public_media.signed_url(settings=runtime.settings, secret=runtime.secret, path=path)


def test_public_media_served_by_a_live_server(signed: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    path = _media(signed, "nova/big.jpg", os.urandom(300_000))
    with live_app(app) as base:
        signed.settings.public_media_base_url = base
        url = public_media.signed_url(settings=signed.settings, secret=signed.secret, path=path)
        assert url.startswith(base + "/m/")
        got = httpx.get(url, timeout=10)
        assert got.status_code == 200 and got.content == path.read_bytes()
        part = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=10)
        assert part.status_code == 206 and part.content == path.read_bytes()[:100]
        # CSP and the other security headers are there and do not get in the way of a download.
        assert "default-src" in got.headers.get("content-security-policy", "") or got.headers.get(
            "x-content-type-options") == "nosniff"
