"""Video jobs: the 30-second short end to end, per-stage progress, limits refused before queueing, long form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from ainfluencer.db.models import Character, Job, JobStatus, User
from ainfluencer.db.models_media import Asset, AssetKind, ReviewState
from ainfluencer.errors import AppError, InvalidInput, NotFound
from ainfluencer.jobs.registry import JobContext
from ainfluencer.media.video import probe
from ainfluencer.runtime import Runtime
from ainfluencer.services import studio_av, vault
from studio_av.conftest import SCRIPT_30S


def _request(runtime: Runtime, owner: User, **kw: Any) -> Job:
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        assert user is not None
        return studio_av.request_video(s, user=user, runtime=runtime, req=studio_av.VideoRequest(**kw))


def _no_jobs(runtime: Runtime) -> bool:
    with runtime.db.session() as s:
        return s.scalar(select(func.count()).select_from(Job)) == 0


def test_short30_end_to_end_through_the_job(runtime: Runtime, owner: User, character: Character,
                                            add_image: Callable[..., int], add_music: Callable[..., int],
                                            run_jobs, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    images = [add_image(character, seed) for seed in range(4)]
    music = add_music(character)
    messages: list[tuple[int, str]] = []
    original = JobContext.progress

    def spy(self: JobContext, percent: int, message: str = "") -> None:
        messages.append((percent, message))
        original(self, percent, message)

    monkeypatch.setattr(JobContext, "progress", spy)
    job = _request(runtime, owner, character_id=character.id, script=SCRIPT_30S, preset="shorts",
                   image_ids=images, music_id=music, target_duration_s=30.0, title="Studio tour")
    assert [sc["image_id"] for sc in job.payload["scenes"]] == images
    run_jobs()
    with runtime.db.session() as s:
        row = s.get(Job, job.id)
        assert row is not None and row.status == JobStatus.succeeded, row.last_error if row else None
        result = dict(row.result)
        video = s.get(Asset, result["asset_id"])
        narration = s.get(Asset, result["narration_asset_id"])
        assert video is not None and narration is not None
        assert video.kind == AssetKind.video and video.mime == "video/mp4"
        assert video.character_id == character.id and video.review_state == ReviewState.in_review
        assert video.params["preset"] == "shorts" and video.params["image_asset_ids"] == images
        assert video.params["music_asset_id"] == music and video.params["narration_asset_id"] == narration.id
        assert video.params["voice"]["engine"] == "piper" and video.params["srt"].startswith("1\n")
        assert video.provenance["c2pa"]["state"] in ("unsigned", "signed")
        assert narration.kind == AssetKind.audio and "narration" in narration.tag_names
        assert narration.duration_s == pytest.approx(30.0, abs=0.2)
        path = vault.file_path(runtime.settings, video)
    info = probe(path)
    assert info.duration_s == pytest.approx(30.0, abs=0.2)
    assert (info.width, info.height) == (1080, 1920)
    assert info.fps == 30
    assert info.has_audio and info.audio_codec == "aac" and info.video_codec == "h264" and info.faststart
    # per-stage progress, in order, each stage reaching 100 %, overall percent never going back
    stages = [m.split(" ", 1)[0] for _, m in messages if m and m.split(" ", 1)[0] in studio_av.VIDEO_STAGES]
    order = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    assert order == list(studio_av.VIDEO_STAGES)
    for stage in studio_av.VIDEO_STAGES:
        assert any(m.startswith(f"{stage} 100%") for _, m in messages), stage
    percents = [p for p, _ in messages]
    assert percents == sorted(percents) and percents[-1] == 100
    assert len([m for _, m in messages if m.startswith("encode")]) > 3


def test_video_with_c2pa_signing_configured(runtime: Runtime, owner: User, character: Character,
                                            add_image: Callable[..., int], run_jobs) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("c2pa", reason="C2PA needs ainfluencer[media]")
    from ainfluencer.media.provenance.c2pa_sign import init_local_ca
    from ainfluencer.services.vault import provenance_dir

    init_local_ca(provenance_dir(runtime.settings))
    images = [add_image(character, seed, size=(360, 640)) for seed in range(2)]
    job = _request(runtime, owner, character_id=character.id, script="One short line.\n\nAnd a second one.",
                   preset="short", image_ids=images, captions=False)
    run_jobs()
    with runtime.db.session() as s:
        row = s.get(Job, job.id)
        assert row is not None and row.status == JobStatus.succeeded, row.last_error if row else None
        video = s.get(Asset, row.result["asset_id"])
        assert video is not None
        assert video.provenance["c2pa"]["state"] == "signed" and video.provenance["c2pa"]["verified"] is True
        assert vault.provenance_verified(video)


def test_default_images_are_the_latest_approved(runtime: Runtime, owner: User, character: Character,
                                                add_image: Callable[..., int]) -> None:
    approved = [add_image(character, seed) for seed in range(3)]
    add_image(character, 10, state=ReviewState.in_review)
    job = _request(runtime, owner, character_id=character.id, script="One.\n\nTwo.\n\nThree.", preset="reels")
    assert sorted({sc["image_id"] for sc in job.payload["scenes"]}) == approved
    assert job.payload["voice"]["engine"] == "piper" and job.kind == "studio.video"


@pytest.mark.parametrize(("kw", "error", "words"), [
    ({"script": "  "}, InvalidInput, "Write the script"),
    ({"preset": "cinema"}, InvalidInput, "Unknown video preset"),
    ({"script": "Words and more words. " * 80}, InvalidInput, "allows at most 60 s"),
    ({"preset": "youtube", "script": "Long text here. " * 5000}, InvalidInput, "at most 20000"),
    ({"target_duration_s": 75.0}, InvalidInput, "allows at most 60 s"),
    ({"target_duration_s": 2.0, "script": "A sentence that takes more than two seconds to say, surely."},
     InvalidInput, "takes at least"),
    ({"preset": "youtube", "target_duration_s": 4000.0}, InvalidInput, "allows at most 3600 s"),
])
def test_limits_refused_before_queueing(runtime: Runtime, owner: User, character: Character,
                                        add_image: Callable[..., int], kw: dict[str, Any],
                                        error: type[AppError], words: str) -> None:
    add_image(character, 1)
    args = {"character_id": character.id, "script": "Hello there.", "preset": "shorts", **kw}
    with pytest.raises(error, match=words):
        _request(runtime, owner, **args)
    assert _no_jobs(runtime)


def test_images_and_music_must_fit(runtime: Runtime, owner: User, character: Character, make_user,
                                   add_image: Callable[..., int], add_music: Callable[..., int]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="no approved images"):
        _request(runtime, owner, character_id=character.id, script="Hi.")
    mine = add_image(character, 1)
    rejected = add_image(character, 2, state=ReviewState.rejected)
    with runtime.db.session() as s:
        other_char = Character(user_id=owner.id, name="Other", handle="other.one")
        s.add(other_char)
        s.flush()
        s.expunge(other_char)
    theirs = add_image(other_char, 3)
    with pytest.raises(InvalidInput, match="another character"):
        _request(runtime, owner, character_id=character.id, script="Hi.", image_ids=[theirs])
    with pytest.raises(InvalidInput, match="rejected"):
        _request(runtime, owner, character_id=character.id, script="Hi.", image_ids=[rejected])
    with pytest.raises(InvalidInput, match="background music must be audio"):
        _request(runtime, owner, character_id=character.id, script="Hi.", image_ids=[mine], music_id=mine)
    with pytest.raises(NotFound):
        _request(runtime, owner, character_id=character.id, script="Hi.", image_ids=[99999])
    with pytest.raises(studio_av.VoiceEngineUnavailable, match="API key"):
        with runtime.db.session() as s:
            c = s.get(Character, character.id)
            user = s.get(User, owner.id)
            assert c is not None and user is not None
            c_settings = studio_av.voice_config(s, c)
            assert c_settings.engine == "piper"
            from ainfluencer.services.studio import media_settings

            media_settings(s, c).voice = {"engine": "elevenlabs"}
            s.flush()
            studio_av.request_video(s, user=user, runtime=runtime,
                                    req=studio_av.VideoRequest(character_id=character.id, script="Hi.",
                                                               image_ids=[mine]))
    stranger = make_user("stranger@example.com")
    with pytest.raises(NotFound):
        _request(runtime, stranger, character_id=character.id, script="Hi.", image_ids=[mine])
    assert _no_jobs(runtime)


def test_five_minute_long_form_is_planned_and_accepted(runtime: Runtime, owner: User, character: Character,
                                                       add_image: Callable[..., int]) -> None:
    images = [add_image(character, seed, size=(1280, 720)) for seed in range(10)]
    script = "\n\n".join(f"This is part {i + 1} of a longer video about the studio." for i in range(10))
    job = _request(runtime, owner, character_id=character.id, script=script, preset="youtube", image_ids=images,
                   target_duration_s=300.0, music_id=None)
    assert len(job.payload["scenes"]) == 10
    # planning the timeline with realistic narration lengths: exactly 300 s of whole frames, 1920×1080
    timeline = studio_av.plan_video(job.payload, [3.4] * 10)
    assert (timeline.width, timeline.height, timeline.fps) == (1920, 1080, 30)
    assert timeline.total_frames == 9000 and timeline.duration_s == 300.0
    assert all(ts.frames >= (0.25 + 3.4 + 0.35) * 30 for ts in timeline.scenes)
    # the same script is refused as a 60-second short
    with pytest.raises(InvalidInput, match="allows at most 60 s"):
        _request(runtime, owner, character_id=character.id, script=script, preset="shorts", image_ids=images,
                 target_duration_s=300.0)


def test_split_script_spreads_units_over_scenes() -> None:
    paragraphs = "First part.\n\nSecond part.\n\nThird part."
    assert studio_av.split_script(paragraphs, 3) == ["First part.", "Second part.", "Third part."]
    sentences = "One. Two is longer. Three! Four? Five."
    scenes = studio_av.split_script(sentences, 2)
    assert len(scenes) == 2 and " ".join(scenes) == sentences
    assert studio_av.split_script("Only one sentence", 4) == ["Only one sentence"]
    six = studio_av.split_script("A. B. C. D. E. F.", 4)
    assert len(six) == 4 and all(six) and " ".join(six) == "A. B. C. D. E. F."


def test_stage_states_read_from_the_progress_message() -> None:
    job = Job(kind="studio.video", status=JobStatus.running, progress=50, progress_message="encode 40%")
    states = {s.name: (s.state, s.percent) for s in studio_av.video_stages(job)}
    assert states["narration"] == ("done", 100) and states["mix"] == ("done", 100)
    assert states["encode"] == ("active", 40) and states["vault"] == ("pending", 0)
    job.status = JobStatus.failed
    assert {s.name: s.state for s in studio_av.video_stages(job)}["encode"] == "failed"
    job.status, job.progress_message = JobStatus.queued, ""
    assert {s.state for s in studio_av.video_stages(job)} == {"pending"}
    job.status = JobStatus.succeeded
    assert {s.state for s in studio_av.video_stages(job)} == {"done"}
    assert studio_av.stage_percent("narration", 0) == 0 and studio_av.stage_percent("vault", 100) == 100
    assert studio_av.stage_percent("encode", 50) < studio_av.stage_percent("provenance", 0)
