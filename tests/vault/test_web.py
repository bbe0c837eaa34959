"""Vault and Studio pages: render without inline script/style, upload, batch, review, asset page, studio forms."""

from __future__ import annotations

import io
import re
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from ainfluencer.db.models_media import Asset, ReviewState
from vault.conftest import astronaut_bytes, image_bytes, tree


def csrf(client: TestClient) -> str:
    if "ainf_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["ainf_csrf"]


def assert_csp_clean(html: str) -> None:
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="/static/' in tag, tag


def query(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return parse_qs(urlsplit(response.headers["location"]).query)


@pytest.fixture
def web(client: TestClient, owner, login) -> TestClient:  # type: ignore[no-untyped-def]
    login(client)
    return client


def web_upload(web: TestClient, *files: tuple[str, bytes], **form: str):  # type: ignore[no-untyped-def]
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    form.setdefault("origin", "ai")
    return web.post("/vault/upload", files=parts, data={"csrf_token": csrf(web), **form}, follow_redirects=False)


def test_vault_pages_upload_review_and_batch(web, runtime, make_character, owner, signing):
    ava = make_character(owner)
    html = web.get("/vault").text
    assert_csp_clean(html)
    assert 'action="/vault/upload"' in html and "Nothing here" in html
    assert 'href="/vault" class="nav-link is-active"' in html and "tag-soon" not in html.split("Vault</span>")[1][:40]

    r = web_upload(web, ("one.png", image_bytes(seed=1)), ("two.jpg", image_bytes("JPEG", seed=2)),
                   character_id=str(ava.id), tags="launch", folder="q3")
    assert r.status_code == 303 and query(r)["done"] == ["uploaded"] and query(r)["n"] == ["2"]
    r = web_upload(web, ("clip.jpg", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64))
    assert r.status_code == 303 and "MP4 video, not an image" in query(r)["error"][0]

    html = web.get("/vault?tag=launch").text
    assert_csp_clean(html)
    ids = [int(i) for i in re.findall(r'name="ids" value="(\d+)"', html)]
    assert len(ids) == 2
    assert html.count("provenance verified") >= 2

    review = web.get("/vault/review").text
    assert_csp_clean(review)
    assert review.count('class="review-item') == 2 and "data-review-url" in review
    r = web.post(f"/vault/assets/{ids[0]}/review", data={"state": "approved"},
                 headers={"Accept": "application/json", "X-CSRF-Token": csrf(web)})
    assert r.status_code == 200 and r.json() == {"id": ids[0], "review_state": "approved"}
    r = web.post(f"/vault/assets/{ids[0]}/review", data={"state": "draft"},
                 headers={"Accept": "application/json", "X-CSRF-Token": csrf(web)})
    assert r.status_code == 409 and "can move to" in r.json()["error"]["message"]
    r = web.post(f"/vault/assets/{ids[0]}/review", data={"state": "approved"}, headers={"Accept": "application/json"})
    assert r.status_code == 403  # no CSRF token

    r = web.post("/vault/batch", data={"csrf_token": csrf(web), "action": "reject", "ids": [str(ids[1])],
                                       "back": "/vault"}, follow_redirects=False)
    assert r.status_code == 303 and query(r)["done"] == ["reject"]
    approved = web.get("/vault?state=approved").text
    assert re.findall(r'name="ids" value="(\d+)"', approved) == [str(ids[0])]
    r = web.post("/vault/batch", data={"csrf_token": csrf(web), "action": "download", "ids": [str(i) for i in ids]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert len(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == 3
    r = web.post("/vault/batch", data={"csrf_token": csrf(web), "action": "approve"}, follow_redirects=False)
    assert "Select at least one asset" in query(r)["error"][0]

    page = web.get(f"/vault/assets/{ids[0]}").text
    assert_csp_clean(page)
    for words in ("provenance verified", "trainedAlgorithmicMedia", "Quality gates", "SHA-256", "launch"):
        assert words in page
    r = web.post(f"/vault/assets/{ids[0]}/edit", data={"csrf_token": csrf(web), "tags": "a, b", "folder": "x/y",
                                                      "caption": "hello"}, follow_redirects=False)
    assert r.status_code == 303
    with runtime.db.session() as s:
        asset = s.get(Asset, ids[0])
        assert asset.tag_names == ["a", "b"] and asset.folder == "x/y" and asset.caption == "hello"
        assert asset.review_state == ReviewState.approved
    r = web.post(f"/vault/assets/{ids[0]}/verify", data={"csrf_token": csrf(web)}, follow_redirects=False)
    assert query(r)["done"] == ["verified"]
    r = web.post(f"/vault/assets/{ids[0]}/delete", data={"csrf_token": csrf(web)}, follow_redirects=False)
    assert r.status_code == 303 and query(r)["done"] == ["delete"]
    assert web.get(f"/vault/assets/{ids[0]}").status_code == 404


def test_studio_pages_and_forms(web, runtime, make_character, owner):
    ava = make_character(owner)
    html = web.get("/studio").text
    assert_csp_clean(html)
    assert f'href="/studio/{ava.id}"' in html and "No image backend is configured" in html
    page = web.get(f"/studio/{ava.id}").text
    assert_csp_clean(page)
    for anchor in ('id="generate"', 'id="face"', 'id="appearances"', 'id="references"', 'id="quality"'):
        assert anchor in page

    token = csrf(web)
    r = web.post(f"/studio/{ava.id}/appearances", data={"csrf_token": token, "name": "canonical",
                                                        "face": "oval face", "hair": "auburn bob"},
                 follow_redirects=False)
    assert r.status_code == 303 and query(r)["done"] == ["appearance"]
    r = web.post(f"/studio/{ava.id}/appearances", data={"csrf_token": token, "name": "canonical"},
                 follow_redirects=False)
    assert "already has an appearance" in query(r)["error"][0]

    r = web.post(f"/studio/{ava.id}/generate", data={"csrf_token": token, "purpose": "images", "style": "travel",
                                                     "count": "2", "size": "832x1216", "brief": "by the sea"},
                 follow_redirects=False)
    assert r.status_code == 303
    job_id = query(r)["job"][0]
    page = web.get(f"/studio/{ava.id}?job={job_id}").text
    assert_csp_clean(page)
    assert f'data-job-id="{job_id}"' in page and "<progress" in page
    job = web.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "queued"

    before = tree(runtime.settings.resolved_data_dir)
    r = web.post("/studio/reference-photos", files={"file": ("me.jpg", astronaut_bytes(), "image/jpeg")},
                 data={"csrf_token": token, "character_id": str(ava.id), "consent_statement": "ok"},
                 follow_redirects=False)
    assert r.status_code == 303 and "Confirm that the person" in query(r)["error"][0]
    assert tree(runtime.settings.resolved_data_dir) == before
    r = web.post("/studio/reference-photos", files={"file": ("me.jpg", astronaut_bytes(), "image/jpeg")},
                 data={"csrf_token": token, "character_id": str(ava.id), "consent_confirmed": "1",
                       "consent_statement": "Eileen agreed in writing on 2026-01-05 to this use."},
                 follow_redirects=False)
    assert r.status_code == 303 and query(r)["done"] == ["reference"]
    page = web.get(f"/studio/{ava.id}").text
    assert "Eileen agreed in writing" in page and "Use reference as canonical" in page

    r = web.post(f"/studio/{ava.id}/settings", data={"csrf_token": token, "min_face_similarity": "0.45",
                                                     "min_technical": "0.4", "max_phash_distance": "8",
                                                     "action": "reject", "require_face": "1"},
                 follow_redirects=False)
    assert query(r)["done"] == ["settings"]
    assert 'value="0.45"' in web.get(f"/studio/{ava.id}").text

    r = web.post("/studio/image-backends", data={"csrf_token": token, "enabled_comfyui": "1", "position_comfyui": "1",
                                                 "comfyui_base_url": "http://127.0.0.1:8188"},
                 follow_redirects=False)
    assert query(r)["done"] == ["backends"]
    assert web.get("/api/v1/studio/image-backends").json()["order"] == ["comfyui"]
