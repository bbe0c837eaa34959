"""Studio voice and video pages: CSP-clean pages, forms, preview through the job, video progress per stage."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from ainfluencer.db.models import Character, User
from studio_av.conftest import music_wav


def csrf(client: TestClient) -> str:
    if "ainf_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["ainf_csrf"]


def assert_csp_clean(html: str) -> None:
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="/static/' in tag, tag


def query(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return parse_qs(urlsplit(response.headers["location"]).query)


@pytest.fixture
def web(client: TestClient, owner: User, login) -> TestClient:  # type: ignore[no-untyped-def]
    login(client)
    return client


def test_studio_page_links_voice_and_video(web: TestClient, character: Character) -> None:
    page = web.get(f"/studio/{character.id}").text
    assert_csp_clean(page)
    assert f'href="/studio/{character.id}/voice"' in page and f'href="/studio/{character.id}/video"' in page
    assert "Generate candidate faces" in page and "127.0.0.1:7860" in page


def test_candidate_faces_without_a_backend_say_what_to_configure(web: TestClient, character: Character) -> None:
    r = web.post(f"/studio/{character.id}/generate", data={"csrf_token": csrf(web), "purpose": "faces",
                                                           "size": "768x768", "count": "4"}, follow_redirects=False)
    assert r.status_code == 303
    error = query(r)["error"][0]
    assert "Image backends" in error and "Automatic1111" in error and "ainfluencer[diffusers]" in error
    assert web.get("/api/v1/jobs").json()["count"] == 0
    # once a backend is configured the same action queues the image job with the portrait brief
    web.post("/studio/image-backends", data={"csrf_token": csrf(web), "enabled_automatic1111": "1",
                                             "position_automatic1111": "1",
                                             "automatic1111_base_url": "http://127.0.0.1:9"})
    r = web.post(f"/studio/{character.id}/generate", data={"csrf_token": csrf(web), "purpose": "faces",
                                                           "size": "768x768", "count": "4"}, follow_redirects=False)
    job = web.get(f"/api/v1/jobs/{query(r)['job'][0]}").json()
    assert job["kind"] == "studio.generate_images" and job["status"] == "queued"


def test_voice_page_save_and_preview(web: TestClient, runtime, character: Character, run_jobs) -> None:  # type: ignore[no-untyped-def]
    page = web.get(f"/studio/{character.id}/voice").text
    assert_csp_clean(page)
    assert 'src="/static/studio_av.js' in page and 'href="/static/studio_av.css' in page
    assert "Piper (local)" in page and "unavailable" in page and "ElevenLabs needs an API key" in page
    token = csrf(web)
    r = web.post(f"/studio/{character.id}/voice", data={"csrf_token": token, "engine": "piper", "speed": "1.2",
                                                        "style": "0.5", "seed": "4"}, follow_redirects=False)
    assert query(r)["done"] == ["voice"]
    assert web.get(f"/api/v1/studio/characters/{character.id}/voice").json()["speed"] == 1.2
    r = web.post(f"/studio/{character.id}/voice", data={"csrf_token": token, "engine": "piper", "pitch": "2"},
                 follow_redirects=False)
    assert "cannot change pitch" in query(r)["error"][0]
    r = web.post(f"/studio/{character.id}/voice", data={"csrf_token": token, "engine": "elevenlabs"},
                 follow_redirects=False)
    assert query(r)["done"] == ["voice"]
    page = web.get(f"/studio/{character.id}/voice").text
    assert 'id="engine-notice"' in page and "ElevenLabs needs an API key" in page
    r = web.post(f"/studio/{character.id}/voice/preview", data={"csrf_token": token, "engine": "elevenlabs"},
                 follow_redirects=False)
    assert "cannot run here" in query(r)["error"][0]

    r = web.post(f"/studio/{character.id}/voice/preview", data={"csrf_token": token, "engine": "piper",
                                                                "speed": "1.1", "text": "Testing my voice."},
                 follow_redirects=False)
    job_id = query(r)["job"][0]
    fragment = web.get(f"/studio/{character.id}/voice/jobs/{job_id}").text
    assert 'hx-trigger="every 1s"' in fragment and "<audio" not in fragment
    run_jobs()
    fragment = web.get(f"/studio/{character.id}/voice/jobs/{job_id}").text
    assert "hx-trigger" not in fragment
    match = re.search(r'<audio controls preload="auto" src="/api/v1/assets/(\d+)/file"', fragment)
    assert match, fragment
    audio = web.get(f"/api/v1/assets/{match.group(1)}/file")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    page = web.get(f"/studio/{character.id}/voice?job={job_id}").text
    assert_csp_clean(page)
    assert "Testing my voice." in page and "speed 1.1" in page


def test_owner_stores_the_elevenlabs_key(web: TestClient, character: Character) -> None:
    r = web.post("/studio/voice-engines", data={"csrf_token": csrf(web), "elevenlabs_api_key": "xi-secret-123",
                                                "back": f"/studio/{character.id}/voice"}, follow_redirects=False)
    assert query(r)["done"] == ["engines"]
    engines = {e["name"]: e for e in web.get("/api/v1/studio/voice-engines").json()["data"]}
    assert engines["elevenlabs"]["available"] and engines["elevenlabs"]["has_api_key"]
    assert "xi-secret-123" not in web.get(f"/studio/{character.id}/voice").text
    r = web.post("/studio/voice-engines", data={"csrf_token": csrf(web), "elevenlabs_base_url": "ftp://x"},
                 follow_redirects=False)
    assert "must start with http" in query(r)["error"][0]


def test_video_page_compose_and_follow_the_stages(web: TestClient, runtime, character: Character,  # type: ignore[no-untyped-def]
                                                  add_image, run_jobs) -> None:
    images = [add_image(character, seed, size=(360, 640)) for seed in range(2)]
    r = web.post("/api/v1/assets", files={"file": ("music.wav", music_wav(), "audio/wav")},
                 data={"character_id": str(character.id), "origin": "created"}, headers={"X-CSRF-Token": csrf(web)})
    assert r.status_code == 201, r.text
    music_id = r.json()["id"]
    page = web.get(f"/studio/{character.id}/video").text
    assert_csp_clean(page)
    for image in images:
        assert f'name="image_ids" value="{image}" checked' in page
        assert f'src="/api/v1/assets/{image}/file"' in page
    assert f'<option value="{music_id}">' in page and 'value="youtube"' in page and 'value="tiktok"' in page
    token = csrf(web)
    r = web.post(f"/studio/{character.id}/video", data={"csrf_token": token, "script": "Words. " * 400,
                                                        "preset": "shorts"}, follow_redirects=False)
    assert "allows at most 60 s" in query(r)["error"][0]
    r = web.post(f"/studio/{character.id}/video",
                 data={"csrf_token": token, "script": "Hello from the studio.\n\nBye for now!", "preset": "tiktok",
                       "image_ids": [str(i) for i in images], "music_id": str(music_id), "captions": "1"},
                 follow_redirects=False)
    assert r.status_code == 303, r.text
    job_id = query(r)["job"][0]
    page = web.get(f"/studio/{character.id}/video?job={job_id}").text
    assert_csp_clean(page)
    assert 'data-stage="narration" data-state="pending"' in page and 'hx-trigger="every 1s"' in page
    # the form keeps the script and settings of what was just queued
    assert ">Hello from the studio.\n\nBye for now!</textarea>" in page and 'value="tiktok" data-max' in page
    assert re.search(r'<option value="tiktok"[^>]*selected', page) and f'<option value="{music_id}" selected' in page
    run_jobs()
    fragment = web.get(f"/studio/{character.id}/video/jobs/{job_id}").text
    assert "hx-trigger" not in fragment
    assert fragment.count('data-state="done"') == 7
    match = re.search(r'href="/vault/assets/(\d+)">Open the video', fragment)
    assert match, fragment
    asset_page = web.get(f"/vault/assets/{match.group(1)}").text
    assert "<video" in asset_page
    assert "Narration #" in fragment
    assert f'class="av-player" controls preload="metadata" playsinline src="/api/v1/assets/{match.group(1)}/file"' \
        in fragment
    # edit and render again: a finished video's script and settings fill the form
    edit = web.get(f"/studio/{character.id}/video?edit={match.group(1)}").text
    assert_csp_clean(edit)
    assert ">Hello from the studio.\n\nBye for now!</textarea>" in edit
    assert f'video <a href="/vault/assets/{match.group(1)}">' in edit
    assert re.search(r'<option value="tiktok"[^>]*selected', edit)
