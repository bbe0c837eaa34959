"""Per-character voice settings and voice-clip jobs: validation, determinism, speed, vault provenance."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from ainfluencer.db.models import Character, Job, JobStatus, User
from ainfluencer.db.models_media import Asset, AssetKind, CharacterMediaSettings
from ainfluencer.errors import InvalidInput, NotFound
from ainfluencer.runtime import Runtime
from ainfluencer.services import studio_av, vault

TEXT = "Hello there. I am a virtual character, and this is my voice."


def _clip(runtime: Runtime, owner: User, character: Character, run_jobs, text: str = TEXT,  # type: ignore[no-untyped-def]
          **voice: object) -> Asset:
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        assert user is not None
        job = studio_av.request_voice_clip(s, user=user, runtime=runtime, character_id=character.id, text=text,
                                           voice=dict(voice) or None)
        job_id = job.id
    run_jobs()
    with runtime.db.session() as s:
        row = s.get(Job, job_id)
        assert row is not None and row.status == JobStatus.succeeded, row.last_error if row else None
        asset = s.get(Asset, row.result["asset_id"])
        assert asset is not None
        s.expunge(asset)
        return asset


def test_defaults_then_saved_settings_round_trip(runtime: Runtime, owner: User, character: Character) -> None:
    with runtime.db.session() as s:
        c = s.get(Character, character.id)
        assert c is not None
        assert studio_av.voice_config(s, c) == studio_av.VoiceConfig()
        user = s.get(User, owner.id)
        assert user is not None
        saved = studio_av.update_voice(s, user=user, runtime=runtime, character=c,
                                       values={"speed": "1.25", "style": 0.4, "seed": 7})
    with runtime.db.session() as s:
        row = s.get(CharacterMediaSettings, character.id)
        assert row is not None
        assert row.voice == {"engine": "piper", "speaker": None, "speed": 1.25, "pitch": 0.0, "style": 0.4, "seed": 7}
        c = s.get(Character, character.id)
        assert c is not None
        assert studio_av.voice_config(s, c) == saved


@pytest.mark.parametrize(("values", "field", "words"), [
    ({"engine": "nope"}, "voice_backend", "unknown voice backend"),
    ({"speed": 9}, "speed", "outside"),
    ({"speed": "fast"}, "speed", "must be a number"),
    ({"pitch": 3}, "pitch", "cannot change pitch"),
    ({"style": 1.5}, "style", "outside 0.0-1.0"),
    ({"seed": -1}, "seed", "whole number"),
    ({"speaker": "nobody-here"}, "speaker", "has no voice"),
])
def test_settings_the_engine_cannot_honour_are_refused(
    runtime: Runtime, owner: User, character: Character, values: dict[str, object], field: str, words: str
) -> None:
    with runtime.db.session() as s:
        c = s.get(Character, character.id)
        user = s.get(User, owner.id)
        assert c is not None and user is not None
        with pytest.raises(InvalidInput) as info:
            studio_av.update_voice(s, user=user, runtime=runtime, character=c, values=values)
        assert info.value.field == field and words in info.value.message


def test_voice_clip_job_stores_audio_with_voice_provenance(runtime: Runtime, owner: User, character: Character,
                                                          run_jobs) -> None:  # type: ignore[no-untyped-def]
    asset = _clip(runtime, owner, character, run_jobs)
    assert asset.kind == AssetKind.audio and asset.mime == "audio/wav"
    assert asset.character_id == character.id and asset.prompt == TEXT and asset.backend == "piper"
    voice = asset.params["voice"]
    assert voice == {"engine": "piper", "speaker": None, "speed": 1.0, "pitch": 0.0, "style": None, "seed": 0,
                     "text": TEXT}
    assert asset.provenance["synthetic_voice"]["engine"] == "piper"
    assert "voice" in asset.tag_names and asset.folder == "voice"
    assert 2.0 < (asset.duration_s or 0) < 8.0
    path = vault.file_path(runtime.settings, asset)
    with wave.open(str(path)) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(asset.duration_s, abs=0.01)


def test_same_settings_same_voice_and_speed_changes_duration(runtime: Runtime, owner: User, character: Character,
                                                             run_jobs) -> None:  # type: ignore[no-untyped-def]
    first = _clip(runtime, owner, character, run_jobs, style=0.6, seed=3)
    second = _clip(runtime, owner, character, run_jobs, style=0.6, seed=3)
    # byte-identical audio: the vault recognises the second clip as the same asset
    assert second.id == first.id and second.sha256 == first.sha256
    with runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Asset).where(Asset.kind == AssetKind.audio)) == 1
    faster = _clip(runtime, owner, character, run_jobs, style=0.6, seed=3, speed=1.5)
    assert faster.id != first.id
    assert faster.duration_s is not None and first.duration_s is not None
    assert faster.duration_s == pytest.approx(first.duration_s / 1.5, rel=0.15)
    a = np.frombuffer(Path(vault.file_path(runtime.settings, first)).read_bytes()[44:], dtype=np.int16)
    assert np.abs(a).max() > 1000  # speech, not silence


def test_clip_requests_refused_before_queueing(runtime: Runtime, owner: User, character: Character,
                                               make_user) -> None:  # type: ignore[no-untyped-def]
    other = make_user("other@example.com")
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        assert user is not None
        with pytest.raises(InvalidInput, match="Write the text"):
            studio_av.request_voice_clip(s, user=user, runtime=runtime, character_id=character.id, text="  ")
        with pytest.raises(InvalidInput, match="at most 5000"):
            studio_av.request_voice_clip(s, user=user, runtime=runtime, character_id=character.id, text="a" * 5001)
        with pytest.raises(studio_av.VoiceEngineUnavailable, match="API key"):
            studio_av.request_voice_clip(s, user=user, runtime=runtime, character_id=character.id, text="hi",
                                         voice={"engine": "elevenlabs"})
        stranger = s.get(User, other.id)
        assert stranger is not None
        with pytest.raises(NotFound):
            studio_av.request_voice_clip(s, user=stranger, runtime=runtime, character_id=character.id, text="hi")
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_preview_uses_a_sample_sentence_and_is_a_draft(runtime: Runtime, owner: User, character: Character,
                                                      run_jobs) -> None:  # type: ignore[no-untyped-def]
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        assert user is not None
        job = studio_av.request_voice_clip(s, user=user, runtime=runtime, character_id=character.id, text="",
                                           preview=True)
        assert "Nova Vale" in job.payload["text"]
    run_jobs()
    with runtime.db.session() as s:
        asset = s.scalars(select(Asset).where(Asset.kind == AssetKind.audio)).one()
        assert asset.review_state.value == "draft" and "voice-preview" in asset.tag_names


def test_engine_statuses_name_the_fix(runtime: Runtime) -> None:
    with runtime.db.session() as s:
        rows = {r.name: r for r in studio_av.engine_statuses(s, runtime)}
    assert rows["piper"].available and rows["piper"].speakers
    assert not rows["elevenlabs"].available and "API key" in rows["elevenlabs"].fix
    assert rows["espeak"].supports_pitch and not rows["piper"].supports_pitch
