"""The studio's voice and video: per-character voice settings, voice clips and composed videos.

Voice: each character has one voice (``CharacterMediaSettings.voice``): an engine from the voice
registry (Piper by default, espeak-ng, ElevenLabs, XTTS) and its settings (speaker, speed, pitch,
style, seed). The same settings on a deterministic engine give byte-identical audio, so the vault
recognises a repeated clip as the same asset. Engine options other than the character's settings
(the ElevenLabs API key and base URL) are the owner's: an ``app_settings`` row ``voice_backends`` and
``stored_secrets`` (owner_kind ``voice_backend``).

Jobs: ``studio.voice`` speaks a text with the character's voice (a snapshot of the settings taken
when it is queued) and stores the WAV in the vault as an audio asset whose parameters record engine,
voice, speed and text. ``studio.video`` composes a video with ``media.video.compose`` from a script,
the character's images (default: the latest approved ones), optional music and a platform preset,
reporting progress per stage (narration → scenes → captions → mix → encode → provenance → vault),
then stores the video (C2PA-signed when signing is configured) and its narration track in the vault.

Everything that can be refused is refused before the job is queued (unknown engine or preset, an
engine that cannot run here, a script that cannot fit the preset's duration, images that are not the
character's): the request gets a 4xx with a message a person can act on.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ainfluencer.db.models import AppSetting, Character, Job, JobStatus, User
from ainfluencer.db.models_media import Asset, AssetKind, AssetSource, CharacterMediaSettings, ReviewState
from ainfluencer.errors import AppError, InvalidInput, NotFound, PermissionDenied
from ainfluencer.jobs import queue
from ainfluencer.services import backend_settings, vault
from ainfluencer.services.auth import audit
from ainfluencer.services.characters import get_character

if TYPE_CHECKING:
    from ainfluencer.backends.voice.base import VoiceBackend, VoiceSettings
    from ainfluencer.jobs.registry import JobContext
    from ainfluencer.media.video.compose import Scene, Script
    from ainfluencer.media.video.presets import PlatformLimits, VideoPreset
    from ainfluencer.runtime import Runtime

log = logging.getLogger(__name__)

VOICE_JOB = "studio.voice"
VIDEO_JOB = "studio.video"
VOICE_BACKENDS_SETTING = "voice_backends"
VOICE_SECRET_KIND = "voice_backend"  # noqa: S105 - the stored_secrets owner kind, not a secret
DEFAULT_ENGINE = "piper"
MAX_CLIP_CHARS = 5000
MAX_SCRIPT_CHARS = 20_000
MAX_VIDEO_IMAGES = 60
DEFAULT_IMAGES = 6
MAX_SEED = 2**31 - 1
VIDEO_STAGES = ("narration", "scenes", "captions", "mix", "encode", "provenance", "vault")
# share of the overall progress bar each stage takes (encode dominates a render)
_STAGE_WEIGHTS = {"narration": 20, "scenes": 4, "captions": 2, "mix": 6, "encode": 58, "provenance": 5, "vault": 5}
_STAGE_LINE = re.compile(r"^(?P<stage>[a-z]+) (?P<pct>\d+)%")
_OPTION_KEYS = {"base_url": 500, "default_voice_id": 100, "model_id": 100}


class VoiceEngineUnavailable(AppError):
    """The chosen voice engine cannot run on this installation (the message says how to fix it)."""

    status_code = 503
    code = "voice_unavailable"


# ---- voice settings ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceConfig:
    """A character's voice: the engine and the settings it is spoken with."""

    engine: str = DEFAULT_ENGINE
    speaker: str | None = None
    speed: float = 1.0
    pitch: float = 0.0
    style: float | None = None
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> VoiceConfig:
        """The config stored in a row or payload ({} gives the defaults; unknown keys are ignored)."""
        data = dict(data or {})
        style = data.get("style")
        return cls(
            engine=str(data.get("engine") or DEFAULT_ENGINE),
            speaker=(str(data["speaker"]) if data.get("speaker") else None),
            speed=float(data["speed"]) if data.get("speed") is not None else 1.0,
            pitch=float(data.get("pitch") or 0.0),
            style=None if style is None else float(style),
            seed=int(data.get("seed") or 0),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored on the row and in job payloads."""
        return asdict(self)

    def settings(self) -> VoiceSettings:
        """The backend-level settings."""
        from ainfluencer.backends.voice.base import VoiceSettings

        return VoiceSettings(speaker=self.speaker, speed=self.speed, pitch=self.pitch, style=self.style,
                             seed=self.seed)

    @property
    def label(self) -> str:
        """A short description for pages and asset parameters."""
        parts = [self.engine, self.speaker or "default voice", f"speed {self.speed:g}"]
        if self.pitch:
            parts.append(f"pitch {self.pitch:+g}")
        if self.style is not None:
            parts.append(f"style {self.style:g}")
        return " · ".join(parts)


def voice_config(session: Session, character: Character, runtime: Runtime | None = None) -> VoiceConfig:
    """The character's saved voice; when none was saved, the installed local voice that fits its languages."""
    row = session.get(CharacterMediaSettings, character.id)
    if row is not None and row.voice:
        return VoiceConfig.from_dict(row.voice)
    return VoiceConfig(speaker=default_speaker(character, runtime))


def character_languages(character: Character) -> list[str]:
    """The persona's languages (BCP-47), first one first."""
    languages = (character.persona or {}).get("languages") if isinstance(character.persona, dict) else None
    return [str(x) for x in languages or []] or ["en"]


def default_speaker(character: Character, runtime: Runtime | None) -> str | None:
    """The installed Piper voice for the persona's first language that has one (None: the packaged voice)."""
    from ainfluencer.backends.voice.catalog import default_voice, installed_voices, voices_dir

    folder = voices_dir(runtime.settings.resolved_data_dir) if runtime is not None else None
    installed = installed_voices(folder)
    chosen = default_voice(character_languages(character), installed)
    packaged = next(iter(installed), None)
    return None if chosen is None or chosen == packaged else chosen


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number.", field=name) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{name} must be a finite number.", field=name)
    return number


def check_voice_config(
    session: Session, runtime: Runtime, *, engine: str, speaker: str | None = None, speed: Any = 1.0,
    pitch: Any = 0.0, style: Any = None, seed: Any = 0, check_speaker: bool = True,
) -> VoiceConfig:
    """A clean VoiceConfig, or InvalidInput naming what the engine cannot honour."""
    from ainfluencer.backends.voice.base import BackendError
    from ainfluencer.backends.voice.registry import backend_class

    name = (engine or DEFAULT_ENGINE).strip()
    cls = backend_class(name)
    seed_value = _number(seed if seed not in (None, "") else 0, "seed")
    if seed_value != int(seed_value) or not 0 <= seed_value <= MAX_SEED:
        raise InvalidInput(f"seed must be a whole number from 0 to {MAX_SEED}.", field="seed")
    config = VoiceConfig(
        engine=name,
        speaker=(" ".join(speaker.split())[:100] or None) if speaker else None,
        speed=_number(speed if speed not in (None, "") else 1.0, "speed"),
        pitch=_number(pitch if pitch not in (None, "") else 0.0, "pitch"),
        style=None if style in (None, "") else _number(style, "style"),
        seed=int(seed_value),
    )
    backend = build_voice_backend(session, runtime, name)
    try:
        backend.check("check", config.settings())
    except BackendError as exc:
        field_name = next((f for f in ("speed", "pitch", "style", "seed") if f in exc.message), "voice")
        raise InvalidInput(f"{cls.label}: {exc.message}", field=field_name) from None
    if check_speaker and config.speaker and backend.available()[0]:
        known = backend.speakers()
        base = config.speaker.split("+", 1)[0] if name == "espeak" else config.speaker
        if known and base not in known:
            shown = ", ".join(known[:12]) + (" …" if len(known) > 12 else "")
            raise InvalidInput(f"{cls.label} has no voice {config.speaker!r}; choose one of: {shown}",
                               field="speaker")
    return config


def update_voice(
    session: Session, *, user: User, runtime: Runtime, character: Character, values: dict[str, Any], ip: str = "",
) -> VoiceConfig:
    """Save the character's voice after checking it against the engine's capabilities."""
    current = voice_config(session, character, runtime)
    merged = {**current.to_dict(), **{k: v for k, v in values.items() if k in VoiceConfig.__dataclass_fields__}}
    if "engine" in values and values["engine"] != current.engine and "speaker" not in values:
        merged["speaker"] = None  # a Piper speaker means nothing to ElevenLabs
    config = check_voice_config(session, runtime, **merged)
    from ainfluencer.services.studio import media_settings

    row = media_settings(session, character)
    row.voice = config.to_dict()
    session.flush()
    audit(session, "studio.voice_settings", user_id=user.id, ip=ip, character_id=character.id, engine=config.engine)
    return config


# ---- voice engines ----------------------------------------------------------------------------------------------


def voice_backend_options(session: Session) -> dict[str, dict[str, Any]]:
    """The owner's options per engine (base URL, default voice); API keys are in stored_secrets."""
    row = session.get(AppSetting, VOICE_BACKENDS_SETTING)
    return {str(k): dict(v or {}) for k, v in dict(row.value if row is not None else {}).items()}


def save_voice_backends(
    session: Session, *, user: User, runtime: Runtime, options: dict[str, dict[str, Any]],
    api_keys: dict[str, str] | None = None, ip: str = "",
) -> dict[str, dict[str, Any]]:
    """Owner only: engine options (e.g. ElevenLabs base URL) and API keys (stored encrypted)."""
    from ainfluencer.backends.voice.registry import backend_class

    if not user.is_owner:
        raise PermissionDenied("Only the owner can configure voice engines.")
    clean: dict[str, dict[str, Any]] = voice_backend_options(session)
    for name, values in options.items():
        backend_class(name)
        clean[name] = dict(backend_settings.clean_options(name, values, _OPTION_KEYS))
    backend_settings.put_setting(session, key=VOICE_BACKENDS_SETTING, value=clean, user=user)
    backend_settings.put_api_keys(session, runtime, owner_kind=VOICE_SECRET_KIND, api_keys=api_keys,
                                  check=backend_class)
    session.flush()
    audit(session, "studio.voice_backends", user_id=user.id, ip=ip, engines=sorted(clean))
    return clean


def build_voice_backend(session: Session, runtime: Runtime, engine: str) -> VoiceBackend:
    """An instance of ``engine`` with the owner's options and API key."""
    import inspect as pyinspect

    from ainfluencer.backends.voice.registry import backend_class

    cls = backend_class(engine)
    options = dict(voice_backend_options(session).get(engine) or {})
    accepted = set(pyinspect.signature(cls.__init__).parameters)
    if "voices_dir" in accepted:
        from ainfluencer.backends.voice.catalog import voices_dir

        options["voices_dir"] = voices_dir(runtime.settings.resolved_data_dir)
    if "api_key" in accepted:
        key = runtime.secrets.get(session, owner_kind=VOICE_SECRET_KIND, owner_id=0, name=engine)
        if key is not None:
            options["api_key"] = key
    return cls(**{k: v for k, v in options.items() if k in accepted and v not in (None, "")})


@dataclass(frozen=True)
class EngineStatus:
    """What the voice page and the API show for one engine."""

    name: str
    label: str
    available: bool
    fix: str
    paid: bool
    local: bool
    deterministic: bool
    supports_pitch: bool
    supports_style: bool
    speed_min: float
    speed_max: float
    max_chars: int
    speakers: list[str] = field(default_factory=list)
    has_api_key: bool = False


def engine_statuses(session: Session, runtime: Runtime, *, with_speakers: bool = True) -> list[EngineStatus]:
    """Every registered voice engine, whether it runs here (and if not, the fix), and its voices."""
    from ainfluencer.backends.voice.registry import VOICE_BACKENDS

    out = []
    for name, cls in VOICE_BACKENDS.items():
        backend = build_voice_backend(session, runtime, name)
        ok, fix = backend.available()
        speakers: list[str] = []
        if ok and with_speakers and cls.local:
            try:
                speakers = backend.speakers()[:200]
            except Exception:  # listing voices is informational; the engine still works without it
                log.debug("listing %s voices failed", name, exc_info=True)
        has_key = runtime.secrets.get(session, owner_kind=VOICE_SECRET_KIND, owner_id=0, name=name) is not None
        out.append(EngineStatus(
            name=name, label=cls.label, available=ok, fix=fix, paid=cls.paid, local=cls.local,
            deterministic=cls.deterministic, supports_pitch=cls.supports_pitch, supports_style=cls.supports_style,
            speed_min=cls.speed_range[0], speed_max=cls.speed_range[1], max_chars=cls.max_chars,
            speakers=speakers, has_api_key=has_key,
        ))
    return out


def _require_available(session: Session, runtime: Runtime, config: VoiceConfig) -> VoiceBackend:
    backend = build_voice_backend(session, runtime, config.engine)
    ok, fix = backend.available()
    if not ok:
        raise VoiceEngineUnavailable(
            f"The voice engine {type(backend).label} cannot run here: {fix}. "
            "Choose another engine in Studio → Voice, or fix it and try again."
        )
    return backend


# ---- voice clips (request side) ---------------------------------------------------------------------------------


def sample_text(character: Character) -> str:
    """What a voice preview says."""
    return f"Hi, I'm {character.name}, a virtual character. This is how my voice sounds."


def request_voice_clip(
    session: Session, *, user: User, runtime: Runtime, character_id: int, text: str,
    voice: dict[str, Any] | None = None, preview: bool = False, ip: str = "",
) -> Job:
    """Check a voice-clip request (text, engine, settings) and queue the ``studio.voice`` job."""
    character = get_character(session, character_id, user=user)
    clean = " ".join((text or "").split()) if preview else (text or "").strip()
    if preview and not clean:
        clean = sample_text(character)
    if not clean:
        raise InvalidInput("Write the text to speak.", field="text")
    if len(clean) > MAX_CLIP_CHARS:
        raise InvalidInput(f"The text is {len(clean)} characters; one clip takes at most {MAX_CLIP_CHARS}. "
                           "Split it, or compose a video, which narrates scene by scene.", field="text")
    config = voice_config(session, character, runtime)
    if voice:
        config = check_voice_config(session, runtime, **{**config.to_dict(), **voice})
    backend = _require_available(session, runtime, config)
    from ainfluencer.backends.voice.base import BackendError

    try:
        backend.check(clean, config.settings())
    except BackendError as exc:
        raise InvalidInput(exc.message, field="text") from None
    payload = {"character_id": character.id, "text": clean, "voice": config.to_dict(), "preview": preview,
               "user_id": user.id}
    job = queue.enqueue(session, VOICE_JOB, payload, user_id=user.id, max_attempts=3)
    audit(session, "studio.voice_clip", user_id=user.id, ip=ip, character_id=character.id, job_id=job.id,
          chars=len(clean), engine=config.engine, preview=preview)
    return job


# ---- shared worker helpers --------------------------------------------------------------------------------------


def _job_error(exc: Exception) -> Exception:
    from ainfluencer.services.studio import _job_error as studio_job_error

    return studio_job_error(exc)


def _work_dir(runtime: Runtime, prefix: str) -> Path:
    base = runtime.settings.resolved_data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def _voice_provenance(config: VoiceConfig, backend_name: str, text: str) -> dict[str, Any]:
    return {"engine": backend_name, "speaker": config.speaker, "speed": config.speed, "pitch": config.pitch,
            "style": config.style, "seed": config.seed, "text": text}


# ---- voice clips (worker side) ----------------------------------------------------------------------------------


def run_voice(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The job: speak the text with the snapshot of the character's voice and store the WAV in the vault."""
    from ainfluencer.backends.voice.base import BackendError
    from ainfluencer.jobs.errors import PermanentJobError

    runtime = ctx.runtime
    config = VoiceConfig.from_dict(payload.get("voice"))
    text = str(payload.get("text") or "")
    preview = bool(payload.get("preview"))
    ctx.progress(5, f"speaking {len(text)} characters with {config.engine}")
    with runtime.db.session() as s:
        character = s.get(Character, int(payload["character_id"]))
        if character is None:
            raise PermanentJobError(f"character {payload['character_id']} no longer exists")
        backend = build_voice_backend(s, runtime, config.engine)
    work = _work_dir(runtime, "voice-")
    try:
        started = time.perf_counter()
        try:
            clip = backend.synthesize(text, voice=config.settings(), out_path=work / "clip.wav")
        except BackendError as exc:
            raise _job_error(exc) from exc
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        ctx.progress(80, f"{clip.duration_s:.1f} s of speech; storing it in the vault")
        with runtime.db.session() as s:
            character = s.get(Character, int(payload["character_id"]))
            if character is None:
                raise PermanentJobError("the character was deleted while its voice clip was made")
            voice_meta = _voice_provenance(config, clip.backend or config.engine, text)
            info = vault.GenerationInfo(
                prompt=text, backend=clip.backend or config.engine, model=config.speaker or "",
                seed=config.seed, generation_ms=elapsed_ms,
                params={"purpose": "voice-preview" if preview else "voice", "voice": voice_meta,
                        "duration_s": round(clip.duration_s, 3), "sample_rate": clip.sample_rate},
            )
            result = vault.ingest(
                s, settings=runtime.settings, data=clip.path, filename="voice.wav", kind=AssetKind.audio,
                character=character, user_id=payload.get("user_id"), source=AssetSource.generated,
                generation=info, tags=["voice-preview" if preview else "voice"], folder="voice",
                review_state=ReviewState.draft if preview else None, job_id=ctx.job_id,
            )
            asset = result.asset
            if not result.duplicate:
                asset.provenance = {**asset.provenance, "synthetic_voice": voice_meta}
            asset_id, duplicate = asset.id, result.duplicate
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ctx.progress(100, "voice clip in the vault" + (" (the same clip was already there)" if duplicate else ""))
    return {"asset_id": asset_id, "duplicate": duplicate, "duration_s": round(clip.duration_s, 3),
            "engine": clip.backend or config.engine, "character_id": payload["character_id"], "preview": preview}


# ---- video presets and scripts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformPreset:
    """A choice on the video page: an output preset plus the platform whose limits it must meet."""

    name: str
    label: str
    preset: str
    platform: str | None

    def resolve(self) -> tuple[VideoPreset, PlatformLimits | None]:
        """The encoding preset and the platform limits."""
        from ainfluencer.media.video.presets import get_platform, get_preset

        return get_preset(self.preset), get_platform(self.platform)

    @property
    def max_duration_s(self) -> float:
        """The longest video this choice allows."""
        from ainfluencer.media.video.presets import max_duration

        preset, platform = self.resolve()
        return max_duration(preset, platform)


PLATFORM_PRESETS: dict[str, PlatformPreset] = {
    p.name: p
    for p in (
        PlatformPreset("reels", "Instagram Reels · 1080×1920", "short_vertical", "instagram_reels"),
        PlatformPreset("shorts", "YouTube Shorts · 1080×1920", "short_vertical", "youtube_shorts"),
        PlatformPreset("tiktok", "TikTok · 1080×1920", "short_vertical", "tiktok"),
        PlatformPreset("facebook_reels", "Facebook Reels · 1080×1920", "short_vertical", "facebook_reels"),
        PlatformPreset("short", "Short vertical, any platform · 1080×1920", "short_vertical", None),
        PlatformPreset("youtube", "YouTube long-form · 1920×1080", "long_horizontal", "youtube"),
        PlatformPreset("long", "Long horizontal, any platform · 1920×1080", "long_horizontal", None),
    )
}


def get_platform_preset(name: str) -> PlatformPreset:
    """The page/API choice named ``name``."""
    try:
        return PLATFORM_PRESETS[name]
    except KeyError:
        known = ", ".join(PLATFORM_PRESETS)
        raise InvalidInput(f"Unknown video preset {name!r}; choose one of: {known}.", field="preset") from None


def split_script(script: str, scenes: int) -> list[str]:
    """Narration per scene: paragraphs (blank-line separated) when there are several, else sentences.

    Units are spread over at most ``scenes`` scenes in order, as evenly as their lengths allow, so
    every image gets some narration and no sentence is cut in half.
    """
    from ainfluencer.backends.voice.base import split_sentences

    text = script.replace("\r\n", "\n").strip()
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    units = paragraphs if len(paragraphs) >= max(2, scenes) else split_sentences(text)
    units = [u for u in units if u.strip()] or [" ".join(text.split())]
    n = max(1, min(scenes, len(units)))
    total = sum(len(u) for u in units)
    out: list[list[str]] = [[] for _ in range(n)]
    done = 0
    for unit in units:
        # the scene whose share of the text this unit's middle falls into
        idx = min(n - 1, int((done + len(unit) / 2) * n / max(1, total)))
        out[idx].append(unit)
        done += len(unit)
    # a scene left empty borrows the last unit of the fullest earlier neighbour
    for i in range(n):
        if not out[i]:
            donor = max((j for j in range(n) if len(out[j]) > 1), key=lambda j: (len(out[j]), -abs(j - i)),
                        default=None)
            if donor is not None:
                out[i].append(out[donor].pop(0 if donor > i else -1))
    return [" ".join(parts) for parts in out if parts]


@dataclass(frozen=True)
class VideoRequest:
    """What a person asks for: a script over the character's images, a preset, captions, music."""

    character_id: int
    script: str
    preset: str = "shorts"
    image_ids: list[int] = field(default_factory=list)
    music_id: int | None = None
    captions: bool = True
    target_duration_s: float | None = None
    title: str = ""


def latest_approved_images(session: Session, character: Character, limit: int = DEFAULT_IMAGES) -> list[Asset]:
    """The character's newest approved images (what a video uses when none are chosen)."""
    q = select(Asset).where(Asset.character_id == character.id, Asset.kind == AssetKind.image,
                            Asset.review_state == ReviewState.approved,
                            Asset.source != AssetSource.reference)
    return list(session.scalars(q.order_by(Asset.created_at.desc(), Asset.id.desc()).limit(limit)))


def video_images(session: Session, character: Character, *, limit: int = 48) -> list[Asset]:
    """Images a video of this character may use (approved first, then in review/draft), newest first."""
    q = select(Asset).where(
        Asset.character_id == character.id, Asset.kind == AssetKind.image,
        Asset.review_state.in_([ReviewState.approved, ReviewState.in_review, ReviewState.draft]),
        Asset.source != AssetSource.reference,
    )
    rows = list(session.scalars(q.order_by(Asset.created_at.desc(), Asset.id.desc()).limit(limit)))
    return sorted(rows, key=lambda a: a.review_state != ReviewState.approved)


def music_choices(session: Session, *, user: User, character: Character, limit: int = 50) -> list[Asset]:
    """Audio assets usable as background music (not voice clips), newest first."""
    q = select(Asset).where(Asset.kind == AssetKind.audio, vault.visible(user),
                            Asset.review_state.not_in([ReviewState.rejected, ReviewState.archived]),
                            (Asset.character_id == character.id) | Asset.character_id.is_(None))
    rows = session.scalars(q.order_by(Asset.id.desc()).limit(limit * 3))
    return [a for a in rows if not str((a.params or {}).get("purpose", "")).startswith("voice")][:limit]


def _scene_images(session: Session, *, user: User, character: Character, image_ids: list[int],
                  settings: Any) -> list[Asset]:
    if len(image_ids) > MAX_VIDEO_IMAGES:
        raise InvalidInput(f"Choose at most {MAX_VIDEO_IMAGES} images.", field="image_ids")
    if not image_ids:
        images = latest_approved_images(session, character)
        if not images:
            raise InvalidInput(f"{character.name} has no approved images yet: approve some in the vault, or "
                               "choose the images for the video.", field="image_ids")
        return list(reversed(images))  # oldest of the recent ones first, like a story
    images = []
    for asset_id in dict.fromkeys(image_ids):
        asset = vault.get_asset(session, asset_id, user=user)
        if asset.character_id != character.id:
            raise InvalidInput(f"Image {asset_id} belongs to another character.", field="image_ids")
        if asset.kind != AssetKind.image:
            raise InvalidInput(f"Asset {asset_id} is {asset.kind.value}, not an image.", field="image_ids")
        if asset.source == AssetSource.reference:
            raise InvalidInput(f"Asset {asset_id} is a reference photo of a real person; it is never used in "
                               "published media.", field="image_ids")
        if asset.review_state in (ReviewState.rejected, ReviewState.archived):
            raise InvalidInput(f"Image {asset_id} is {asset.review_state.value}; restore it first.",
                               field="image_ids")
        if not vault.file_path(settings, asset).is_file():
            raise NotFound(f"The file of image {asset_id} is missing from the media folder.")
        images.append(asset)
    return images


def request_video(session: Session, *, user: User, runtime: Runtime, req: VideoRequest, ip: str = "") -> Job:
    """Check a video request against the preset's limits and the voice engine, then queue ``studio.video``."""
    from ainfluencer.backends.voice.base import BackendError
    from ainfluencer.media.video.compose import FAST_SPEECH_CHARS_PER_S
    from ainfluencer.media.video.presets import check_duration_and_size, check_format
    from ainfluencer.media.video.probe import ffmpeg_exe

    character = get_character(session, req.character_id, user=user)
    choice = get_platform_preset(req.preset)
    preset, platform = choice.resolve()
    check_format(preset, platform)
    limit = choice.max_duration_s
    script = (req.script or "").strip()
    if not script:
        raise InvalidInput("Write the script: it is spoken in the character's voice over the images.",
                           field="script")
    if len(script) > MAX_SCRIPT_CHARS:
        raise InvalidInput(f"The script is {len(script)} characters; at most {MAX_SCRIPT_CHARS}.", field="script")
    config = voice_config(session, character, runtime)
    at_least = len(" ".join(script.split())) / (FAST_SPEECH_CHARS_PER_S * config.speed)
    if at_least > limit:
        raise InvalidInput(
            f"The script ({len(script)} characters) takes at least {at_least:.0f} s to say at speed "
            f"{config.speed:g}; {choice.label} allows at most {limit:g} s. Shorten the script or choose a "
            "longer format.", field="script")
    target = req.target_duration_s
    if target is not None:
        if not math.isfinite(target) or target <= 0:
            raise InvalidInput("The length must be a positive number of seconds.", field="target_duration_s")
        check_duration_and_size(preset, platform, target)
        if at_least > target:
            raise InvalidInput(f"The script takes at least {at_least:.0f} s to say; the chosen length is "
                               f"{target:g} s. Shorten the script or leave the length open.",
                               field="target_duration_s")
    images = _scene_images(session, user=user, character=character, image_ids=list(req.image_ids),
                           settings=runtime.settings)
    texts = split_script(script, len(images))
    scene_images = [images[i % len(images)].id for i in range(len(texts))]
    if target is None and len(images) > len(texts):
        # more images than narration: the rest get silent scenes of their own
        scene_images += [a.id for a in images[len(texts):]]
        texts += [""] * (len(images) - len(texts))
    music_id = None
    if req.music_id is not None:
        music = vault.get_asset(session, req.music_id, user=user)
        if music.kind != AssetKind.audio:
            raise InvalidInput(f"Asset {music.id} is {music.kind.value}; background music must be audio.",
                               field="music_id")
        if not vault.file_path(runtime.settings, music).is_file():
            raise NotFound(f"The file of asset {music.id} is missing from the media folder.")
        music_id = music.id
    backend = _require_available(session, runtime, config)
    try:
        for text in texts:
            if text:
                backend.check(text, config.settings())
    except BackendError as exc:
        raise InvalidInput(exc.message, field="script") from None
    ffmpeg_exe()  # FfmpegMissing (503) names the fix before anything is queued
    payload = {
        "character_id": character.id, "scenes": [{"text": t, "image_id": i} for t, i in zip(texts, scene_images,
                                                                                            strict=True)],
        "music_id": music_id, "preset": choice.name, "captions": bool(req.captions), "target_duration_s": target,
        "title": " ".join(req.title.split())[:200], "script": script, "voice": config.to_dict(), "user_id": user.id,
    }
    job = queue.enqueue(session, VIDEO_JOB, payload, user_id=user.id, max_attempts=2)
    audit(session, "studio.video", user_id=user.id, ip=ip, character_id=character.id, job_id=job.id,
          preset=choice.name, scenes=len(texts))
    return job


def plan_video(payload: dict[str, Any], narration_s: list[float]) -> Any:
    """The timeline a video payload gives for the narration lengths (used to check long-form planning)."""
    from ainfluencer.media.video.compose import plan_timeline

    script = _script_from_payload(payload, [Path(f"scene_{i}.jpg") for i in range(len(payload["scenes"]))], None)
    preset, _ = get_platform_preset(str(payload["preset"])).resolve()
    return plan_timeline(script, narration_s, preset=preset, crossfade_s=0.5)


def _script_from_payload(payload: dict[str, Any], images: list[Path], music: Path | None) -> Script:
    from ainfluencer.media.video.compose import Scene, Script

    scenes: list[Scene] = [Scene(image=img, text=str(s.get("text") or ""))
                           for s, img in zip(payload["scenes"], images, strict=True)]
    target = payload.get("target_duration_s")
    return Script(scenes=scenes, target_duration_s=None if target is None else float(target), music=music,
                  title=str(payload.get("title") or ""))


# ---- video (worker side) ----------------------------------------------------------------------------------------


def stage_percent(stage: str, pct: float) -> int:
    """The overall progress (0-100) for ``pct`` percent through ``stage``."""
    done = 0
    for name in VIDEO_STAGES:
        if name == stage:
            return int(done + _STAGE_WEIGHTS[name] * max(0.0, min(100.0, pct)) / 100)
        done += _STAGE_WEIGHTS[name]
    return done


@dataclass(frozen=True)
class StageState:
    """One stage of a video job as the page shows it."""

    name: str
    state: str  # done | active | pending | failed
    percent: int


def video_stages(job: Job) -> list[StageState]:
    """Per-stage state of a ``studio.video`` job, read from its progress message (``"<stage> <pct>%"``)."""
    if job.status == JobStatus.succeeded:
        return [StageState(s, "done", 100) for s in VIDEO_STAGES]
    match = _STAGE_LINE.match(job.progress_message or "")
    current = match.group("stage") if match and match.group("stage") in VIDEO_STAGES else None
    pct = int(match.group("pct")) if match else 0
    stopped = job.status in (JobStatus.failed, JobStatus.cancelled)
    if current is None:
        current, pct = (VIDEO_STAGES[0], 0) if stopped else ("", 0)
    out = []
    reached = False
    for name in VIDEO_STAGES:
        if name == current:
            out.append(StageState(name, "failed" if stopped else "active", pct))
            reached = True
        else:
            out.append(StageState(name, "pending" if reached or not current else "done",
                                  0 if reached or not current else 100))
    return out


def run_video(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The job: compose the video stage by stage and store it (and its narration) in the vault."""
    from ainfluencer.backends.voice.base import BackendError
    from ainfluencer.jobs.errors import JobCancelled, LeaseLost, PermanentJobError
    from ainfluencer.media.video.compose import RenderCancelled, compose

    runtime = ctx.runtime
    settings = runtime.settings
    config = VoiceConfig.from_dict(payload.get("voice"))
    choice = get_platform_preset(str(payload.get("preset") or "shorts"))
    last: dict[str, Any] = {"stage": "", "pct": -1, "at": 0.0}

    def report(stage: str, pct: float) -> None:
        # compose calls this from its own threads too: never raise here, and write at most ~4 times a second
        now = time.monotonic()
        whole = int(pct)
        if stage == last["stage"] and (whole == last["pct"] or now - float(last["at"]) < 0.25) and whole < 100:
            return
        last.update(stage=stage, pct=whole, at=now)
        try:
            ctx.progress(stage_percent(stage, pct), f"{stage} {whole}%")
        except (JobCancelled, LeaseLost):
            pass  # the cancel callback below stops the render

    report("narration", 0)
    with runtime.db.session() as s:
        character = s.get(Character, int(payload["character_id"]))
        if character is None:
            raise PermanentJobError(f"character {payload['character_id']} no longer exists")
        ids = [int(sc["image_id"]) for sc in payload["scenes"]]
        found = {a.id: a for a in s.scalars(select(Asset).where(Asset.id.in_(ids)))}
        missing = [i for i in ids if i not in found]
        if missing:
            raise PermanentJobError(f"image asset(s) {sorted(set(missing))} were deleted after the video was queued")
        images = [vault.file_path(settings, found[i]) for i in ids]
        music = None
        if payload.get("music_id") is not None:
            music_asset = s.get(Asset, int(payload["music_id"]))
            if music_asset is None:
                raise PermanentJobError("the background music was deleted after the video was queued")
            music = vault.file_path(settings, music_asset)
        backend = build_voice_backend(s, runtime, config.engine)
        character_name = character.name
    script = _script_from_payload(payload, images, music)
    work = _work_dir(runtime, "video-")
    try:
        out = work / "video.mp4"
        try:
            result = compose(
                script, out_path=out, preset=choice.preset, platform=choice.platform, voice_backend=backend,
                voice=config.settings(), captions=bool(payload.get("captions", True)), progress=report,
                cancel=lambda: ctx.cancelled.is_set() or ctx.lease_lost.is_set(), work_dir=work / "compose",
                x264_preset=str(payload.get("x264_preset") or "veryfast"), narration_out=work / "narration.wav",
            )
        except RenderCancelled:
            ctx.check()
            raise
        except BackendError as exc:
            raise _job_error(exc) from exc
        except InvalidInput as exc:
            raise PermanentJobError(exc.message) from exc
        ctx.check()
        narration_path = work / "narration.wav"
        has_narration = result.narration_backend is not None and narration_path.is_file()
        voice_meta = _voice_provenance(config, result.narration_backend or config.engine, str(payload["script"]))
        # provenance: the vault strips, labels and (when set up) C2PA-signs the file and reads the manifest back
        report("provenance", 0)
        info = vault.GenerationInfo(
            prompt=str(payload["script"]), caption=str(payload.get("title") or ""), backend="ffmpeg",
            model=choice.preset, seed=config.seed, generation_ms=int(result.stage_seconds.get("total", 0) * 1000),
            params={"purpose": "video", "preset": choice.name, "output_preset": choice.preset,
                    "platform": choice.platform, "captions": bool(payload.get("captions", True)),
                    "image_asset_ids": [int(sc["image_id"]) for sc in payload["scenes"]],
                    "music_asset_id": payload.get("music_id"), "narration_asset_id": None,
                    "voice": voice_meta, "duration_s": round(result.duration_s, 3), "fps": result.fps,
                    "width": result.width, "height": result.height, "srt": result.srt[:20_000],
                    "script": str(payload["script"]), "title": str(payload.get("title") or ""),
                    "target_duration_s": payload.get("target_duration_s"), "tempo": round(result.timeline.tempo, 3),
                    "outro_s": round(result.timeline.outro_s, 2),
                    "loudness": _loudness_meta(result.loudness),
                    "stage_seconds": {k: round(v, 2) for k, v in result.stage_seconds.items()}},
        )
        title = str(payload.get("title") or "") or f"{character_name} video"
        with runtime.db.session() as s:
            character = s.get(Character, int(payload["character_id"]))
            if character is None:
                raise PermanentJobError("the character was deleted while its video was composed")
            stored = vault.ingest(
                s, settings=settings, data=result.path, filename=f"{_slug(title)}.mp4", kind=AssetKind.video,
                character=character, user_id=payload.get("user_id"), source=AssetSource.generated, generation=info,
                tags=["video", choice.name], folder="video", job_id=ctx.job_id,
            )
            asset = stored.asset
            asset.duration_s = round(result.duration_s, 3)
            asset.width, asset.height = result.width, result.height
            video_id = asset.id
            c2pa = dict(asset.provenance.get("c2pa") or {})
        # (progress is reported between sessions: on SQLite a write transaction must not wait on another)
        report("provenance", 100)
        report("vault", 0)
        narration_id = None
        with runtime.db.session() as s:
            character = s.get(Character, int(payload["character_id"]))
            video = s.get(Asset, video_id)
            if character is not None and video is not None and has_narration:
                narration = vault.ingest(
                    s, settings=settings, data=narration_path, filename="narration.wav", kind=AssetKind.audio,
                    character=character, user_id=payload.get("user_id"), source=AssetSource.generated,
                    generation=vault.GenerationInfo(
                        prompt=str(payload["script"]), backend=voice_meta["engine"], model=config.speaker or "",
                        seed=config.seed, params={"purpose": "voice-narration", "voice": voice_meta,
                                                  "video_asset_id": video_id}),
                    tags=["voice", "narration"], folder="voice", job_id=ctx.job_id,
                )
                narration_id = narration.asset.id
                video.params = {**video.params, "narration_asset_id": narration_id}
        report("vault", 100)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ctx.progress(100, f"vault 100% · video #{video_id} ({result.duration_s:.1f} s) in the vault")
    return {"asset_id": video_id, "narration_asset_id": narration_id, "duration_s": round(result.duration_s, 3),
            "width": result.width, "height": result.height, "fps": result.fps, "preset": choice.name,
            "c2pa": c2pa.get("state", ""), "stage_seconds": {k: round(v, 2) for k, v in result.stage_seconds.items()},
            "character_id": payload["character_id"]}


def _loudness_meta(loudness: Any) -> dict[str, Any] | None:
    """The mix's measured loudness and the normalisation target (for the asset's parameters)."""
    from ainfluencer.media.video.compose import LOUDNESS_LUFS, TRUE_PEAK_DB

    if loudness is None:
        return None
    return {"measured_lufs": loudness.integrated_lufs, "measured_true_peak_db": loudness.true_peak_db,
            "target_lufs": LOUDNESS_LUFS, "target_true_peak_db": TRUE_PEAK_DB}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or f"video-{uuid.uuid4().hex[:8]}"


# ---- local voices: catalogue and download ------------------------------------------------------------------------

VOICE_PULL_JOB = "studio.voice_pull"


@dataclass(frozen=True)
class VoiceChoice:
    """One row of the voice picker: a catalogue voice, whether it is installed, and whether it fits the persona."""

    id: str
    label: str
    language: str
    gender: str
    quality: str
    approx_bytes: int
    installed: bool
    suggested: bool


def voice_choices(runtime: Runtime, character: Character) -> list[VoiceChoice]:
    """Catalogue voices for the picker: the persona's languages first, installed ones marked."""
    from ainfluencer.backends.voice.catalog import catalog, installed_voices, suggested_voices, voices_dir

    installed = installed_voices(voices_dir(runtime.settings.resolved_data_dir))
    suggested = [v.id for v in suggested_voices(character_languages(character))]
    order = {vid: i for i, vid in enumerate(suggested)}
    rows = sorted(catalog(), key=lambda v: (order.get(v.id, len(order)), v.language, v.id))
    return [VoiceChoice(id=v.id, label=v.label, language=v.language, gender=v.gender, quality=v.quality,
                        approx_bytes=v.approx_bytes, installed=v.id in installed, suggested=v.id in order)
            for v in rows]


def request_voice_pull(session: Session, *, user: User, voice_id: str, ip: str = "") -> Job:
    """Owner only: queue the download of a catalogue voice (the worker fetches it with progress)."""
    from ainfluencer.backends.voice.catalog import get_voice

    if not user.is_owner:
        raise PermissionDenied("Only the owner can download voices.")
    entry = get_voice(voice_id)
    job = queue.enqueue(session, VOICE_PULL_JOB, {"voice_id": entry.id, "user_id": user.id}, user_id=user.id,
                        max_attempts=3)
    audit(session, "studio.voice_pull", user_id=user.id, ip=ip, voice=entry.id, job_id=job.id)
    return job


def run_voice_pull(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The job: download the voice (resuming a partial download), reporting progress per file."""
    from ainfluencer.backends.voice.catalog import get_voice, pull_voice, voices_dir
    from ainfluencer.jobs.errors import PermanentJobError, TransientJobError
    from ainfluencer.models_fetch import FetchError, human_size

    try:
        entry = get_voice(str(payload.get("voice_id") or ""))
    except InvalidInput as exc:
        raise PermanentJobError(exc.message) from exc
    last = {"at": 0.0}

    def progress(name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last["at"] < 0.5 and done != total:
            return
        last["at"] = now
        pct = int(done * 95 / (total or entry.approx_bytes)) if (total or entry.approx_bytes) else 0
        ctx.progress(min(95, pct), f"{name}: {human_size(done)}" + (f" of {human_size(total)}" if total else ""))

    try:
        path = pull_voice(entry.id, voices_dir(ctx.runtime.settings.resolved_data_dir), progress=progress)
    except FetchError as exc:
        # a broken connection resumes on the next attempt; a bad checksum deleted the file and starts over
        raise TransientJobError(exc.message) from exc
    ctx.progress(100, f"voice {entry.id} installed")
    return {"voice_id": entry.id, "path": str(path)}
