"""Studio: appearances, the canonical face, consented reference photos, media settings, image generation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.routes.jobs import job_public
from ainfluencer.api.schemas import JobPublic
from ainfluencer.api.schemas_media import (
    AppearanceCreate,
    AppearancePublic,
    AppearancesPublic,
    AppearanceUpdate,
    CanonicalPick,
    GenerateImages,
    ImageBackendsPublic,
    ImageBackendsUpdate,
    MediaSettingsPublic,
    MediaSettingsUpdate,
    ReferencePhotoPublic,
    ReferencePhotosPublic,
    StylePublic,
)
from ainfluencer.db.models_media import Appearance, CharacterMediaSettings, ReferencePhoto
from ainfluencer.errors import InvalidInput
from ainfluencer.media.safe_image import MediaRejected
from ainfluencer.services import studio, vault
from ainfluencer.services.characters import get_character

router = APIRouter(prefix="/studio", tags=["studio"])


def appearance_public(a: Appearance) -> AppearancePublic:
    """Schema for one appearance."""
    return AppearancePublic(
        id=a.id, character_id=a.character_id, name=a.name, face=a.face, hair=a.hair, eyes=a.eyes,
        skin_tone=a.skin_tone, body_type=a.body_type, style=a.style, clothing=a.clothing, settings=a.settings,
        aesthetic=a.aesthetic, negative_prompt=a.negative_prompt, is_canonical=a.is_canonical,
        canonical_asset_id=a.canonical_asset_id, has_face_embedding=bool(a.face_embedding),
        created_at=a.created_at, updated_at=a.updated_at,
    )


def reference_public(p: ReferencePhoto) -> ReferencePhotoPublic:
    """Schema for one reference photo."""
    return ReferencePhotoPublic(
        id=p.id, character_id=p.character_id, asset_id=p.asset_id, subject_name=p.subject_name,
        consent_statement=p.consent_statement, consented_by=p.consented_by, consented_at=p.consented_at,
        file_url=f"/api/v1/assets/{p.asset_id}/file",
    )


def settings_public(row: CharacterMediaSettings) -> MediaSettingsPublic:
    """Schema for a character's media settings."""
    from ainfluencer.media.quality.gates import QualityThresholds

    return MediaSettingsPublic(
        character_id=row.character_id, thresholds=QualityThresholds(**(row.thresholds or {})).model_dump(),
        image_backend=row.image_backend, image_model=row.image_model,
    )


@router.get("/styles", response_model=list[StylePublic])
def read_styles(principal: Reader) -> list[StylePublic]:
    """Style categories an image request may name."""
    return [StylePublic(name=k, prompt=v) for k, v in studio.STYLE_CATEGORIES.items()]


@router.get("/characters/{character_id}/appearances", response_model=AppearancesPublic)
def read_appearances(character_id: int, principal: Reader, session: SessionDep) -> AppearancesPublic:
    """A character's appearances, the canonical one first."""
    character = get_character(session, character_id, user=principal.user)
    rows = studio.list_appearances(session, character=character)
    return AppearancesPublic(data=[appearance_public(a) for a in rows], count=len(rows))


@router.post("/characters/{character_id}/appearances", response_model=AppearancePublic,
             status_code=status.HTTP_201_CREATED)
def create_appearance(
    request: Request, character_id: int, body: AppearanceCreate, principal: Writer, session: SessionDep
) -> AppearancePublic:
    """Add a named appearance (the first one becomes the canonical appearance)."""
    character = get_character(session, character_id, user=principal.user)
    fields = body.model_dump(exclude={"name"}, exclude_none=True)
    return appearance_public(studio.create_appearance(session, user=principal.user, character=character,
                                                      name=body.name, fields=fields, ip=client_ip(request)))


@router.patch("/appearances/{appearance_id}", response_model=AppearancePublic)
def update_appearance(
    appearance_id: int, body: AppearanceUpdate, principal: Writer, session: SessionDep
) -> AppearancePublic:
    """Change an appearance."""
    appearance = studio.get_appearance(session, user=principal.user, appearance_id=appearance_id)
    fields = body.model_dump(exclude={"name"}, exclude_none=True)
    return appearance_public(studio.update_appearance(session, user=principal.user, appearance=appearance,
                                                      name=body.name, fields=fields))


@router.delete("/appearances/{appearance_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_appearance(request: Request, appearance_id: int, principal: Writer, session: SessionDep) -> None:
    """Remove an appearance (not the one holding the canonical face)."""
    appearance = studio.get_appearance(session, user=principal.user, appearance_id=appearance_id)
    studio.delete_appearance(session, user=principal.user, appearance=appearance, ip=client_ip(request))


@router.post("/characters/{character_id}/canonical-face", response_model=AppearancePublic)
def create_canonical_face(
    request: Request, character_id: int, body: CanonicalPick, principal: Writer, session: SessionDep,
    runtime: RuntimeDep,
) -> AppearancePublic:
    """Make one of the character's images its canonical face (its identity embedding is stored)."""
    character = get_character(session, character_id, user=principal.user)
    asset = vault.get_asset(session, body.asset_id, user=principal.user)
    appearance = None
    if body.appearance_id is not None:
        appearance = studio.get_appearance(session, user=principal.user, appearance_id=body.appearance_id)
    return appearance_public(studio.pick_canonical_face(
        session, user=principal.user, settings=runtime.settings, character=character, asset=asset,
        appearance=appearance, ip=client_ip(request)))


@router.get("/characters/{character_id}/reference-photos", response_model=ReferencePhotosPublic)
def read_reference_photos(character_id: int, principal: Reader, session: SessionDep) -> ReferencePhotosPublic:
    """A character's consented reference photos."""
    character = get_character(session, character_id, user=principal.user)
    rows = studio.list_reference_photos(session, character=character)
    return ReferencePhotosPublic(data=[reference_public(p) for p in rows], count=len(rows))


@router.post("/reference-photos", response_model=ReferencePhotoPublic, status_code=status.HTTP_201_CREATED)
def create_reference_photo(
    request: Request,
    principal: Writer,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile | None, File(description="a JPEG/PNG/WebP photo")] = None,
    character_id: Annotated[str, Form()] = "",
    consent_statement: Annotated[str, Form(description="who agreed, to what, and when")] = "",
    consent_confirmed: Annotated[str, Form(description="true: the person agreed to this use")] = "",
    subject_name: Annotated[str, Form()] = "",
) -> ReferencePhotoPublic:
    """Upload a reference photo of a real person; refused without a recorded consent statement."""
    if not character_id.strip().isdigit():
        raise InvalidInput("character_id is required.", field="character_id")
    character = get_character(session, int(character_id), user=principal.user)
    if file is None:
        raise MediaRejected("Attach the photo as multipart form field 'file'.")
    confirmed = consent_confirmed.strip().lower() in ("1", "true", "on", "yes")
    studio.check_consent(consent_statement, confirmed)  # before the file is read: nothing is stored without it
    spooled = vault.spool_upload(runtime.settings, file.file, filename=file.filename or "")
    try:
        photo = studio.add_reference_photo(
            session, user=principal.user, settings=runtime.settings, character=character, data=spooled,
            filename=file.filename or "", consent_statement=consent_statement, consent_confirmed=confirmed,
            subject_name=subject_name, ip=client_ip(request),
        )
    finally:
        spooled.unlink(missing_ok=True)
    return reference_public(photo)


@router.delete("/reference-photos/{photo_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_reference_photo(
    request: Request, photo_id: int, principal: Writer, session: SessionDep, runtime: RuntimeDep
) -> None:
    """Withdraw a reference photo (its file is deleted)."""
    photo = studio.get_reference_photo(session, user=principal.user, photo_id=photo_id)
    studio.delete_reference_photo(session, user=principal.user, settings=runtime.settings, photo=photo,
                                  ip=client_ip(request))


@router.get("/characters/{character_id}/media-settings", response_model=MediaSettingsPublic)
def read_media_settings(character_id: int, principal: Reader, session: SessionDep) -> MediaSettingsPublic:
    """A character's quality-gate thresholds and preferred image backend."""
    character = get_character(session, character_id, user=principal.user)
    return settings_public(studio.media_settings(session, character))


@router.put("/characters/{character_id}/media-settings", response_model=MediaSettingsPublic)
def update_media_settings(
    request: Request, character_id: int, body: MediaSettingsUpdate, principal: Writer, session: SessionDep
) -> MediaSettingsPublic:
    """Change a character's thresholds (flag or reject below them) and preferred backend/model."""
    character = get_character(session, character_id, user=principal.user)
    row = studio.update_media_settings(session, user=principal.user, character=character,
                                       thresholds=body.thresholds, image_backend=body.image_backend,
                                       image_model=body.image_model, ip=client_ip(request))
    return settings_public(row)


@router.post("/generate", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def create_generation(request: Request, body: GenerateImages, principal: Writer, session: SessionDep) -> JobPublic:
    """Queue image generation; follow the job at /api/v1/jobs/{id} (its result lists the new asset ids)."""
    req = studio.GenerationRequest(**body.model_dump())
    job = studio.request_generation(session, user=principal.user, req=req, ip=client_ip(request))
    return job_public(job)


def _backends_public(session: SessionDep, runtime: RuntimeDep) -> ImageBackendsPublic:
    from ainfluencer.backends.image.registry import IMAGE_BACKENDS, capabilities

    config = studio.backend_config(session)
    has_key = {
        name: runtime.secrets.get(session, owner_kind=studio.SECRET_KIND, owner_id=0, name=name) is not None
        for name in IMAGE_BACKENDS
    }
    return ImageBackendsPublic(order=config["order"], backends=config["backends"], has_api_key=has_key,
                               known=[capabilities(cls) for cls in IMAGE_BACKENDS.values()])


@router.get("/image-backends", response_model=ImageBackendsPublic)
def read_image_backends(principal: Reader, session: SessionDep, runtime: RuntimeDep) -> ImageBackendsPublic:
    """Which image backends are configured, in order, and what each registered backend can do."""
    return _backends_public(session, runtime)


@router.put("/image-backends", response_model=ImageBackendsPublic)
def update_image_backends(
    request: Request, body: ImageBackendsUpdate, principal: Writer, session: SessionDep, runtime: RuntimeDep
) -> ImageBackendsPublic:
    """Owner: set the image backends, their order and options; API keys are stored encrypted."""
    studio.save_backend_config(
        session, user=principal.user, runtime=runtime, order=body.order,
        backends={k: v.model_dump(exclude_none=True) for k, v in body.backends.items()},
        api_keys=body.api_keys, ip=client_ip(request),
    )
    return _backends_public(session, runtime)
