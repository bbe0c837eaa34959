"""Vault and Studio pages: thin handlers over ``services.vault`` and ``services.studio``.

Vault: grid with filters and search, uploads, batch actions (approve, reject, archive, tag, move, zip
download, delete), an asset page with previews, scores, gate reasons and the provenance badge, and a
review queue driven by the keyboard (``vault.js``: a approve, r reject, j/k next/previous).
Studio: appearances, candidate faces and the canonical face, consented reference photos, quality
thresholds, image generation with live progress (``vault.js`` polls the job), image backends (owner).
Every form works without JavaScript.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from ainfluencer.api.deps import SessionDep, client_ip, get_runtime
from ainfluencer.csrf import csrf_protect
from ainfluencer.db.models import Character, Job, User
from ainfluencer.db.models_media import (
    APPEARANCE_FIELDS,
    Asset,
    AssetKind,
    AssetSource,
    AssetTag,
    ReferencePhoto,
    ReviewState,
)
from ainfluencer.errors import AppError, InvalidInput, NotFound
from ainfluencer.services import characters as characters_svc
from ainfluencer.services import studio, vault
from ainfluencer.web.forms import Form, done_notice
from ainfluencer.web.forms import form_text as _text
from ainfluencer.web.routes import CurrentUser, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

PER_PAGE = 48
STATE_TABS = ("all", *(s.value for s in ReviewState))
STATE_LABELS = {"all": "All", "draft": "Draft", "in_review": "In review", "approved": "Approved",
                "rejected": "Rejected", "archived": "Archived"}
SORT_LABELS = {"-created": "Newest", "created": "Oldest", "-face": "Face similarity", "-technical": "Technical score",
               "-size": "Largest"}
STATE_ACTIONS = {"approved": "Approve", "rejected": "Reject", "in_review": "Send to review", "archived": "Archive",
                 "draft": "Back to draft"}
DONE = {
    "uploaded": "Uploaded {n} file{s}.", "approve": "Approved {n} asset{s}.", "reject": "Rejected {n} asset{s}.",
    "archive": "Archived {n} asset{s}.", "review": "Sent {n} asset{s} to review.",
    "draft": "{n} asset{s} back to draft.",
    "tag": "Tagged {n} asset{s}.", "untag": "Removed tags from {n} asset{s}.", "move": "Moved {n} asset{s}.",
    "delete": "Deleted {n} asset{s}.", "saved": "Saved.", "verified": "Provenance checked again.",
    "state": "Review state changed.", "duplicate": "That file was already in the vault.",
    "appearance": "Appearance saved.", "appearance_deleted": "Appearance deleted.",
    "canonical": "Canonical face set: new images are scored against it.",
    "reference": "Reference photo stored with its consent statement.", "reference_deleted": "Reference photo removed.",
    "settings": "Quality thresholds saved.", "backends": "Image backends saved.",
}


# ---- helpers ------------------------------------------------------------------------------------------------


def _int(value: str, field: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not value.lstrip("-").isdigit():
        raise InvalidInput(f"{field.replace('_', ' ')} must be a whole number.", field=field)
    return int(value)


def _float(value: str, field: str) -> float | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{field.replace('_', ' ')} must be a number.", field=field) from None


def _notice(request: Request) -> str:
    return done_notice(request, DONE)


def _safe_back(value: str, default: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") and "\n" not in value else default


def _with(url: str, **params: Any) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _fail(session: Session, back: str, exc: AppError) -> Response:
    session.rollback()
    return redirect(_with(back, error=exc.message))


def _characters(session: Session, user: User) -> list[Character]:
    return list(session.scalars(select(Character).where(characters_svc.visible(user)).order_by(Character.name)))


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def vault_url(params: dict[str, Any], **changes: Any) -> str:
    """The vault list URL with the current filters, some changed."""
    merged = {**params, **changes}
    if merged.get("page") in (1, "1"):
        merged.pop("page")
    if merged.get("sort") == "-created":
        merged.pop("sort")
    query = urlencode({k: v for k, v in merged.items() if v not in (None, "", "all")})
    return "/vault" + (f"?{query}" if query else "")


def _date(value: str, field: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field.replace('_', ' ')} must be a date like 2026-01-31.", field=field) from None


def _size(value: str) -> tuple[int, int]:
    width, _, height = value.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise InvalidInput("Choose the image size as WIDTHxHEIGHT, e.g. 1024x1024.", field="size")
    return int(width), int(height)


def _preview_kind(asset: Asset) -> str:
    return asset.kind.value


def _helpers() -> dict[str, Any]:
    from ainfluencer.media.provenance.metadata import ORIGINS

    return {"state_labels": STATE_LABELS, "verified": vault.provenance_verified, "preview_kind": _preview_kind,
            "fmt_size": _fmt_size, "origins": ORIGINS, "c2pa_status": vault.c2pa_status}


def _fmt_size(n: int | None) -> str:
    if n is None:
        return ""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


# ---- vault list, upload, batch ------------------------------------------------------------------------------------


@router.get("/vault", response_class=HTMLResponse)
def read_vault(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The vault grid with filters, search, uploads and batch actions."""
    qp = request.query_params
    params = {k: qp.get(k, "") for k in ("q", "character_id", "kind", "state", "tag", "folder", "min_face", "gate",
                                         "date_from", "date_to", "sort", "source")}
    error = qp.get("error", "")
    try:
        state = params["state"] or "all"
        if state not in STATE_TABS:
            raise InvalidInput("Unknown review state.", field="state")
        kind = AssetKind(params["kind"]) if params["kind"] in {k.value for k in AssetKind} else None
        source = AssetSource(params["source"]) if params["source"] in {s.value for s in AssetSource} else None
        min_face = _float(params["min_face"], "min_face")
        filters = vault.AssetFilter(
            character_id=_int(params["character_id"], "character_id"), kind=kind,
            review_state=[] if state == "all" else [ReviewState(state)],
            date_from=_date(params["date_from"], "date_from"), date_to=_date(params["date_to"], "date_to"),
            min_face=min_face, gate=params["gate"] or None, tag=params["tag"] or None,
            folder=params["folder"] or None, source=source, q=params["q"] or None,
        )
        sort = params["sort"] if params["sort"] in SORT_LABELS else "-created"
        page_no = max(1, _int(qp.get("page", "1"), "page") or 1)
        page = vault.list_assets(session, user=user, filters=filters, sort=sort, limit=PER_PAGE,
                                 offset=(page_no - 1) * PER_PAGE)
    except AppError as exc:
        error = exc.message
        params = {k: "" for k in params}
        state, sort = "all", "-created"
        page = vault.list_assets(session, user=user, limit=PER_PAGE)
    chars = _characters(session, user)
    counts = vault.state_counts(session, user=user)
    ctx = {
        "active": "vault", "page": page, "params": {**params, "state": state, "sort": sort}, "vault_url": vault_url,
        "characters": chars, "character_names": {c.id: c.name for c in chars},
        "counts": counts, "folders": vault.folders(session, user=user),
        "tags": vault.tag_counts(session, user=user, limit=40), "tabs": STATE_TABS, "sorts": SORT_LABELS,
        "notice": _notice(request), "error": error,
        "queue_count": counts["in_review"],
        "max_upload_mb": get_runtime(request).settings.max_upload_bytes // (1024 * 1024), **_helpers(),
    }
    return render(request, "vault/list.html", ctx, user=user)


@router.post("/vault/upload")
def create_vault_upload(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Upload one or more files into the vault."""
    settings = get_runtime(request).settings
    back = "/vault"
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and (f.filename or f.size)]
    if not files:
        return _fail(session, back, InvalidInput("Choose at least one file to upload."))
    try:
        character = None
        cid = _int(_text(form, "character_id"), "character_id")
        if cid is not None:
            character = characters_svc.get_character(session, cid, user=user)
        tags, folder = _text(form, "tags"), _text(form, "folder")
        origin = _text(form, "origin")
        if not origin:
            raise InvalidInput("Say what the files are: a camera photo, an edited photo, digital art, "
                               "AI-generated or a composite.", field="origin")
        vault.resolve_origin(origin, AssetSource.upload)
        duplicates = 0
        for upload in files:
            filename = upload.filename or ""
            spooled = vault.spool_upload(settings, upload.file, filename=filename)
            try:
                result = vault.ingest(
                    session, settings=settings, data=spooled, filename=filename,
                    kind=vault.claimed_kind(filename, upload.content_type or ""), character=character,
                    user_id=user.id, source=AssetSource.upload, tags=[tags] if tags else [], folder=folder,
                    origin=origin,
                )
            finally:
                spooled.unlink(missing_ok=True)
            duplicates += int(result.duplicate)
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    if duplicates == len(files):
        return redirect(_with(back, done="duplicate"))
    return redirect(_with(back, done="uploaded", n=len(files) - duplicates))


@router.post("/vault/batch")
def create_vault_batch(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Apply one action to the checked assets; 'download' answers with a streamed zip."""
    back = _safe_back(_text(form, "back"), "/vault")
    action = _text(form, "action")
    try:
        ids = [i for i in (_int(v, "ids") for v in form.getlist("ids") if isinstance(v, str)) if i is not None]
        if not ids:
            raise InvalidInput("Select at least one asset first.", field="ids")
        if action == "download":
            from ainfluencer.api.routes.assets import zip_response

            assets = vault.assets_by_ids(session, user=user, ids=ids)
            return zip_response(session, get_runtime(request), assets)
        folder = _text(form, "folder") if action == "move" else None
        result = vault.batch(session, user=user, settings=get_runtime(request).settings, ids=ids, action=action,
                             tags=[_text(form, "tags")], folder=folder, ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    error = "; ".join(f"asset {i}: {why}" for i, why in result.skipped.items())
    return redirect(_with(back, done=action, n=len(result.done), error=error))


# ---- review queue ---------------------------------------------------------------------------------------------


@router.get("/vault/review", response_class=HTMLResponse)
def read_review(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The review queue: one asset at a time, keyboard shortcuts a / r / j / k."""
    try:
        cid = _int(request.query_params.get("character_id", ""), "character_id")
    except AppError:
        cid = None
    items = vault.review_queue(session, user=user, character_id=cid, limit=200)
    chars = _characters(session, user)
    ctx = {"active": "review", "items": items, "characters": chars, "character_id": cid,
           "character_names": {c.id: c.name for c in chars}, "notice": _notice(request),
           "error": request.query_params.get("error", ""), **_helpers()}
    return render(request, "vault/review.html", ctx, user=user)


@router.post("/vault/assets/{asset_id}/review")
def update_asset_review(
    request: Request, asset_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Move one asset to another review state (JSON for the review queue's keyboard, a redirect otherwise)."""
    back = _safe_back(_text(form, "back"), f"/vault/assets/{asset_id}")
    try:
        asset = vault.get_asset(session, asset_id, user=user)
        vault.set_review_state(session, user=user, asset=asset, state=_text(form, "state"), ip=client_ip(request))
    except AppError as exc:
        if _wants_json(request):
            session.rollback()
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status_code)
        return _fail(session, back, exc)
    session.commit()
    if _wants_json(request):
        return JSONResponse({"id": asset.id, "review_state": asset.review_state.value})
    return redirect(_with(back, done="state"))


# ---- one asset ----------------------------------------------------------------------------------------------------


@router.get("/vault/assets/{asset_id}", response_class=HTMLResponse)
def read_asset_page(request: Request, asset_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """One asset: preview, facts, prompt, scores, gate reasons, provenance, tags, folder, review state."""
    asset = vault.get_asset(session, asset_id, user=user)
    character = session.get(Character, asset.character_id) if asset.character_id else None
    reference = session.scalars(select(ReferencePhoto).where(ReferencePhoto.asset_id == asset.id)).first()
    transitions = sorted(vault.TRANSITIONS[ReviewState(asset.review_state)], key=lambda s: list(ReviewState).index(s))
    if asset.source == AssetSource.reference:
        transitions = [t for t in transitions if t != ReviewState.approved]
    ctx = {"active": "vault", "asset": asset, "character": character, "reference": reference,
           "transitions": [(t.value, STATE_ACTIONS[t.value]) for t in transitions], "notice": _notice(request),
           "error": request.query_params.get("error", ""), **_helpers()}
    return render(request, "vault/asset.html", ctx, user=user)


@router.post("/vault/assets/{asset_id}/edit")
def update_asset_page(request: Request, asset_id: int, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Save an asset's tags, folder and caption."""
    back = f"/vault/assets/{asset_id}"
    try:
        asset = vault.get_asset(session, asset_id, user=user)
        vault.update_asset(session, user=user, asset=asset, tags=[_text(form, "tags")], folder=_text(form, "folder"),
                           caption=_text(form, "caption"))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="saved"))


@router.post("/vault/assets/{asset_id}/verify")
def create_asset_verify(request: Request, asset_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Read the asset's provenance back again."""
    back = f"/vault/assets/{asset_id}"
    try:
        asset = vault.get_asset(session, asset_id, user=user)
        vault.verify_provenance(session, settings=get_runtime(request).settings, asset=asset)
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="verified"))


@router.post("/vault/assets/{asset_id}/delete")
def delete_asset_page(request: Request, asset_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Delete one asset (refused while a scheduled post uses it)."""
    try:
        asset = vault.get_asset(session, asset_id, user=user)
        vault.delete_assets(session, user=user, assets=[asset], settings=get_runtime(request).settings,
                            ip=client_ip(request))
    except AppError as exc:
        return _fail(session, f"/vault/assets/{asset_id}", exc)
    session.commit()
    return redirect(_with("/vault", done="delete", n=1))


# ---- studio -------------------------------------------------------------------------------------------------------

NO_BACKEND_HOWTO = (
    "Candidate faces need an image backend, and none is configured. The owner sets one up in Studio → Image "
    "backends (/studio#backends): Automatic1111/Forge (base URL such as http://127.0.0.1:7860, started with "
    "--api), ComfyUI (http://127.0.0.1:8188), diffusers on this machine (pip install 'ainfluencer[diffusers]', "
    "then `ainfluencer models pull`) or OpenAI Images (an API key). Then generate the faces again."
)


def _backends_context(session: Session, request: Request) -> dict[str, Any]:
    from ainfluencer.backends.image.registry import IMAGE_BACKENDS, capabilities

    runtime = get_runtime(request)
    config = studio.backend_config(session)
    known = [capabilities(cls) for cls in IMAGE_BACKENDS.values()]
    has_key = {name: runtime.secrets.get(session, owner_kind=studio.SECRET_KIND, owner_id=0, name=name) is not None
               for name in IMAGE_BACKENDS}
    return {"backend_config": config, "known_backends": known, "has_key": has_key}


@router.get("/studio", response_class=HTMLResponse)
def read_studio_index(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Pick a character to work on; the owner configures image backends here."""
    chars = _characters(session, user)
    ctx = {"active": "studio", "characters": chars, "notice": _notice(request),
           "error": request.query_params.get("error", ""), **_backends_context(session, request)}
    return render(request, "vault/studio_index.html", ctx, user=user)


@router.post("/studio/image-backends")
def update_studio_backends(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Owner: save which image backends run, in order, with their options and API keys."""
    from ainfluencer.backends.image.registry import IMAGE_BACKENDS

    back = "/studio"
    try:
        enabled = [n for n in IMAGE_BACKENDS if _text(form, f"enabled_{n}")]
        enabled.sort(key=lambda n: (_int(_text(form, f"position_{n}"), f"position_{n}") or 99, n))
        backends = {n: {k: _text(form, f"{n}_{k}") for k in ("base_url", "model", "device")} for n in IMAGE_BACKENDS}
        keys = {n: _text(form, f"{n}_api_key") for n in IMAGE_BACKENDS if _text(form, f"{n}_api_key")}
        studio.save_backend_config(session, user=user, runtime=get_runtime(request), order=enabled,
                                   backends=backends, api_keys=keys, ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="backends"))


def _studio_context(request: Request, session: Session, user: User, character: Character) -> dict[str, Any]:
    appearances = studio.list_appearances(session, character=character)
    canonical = studio.canonical_asset(session, character)
    candidates = list(session.scalars(
        select(Asset).where(
            Asset.character_id == character.id, Asset.kind == AssetKind.image,
            Asset.review_state.not_in([ReviewState.rejected, ReviewState.archived]),
            Asset.id.in_(select(AssetTag.asset_id).where(AssetTag.tag == "candidate-face")),
        ).order_by(Asset.id.desc()).limit(24)
    ))
    references = studio.list_reference_photos(session, character=character)
    recent = vault.list_assets(session, user=user, filters=vault.AssetFilter(character_id=character.id,
                                                                               source=AssetSource.generated), limit=12)
    job = None
    job_id = request.query_params.get("job", "")
    if job_id.isdigit():
        found = session.get(Job, int(job_id))
        job = found if found is not None and found.kind == studio.JOB_KIND else None
    settings_row = studio.media_settings(session, character)
    from ainfluencer.media.quality.gates import QualityThresholds

    return {
        "active": "studio", "character": character, "appearances": appearances, "canonical": canonical,
        "candidates": candidates, "references": references, "recent": recent.items, "job": job,
        "styles": studio.STYLE_CATEGORIES, "fields": APPEARANCE_FIELDS,
        "thresholds": QualityThresholds(**(settings_row.thresholds or {})), "media_settings": settings_row,
        "notice": _notice(request), "error": request.query_params.get("error", ""),
        "min_consent": studio.MIN_CONSENT_CHARS, **_backends_context(session, request), **_helpers(),
    }


@router.get("/studio/{character_id}", response_class=HTMLResponse)
def read_studio(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """A character's studio: look, canonical face, reference photos, thresholds and image generation."""
    character = characters_svc.get_character(session, character_id, user=user)
    return render(request, "vault/studio.html", _studio_context(request, session, user, character), user=user)


def _appearance_fields(form: FormData) -> dict[str, str]:
    return {k: _text(form, k) for k in (*APPEARANCE_FIELDS, "negative_prompt")}


@router.post("/studio/{character_id}/appearances")
def create_studio_appearance(
    request: Request, character_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Add an appearance."""
    back = f"/studio/{character_id}"
    try:
        character = characters_svc.get_character(session, character_id, user=user)
        studio.create_appearance(session, user=user, character=character, name=_text(form, "name"),
                                 fields=_appearance_fields(form), ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="appearance") + "#appearances")


@router.post("/studio/appearances/{appearance_id}")
def update_studio_appearance(
    request: Request, appearance_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Save an appearance, or delete it (``action=delete``)."""
    try:
        appearance = studio.get_appearance(session, user=user, appearance_id=appearance_id)
    except AppError as exc:
        return _fail(session, "/studio", exc)
    back = f"/studio/{appearance.character_id}"
    try:
        if _text(form, "action") == "delete":
            studio.delete_appearance(session, user=user, appearance=appearance, ip=client_ip(request))
            done = "appearance_deleted"
        else:
            studio.update_appearance(session, user=user, appearance=appearance, name=_text(form, "name"),
                                     fields=_appearance_fields(form))
            done = "appearance"
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done=done) + "#appearances")


@router.post("/studio/{character_id}/generate")
def create_studio_generation(
    request: Request, character_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Queue image (or candidate face) generation and come back to follow its progress."""
    back = f"/studio/{character_id}"
    try:
        width, height = _size(_text(form, "size", "1024x1024"))
        req = studio.GenerationRequest(
            character_id=character_id, purpose=_text(form, "purpose", "images"),
            appearance_id=_int(_text(form, "appearance_id"), "appearance_id"), brief=_text(form, "brief"),
            style=_text(form, "style", "casual"), count=_int(_text(form, "count", "1"), "count") or 1,
            width=width, height=height,
            seed=_int(_text(form, "seed"), "seed"), negative_prompt=_text(form, "negative_prompt"),
            backend=_text(form, "backend"), model=_text(form, "model"),
        )
        if req.purpose == "faces" and not (req.backend or studio.backend_config(session)["order"]
                                           or studio.media_settings(session, characters_svc.get_character(
                                               session, character_id, user=user)).image_backend):
            raise InvalidInput(NO_BACKEND_HOWTO, field="backend")
        job = studio.request_generation(session, user=user, req=req, ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, job=job.id) + "#progress")


@router.post("/studio/{character_id}/canonical")
def create_studio_canonical(
    request: Request, character_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Use one image as the canonical face."""
    back = f"/studio/{character_id}"
    try:
        character = characters_svc.get_character(session, character_id, user=user)
        asset_id = _int(_text(form, "asset_id"), "asset_id")
        if asset_id is None:
            raise InvalidInput("Choose an image.", field="asset_id")
        asset = vault.get_asset(session, asset_id, user=user)
        studio.pick_canonical_face(session, user=user, settings=get_runtime(request).settings, character=character,
                                   asset=asset, ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="canonical") + "#face")


@router.post("/studio/reference-photos")
def create_studio_reference(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Upload a reference photo; only with the consent checkbox and a written consent statement."""
    try:
        character_id = _int(_text(form, "character_id"), "character_id")
        if character_id is None:
            raise NotFound("Choose the character first.")
    except AppError as exc:
        return _fail(session, "/studio", exc)
    back = f"/studio/{character_id}"
    settings = get_runtime(request).settings
    try:
        character = characters_svc.get_character(session, character_id, user=user)
        confirmed = bool(_text(form, "consent_confirmed"))
        studio.check_consent(_text(form, "consent_statement"), confirmed)
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
            raise InvalidInput("Choose the photo to upload.", field="file")
        spooled = vault.spool_upload(settings, upload.file, filename=upload.filename or "")
        try:
            studio.add_reference_photo(
                session, user=user, settings=settings, character=character, data=spooled,
                filename=upload.filename or "", consent_statement=_text(form, "consent_statement"),
                consent_confirmed=confirmed, subject_name=_text(form, "subject_name"), ip=client_ip(request),
            )
        finally:
            spooled.unlink(missing_ok=True)
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="reference") + "#references")


@router.post("/studio/reference-photos/{photo_id}/delete")
def delete_studio_reference(request: Request, photo_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Withdraw a reference photo."""
    try:
        photo = studio.get_reference_photo(session, user=user, photo_id=photo_id)
    except AppError as exc:
        return _fail(session, "/studio", exc)
    back = f"/studio/{photo.character_id}"
    try:
        studio.delete_reference_photo(session, user=user, settings=get_runtime(request).settings, photo=photo,
                                      ip=client_ip(request))
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="reference_deleted") + "#references")


@router.post("/studio/{character_id}/settings")
def update_studio_settings(
    request: Request, character_id: int, session: SessionDep, user: CurrentUser, form: Form
) -> Response:
    """Save the character's quality thresholds and preferred backend."""
    back = f"/studio/{character_id}"
    try:
        character = characters_svc.get_character(session, character_id, user=user)
        thresholds = {
            "min_face_similarity": _float(_text(form, "min_face_similarity"), "min_face_similarity"),
            "min_technical": _float(_text(form, "min_technical"), "min_technical"),
            "max_phash_distance": _int(_text(form, "max_phash_distance"), "max_phash_distance"),
            "action": _text(form, "action") or None,
            "require_face": bool(_text(form, "require_face")),
        }
        studio.update_media_settings(
            session, user=user, character=character,
            thresholds={k: v for k, v in thresholds.items() if v is not None},
            image_backend=_text(form, "image_backend"), image_model=_text(form, "image_model"),
            ip=client_ip(request),
        )
    except AppError as exc:
        return _fail(session, back, exc)
    session.commit()
    return redirect(_with(back, done="settings") + "#quality")
