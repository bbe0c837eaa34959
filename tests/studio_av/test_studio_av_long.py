"""The 5-minute long-form video through the real job (slow: about 3–5 minutes of ffmpeg on two cores).

Runs once, in the SQLite pass: the database only holds rows here, and the 30-second test already covers
the job on PostgreSQL (marked ``nodb`` so the PostgreSQL pass does not render it a second time).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ainfluencer.db.models import Character, Job, JobStatus, User
from ainfluencer.db.models_media import Asset, AssetKind
from ainfluencer.media.video import probe
from ainfluencer.runtime import Runtime
from ainfluencer.services import studio_av, vault

pytestmark = [pytest.mark.slow, pytest.mark.nodb]

SENTENCES = ("Today we walk through the harbour market, taste the fresh bread, and talk about planning a calm week "
             "with small habits that actually stick. ")


@pytest.mark.timeout(1500)
def test_five_minute_long_form_video_through_the_job(runtime: Runtime, owner: User, character: Character,
                                                      add_image: Callable[..., int], add_music: Callable[..., int],
                                                      run_jobs: Callable[[], list[Job]]) -> None:
    images = [add_image(character, seed, size=(1280, 720)) for seed in range(8)]
    music = add_music(character)
    script = "\n\n".join(SENTENCES * 2 for _ in range(12))  # about three minutes of speech, paced to five
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        assert user is not None
        job = studio_av.request_video(s, user=user, runtime=runtime, req=studio_av.VideoRequest(
            character_id=character.id, script=script, preset="youtube", image_ids=images, music_id=music,
            target_duration_s=300.0, title="Five minutes at the harbour"))
    run_jobs()
    with runtime.db.session() as s:
        row = s.get(Job, job.id)
        assert row is not None and row.status == JobStatus.succeeded, row.last_error if row else None
        video = s.get(Asset, row.result["asset_id"])
        assert video is not None and video.kind == AssetKind.video and video.params["preset"] == "youtube"
        path = vault.file_path(runtime.settings, video)
    info = probe(path)
    assert info.duration_s == pytest.approx(300.0, abs=0.2)
    assert (info.width, info.height) == (1920, 1080)
    assert info.fps == 30
    assert info.has_audio and info.audio_codec == "aac" and info.video_codec == "h264" and info.faststart
