"""The studio: appearances, the canonical face, consented reference photos, and image generation.

Generation is a job (``studio.generate_images``): the request is checked and its prompt built when it
is queued (so the job row shows exactly what will be asked), and the worker calls the configured
image backends through the registry's fallback chain, reports progress, and ingests every image into
the vault with its prompt, negative prompt, backend, model, seed, size, time and cost.

Image backends are configured by the owner (Studio → Image backends): an ``app_settings`` row
``image_backends`` holds each backend's options (base URL, model, device) and the order they are
tried in; API keys are stored encrypted in ``stored_secrets`` (owner_kind ``image_backend``). A
character may name its preferred backend and model; it is tried first. With nothing configured a job
fails with "no image backend configured …", never with a fake image.

Content rules (SCOPE.md): the safety negative prompt is always added and briefs asking for adult
content are refused; uploaded photos of real people need a recorded consent statement and are used
only for that character's face consistency.
"""

from __future__ import annotations

import inspect as pyinspect
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ainfluencer.characters.persona import Persona
from ainfluencer.db.models import AppSetting, Character, Job, User, utcnow
from ainfluencer.db.models_media import (
    APPEARANCE_FIELDS,
    Appearance,
    Asset,
    AssetKind,
    AssetSource,
    CharacterMediaSettings,
    ReferencePhoto,
    ReviewState,
)
from ainfluencer.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ainfluencer.jobs import queue
from ainfluencer.services import backend_settings, vault
from ainfluencer.services.auth import audit
from ainfluencer.services.characters import get_character

if TYPE_CHECKING:
    from ainfluencer.backends.image.base import ImageBackend
    from ainfluencer.jobs.registry import JobContext
    from ainfluencer.runtime import Runtime

log = logging.getLogger(__name__)

JOB_KIND = "studio.generate_images"
BACKENDS_SETTING = "image_backends"
SECRET_KIND = "image_backend"  # noqa: S105 - the stored_secrets owner kind, not a secret
NO_BACKEND = "no image backend configured: set up ComfyUI/A1111/diffusers/OpenAI in Settings (Studio → Image backends)"
MAX_COUNT = 16
MAX_BRIEF = 1000
MIN_CONSENT_CHARS = 20
CANONICAL_NAME = "canonical"
PURPOSES = ("images", "faces")

STYLE_CATEGORIES: dict[str, str] = {
    "casual": "casual everyday photo, natural light, candid moment",
    "professional": "professional portrait, smart business attire, clean modern office, soft key light",
    "travel": "travel photo, scenic landmark in the background, golden hour light",
    "studio": "studio photo shoot, seamless backdrop, softbox lighting, editorial look",
    "outdoor": "outdoor photo, park or city street, daylight, shallow depth of field",
    "fitness": "fitness photo, gym or running track, athletic wear, dynamic pose",
    "evening": "evening photo, city lights, warm ambient light, elegant outfit",
    "food": "lifestyle photo in a cafe or kitchen, food on the table, natural window light",
}
SAFETY_NEGATIVE = "nsfw, nudity, explicit, sexual content, gore, minors, child"
QUALITY_NEGATIVE = "deformed, disfigured, extra fingers, extra limbs, blurry, lowres, watermark, text, logo"
_ADULT_WORDS = re.compile(
    r"\b(nsfw|nude|nudes|naked|topless|porn\w*|explicit|sexual|sex|xxx|onlyfans|lingerie|erotic\w*|fetish)\b",
    re.IGNORECASE,
)
_NAME_RE = re.compile(r"^[\w][\w \-]{0,59}$")


# ---- appearances ----------------------------------------------------------------------------------------------


def _clean_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise InvalidInput("Give the appearance a name, such as 'gym' or 'evening'.", field="name")
    if not _NAME_RE.match(name):
        raise InvalidInput("An appearance name is up to 60 letters, digits, spaces, '-' or '_'.", field="name")
    return name


def _clean_fields(values: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    limits = {c.name: getattr(c.type, "length", None) for c in Appearance.__table__.columns}
    for key in (*APPEARANCE_FIELDS, "negative_prompt"):
        if key not in values or values[key] is None:
            continue
        text = " ".join(str(values[key]).split())
        limit = limits.get(key) or 500
        if len(text) > limit:
            raise InvalidInput(f"{key.replace('_', ' ')} may be at most {limit} characters.", field=key)
        if key != "negative_prompt" and _ADULT_WORDS.search(text):
            raise InvalidInput("AInfluencer does not make adult content; describe the look without it.", field=key)
        out[key] = text
    return out


def list_appearances(session: Session, *, character: Character) -> list[Appearance]:
    """The character's appearances, the canonical one first."""
    q = select(Appearance).where(Appearance.character_id == character.id)
    return list(session.scalars(q.order_by(Appearance.is_canonical.desc(), Appearance.name)))


def get_appearance(session: Session, *, user: User, appearance_id: int) -> Appearance:
    """One appearance of a character the user may see, or NotFound."""
    appearance = session.get(Appearance, appearance_id)
    if appearance is None or not _may_see(session, user, appearance.character_id):
        # The same words as for a missing row: the answer must not name the other user's character.
        raise NotFound(f"No appearance with id {appearance_id}.")
    return appearance


def get_reference_photo(session: Session, *, user: User, photo_id: int) -> ReferencePhoto:
    """One reference photo of a character the user may see, or NotFound."""
    photo = session.get(ReferencePhoto, photo_id)
    if photo is None or not _may_see(session, user, photo.character_id):
        raise NotFound(f"No reference photo with id {photo_id}.")
    return photo


def _may_see(session: Session, user: User, character_id: int) -> bool:
    try:
        get_character(session, character_id, user=user)
    except NotFound:
        return False
    return True


def create_appearance(
    session: Session, *, user: User, character: Character, name: str, fields: dict[str, Any], ip: str = ""
) -> Appearance:
    """Add a named appearance (the first one becomes the character's canonical appearance)."""
    clean = _clean_name(name)
    exists_already = session.scalar(
        select(Appearance.id).where(Appearance.character_id == character.id, Appearance.name == clean)
    )
    if exists_already:
        raise Conflict(f"{character.name} already has an appearance called '{clean}'.", field="name")
    first = not session.scalar(select(Appearance.id).where(Appearance.character_id == character.id).limit(1))
    appearance = Appearance(character_id=character.id, name=clean, is_canonical=first, **_clean_fields(fields))
    session.add(appearance)
    session.flush()
    audit(session, "studio.appearance_created", user_id=user.id, ip=ip, character_id=character.id,
          appearance_id=appearance.id)
    return appearance


def update_appearance(
    session: Session, *, user: User, appearance: Appearance, name: str | None = None,
    fields: dict[str, Any] | None = None,
) -> Appearance:
    """Change an appearance's name and/or description fields."""
    if name is not None:
        clean = _clean_name(name)
        if clean != appearance.name:
            taken = session.scalar(select(Appearance.id).where(
                Appearance.character_id == appearance.character_id, Appearance.name == clean))
            if taken:
                raise Conflict(f"There is already an appearance called '{clean}'.", field="name")
            appearance.name = clean
    for key, value in _clean_fields(fields or {}).items():
        setattr(appearance, key, value)
    session.flush()
    return appearance


def delete_appearance(session: Session, *, user: User, appearance: Appearance, ip: str = "") -> None:
    """Remove an appearance; the one holding the canonical face stays until another holds it."""
    if appearance.is_canonical and appearance.face_embedding:
        raise Conflict("This appearance holds the canonical face; pick the canonical face on another appearance "
                       "first.")
    audit(session, "studio.appearance_deleted", user_id=user.id, ip=ip, character_id=appearance.character_id,
          appearance_id=appearance.id)
    session.delete(appearance)
    session.flush()


def ensure_canonical_appearance(session: Session, character: Character) -> Appearance:
    """The appearance holding the canonical face, created (named 'canonical') when there is none."""
    current = vault.canonical_appearance(session, character.id)
    if current is not None:
        return current
    existing = session.scalars(select(Appearance).where(Appearance.character_id == character.id,
                                                        Appearance.name == CANONICAL_NAME)).first()
    if existing is None:
        existing = Appearance(character_id=character.id, name=CANONICAL_NAME)
        session.add(existing)
    existing.is_canonical = True
    session.flush()
    return existing


def pick_canonical_face(
    session: Session, *, user: User, settings: Any, character: Character, asset: Asset,
    appearance: Appearance | None = None, face_scorer: Any = None, ip: str = "",
) -> Appearance:
    """Make an image the character's canonical face: its identity embedding is what every image is scored against."""
    if asset.character_id != character.id:
        raise InvalidInput(f"Asset {asset.id} does not belong to {character.name}.", field="asset_id")
    if asset.kind != AssetKind.image:
        raise InvalidInput(f"Asset {asset.id} is not an image.", field="asset_id")
    if asset.review_state in (ReviewState.rejected, ReviewState.archived):
        raise Conflict(f"Asset {asset.id} is {asset.review_state.value}; restore it to review first.")
    path = vault.file_path(settings, asset)
    if not path.is_file():
        raise NotFound(f"The file of asset {asset.id} is missing from the media folder.")
    from ainfluencer.media.quality.face import FaceUnavailable, get_face_scorer

    scorer = face_scorer or get_face_scorer()
    try:
        embedding = scorer.embed(path)
    except FaceUnavailable as exc:
        raise Conflict(f"Face consistency cannot run here: {exc}") from None
    if embedding is None:
        raise InvalidInput(f"No face was found in asset {asset.id}; choose an image with one clear, frontal face.",
                           field="asset_id")
    if embedding.faces_found > 1:
        raise InvalidInput(f"Asset {asset.id} shows {embedding.faces_found} faces; choose an image of the character "
                           "alone.", field="asset_id")
    target = appearance or ensure_canonical_appearance(session, character)
    if target.character_id != character.id:
        raise InvalidInput("That appearance belongs to another character.", field="appearance_id")
    for other in list_appearances(session, character=character):
        if other.id != target.id and other.is_canonical:
            other.is_canonical = False
            other.face_embedding = None
            other.canonical_asset_id = None
    target.is_canonical = True
    target.face_embedding = embedding.to_dict()
    target.canonical_asset_id = asset.id
    vault.add_tags(session, asset=asset, tags=["canonical-face"])
    session.flush()
    audit(session, "studio.canonical_face", user_id=user.id, ip=ip, character_id=character.id, asset_id=asset.id)
    return target


def canonical_asset(session: Session, character: Character) -> Asset | None:
    """The asset holding the character's canonical face, if any."""
    appearance = vault.canonical_appearance(session, character.id)
    if appearance is None or appearance.canonical_asset_id is None:
        return None
    return session.get(Asset, appearance.canonical_asset_id)


# ---- reference photos -----------------------------------------------------------------------------------------


def check_consent(consent_statement: str, consent_confirmed: bool) -> str:
    """The cleaned consent statement, or InvalidInput when it is missing, too short or not confirmed."""
    statement = " ".join((consent_statement or "").split())
    if not consent_confirmed:
        raise InvalidInput("Confirm that the person in the photo agreed to its use for this character.",
                           field="consent_confirmed")
    if len(statement) < MIN_CONSENT_CHARS:
        raise InvalidInput(
            f"Write the consent statement (at least {MIN_CONSENT_CHARS} characters): who agreed, to what, and when.",
            field="consent_statement",
        )
    if len(statement) > 5000:
        raise InvalidInput("The consent statement may be at most 5000 characters.", field="consent_statement")
    return statement


def add_reference_photo(
    session: Session, *, user: User, settings: Any, character: Character, data: bytes | Path, filename: str,
    consent_statement: str, consent_confirmed: bool, subject_name: str = "", ip: str = "",
) -> ReferencePhoto:
    """Store a photo of a real person only with a recorded consent statement (SCOPE.md)."""
    statement = check_consent(consent_statement, consent_confirmed)
    result = vault.ingest(
        session, settings=settings, data=data, filename=filename, kind=AssetKind.image, character=character,
        user_id=user.id, source=AssetSource.reference, tags=["reference-photo"], folder="references",
        review_state=ReviewState.draft,
    )
    if result.duplicate and session.scalar(select(ReferencePhoto.id).where(ReferencePhoto.asset_id == result.asset.id)):
        raise Conflict(f"This photo is already a reference photo of {character.name}.", field="file")
    photo = ReferencePhoto(
        character_id=character.id, asset_id=result.asset.id, subject_name=" ".join(subject_name.split())[:200],
        consent_statement=statement, consented_by=user.id, consented_at=utcnow(),
    )
    session.add(photo)
    session.flush()
    audit(session, "studio.reference_photo_added", user_id=user.id, ip=ip, character_id=character.id,
          asset_id=result.asset.id, reference_id=photo.id)
    return photo


def list_reference_photos(session: Session, *, character: Character) -> list[ReferencePhoto]:
    """The character's reference photos, newest first."""
    q = select(ReferencePhoto).where(ReferencePhoto.character_id == character.id)
    return list(session.scalars(q.order_by(ReferencePhoto.id.desc())))


def delete_reference_photo(
    session: Session, *, user: User, settings: Any, photo: ReferencePhoto, ip: str = ""
) -> None:
    """Withdraw a reference photo: its row, its asset and its file go."""
    asset = session.get(Asset, photo.asset_id)
    audit(session, "studio.reference_photo_deleted", user_id=user.id, ip=ip, character_id=photo.character_id,
          asset_id=photo.asset_id)
    session.delete(photo)
    session.flush()
    if asset is not None:
        vault.delete_assets(session, user=user, assets=[asset], settings=settings, ip=ip)


def purge_reference_photos(session: Session, *, settings: Any, character_ids: Sequence[int]) -> int:
    """Delete the characters' reference photos with their files; call it before deleting the characters.

    A real person's photo was accepted for one character only, so it must not outlive that character
    (other assets stay, with ``character_id`` set to NULL by the foreign key).
    """
    ids = list(character_ids)
    if not ids:
        return 0
    assets = list(session.scalars(
        select(Asset).where(Asset.character_id.in_(ids), Asset.source == AssetSource.reference)
    ))
    if not assets:
        return 0
    for photo in session.scalars(select(ReferencePhoto).where(ReferencePhoto.asset_id.in_([a.id for a in assets]))):
        session.delete(photo)
    session.flush()
    paths = {a.path for a in assets}
    for asset in assets:
        session.delete(asset)
    session.flush()
    still_used = set(session.scalars(select(Asset.path).where(Asset.path.in_(paths))))
    for rel in paths - still_used:
        session.info.setdefault("ainf_vault_unlink", []).append(str(vault.safe_join(settings.media_dir,
                                                                                   *rel.split("/"))))
    return len(assets)


# ---- per-character media settings ----------------------------------------------------------------------------


def media_settings(session: Session, character: Character) -> CharacterMediaSettings:
    """The character's media settings row (made with defaults when absent)."""
    row = session.get(CharacterMediaSettings, character.id)
    if row is None:
        row = CharacterMediaSettings(character_id=character.id, thresholds={})
        session.add(row)
        session.flush()
    return row


def update_media_settings(
    session: Session, *, user: User, character: Character, thresholds: dict[str, Any] | None = None,
    image_backend: str | None = None, image_model: str | None = None, ip: str = "",
) -> CharacterMediaSettings:
    """Save the character's quality-gate thresholds and preferred image backend/model."""
    from pydantic import ValidationError

    from ainfluencer.media.quality.gates import QualityThresholds

    row = media_settings(session, character)
    if thresholds is not None:
        try:
            checked = QualityThresholds(**thresholds)
        except ValidationError as exc:
            first = exc.errors()[0]
            field_name = ".".join(str(p) for p in first.get("loc", ())) or "thresholds"
            raise InvalidInput(f"{field_name}: {first.get('msg', 'invalid value')}", field=field_name) from None
        row.thresholds = checked.model_dump()
    if image_backend is not None:
        name = image_backend.strip()
        if name:
            from ainfluencer.backends.image.registry import backend_class

            backend_class(name)
        row.image_backend = name
    if image_model is not None:
        row.image_model = image_model.strip()[:200]
    session.flush()
    audit(session, "studio.media_settings", user_id=user.id, ip=ip, character_id=character.id)
    return row


# ---- image backends configuration --------------------------------------------------------------------------------


def backend_config(session: Session) -> dict[str, Any]:
    """The owner's image-backend configuration: ``{"order": [...], "backends": {name: options}}``."""
    row = session.get(AppSetting, BACKENDS_SETTING)
    value = dict(row.value) if row is not None else {}
    return {"order": list(value.get("order") or []), "backends": dict(value.get("backends") or {})}


_OPTION_KEYS = {"base_url": 500, "model": 200, "device": 20, "models_dir": 500, "face_method": 20}


def save_backend_config(
    session: Session, *, user: User, runtime: Runtime, order: Sequence[str], backends: dict[str, dict[str, Any]],
    api_keys: dict[str, str] | None = None, ip: str = "",
) -> dict[str, Any]:
    """Owner only: which image backends to use, in which order, with their options and (encrypted) API keys."""
    from ainfluencer.backends.image.registry import backend_class

    if not user.is_owner:
        raise PermissionDenied("Only the owner can configure image backends.")
    clean_backends: dict[str, dict[str, Any]] = {}
    for name, options in backends.items():
        backend_class(name)
        clean_backends[name] = dict(backend_settings.clean_options(name, options, _OPTION_KEYS))
    clean_order: list[str] = []
    for name in order:
        backend_class(name)
        if name not in clean_order:
            clean_order.append(name)
            clean_backends.setdefault(name, {})
    config: dict[str, Any] = {"order": clean_order, "backends": clean_backends}
    backend_settings.put_setting(session, key=BACKENDS_SETTING, value=config, user=user)
    backend_settings.put_api_keys(session, runtime, owner_kind=SECRET_KIND, api_keys=api_keys, check=backend_class)
    session.flush()
    audit(session, "studio.image_backends", user_id=user.id, ip=ip, order=clean_order)
    return config


def _constructor_options(cls: type[ImageBackend], options: dict[str, Any], runtime: Runtime,
                         api_key: Any) -> dict[str, Any]:
    accepted = set(pyinspect.signature(cls.__init__).parameters)
    wanted = dict(options)
    if "models_dir" in accepted and not wanted.get("models_dir"):
        wanted["models_dir"] = str(runtime.settings.resolved_data_dir / "models")
    if api_key is not None:
        wanted["api_key"] = api_key
    return {k: v for k, v in wanted.items() if k in accepted and v not in (None, "")}


def build_backends(session: Session, runtime: Runtime, *, preferred: str = "", model: str = "") -> list[ImageBackend]:
    """Instances of the configured backends in order (the preferred one first); empty when none is configured."""
    from ainfluencer.backends.image.registry import backend_class

    config = backend_config(session)
    order = list(config["order"])
    if preferred:
        order = [preferred] + [n for n in order if n != preferred]
    backends = []
    for name in order:
        cls = backend_class(name)
        options = dict(config["backends"].get(name) or {})
        if model and name == order[0]:
            options["model"] = model
        key = runtime.secrets.get(session, owner_kind=SECRET_KIND, owner_id=0, name=name)
        backends.append(cls(**_constructor_options(cls, options, runtime, key)))
    return backends


# ---- prompts ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltPrompt:
    """The prompt and negative prompt sent to the backend."""

    prompt: str
    negative_prompt: str


def merged_look(canonical: Appearance | None, variation: Appearance | None) -> dict[str, str]:
    """Appearance fields: the variation's where it has them, the canonical appearance's otherwise."""
    look: dict[str, str] = {}
    for key in (*APPEARANCE_FIELDS, "negative_prompt"):
        value = ""
        for source in (variation, canonical):
            if source is not None and getattr(source, key):
                value = getattr(source, key)
                break
        look[key] = value
    return look


def build_prompt(
    *, persona: Persona | None, look: dict[str, str], brief: str = "", style: str = "casual",
    purpose: str = "images", extra_negative: str = "",
) -> BuiltPrompt:
    """Compose the prompt from the appearance, the persona, the brief and the style category."""
    parts: list[str] = []
    if purpose == "faces":
        parts.append("close-up studio headshot portrait of one adult person, looking at the camera, neutral "
                     "expression")
    else:
        parts.append("photo of one adult person")
    if persona is not None and persona.age:
        parts.append(f"{persona.age} years old")
    for key, prefix in (("face", ""), ("hair", "hair: "), ("eyes", "eyes: "), ("skin_tone", "skin tone: "),
                        ("body_type", "build: ")):
        if look.get(key):
            parts.append(prefix + look[key])
    if purpose == "faces":
        parts.append("plain light grey background, soft even lighting, sharp focus, photorealistic")
    else:
        for key, prefix in (("clothing", "wearing "), ("style", "style: "), ("settings", "setting: "),
                            ("aesthetic", "")):
            if look.get(key):
                parts.append(prefix + look[key])
        if persona is not None and persona.style:
            parts.append(persona.style)
        if brief.strip():
            parts.append(" ".join(brief.split()))
        parts.append(STYLE_CATEGORIES.get(style, STYLE_CATEGORIES["casual"]))
        parts.append("photorealistic, high detail")
    negative = ", ".join(p for p in (SAFETY_NEGATIVE, QUALITY_NEGATIVE, look.get("negative_prompt", ""),
                                     " ".join(extra_negative.split())) if p)
    return BuiltPrompt(prompt=", ".join(parts), negative_prompt=negative)


# ---- generation request (web/API side) ------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    """What a person asks the studio for."""

    character_id: int
    purpose: str = "images"
    appearance_id: int | None = None
    brief: str = ""
    style: str = "casual"
    count: int = 1
    width: int = 1024
    height: int = 1024
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str = ""
    backend: str = ""
    model: str = ""


def request_generation(session: Session, *, user: User, req: GenerationRequest, ip: str = "") -> Job:
    """Check a generation request, build its prompt and queue the job; returns the job."""
    character = get_character(session, req.character_id, user=user)
    if req.purpose not in PURPOSES:
        raise InvalidInput(f"purpose is one of {', '.join(PURPOSES)}.", field="purpose")
    if req.style not in STYLE_CATEGORIES:
        raise InvalidInput(f"style is one of {', '.join(STYLE_CATEGORIES)}.", field="style")
    if not 1 <= req.count <= MAX_COUNT:
        raise InvalidInput(f"count must be from 1 to {MAX_COUNT}.", field="count")
    for name, value in (("width", req.width), ("height", req.height)):
        if not 64 <= value <= 4096 or value % 8:
            raise InvalidInput(f"{name} must be a multiple of 8 from 64 to 4096.", field=name)
    if len(req.brief) > MAX_BRIEF:
        raise InvalidInput(f"The brief may be at most {MAX_BRIEF} characters.", field="brief")
    if _ADULT_WORDS.search(req.brief) or _ADULT_WORDS.search(req.negative_prompt.replace("nsfw", "")):
        raise InvalidInput("AInfluencer does not make adult content (SCOPE.md); change the brief.", field="brief")
    if req.seed is not None and not 0 <= req.seed <= 2**32 - 1 - MAX_COUNT:
        raise InvalidInput("seed must be from 0 to 4294967279.", field="seed")
    if req.backend:
        from ainfluencer.backends.image.registry import backend_class

        backend_class(req.backend)
    variation = None
    if req.appearance_id is not None:
        variation = get_appearance(session, user=user, appearance_id=req.appearance_id)
        if variation.character_id != character.id:
            raise InvalidInput("That appearance belongs to another character.", field="appearance_id")
    canonical = vault.canonical_appearance(session, character.id)
    try:
        persona = Persona.model_validate(character.persona or {})
    except ValueError:
        persona = None
    built = build_prompt(persona=persona, look=merged_look(canonical, variation), brief=req.brief, style=req.style,
                         purpose=req.purpose, extra_negative=req.negative_prompt)
    settings_row = session.get(CharacterMediaSettings, character.id)
    payload = {
        "character_id": character.id, "appearance_id": req.appearance_id, "purpose": req.purpose,
        "brief": req.brief, "style": req.style, "count": req.count, "width": req.width, "height": req.height,
        "seed": req.seed, "steps": req.steps, "guidance": req.guidance, "prompt": built.prompt,
        "negative_prompt": built.negative_prompt,
        "backend": req.backend or (settings_row.image_backend if settings_row else ""),
        "model": req.model or (settings_row.image_model if settings_row else ""),
        "user_id": user.id,
    }
    job = queue.enqueue(session, JOB_KIND, payload, user_id=user.id, max_attempts=3)
    audit(session, "studio.generate", user_id=user.id, ip=ip, character_id=character.id, job_id=job.id,
          count=req.count, purpose=req.purpose)
    return job


# ---- generation (worker side) -----------------------------------------------------------------------------------


def _job_error(exc: Exception) -> Exception:
    from ainfluencer.jobs.errors import PermanentJobError, TransientJobError

    as_job = getattr(exc, "as_job_error", None)
    if callable(as_job):
        result = as_job()
        if isinstance(result, Exception):
            return result
    if isinstance(exc, TransientJobError | PermanentJobError):
        return exc
    return PermanentJobError(str(exc))


def _json_safe(meta: dict[str, Any]) -> dict[str, Any]:
    import json

    out = {}
    for key, value in meta.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = str(value)
        out[str(key)] = value
    return out


def run_generation(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The job: generate images with the configured backends and ingest each one into the vault."""
    import anyio

    from ainfluencer.backends.image.base import ImageRequest
    from ainfluencer.backends.image.errors import BackendError
    from ainfluencer.backends.image.registry import ImageFallbackChain
    from ainfluencer.jobs.errors import JobCancelled, LeaseLost, PermanentJobError

    runtime = ctx.runtime
    settings = runtime.settings
    count = int(payload.get("count") or 1)
    purpose = str(payload.get("purpose") or "images")
    ctx.progress(1, "preparing")
    with runtime.db.session() as s:
        character = s.get(Character, int(payload["character_id"]))
        if character is None:
            raise PermanentJobError(f"character {payload['character_id']} no longer exists")
        backends = build_backends(s, runtime, preferred=str(payload.get("backend") or ""),
                                  model=str(payload.get("model") or ""))
        face_ref = canonical_asset(s, character)
        face_path = vault.file_path(settings, face_ref) if face_ref is not None else None
    if not backends:
        raise PermanentJobError(NO_BACKEND)
    if purpose == "faces" or face_path is None or not face_path.is_file() \
            or not backends[0].supports_face_reference:
        face_path = None
    per_call = max(1, min(count, min(b.max_batch for b in backends)))
    calls = -(-count // per_call)
    seed = payload.get("seed")

    state = {"call": 0}

    def report(fraction: float, message: str) -> None:
        overall = (state["call"] + min(1.0, max(0.0, fraction))) / calls
        try:
            ctx.progress(2 + int(overall * 83), f"image batch {state['call'] + 1} of {calls}: {message}"[:200])
        except (JobCancelled, LeaseLost):
            pass  # the watcher below cancels the backend call

    async def generate_all() -> list[tuple[Any, str, float]]:
        results: list[tuple[Any, str, float]] = []
        chain = ImageFallbackChain(backends)
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    # The flags are threading.Events set by the job's heartbeat thread: poll them.
                    while True:
                        await anyio.sleep(0.2)
                        if ctx.cancelled.is_set() or ctx.lease_lost.is_set():
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch)
                made = 0
                for call in range(calls):
                    state["call"] = call
                    n = min(per_call, count - made)
                    req = ImageRequest(
                        prompt=str(payload["prompt"]), negative_prompt=str(payload.get("negative_prompt") or ""),
                        width=int(payload.get("width") or 1024), height=int(payload.get("height") or 1024),
                        seed=None if seed is None else int(seed) + made, steps=payload.get("steps"),
                        guidance=payload.get("guidance"), model=None, batch=n, face_reference=face_path,
                    )
                    started = time.perf_counter()
                    out = await chain.generate(req, progress=report)
                    elapsed = (time.perf_counter() - started) / max(1, len(out.images))
                    results.extend((img, out.backend, elapsed) for img in out.images)
                    made += n
                tg.cancel_scope.cancel()
        finally:
            for backend in backends:
                try:
                    await backend.aclose()
                except Exception:  # closing is best effort
                    log.debug("closing %s failed", backend.name, exc_info=True)
        return results

    try:
        images = anyio.run(generate_all)
    except BackendError as exc:
        raise _job_error(exc) from exc
    ctx.check()
    asset_ids: list[int] = []
    decisions: dict[str, int] = {}
    total_cost = Decimal(0)
    for i, (img, backend_name, elapsed) in enumerate(images, start=1):
        ctx.progress(85 + int(14 * (i - 1) / max(1, len(images))), f"scoring and storing image {i} of {len(images)}")
        with runtime.db.session() as s:
            character = s.get(Character, int(payload["character_id"]))
            if character is None:
                raise PermanentJobError("the character was deleted while its images were generated")
            info = vault.GenerationInfo(
                prompt=str(payload["prompt"]), negative_prompt=str(payload.get("negative_prompt") or ""),
                backend=img.backend or backend_name, model=img.model, seed=img.seed,
                cost_usd=float(img.cost_usd or 0), generation_ms=int(elapsed * 1000),
                params={"width": img.width, "height": img.height, "steps": payload.get("steps"),
                        "guidance": payload.get("guidance"), "style": payload.get("style"),
                        "brief": payload.get("brief"), "purpose": purpose,
                        "appearance_id": payload.get("appearance_id"), "face_reference": face_path is not None,
                        "meta": _json_safe(dict(img.meta or {}))},
            )
            tags = ["generated", str(payload.get("style") or "casual")]
            if purpose == "faces":
                tags = ["generated", "candidate-face"]
            result = vault.ingest(
                s, settings=settings, data=img.png_bytes, filename=f"generated-{i}.png", kind=AssetKind.image,
                character=character, user_id=payload.get("user_id"), source=AssetSource.generated,
                generation=info, tags=tags, folder="faces" if purpose == "faces" else "",
                review_state=ReviewState.draft if purpose == "faces" else None, job_id=ctx.job_id,
            )
            asset_ids.append(result.asset.id)
            decision = result.asset.gate_decision or "none"
            decisions[decision] = decisions.get(decision, 0) + 1
            total_cost += Decimal(str(img.cost_usd or 0))
    ctx.progress(100, f"{len(asset_ids)} image(s) in the vault")
    return {"asset_ids": asset_ids, "count": len(asset_ids), "gates": decisions, "cost_usd": str(total_cost),
            "purpose": purpose, "character_id": payload["character_id"]}
