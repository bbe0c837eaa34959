"""Local voices per character: catalogue by language, download through the job from a local file server,
the default voice picked from the persona's languages, the picker page and API."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ainfluencer.backends.voice.catalog import get_voice, voices_dir
from ainfluencer.backends.voice.piper import packaged_voice
from ainfluencer.db.models import Character, Job, JobStatus, User
from ainfluencer.db.models_media import Asset
from ainfluencer.errors import PermissionDenied
from ainfluencer.runtime import Runtime
from ainfluencer.services import studio_av

VOICE = "de_DE-thorsten-medium"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return


@pytest.fixture
def voice_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A 127.0.0.1 static server laid out like the catalogue, serving the packaged voice's files as ``VOICE``."""
    found = packaged_voice()
    assert found is not None
    root = tmp_path / "mirror"
    for path, _, _ in get_voice(VOICE).paths:
        dest = root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found[0] if path.endswith(".onnx") else found[1], dest)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("AINF_VOICES_BASE_URL", url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def german(runtime: Runtime, owner: User) -> Character:
    with runtime.db.session() as s:
        c = Character(user_id=owner.id, name="Lena Stern", handle="lena.stern", persona={"languages": ["de", "en"]})
        s.add(c)
        s.flush()
        return c


def test_pull_a_voice_and_it_becomes_the_default_for_the_language(
    runtime: Runtime, owner: User, german: Character, voice_mirror: str, run_jobs, make_user,  # type: ignore[no-untyped-def]
) -> None:
    stranger = make_user("member@example.com")
    with runtime.db.session() as s:
        c = s.get(Character, german.id)
        assert c is not None
        assert studio_av.voice_config(s, c, runtime).speaker is None  # only the packaged English voice so far
        choices = studio_av.voice_choices(runtime, c)
        assert choices[0].language.startswith("de") and choices[0].suggested
        assert {v.id for v in choices if v.installed} == {"en_US-joe-medium"}
        with pytest.raises(PermissionDenied):
            studio_av.request_voice_pull(s, user=stranger, voice_id=VOICE)
        user = s.get(User, owner.id)
        assert user is not None
        job_id = studio_av.request_voice_pull(s, user=user, voice_id=VOICE).id
    run_jobs()
    with runtime.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.succeeded, job.last_error if job else None
        assert job.progress == 100 and job.result["voice_id"] == VOICE
    assert (voices_dir(runtime.settings.resolved_data_dir) / VOICE / f"{VOICE}.onnx").is_file()
    with runtime.db.session() as s:
        c = s.get(Character, german.id)
        assert c is not None
        config = studio_av.voice_config(s, c, runtime)
        assert config.engine == "piper" and config.speaker == VOICE  # picked from the persona's first language
        user = s.get(User, owner.id)
        assert user is not None
        clip_job = studio_av.request_voice_clip(s, user=user, runtime=runtime, character_id=c.id, text="Hallo!").id
    run_jobs()
    with runtime.db.session() as s:
        job = s.get(Job, clip_job)
        assert job is not None and job.status == JobStatus.succeeded, job.last_error
        asset = s.get(Asset, job.result["asset_id"])
        assert asset is not None and asset.params["voice"]["speaker"] == VOICE


def test_voice_page_and_api_list_the_catalogue(client: TestClient, login, runtime: Runtime, owner: User,  # type: ignore[no-untyped-def]
                                               german: Character, voice_mirror: str, run_jobs) -> None:
    login(client)
    body = client.get(f"/api/v1/studio/characters/{german.id}/voices").json()
    assert body["count"] >= 12 and body["data"][0]["suggested"] and body["data"][0]["language"].startswith("de")
    headers = {"X-CSRF-Token": client.cookies["ainf_csrf"]}
    bad = client.post("/api/v1/studio/voices/xx_XX-nobody-low/pull", headers=headers)
    assert bad.status_code in (400, 422) and bad.json()["error"]["field"] == "voice"
    r = client.post(f"/api/v1/studio/voices/{VOICE}/pull", headers=headers)
    assert r.status_code == 202 and r.json()["kind"] == "studio.voice_pull"
    run_jobs()
    page = client.get(f"/studio/{german.id}/voice").text
    assert f'data-voice-row="{VOICE}" data-installed="1" class="row-selected"' in page
    assert "fits Lena Stern" in page and "ainfluencer models pull fr_FR-siwis-medium" in page
    # "Use" saves the voice; the API then reports it as the character's saved voice
    csrf = client.cookies["ainf_csrf"]
    r = client.post(f"/studio/{german.id}/voice", data={"csrf_token": csrf, "engine": "piper",
                                                        "speaker": "en_US-joe-medium", "speed": "1", "seed": "0"},
                    follow_redirects=False)
    assert r.status_code == 303 and "error" not in r.headers["location"]
    assert client.get(f"/api/v1/studio/characters/{german.id}/voice").json()["speaker"] == "en_US-joe-medium"
