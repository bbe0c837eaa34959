"""REST API of studio voice and video: voice settings, engines, presets, clip and video jobs (202), 4xx errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from ainfluencer.db.models import Character, User


@pytest.fixture
def api(client: TestClient, owner: User, make_token: Callable[..., str]) -> TestClient:
    client.headers["Authorization"] = f"Bearer {make_token(owner)}"
    return client


def test_voice_settings_get_put(api: TestClient, character: Character) -> None:
    url = f"/api/v1/studio/characters/{character.id}/voice"
    assert api.get(url).json() == {"character_id": character.id, "engine": "piper", "speaker": None, "speed": 1.0,
                                   "pitch": 0.0, "style": None, "seed": 0,
                                   "label": "piper · default voice · speed 1"}
    r = api.put(url, json={"speed": 0.9, "style": 0.3, "seed": 11})
    assert r.status_code == 200 and r.json()["speed"] == 0.9 and r.json()["seed"] == 11
    assert api.get(url).json()["style"] == 0.3
    r = api.put(url, json={"pitch": 2})
    assert r.status_code == 422 and "cannot change pitch" in r.json()["error"]["message"]
    r = api.put(url, json={"engine": "festival"})
    assert r.status_code == 422 and "unknown voice backend" in r.json()["error"]["message"]
    r = api.put(url, json={"speed": 0})
    assert r.status_code == 422
    r = api.put(url, json={"volume": 3})
    assert r.status_code == 422
    assert api.get("/api/v1/studio/characters/99999/voice").status_code == 404


def test_engines_and_presets(api: TestClient) -> None:
    engines = {e["name"]: e for e in api.get("/api/v1/studio/voice-engines").json()["data"]}
    assert set(engines) >= {"piper", "espeak", "elevenlabs", "xtts"}
    assert engines["piper"]["available"] and engines["piper"]["deterministic"] and engines["piper"]["speakers"]
    assert not engines["elevenlabs"]["available"] and "API key" in engines["elevenlabs"]["fix"]
    presets = {p["name"]: p for p in api.get("/api/v1/studio/video-presets").json()["data"]}
    assert (presets["shorts"]["width"], presets["shorts"]["height"], presets["shorts"]["fps"]) == (1080, 1920, 30)
    assert (presets["youtube"]["width"], presets["youtube"]["height"]) == (1920, 1080)
    assert presets["shorts"]["max_duration_s"] == 60 and presets["youtube"]["max_duration_s"] == 3600


def test_voice_clip_and_video_return_the_job(api: TestClient, character: Character,
                                             add_image: Callable[..., int], run_jobs) -> None:  # type: ignore[no-untyped-def]
    r = api.post(f"/api/v1/studio/characters/{character.id}/voice-clips", json={"text": "Hello from the API."})
    assert r.status_code == 202 and r.json()["kind"] == "studio.voice" and r.json()["status"] == "queued"
    clip_job = r.json()["id"]
    r = api.post(f"/api/v1/studio/characters/{character.id}/voice-clips",
                 json={"text": "Hi", "voice": {"engine": "elevenlabs"}})
    assert r.status_code == 503 and "API key" in r.json()["error"]["message"]
    r = api.post(f"/api/v1/studio/characters/{character.id}/voice-clips", json={"text": ""})
    assert r.status_code == 422 and "Write the text" in r.json()["error"]["message"]

    image = add_image(character, 5)
    r = api.post(f"/api/v1/studio/characters/{character.id}/videos",
                 json={"script": "One line.\n\nTwo lines.", "preset": "reels", "image_ids": [image],
                       "target_duration_s": 12})
    assert r.status_code == 202 and r.json()["kind"] == "studio.video"
    r = api.post(f"/api/v1/studio/characters/{character.id}/videos",
                 json={"script": "Long words here. " * 200, "preset": "shorts", "image_ids": [image]})
    assert r.status_code == 422 and "allows at most 60 s" in r.json()["error"]["message"]
    r = api.post(f"/api/v1/studio/characters/{character.id}/videos",
                 json={"script": "Hi.", "preset": "imax", "image_ids": [image]})
    assert r.status_code == 422 and "Unknown video preset" in r.json()["error"]["message"]
    r = api.post(f"/api/v1/studio/characters/{character.id}/videos", json={"preset": "reels"})
    assert r.status_code == 422

    run_jobs()
    job = api.get(f"/api/v1/jobs/{clip_job}").json()
    assert job["status"] == "succeeded", job["last_error"]
    asset = api.get(f"/api/v1/assets/{job['result']['asset_id']}").json()
    assert asset["kind"] == "audio" and asset["params"]["voice"]["text"] == "Hello from the API."


def test_openapi_documents_the_routes(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/studio/voice-engines", "/api/v1/studio/video-presets",
                 "/api/v1/studio/characters/{character_id}/voice",
                 "/api/v1/studio/characters/{character_id}/voice-clips",
                 "/api/v1/studio/characters/{character_id}/videos"):
        assert path in paths, path
