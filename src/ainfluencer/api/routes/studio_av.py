"""Studio voice and video: per-character voice settings, voice engines, voice clips and composed videos."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.routes.jobs import job_public
from ainfluencer.api.schemas import JobPublic
from ainfluencer.api.schemas_studio_av import (
    LocalVoicePublic,
    LocalVoicesPublic,
    VideoCreate,
    VideoPresetPublic,
    VideoPresetsPublic,
    VoiceClipCreate,
    VoiceEnginePublic,
    VoiceEnginesPublic,
    VoicePublic,
    VoiceUpdate,
)
from ainfluencer.services import studio_av
from ainfluencer.services.characters import get_character

router = APIRouter(prefix="/studio", tags=["studio: voice and video"])


def voice_public(character_id: int, config: studio_av.VoiceConfig) -> VoicePublic:
    """Schema for a character's voice."""
    return VoicePublic(character_id=character_id, label=config.label, **config.to_dict())


@router.get("/voice-engines", response_model=VoiceEnginesPublic)
def read_voice_engines(principal: Reader, session: SessionDep, runtime: RuntimeDep) -> VoiceEnginesPublic:
    """Every voice engine with whether it runs on this installation (and if not, how to fix it) and its voices."""
    rows = studio_av.engine_statuses(session, runtime)
    return VoiceEnginesPublic(data=[VoiceEnginePublic(**vars(r)) for r in rows], count=len(rows))


@router.get("/video-presets", response_model=VideoPresetsPublic)
def read_video_presets(principal: Reader) -> VideoPresetsPublic:
    """Video formats: size, frame rate and the longest video each platform's limits allow."""
    out = []
    for choice in studio_av.PLATFORM_PRESETS.values():
        preset, _ = choice.resolve()
        out.append(VideoPresetPublic(name=choice.name, label=choice.label, width=preset.width, height=preset.height,
                                     fps=preset.fps, max_duration_s=choice.max_duration_s, platform=choice.platform,
                                     output_preset=choice.preset))
    return VideoPresetsPublic(data=out, count=len(out))


@router.get("/characters/{character_id}/voice", response_model=VoicePublic)
def read_voice(character_id: int, principal: Reader, session: SessionDep, runtime: RuntimeDep) -> VoicePublic:
    """A character's voice (until one is saved: Piper at speed 1.0 with the installed voice for its language)."""
    character = get_character(session, character_id, user=principal.user)
    return voice_public(character.id, studio_av.voice_config(session, character, runtime))


@router.get("/characters/{character_id}/voices", response_model=LocalVoicesPublic)
def read_local_voices(character_id: int, principal: Reader, session: SessionDep,
                      runtime: RuntimeDep) -> LocalVoicesPublic:
    """The local voice catalogue for this character: its languages first, whether each is installed here."""
    character = get_character(session, character_id, user=principal.user)
    rows = studio_av.voice_choices(runtime, character)
    return LocalVoicesPublic(data=[LocalVoicePublic(**vars(r)) for r in rows], count=len(rows))


@router.post("/voices/{voice_id}/pull", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def create_voice_pull(request: Request, voice_id: str, principal: Writer, session: SessionDep) -> JobPublic:
    """Owner: download a catalogue voice (job ``studio.voice_pull``, progress in bytes); 400 for an unknown id."""
    job = studio_av.request_voice_pull(session, user=principal.user, voice_id=voice_id, ip=client_ip(request))
    return job_public(job)


@router.put("/characters/{character_id}/voice", response_model=VoicePublic)
def update_voice(
    request: Request, character_id: int, body: VoiceUpdate, principal: Writer, session: SessionDep,
    runtime: RuntimeDep,
) -> VoicePublic:
    """Change a character's voice; settings the engine cannot honour (pitch on Piper, speed out of range) fail."""
    character = get_character(session, character_id, user=principal.user)
    config = studio_av.update_voice(session, user=principal.user, runtime=runtime, character=character,
                                    values=body.model_dump(exclude_unset=True), ip=client_ip(request))
    return voice_public(character.id, config)


@router.post("/characters/{character_id}/voice-clips", response_model=JobPublic,
             status_code=status.HTTP_202_ACCEPTED)
def create_voice_clip(
    request: Request, character_id: int, body: VoiceClipCreate, principal: Writer, session: SessionDep,
    runtime: RuntimeDep,
) -> JobPublic:
    """Queue a voice clip (job ``studio.voice``); its result names the new audio asset (``asset_id``)."""
    voice = body.voice.model_dump(exclude_unset=True) if body.voice is not None else None
    job = studio_av.request_voice_clip(session, user=principal.user, runtime=runtime, character_id=character_id,
                                       text=body.text, voice=voice, preview=body.preview, ip=client_ip(request))
    return job_public(job)


@router.post("/characters/{character_id}/videos", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def create_video(
    request: Request, character_id: int, body: VideoCreate, principal: Writer, session: SessionDep,
    runtime: RuntimeDep,
) -> JobPublic:
    """Queue a video (job ``studio.video``, progress per stage); refused up front when it cannot fit the preset.

    The job's progress message reads ``"<stage> <percent>%"`` (narration, scenes, captions, mix, encode,
    provenance, vault); its result names the video asset (``asset_id``) and its narration
    (``narration_asset_id``).
    """
    req = studio_av.VideoRequest(character_id=character_id, **body.model_dump())
    job = studio_av.request_video(session, user=principal.user, runtime=runtime, req=req, ip=client_ip(request))
    return job_public(job)
