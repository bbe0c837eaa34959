"""Assets and studio REST API: uploads (good and bad), filters, PATCH, batch, zip, delete, studio endpoints."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ainfluencer.config import Settings
from ainfluencer.db.models import User, utcnow
from ainfluencer.runtime import Runtime
from vault.conftest import astronaut_bytes, image_bytes, mp4_bytes, tree, wav_bytes


@pytest.fixture
def api(client: TestClient, owner: User, make_token: Callable[..., str]) -> TestClient:
    client.headers["Authorization"] = f"Bearer {make_token(owner)}"
    return client


def upload(api: TestClient, data: bytes, name: str = "photo.png", ctype: str = "image/png", **form: Any):  # type: ignore[no-untyped-def]
    form.setdefault("origin", "ai")
    return api.post("/api/v1/assets", files={"file": (name, data, ctype)}, data={k: str(v) for k, v in form.items()})


def test_upload_list_get_patch_file(api, runtime, owner, make_character, signing):
    ava = make_character(owner)
    r = upload(api, image_bytes(seed=1), character_id=ava.id, tags="summer, Beach", folder="campaigns/summer")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["duplicate"] is False and body["provenance_verified"] is True
    assert body["tags"] == ["beach", "summer"] and body["folder"] == "campaigns/summer"
    assert body["review_state"] == "in_review" and body["gate_decision"] in ("pass", "flag")
    assert body["provenance"]["xmp"]["digital_source_type"].endswith("trainedAlgorithmicMedia")
    again = upload(api, image_bytes(seed=1), character_id=ava.id)
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["id"] == body["id"]
    upload(api, wav_bytes(), name="hello.wav", ctype="audio/wav", character_id=ava.id)
    upload(api, mp4_bytes(), name="clip.mp4", ctype="video/mp4")

    listed = api.get("/api/v1/assets").json()
    assert listed["count"] == 3
    assert api.get("/api/v1/assets", params={"kind": "video"}).json()["count"] == 1
    assert api.get("/api/v1/assets", params={"character_id": ava.id}).json()["count"] == 2
    assert api.get("/api/v1/assets", params={"tag": "beach"}).json()["count"] == 1
    assert api.get("/api/v1/assets", params={"q": "hello"}).json()["count"] == 1
    assert api.get("/api/v1/assets", params={"folder": "campaigns"}).json()["count"] == 1
    assert api.get("/api/v1/assets", params={"min_technical": 0}).json()["count"] == 1
    assert api.get("/api/v1/assets", params={"date_from": (utcnow() + timedelta(days=1)).isoformat()}).json()[
        "count"] == 0
    assert api.get("/api/v1/assets", params={"review_state": ["approved", "rejected"]}).json()["count"] == 0
    assert api.get("/api/v1/assets", params={"sort": "sideways"}).status_code == 422

    one = api.get(f"/api/v1/assets/{body['id']}").json()
    assert one["sha256"] == body["sha256"]
    f = api.get(one["file_url"])
    assert f.status_code == 200 and f.headers["content-type"] == "image/png"
    assert f.headers["content-disposition"].startswith("inline")
    assert api.get(one["file_url"], params={"download": "true"}).headers["content-disposition"].startswith(
        "attachment")

    r = api.patch(f"/api/v1/assets/{body['id']}", json={"tags": ["launch"], "folder": "q3", "review_state": "approved",
                                                       "caption": "Sunny day"})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["launch"] and r.json()["folder"] == "q3" and r.json()["review_state"] == "approved"
    assert api.get("/api/v1/assets", params={"q": "sunny"}).json()["count"] == 1
    api.patch(f"/api/v1/assets/{body['id']}", json={"review_state": "archived"})
    r = api.patch(f"/api/v1/assets/{body['id']}", json={"review_state": "approved"})
    assert r.status_code == 409 and "archived" in r.json()["error"]["message"]
    assert api.patch(f"/api/v1/assets/{body['id']}", json={"colour": "red"}).status_code == 422
    r = api.post(f"/api/v1/assets/{body['id']}/verify-provenance")
    assert r.status_code == 200 and r.json()["provenance_verified"] is True
    assert api.get("/api/v1/assets/999999").status_code == 404


def test_batch_zip_and_delete(api, runtime, owner, make_character):
    ava = make_character(owner)
    ids = [upload(api, image_bytes(seed=i), name=f"p{i}.png", character_id=ava.id).json()["id"] for i in range(3)]
    r = api.post("/api/v1/assets/batch", json={"ids": ids[:2], "action": "approve"})
    assert r.status_code == 200 and r.json()["done"] == ids[:2]
    r = api.post("/api/v1/assets/batch", json={"ids": ids, "action": "tag", "tags": ["Q3"]})
    assert r.json()["done"] == ids
    assert api.get("/api/v1/assets", params={"review_state": "approved", "tag": "q3"}).json()["count"] == 2
    assert api.post("/api/v1/assets/batch", json={"ids": ids, "action": "fly"}).status_code == 422

    r = api.get("/api/v1/assets/download", params={"ids": ids[:2]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert len(archive.namelist()) == 3 and "manifest.json" in archive.namelist()
    assert all(n.startswith("ava.nova/") for n in archive.namelist() if n != "manifest.json")

    r = api.post("/api/v1/assets/batch", json={"ids": ids[:2], "action": "delete"})
    assert r.status_code == 200
    assert api.delete(f"/api/v1/assets/{ids[2]}").status_code == 204
    assert api.get("/api/v1/assets").json()["count"] == 0
    assert {p for p in tree(runtime.settings.media_dir)} == set()


def test_delete_of_a_scheduled_asset_is_refused(api, runtime, owner, make_character):
    from ainfluencer.db.models_publishing import Publication, SocialAccount

    ava = make_character(owner)
    asset_id = upload(api, image_bytes(), character_id=ava.id).json()["id"]
    with runtime.db.session() as s:
        account = SocialAccount(character_id=ava.id, platform="telegram", platform_account_id="42")
        s.add(account)
        s.flush()
        s.add(Publication(character_id=ava.id, account_id=account.id, scheduled_at=utcnow() + timedelta(hours=3),
                          media=[{"asset_id": asset_id, "kind": "image"}]))
    r = api.delete(f"/api/v1/assets/{asset_id}")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "asset_in_use"
    assert "is used by post #" in r.json()["error"]["message"]
    assert api.get(f"/api/v1/assets/{asset_id}").status_code == 200


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")  # 144 MP declared, tiny on disk
    return buf.getvalue()


def _truncated() -> bytes:
    data = image_bytes("JPEG", size=(400, 300), seed=3)
    return data[: len(data) // 2]


BAD_UPLOADS = [
    ("empty.png", b"", "image/png", 422, "empty (0 bytes)"),
    ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, "image/png", 422, "corrupt"),
    ("cut.jpg", _truncated(), "image/jpeg", 422, "truncated"),
    ("bomb.png", _bomb(), "image/png", 422, "decompression bomb"),
    ("holiday.jpg", mp4_bytes(), "image/jpeg", 422, "is an MP4 video, not an image"),
    ("../../../../etc/cron.d/evil.png", b"#!/bin/sh\nrm -rf /\n", "image/png", 422, "or it is corrupt"),
    ("notes.txt", b"plain text is not media", "text/plain", 422, "not a supported file"),
]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("name", "data", "ctype", "status", "words"), BAD_UPLOADS,
                         ids=[row[0].rsplit("/", 1)[-1] for row in BAD_UPLOADS])
def test_bad_uploads_are_refused_and_nothing_is_written(api, runtime, name, data, ctype, status, words):
    data_dir = runtime.settings.resolved_data_dir
    before = tree(data_dir)
    r = upload(api, data, name=name, ctype=ctype)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert words in error["message"] and error["field"] == "file"
    assert tree(data_dir) == before
    assert api.get("/api/v1/assets").json()["count"] == 0


def test_huge_uploads_are_refused(tmp_path, pg_database, runtime, owner):
    from ainfluencer.app import create_app
    from ainfluencer.services import auth

    url = pg_database or runtime.settings.effective_database_url
    settings = Settings(data_dir=tmp_path / "small", database_url=url, max_upload_bytes=64 * 1024)
    rt = Runtime.build(settings)
    try:
        with rt.db.session() as s:
            token = auth.create_api_token(s, user=s.get(User, owner.id), name="t", scopes="read,write").raw
        with TestClient(create_app(rt)) as c:
            c.headers["Authorization"] = f"Bearer {token}"
            before = tree(settings.resolved_data_dir) | tree(runtime.settings.resolved_data_dir)
            big = image_bytes(size=(400, 400), seed=1)
            assert len(big) > 64 * 1024
            r = upload(c, big, name="big.png")
            assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
            assert tree(settings.resolved_data_dir) | tree(runtime.settings.resolved_data_dir) == before
            # the upload limit applies to upload paths only; other bodies keep the general 1 MiB limit
            r = c.post("/api/v1/studio/generate", content=b"x" * (2 * 1024 * 1024),
                       headers={"content-type": "application/json"})
            assert r.status_code == 413
    finally:
        rt.close()


def test_path_traversal_names_never_reach_the_file_system(api, runtime):
    data_dir = runtime.settings.resolved_data_dir
    before = tree(data_dir)
    for i, name in enumerate(["../../../escape.png", "..\\..\\win.png", "/etc/passwd.png", "a/../../b.png"]):
        r = upload(api, image_bytes(seed=20 + i), name=name)
        assert r.status_code == 201, r.text
        assert r.json()["original_name"] in ("escape.png", "win.png", "passwd.png", "b.png")
    new = tree(data_dir) - before
    assert new and all(p.startswith("media/unassigned/") for p in new)
    assert not (data_dir.parent / "escape.png").exists()


def test_missing_file_and_scope_and_visibility(api, client, runtime, owner, make_user, make_token, make_character):
    r = api.post("/api/v1/assets", data={"tags": "x"})
    assert r.status_code == 422 and "field 'file'" in r.json()["error"]["message"]
    ava = make_character(owner)
    asset_id = upload(api, image_bytes(), character_id=ava.id).json()["id"]
    reader = make_user("reader@example.com", owner=False)
    with TestClient(client.app) as other:
        other.headers["Authorization"] = f"Bearer {make_token(reader, scopes='read')}"
        assert other.get(f"/api/v1/assets/{asset_id}").status_code == 404
        assert other.get("/api/v1/assets").json()["count"] == 0
        r = upload(other, image_bytes(seed=5))
        assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
        assert upload(other, image_bytes(seed=5), character_id=ava.id).status_code == 403


# ---- studio ---------------------------------------------------------------------------------------------------


def test_appearances_canonical_face_and_reference_photos(api, runtime, owner, make_character):
    ava = make_character(owner)
    r = api.post(f"/api/v1/studio/characters/{ava.id}/appearances",
                 json={"name": "canonical", "face": "oval face", "hair": "auburn bob"})
    assert r.status_code == 201 and r.json()["is_canonical"] is True
    r = api.post(f"/api/v1/studio/characters/{ava.id}/appearances", json={"name": "gym", "clothing": "running gear"})
    gym_id = r.json()["id"]
    assert r.json()["is_canonical"] is False
    assert api.post(f"/api/v1/studio/characters/{ava.id}/appearances", json={"name": "gym"}).status_code == 409
    r = api.patch(f"/api/v1/studio/appearances/{gym_id}", json={"settings": "indoor track"})
    assert r.status_code == 200 and r.json()["settings"] == "indoor track" and r.json()["clothing"] == "running gear"
    listed = api.get(f"/api/v1/studio/characters/{ava.id}/appearances").json()
    assert [a["name"] for a in listed["data"]] == ["canonical", "gym"]

    face = upload(api, astronaut_bytes(), name="face.jpg", ctype="image/jpeg", character_id=ava.id).json()
    r = api.post(f"/api/v1/studio/characters/{ava.id}/canonical-face", json={"asset_id": face["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["has_face_embedding"] is True and r.json()["canonical_asset_id"] == face["id"]
    noise = upload(api, image_bytes(), character_id=ava.id).json()
    r = api.post(f"/api/v1/studio/characters/{ava.id}/canonical-face", json={"asset_id": noise["id"]})
    assert r.status_code == 422 and "No face was found" in r.json()["error"]["message"]
    assert api.delete(f"/api/v1/assets/{face['id']}").status_code == 409  # it is the canonical face

    photo = astronaut_bytes(fmt="PNG")
    before = tree(runtime.settings.resolved_data_dir)
    r = api.post("/api/v1/studio/reference-photos", files={"file": ("ref.png", photo, "image/png")},
                 data={"character_id": str(ava.id), "consent_statement": "yes", "consent_confirmed": "true"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "consent_statement"
    r = api.post("/api/v1/studio/reference-photos", files={"file": ("ref.png", photo, "image/png")},
                 data={"character_id": str(ava.id), "consent_statement": "Eileen agreed in writing on 2026-01-05."})
    assert r.status_code == 422 and r.json()["error"]["field"] == "consent_confirmed"
    assert tree(runtime.settings.resolved_data_dir) == before
    r = api.post("/api/v1/studio/reference-photos", files={"file": ("ref.png", photo, "image/png")},
                 data={"character_id": str(ava.id), "consent_confirmed": "true", "subject_name": "Eileen",
                       "consent_statement": "Eileen agreed in writing on 2026-01-05 to this use."})
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["consent_statement"].startswith("Eileen agreed")
    r = api.patch(f"/api/v1/assets/{ref['asset_id']}", json={"review_state": "approved"})
    assert r.status_code == 409 and "reference photo" in r.json()["error"]["message"]
    assert api.get(f"/api/v1/studio/characters/{ava.id}/reference-photos").json()["count"] == 1
    assert api.delete(f"/api/v1/studio/reference-photos/{ref['id']}").status_code == 204
    assert api.get(f"/api/v1/assets/{ref['asset_id']}").status_code == 404


def test_media_settings_and_styles(api, owner, make_character):
    ava = make_character(owner)
    assert {s["name"] for s in api.get("/api/v1/studio/styles").json()} >= {"casual", "professional", "travel",
                                                                           "studio", "outdoor"}
    r = api.put(f"/api/v1/studio/characters/{ava.id}/media-settings",
                json={"thresholds": {"min_face_similarity": 0.5, "action": "reject"}, "image_backend": "comfyui"})
    assert r.status_code == 200 and r.json()["thresholds"]["action"] == "reject"
    assert r.json()["thresholds"]["min_technical"] == 0.5 and r.json()["image_backend"] == "comfyui"
    r = api.put(f"/api/v1/studio/characters/{ava.id}/media-settings", json={"thresholds": {"min_technical": 3}})
    assert r.status_code == 422
    r = api.put(f"/api/v1/studio/characters/{ava.id}/media-settings", json={"image_backend": "midjourney"})
    assert r.status_code == 422 and "unknown image backend" in r.json()["error"]["message"]


def test_generation_without_a_backend_fails_clearly(api, runtime, owner, make_character):
    from ainfluencer.jobs.runner import run_one

    ava = make_character(owner)
    r = api.post("/api/v1/studio/generate", json={"character_id": ava.id, "count": 2, "style": "travel",
                                                  "brief": "at the harbour"})
    assert r.status_code == 202 and r.json()["kind"] == "studio.generate_images"
    assert run_one(runtime, worker="test") is not None
    job = api.get(f"/api/v1/jobs/{r.json()['id']}").json()
    assert job["status"] == "failed"
    assert "no image backend configured: set up ComfyUI/A1111/diffusers/OpenAI in Settings" in job["last_error"]
    assert api.get("/api/v1/assets").json()["count"] == 0
    assert api.post("/api/v1/studio/generate", json={"character_id": ava.id, "style": "boudoir"}).status_code == 422
    assert api.post("/api/v1/studio/generate", json={"character_id": ava.id, "brief": "topless"}).status_code == 422


@pytest.fixture(scope="module")
def a1111_server():  # type: ignore[no-untyped-def]
    from backends.image.fake_a1111 import A1111State, a1111_app
    from backends.text.servers import LocalServer

    state = A1111State()
    server = LocalServer(a1111_app(state)).start()
    try:
        yield server.url, state
    finally:
        server.stop()


def test_generation_through_a1111_lands_in_the_vault(api, runtime, owner, make_character, signing, a1111_server):
    from ainfluencer.jobs.runner import run_one

    url, state = a1111_server
    state.reset("ok")
    state.gen_seconds = 0.05
    ava = make_character(owner)
    r = api.put("/api/v1/studio/image-backends", json={"order": ["automatic1111"],
                                                        "backends": {"automatic1111": {"base_url": url}}})
    assert r.status_code == 200 and r.json()["order"] == ["automatic1111"]
    r = api.post("/api/v1/studio/generate", json={"character_id": ava.id, "count": 2, "style": "studio",
                                                  "brief": "holding a camera", "seed": 1234, "width": 256,
                                                  "height": 256})
    job_id = r.json()["id"]
    assert run_one(runtime, worker="test") is not None
    job = api.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["last_error"]
    assert job["progress"] == 100 and len(job["result"]["asset_ids"]) == 2
    assets = api.get("/api/v1/assets", params={"sort": "created"}).json()["data"]
    assert [a["id"] for a in assets] == job["result"]["asset_ids"]
    first, second = assets
    assert "holding a camera" in first["prompt"] and "seamless backdrop" in first["prompt"]
    assert "nsfw" in first["negative_prompt"]
    assert first["backend"] == "automatic1111" and first["model"]
    assert (first["seed"], second["seed"]) == (1234, 1235)
    assert (first["width"], first["height"]) == (256, 256)
    assert first["generation_ms"] is not None and first["cost_usd"] == 0.0
    assert first["source"] == "generated" and first["job_id"] == job_id
    assert first["provenance_verified"] is True
    assert first["gate_decision"] in ("pass", "flag") and "technical" in first["scores"]
    assert "studio" in first["tags"] and "generated" in first["tags"]
    # the fake server paints flat colours: the second image is a near-duplicate of the first
    assert any("near-duplicate" in reason for reason in second["gate_reasons"])
    assert state.requests and state.requests[0]["json"]["seed"] == 1234
    assert Decimal(job["result"]["cost_usd"]) == 0


def test_only_the_owner_configures_image_backends(client, runtime, owner, make_user, make_token):
    member = make_user("member@example.com", owner=False)
    client.headers["Authorization"] = f"Bearer {make_token(member)}"
    r = client.put("/api/v1/studio/image-backends", json={"order": ["comfyui"]})
    assert r.status_code == 403
    assert client.get("/api/v1/studio/image-backends").json()["order"] == []
