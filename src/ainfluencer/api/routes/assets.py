"""Assets: the vault's files with provenance and scores; upload, find, review, tag, move, download, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import select

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.schemas_media import (
    AssetBatch,
    AssetPublic,
    AssetsPublic,
    AssetUpdate,
    AssetUploaded,
    BatchPublic,
    FolderCount,
)
from ainfluencer.db.models import Character
from ainfluencer.db.models_media import Asset, AssetKind, AssetSource, ReviewState
from ainfluencer.errors import InvalidInput, NotFound
from ainfluencer.media.safe_image import MediaRejected
from ainfluencer.services import vault
from ainfluencer.services.characters import get_character

router = APIRouter(prefix="/assets", tags=["assets"])


def asset_public(asset: Asset) -> AssetPublic:
    """Schema for one asset."""
    return AssetPublic(
        id=asset.id, asset_id=asset.id, character_id=asset.character_id, kind=asset.kind.value,
        source=asset.source.value,
        mime=asset.mime, size=asset.size, width=asset.width, height=asset.height, duration_s=asset.duration_s,
        sha256=asset.sha256, original_name=asset.original_name, prompt=asset.prompt,
        negative_prompt=asset.negative_prompt, caption=asset.caption, backend=asset.backend, model=asset.model,
        seed=asset.seed, cost_usd=asset.cost_usd, generation_ms=asset.generation_ms, params=asset.params or {},
        scores=asset.scores or {}, face_similarity=asset.face_similarity, technical_score=asset.technical_score,
        gate_decision=asset.gate_decision, gate_reasons=list(asset.gate_reasons or []),
        provenance=asset.provenance or {}, provenance_verified=vault.provenance_verified(asset),
        review_state=asset.review_state.value, reviewed_by=asset.reviewed_by, reviewed_at=asset.reviewed_at,
        folder=asset.folder, tags=asset.tag_names, job_id=asset.job_id, created_at=asset.created_at,
        file_url=f"/api/v1/assets/{asset.id}/file",
    )


def _enum(value: str, enum: type[AssetKind] | type[AssetSource], field: str) -> AssetKind | AssetSource | None:
    if not value:
        return None
    try:
        return enum(value)
    except ValueError:
        raise InvalidInput(f"{field} is one of {', '.join(e.value for e in enum)}.", field=field) from None


@router.post("", response_model=AssetUploaded, status_code=status.HTTP_201_CREATED)
def create_asset(
    request: Request,
    response: Response,
    principal: Writer,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile | None, File(description="a JPEG/PNG/WebP image, WAV/MP3/OGG/FLAC/M4A or MP4/MOV/WebM")]
    = None,
    character_id: Annotated[str, Form(description="the character it belongs to (optional)")] = "",
    tags: Annotated[str, Form(description="comma-separated tags")] = "",
    folder: Annotated[str, Form(description="virtual folder, e.g. campaigns/summer")] = "",
    kind: Annotated[str, Form(description="image, audio or video; default: from the file")] = "",
    origin: Annotated[str, Form(description=(
        "required: what the file is — camera (IPTC digitalCapture), edited (minorHumanEdits), "
        "created (digitalCreation), ai (trainedAlgorithmicMedia) or composite "
        "(compositeWithTrainedAlgorithmicMedia)"))] = "",
) -> AssetUploaded:
    """Upload a file into the vault: checked, stripped of private metadata, labelled, signed, scored.

    ``origin`` (required) says what the file is; it sets the IPTC digital source type in XMP and in the
    C2PA manifest, so only ``ai`` and ``composite`` uploads are labelled as AI. Missing or unknown: 422.
    """
    if file is None:
        raise MediaRejected("Attach the file as multipart form field 'file'.")
    if not origin.strip():
        raise InvalidInput("Say what the file is: origin is one of camera, edited, created, ai, composite.",
                           field="origin")
    vault.resolve_origin(origin, AssetSource.upload)
    character: Character | None = None
    if character_id.strip():
        if not character_id.strip().isdigit():
            raise InvalidInput("character_id must be a number.", field="character_id")
        character = get_character(session, int(character_id), user=principal.user)
    asset_kind = _enum(kind.strip(), AssetKind, "kind")
    settings = runtime.settings
    filename = file.filename or ""
    if not isinstance(asset_kind, AssetKind):
        asset_kind = vault.claimed_kind(filename, file.content_type or "")
    spooled = vault.spool_upload(settings, file.file, filename=filename)
    try:
        result = vault.ingest(
            session, settings=settings, data=spooled, filename=filename, kind=asset_kind,
            character=character, user_id=principal.user.id, source=AssetSource.upload,
            tags=[tags] if tags else [], folder=folder, origin=origin,
        )
    finally:
        spooled.unlink(missing_ok=True)
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    public = asset_public(result.asset)
    return AssetUploaded(**public.model_dump(), duplicate=result.duplicate)


@router.get("", response_model=AssetsPublic)
def read_assets(
    principal: Reader,
    session: SessionDep,
    character_id: int | None = Query(None),
    kind: AssetKind | None = Query(None),
    review_state: list[ReviewState] = Query(default_factory=list),
    date_from: datetime | None = Query(None, description="created at or after (ISO 8601)"),
    date_to: datetime | None = Query(None, description="created at or before (ISO 8601)"),
    min_face: float | None = Query(None, ge=0, le=1, description="lowest face similarity"),
    min_technical: float | None = Query(None, ge=0, le=1, description="lowest technical score"),
    gate: str | None = Query(None, pattern="^(pass|flag|reject)$"),
    tag: str | None = Query(None, max_length=64),
    folder: str | None = Query(None, max_length=200),
    source: AssetSource | None = Query(None),
    q: str | None = Query(None, max_length=200, description="search prompts, captions, file names and tags"),
    sort: str = Query("-created", pattern="^(-created|created|-face|-technical|-size)$"),
    limit: int = Query(48, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> AssetsPublic:
    """Assets, filtered and searched, newest first by default."""
    filters = vault.AssetFilter(
        character_id=character_id, kind=kind, review_state=review_state, date_from=date_from, date_to=date_to,
        min_face=min_face, min_technical=min_technical, gate=gate, tag=tag, folder=folder, source=source, q=q,
    )
    page = vault.list_assets(session, user=principal.user, filters=filters, sort=sort, limit=limit, offset=offset)
    return AssetsPublic(data=[asset_public(a) for a in page.items], count=page.total)


@router.get("/review-queue", response_model=AssetsPublic)
def read_review_queue(
    principal: Reader, session: SessionDep, character_id: int | None = Query(None),
    limit: int = Query(100, ge=1, le=500),
) -> AssetsPublic:
    """Assets waiting for a person: flagged ones first, then oldest first."""
    rows = vault.review_queue(session, user=principal.user, character_id=character_id, limit=limit)
    return AssetsPublic(data=[asset_public(a) for a in rows], count=len(rows))


@router.get("/folders", response_model=list[FolderCount])
def read_folders(principal: Reader, session: SessionDep) -> list[FolderCount]:
    """Folder labels in use, with counts."""
    return [FolderCount(folder=f, count=n) for f, n in vault.folders(session, user=principal.user)]


def zip_response(session: SessionDep, runtime: RuntimeDep, assets: list[Asset]) -> StreamingResponse:
    """A streamed zip of the assets' files plus manifest.json."""
    ids = {a.character_id for a in assets if a.character_id is not None}
    rows = session.execute(select(Character.id, Character.handle).where(Character.id.in_(ids)))
    handles = {int(cid): str(handle) for cid, handle in rows}
    entries = vault.zip_entries(runtime.settings, assets, handles)
    manifest = [vault.asset_manifest(a) for a in assets]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        vault.zip_stream(entries, manifest), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="ainfluencer-assets-{stamp}.zip"',
                 "Cache-Control": "no-store"},
    )


@router.get("/download", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "a zip archive"}})
def read_assets_zip(
    principal: Reader, session: SessionDep, runtime: RuntimeDep,
    ids: list[int] = Query(..., description="asset ids (repeat the parameter)", max_length=500),
) -> StreamingResponse:
    """Download several assets as one zip (streamed), with a manifest.json of their metadata."""
    assets = vault.assets_by_ids(session, user=principal.user, ids=ids)
    return zip_response(session, runtime, assets)


@router.post("/batch", response_model=BatchPublic)
def create_batch(
    request: Request, body: AssetBatch, principal: Writer, session: SessionDep, runtime: RuntimeDep
) -> BatchPublic:
    """Approve, reject, archive, send to review, tag, untag, move or delete many assets."""
    result = vault.batch(session, user=principal.user, settings=runtime.settings, ids=body.ids, action=body.action,
                         tags=body.tags, folder=body.folder, ip=client_ip(request))
    return BatchPublic(action=result.action, done=result.done, skipped=result.skipped)


@router.get("/{asset_id}", response_model=AssetPublic)
def read_asset(asset_id: int, principal: Reader, session: SessionDep) -> AssetPublic:
    """One asset."""
    return asset_public(vault.get_asset(session, asset_id, user=principal.user))


@router.get("/{asset_id}/file", response_class=FileResponse,
            responses={200: {"content": {"image/*": {}, "audio/*": {}, "video/*": {}}, "description": "the file"}})
def read_asset_file(
    asset_id: int, principal: Reader, session: SessionDep, runtime: RuntimeDep, download: bool = Query(False)
) -> FileResponse:
    """The stored file (inline, or as an attachment with ``download=true``)."""
    asset = vault.get_asset(session, asset_id, user=principal.user)
    path = vault.file_path(runtime.settings, asset)
    if not path.is_file():
        raise NotFound(f"The file of asset {asset_id} is missing from the media folder.")
    return FileResponse(
        path, media_type=asset.mime, filename=f"asset-{asset.id}.{asset.ext}",
        content_disposition_type="attachment" if download else "inline",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.patch("/{asset_id}", response_model=AssetPublic)
def update_asset(
    request: Request, asset_id: int, body: AssetUpdate, principal: Writer, session: SessionDep
) -> AssetPublic:
    """Change tags, folder, caption or review state."""
    asset = vault.get_asset(session, asset_id, user=principal.user)
    vault.update_asset(session, user=principal.user, asset=asset, tags=body.tags, folder=body.folder,
                       caption=body.caption, review_state=body.review_state, ip=client_ip(request))
    return asset_public(asset)


@router.post("/{asset_id}/verify-provenance", response_model=AssetPublic)
def create_provenance_check(asset_id: int, principal: Writer, session: SessionDep, runtime: RuntimeDep) -> AssetPublic:
    """Read the C2PA manifest and XMP label back now and store the outcome."""
    asset = vault.get_asset(session, asset_id, user=principal.user)
    vault.verify_provenance(session, settings=runtime.settings, asset=asset)
    return asset_public(asset)


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_asset(request: Request, asset_id: int, principal: Writer, session: SessionDep, runtime: RuntimeDep) -> None:
    """Delete an asset and its file; refused while a scheduled post uses it."""
    asset = vault.get_asset(session, asset_id, user=principal.user)
    vault.delete_assets(session, user=principal.user, assets=[asset], settings=runtime.settings,
                        ip=client_ip(request))
