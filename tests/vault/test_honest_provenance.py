"""Honest provenance: uploads say what they are, nothing non-AI is labelled AI, signing works from first start."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ainfluencer.db.models import User
from ainfluencer.db.models_media import Asset, AssetKind, AssetSource
from ainfluencer.media.provenance.metadata import (
    DIGITAL_SOURCE_TYPE_CAPTURE,
    DIGITAL_SOURCE_TYPE_COMPOSITE_AI,
    DIGITAL_SOURCE_TYPE_MINOR_EDITS,
    DIGITAL_SOURCE_TYPE_TRAINED,
    ORIGINS,
    read_provenance,
)
from ainfluencer.runtime import Runtime
from ainfluencer.services import vault
from vault.conftest import image_bytes, wav_bytes

pytest.importorskip("c2pa", reason="C2PA needs ainfluencer[media]")


def camera_jpeg() -> bytes:
    """A JPEG as a phone writes it: camera make/model and GPS in EXIF."""
    im = Image.new("RGB", (160, 120), (90, 140, 200))
    exif = Image.Exif()
    exif[0x010F] = "Pixel"  # Make
    exif[0x0110] = "Pixel 8"  # Model
    exif.get_ifd(0x8825)[1] = "N"  # GPSLatitudeRef
    out = io.BytesIO()
    im.save(out, format="JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
def api(client: TestClient, owner: User, make_token: Callable[..., str]) -> TestClient:
    client.headers["Authorization"] = f"Bearer {make_token(owner)}"
    return client


def upload(api: TestClient, data: bytes, name: str = "photo.jpg", ctype: str = "image/jpeg", **form: Any):  # type: ignore[no-untyped-def]
    return api.post("/api/v1/assets", files={"file": (name, data, ctype)}, data={k: str(v) for k, v in form.items()})


def stored_file(runtime: Runtime, asset_id: int) -> Path:
    with runtime.db.session() as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None
        return vault.file_path(runtime.settings, asset)


def test_fresh_data_dir_gets_a_ca_at_start_and_generated_media_is_signed(client: TestClient, runtime: Runtime,
                                                                        make_character, owner) -> None:
    directory = vault.provenance_dir(runtime.settings)
    # the client fixture ran the app's start on an empty data dir
    for name in ("c2pa-ca.pem", "c2pa-ca.key", "c2pa-signer.pem", "c2pa-signer.key"):
        assert (directory / name).is_file(), name
    assert stat.S_IMODE(os.stat(directory / "c2pa-signer.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    before = (directory / "c2pa-ca.pem").read_bytes()
    assert vault.ensure_signing(runtime.settings) == "present"  # a second start keeps the CA
    assert (directory / "c2pa-ca.pem").read_bytes() == before

    ava = make_character(owner)
    with runtime.db.session() as s:
        character = s.merge(ava)
        picture = vault.ingest(s, settings=runtime.settings, data=image_bytes(seed=7), filename="gen.png",
                               character=character, user_id=owner.id, source=AssetSource.generated,
                               origin="camera",  # ignored: generated media is always AI
                               generation=vault.GenerationInfo(prompt="beach", backend="test", model="tiny"),
                               run_gates=False).asset
        voice = vault.ingest(s, settings=runtime.settings, data=wav_bytes(), filename="voice.wav",
                             kind=AssetKind.audio, character=character, user_id=owner.id,
                             source=AssetSource.generated, run_gates=False).asset
        s.commit()
        for asset in (picture, voice):
            c2pa = asset.provenance["c2pa"]
            assert c2pa["state"] == "signed" and c2pa["verified"] is True, c2pa
            assert c2pa["report"]["digital_source_type"] == DIGITAL_SOURCE_TYPE_TRAINED
            assert asset.provenance["origin"]["key"] == "ai" and asset.provenance["origin"]["ai"] is True
        assert read_provenance(vault.file_path(runtime.settings, picture))["digital_source_type"] == \
            DIGITAL_SOURCE_TYPE_TRAINED


def test_incomplete_provenance_folder_is_left_alone(runtime: Runtime) -> None:
    directory = vault.provenance_dir(runtime.settings)
    directory.mkdir(parents=True)
    (directory / "c2pa-ca.pem").write_text("kept")
    assert vault.ensure_signing(runtime.settings) == "incomplete"
    assert (directory / "c2pa-ca.pem").read_text() == "kept" and len(list(directory.iterdir())) == 1


def test_camera_upload_keeps_digital_capture_and_is_not_labelled_ai(api: TestClient, runtime: Runtime) -> None:
    r = upload(api, camera_jpeg(), origin="camera")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["provenance"]["origin"] == {"key": "camera", "label": ORIGINS["camera"].label,
                                            "digital_source_type": DIGITAL_SOURCE_TYPE_CAPTURE, "ai": False}
    assert body["provenance"]["xmp"]["digital_source_type"] == DIGITAL_SOURCE_TYPE_CAPTURE
    assert body["provenance"]["xmp"]["ai_generated"] is False
    assert body["provenance"]["c2pa"]["report"]["digital_source_type"] == DIGITAL_SOURCE_TYPE_CAPTURE
    assert body["provenance_verified"] is True
    path = stored_file(runtime, body["id"])
    info = read_provenance(path)
    assert info["digital_source_type"] == DIGITAL_SOURCE_TYPE_CAPTURE and not info["ai_generated"]
    assert info["private_metadata"] == []  # camera make/model and GPS are still removed
    assert info["ai_system"] is None and "AI" not in (info["description"] or "")
    raw = path.read_bytes()
    assert b"trainedAlgorithmicMedia" not in raw and b"AI-generated" not in raw

    # re-reading the file keeps the honest label
    r = api.post(f"/api/v1/assets/{body['id']}/verify-provenance")
    assert r.status_code == 200 and r.json()["provenance"]["xmp"]["ai_generated"] is False


@pytest.mark.parametrize(("origin", "expected", "ai"), [
    ("ai", DIGITAL_SOURCE_TYPE_TRAINED, True),
    ("composite", DIGITAL_SOURCE_TYPE_COMPOSITE_AI, True),
    ("edited", DIGITAL_SOURCE_TYPE_MINOR_EDITS, False),
])
def test_declared_origin_sets_the_source_type(api: TestClient, origin: str, expected: str, ai: bool) -> None:
    r = upload(api, image_bytes("JPEG", seed=3), origin=origin)
    assert r.status_code == 201, r.text
    xmp = r.json()["provenance"]["xmp"]
    assert xmp["digital_source_type"] == expected and xmp["ai_generated"] is ai


@pytest.mark.parametrize("origin", ["", "photo", "trainedAlgorithmicMedia"])
def test_upload_without_a_valid_origin_is_a_422_naming_the_field(api: TestClient, runtime: Runtime,
                                                                 origin: str) -> None:
    form = {"origin": origin} if origin else {}
    r = upload(api, image_bytes(seed=4), **form)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "origin"
    with runtime.db.session() as s:
        assert s.query(Asset).count() == 0


def test_web_upload_requires_origin_and_asset_page_shows_verification(client: TestClient, owner, login,
                                                                      runtime: Runtime) -> None:
    login(client)
    token = client.cookies["ainf_csrf"]
    html = client.get("/vault").text
    for key in ORIGINS:
        assert f'name="origin" value="{key}" required' in html

    def post(**form: str):  # type: ignore[no-untyped-def]
        return client.post("/vault/upload", files=[("files", ("cam.jpg", camera_jpeg(), "image/jpeg"))],
                           data={"csrf_token": token, **form}, follow_redirects=False)

    r = post()
    assert r.status_code == 303 and "Say what the files are" in r.headers["location"].replace("+", " ")
    r = post(origin="camera")
    assert r.status_code == 303 and "done=uploaded" in r.headers["location"]
    with runtime.db.session() as s:
        asset = s.query(Asset).one()
        asset_id, path = asset.id, vault.file_path(runtime.settings, asset)

    page = client.get(f"/vault/assets/{asset_id}").text
    assert 'data-status="valid"' in page and "provenance verified" in page
    assert "Signer: AInfluencer self-hosted content signer" in page
    assert "Claimed source type: <code>digitalCapture</code>" in page and "not AI" in page

    # a changed byte reads back invalid
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0xFF  # inside the entropy-coded image data, before EOI
    path.write_bytes(bytes(raw))
    client.post(f"/vault/assets/{asset_id}/verify", data={"csrf_token": token}, follow_redirects=False)
    page = client.get(f"/vault/assets/{asset_id}").text
    assert 'data-status="invalid"' in page and "provenance verified" not in page


def test_asset_page_says_not_signed_when_signing_is_off(client: TestClient, owner, login, runtime: Runtime) -> None:
    login(client)
    for child in vault.provenance_dir(runtime.settings).iterdir():
        child.unlink()
    token = client.cookies["ainf_csrf"]
    r = client.post("/vault/upload", files=[("files", ("gen.png", image_bytes(seed=9), "image/png"))],
                    data={"csrf_token": token, "origin": "ai"}, follow_redirects=False)
    assert "done=uploaded" in r.headers["location"]
    with runtime.db.session() as s:
        asset_id = s.query(Asset).one().id
    page = client.get(f"/vault/assets/{asset_id}").text
    assert 'data-status="not signed"' in page and "C2PA signing is not set up" in page
