"""Studio voice and video pages: thin handlers over ``services.studio_av``.

Voice (``/studio/{id}/voice``): the character's engine and settings, which engines run here (and the
fix for those that do not), the owner's ElevenLabs key, and a preview that synthesizes a sample
through the ``studio.voice`` job and plays it. Video (``/studio/{id}/video``): script, images chosen
from the vault, music, preset and captions; submitting queues ``studio.video`` and the page follows
the job stage by stage (an htmx fragment polled every second; the job page works without JavaScript)
and links to the finished asset, which the vault previews with ``<video>``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ainfluencer.api.deps import SessionDep, client_ip, get_runtime
from ainfluencer.csrf import csrf_protect
from ainfluencer.db.models import Character, Job, JobStatus, User
from ainfluencer.db.models_media import Asset, AssetKind
from ainfluencer.errors import AppError, NotFound
from ainfluencer.services import characters as characters_svc
from ainfluencer.services import studio_av, vault
from ainfluencer.web.forms import Form
from ainfluencer.web.forms import form_text as _text
from ainfluencer.web.routes import CurrentUser, redirect, render
from ainfluencer.web.vault import _fail, _float, _helpers, _int, _with

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

DONE = {
    "voice": "Voice saved: every clip and video of this character speaks with it.",
    "engines": "Voice engines saved.",
}
VOICE_FIELDS = ("engine", "speaker", "speed", "pitch", "style", "seed")


def _notice(request: Request) -> str:
    return DONE.get(request.query_params.get("done", ""), "")


def _job_for(session: Session, user: User, character: Character, job_id: int, kind: str) -> Job:
    job = session.get(Job, job_id)
    if (job is None or job.kind != kind or int(job.payload.get("character_id") or 0) != character.id
            or (not user.is_owner and job.user_id != user.id)):
        raise NotFound(f"No {kind} job {job_id} for {character.name}.")
    return job


def _query_job(request: Request, session: Session, user: User, character: Character, kind: str) -> Job | None:
    raw = request.query_params.get("job", "")
    if not raw.isdigit():
        return None
    try:
        return _job_for(session, user, character, int(raw), kind)
    except NotFound:
        return None


def _result_asset(session: Session, job: Job, key: str = "asset_id") -> Asset | None:
    if job.status != JobStatus.succeeded or not job.result.get(key):
        return None
    return session.get(Asset, int(job.result[key]))


def _voice_form(form: Any) -> dict[str, Any]:
    return {
        "engine": _text(form, "engine") or studio_av.DEFAULT_ENGINE,
        "speaker": _text(form, "speaker").strip() or None,
        "speed": _float(_text(form, "speed"), "speed"),
        "pitch": _float(_text(form, "pitch"), "pitch") or 0.0,
        "style": _float(_text(form, "style"), "style"),
        "seed": _int(_text(form, "seed"), "seed") or 0,
    }


# ---- voice ------------------------------------------------------------------------------------------------------


def _voice_context(request: Request, session: Session, user: User, character: Character) -> dict[str, Any]:
    runtime = get_runtime(request)
    config = studio_av.voice_config(session, character, runtime)
    engines = studio_av.engine_statuses(session, runtime)
    current = next((e for e in engines if e.name == config.engine), None)
    job = _query_job(request, session, user, character, studio_av.VOICE_JOB)
    clips = vault.list_assets(session, user=user, filters=vault.AssetFilter(character_id=character.id,
                                                                              kind=AssetKind.audio), limit=8)
    return {
        "active": "studio", "character": character, "voice": config, "engines": engines, "current": current,
        "job": job, "clip": _result_asset(session, job) if job else None, "clips": clips.items,
        "sample": studio_av.sample_text(character), "options": studio_av.voice_backend_options(session),
        "notice": _notice(request), "error": request.query_params.get("error", ""), **_helpers(),
        "voices": studio_av.voice_choices(runtime, character), "pull_job": _pull_job(request, session, user),
        "languages": studio_av.character_languages(character),
    }


def _pull_job(request: Request, session: Session, user: User) -> Job | None:
    raw = request.query_params.get("pull", "")
    job = session.get(Job, int(raw)) if raw.isdigit() else None
    if job is None or job.kind != studio_av.VOICE_PULL_JOB or not user.is_owner:
        return None
    return job


@router.get("/studio/{character_id}/voice", response_class=HTMLResponse)
def read_studio_voice(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The character's voice: engine, speaker, speed, pitch/style, engine availability, and a preview."""
    character = characters_svc.get_character(session, character_id, user=user)
    return render(request, "studio_av/voice.html", _voice_context(request, session, user, character), user=user)


@router.post("/studio/{character_id}/voice")
def update_studio_voice(
    request: Request, character_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Save the character's voice."""
    back = f"/studio/{character_id}/voice"
    try:
        character = characters_svc.get_character(session, character_id, user=user)
        studio_av.update_voice(session, user=user, runtime=get_runtime(request), character=character,
                               values=_voice_form(form), ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="voice"))


@router.post("/studio/{character_id}/voice/preview")
def create_studio_voice_preview(
    request: Request, character_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Queue a sample spoken with the settings in the form (saved or not) and come back to play it."""
    back = f"/studio/{character_id}/voice"
    try:
        job = studio_av.request_voice_clip(
            session, user=user, runtime=get_runtime(request), character_id=character_id,
            text=_text(form, "text"), voice=_voice_form(form), preview=True, ip=client_ip(request),
        )
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, job=job.id) + "#preview")


@router.get("/studio/{character_id}/voice/jobs/{job_id}", response_class=HTMLResponse)
def read_studio_voice_job(
    request: Request, character_id: int, job_id: int, session: SessionDep, user: CurrentUser
) -> HTMLResponse:
    """The preview job's panel (htmx polls it while the job runs); plays the clip when it is done."""
    character = characters_svc.get_character(session, character_id, user=user)
    job = _job_for(session, user, character, job_id, studio_av.VOICE_JOB)
    ctx = {"character": character, "job": job, "clip": _result_asset(session, job)}
    return render(request, "studio_av/_voice_job.html", ctx, user=user)


@router.post("/studio/voice-engines")
def update_studio_voice_engines(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Owner: the ElevenLabs API key (stored encrypted) and optional base URL / default voice."""
    back = _text(form, "back") if _text(form, "back").startswith("/studio/") else "/studio"
    try:
        options = {"elevenlabs": {"base_url": _text(form, "elevenlabs_base_url"),
                                  "default_voice_id": _text(form, "elevenlabs_default_voice_id")}}
        keys = {"elevenlabs": _text(form, "elevenlabs_api_key")}
        studio_av.save_voice_backends(session, user=user, runtime=get_runtime(request), options=options,
                                      api_keys=keys, ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="engines") + "#engines")


@router.post("/studio/{character_id}/voice/pull")
def create_studio_voice_pull(
    request: Request, character_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Owner: download a catalogue voice in the background; the page shows the download's progress."""
    back = f"/studio/{character_id}/voice"
    try:
        characters_svc.get_character(session, character_id, user=user)
        job = studio_av.request_voice_pull(session, user=user, voice_id=_text(form, "voice_id"),
                                           ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, pull=job.id) + "#voices")


# ---- video ------------------------------------------------------------------------------------------------------


def _video_form(request: Request, session: Session, user: User, character: Character,
                job: Job | None) -> dict[str, Any]:
    """The compose form's values: the last request, or a finished video's script and settings (``?edit=<id>``)."""
    raw = request.query_params.get("edit", "")
    if raw.isdigit():
        try:
            asset = vault.get_asset(session, int(raw), user=user)
        except AppError:
            asset = None
        if asset is not None and asset.kind == AssetKind.video and asset.character_id == character.id:
            p = asset.params or {}
            return {"script": str(p.get("script") or asset.prompt or ""), "preset": p.get("preset") or "shorts",
                    "target_duration_s": p.get("target_duration_s"), "music_id": p.get("music_asset_id"),
                    "captions": bool(p.get("captions", True)), "title": str(p.get("title") or asset.caption or ""),
                    "image_ids": [int(i) for i in p.get("image_asset_ids") or []], "edit_of": asset.id}
    if job is not None:
        p = job.payload or {}
        return {"script": str(p.get("script") or ""), "preset": p.get("preset") or "shorts",
                "target_duration_s": p.get("target_duration_s"), "music_id": p.get("music_id"),
                "captions": bool(p.get("captions", True)), "title": str(p.get("title") or ""),
                "image_ids": list(dict.fromkeys(int(sc["image_id"]) for sc in p.get("scenes") or [])),
                "edit_of": None}
    return {}


def _video_context(request: Request, session: Session, user: User, character: Character) -> dict[str, Any]:
    images = studio_av.video_images(session, character)
    job = _query_job(request, session, user, character, studio_av.VIDEO_JOB)
    form = _video_form(request, session, user, character, job)
    default_ids = set(form.get("image_ids") or []) or {a.id for a in studio_av.latest_approved_images(session,
                                                                                                     character)}
    videos = vault.list_assets(session, user=user, filters=vault.AssetFilter(character_id=character.id,
                                                                               kind=AssetKind.video), limit=6)
    return {
        "active": "studio", "character": character, "images": images, "default_ids": default_ids,
        "music": studio_av.music_choices(session, user=user, character=character),
        "presets": list(studio_av.PLATFORM_PRESETS.values()), "voice": studio_av.voice_config(session, character),
        "job": job, **_video_job_context(session, job), "videos": videos.items, "form": form,
        "notice": _notice(request), "error": request.query_params.get("error", ""), **_helpers(),
    }


def _video_job_context(session: Session, job: Job | None) -> dict[str, Any]:
    if job is None:
        return {"stages": [], "video": None, "narration": None}
    return {"stages": studio_av.video_stages(job), "video": _result_asset(session, job),
            "narration": _result_asset(session, job, "narration_asset_id")}


@router.get("/studio/{character_id}/video", response_class=HTMLResponse)
def read_studio_video(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Compose a video: script, images from the vault, music, preset, captions; then follow the job."""
    character = characters_svc.get_character(session, character_id, user=user)
    return render(request, "studio_av/video.html", _video_context(request, session, user, character), user=user)


@router.post("/studio/{character_id}/video")
def create_studio_video(
    request: Request, character_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Queue the video after checking it against the preset's limits."""
    back = f"/studio/{character_id}/video"
    try:
        image_ids = []
        for raw in form.getlist("image_ids"):
            value = _int(raw if isinstance(raw, str) else "", "image_ids")
            if value is not None:
                image_ids.append(value)
        req = studio_av.VideoRequest(
            character_id=character_id, script=_text(form, "script"), preset=_text(form, "preset", "shorts"),
            image_ids=image_ids, music_id=_int(_text(form, "music_id"), "music_id"),
            captions=bool(_text(form, "captions")), title=_text(form, "title"),
            target_duration_s=_float(_text(form, "target_duration_s"), "target_duration_s"),
        )
        job = studio_av.request_video(session, user=user, runtime=get_runtime(request), req=req,
                                      ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, job=job.id) + "#progress")


@router.get("/studio/{character_id}/video/jobs/{job_id}", response_class=HTMLResponse)
def read_studio_video_job(
    request: Request, character_id: int, job_id: int, session: SessionDep, user: CurrentUser
) -> HTMLResponse:
    """The video job's per-stage progress (htmx polls it while the job runs) and, when done, the asset links."""
    character = characters_svc.get_character(session, character_id, user=user)
    job = _job_for(session, user, character, job_id, studio_av.VIDEO_JOB)
    ctx = {"character": character, "job": job, **_video_job_context(session, job), **_helpers()}
    return render(request, "studio_av/_video_job.html", ctx, user=user)
