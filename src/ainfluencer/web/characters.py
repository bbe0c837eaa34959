"""Character pages and the Settings page for text backends: thin handlers over the services.

Dashboard (grid/list, filter, search, sort, pages, bulk actions), create/edit with trait sliders and a live
preview, writing, model settings, import/export, and Settings → Text models with the price table.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from ainfluencer.api.deps import SessionDep, client_ip, get_runtime
from ainfluencer.characters.persona import (
    DISCLOSURE_LINE,
    TRAIT_NAMES,
    Persona,
    trait_guidance,
    trait_guides,
    trait_level,
)
from ainfluencer.csrf import csrf_protect
from ainfluencer.db.models import Character, User
from ainfluencer.errors import AppError, InvalidInput, PermissionDenied
from ainfluencer.services import characters as svc
from ainfluencer.services import writing
from ainfluencer.services.characters import InvalidFields
from ainfluencer.web.forms import Form, done_notice
from ainfluencer.web.forms import form_text as _text
from ainfluencer.web.routes import CurrentUser, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

PER_PAGE = {"grid": 24, "list": 50}
VIEWS = ("grid", "list")
STATUS_TABS = ("all", "active", "paused", "error", "archived")
PROFILE_FIELDS = ("name", "handle", "bio", "age", "location", "languages", "interests", "style", "timezone",
                  "disclosure_text")
MAX_UPLOAD = 256 * 1024
DONE_MESSAGES = {
    "pause": "Paused {n} character{s}.", "resume": "Resumed {n} character{s}.",
    "archive": "Archived {n} character{s}.", "delete": "Deleted {n} character{s}.",
    "created": "Character created.", "saved": "Changes saved.", "duplicated": "Copy created; it starts paused.",
    "template": "Persona saved as a template.", "imported": "Persona imported.", "model": "Model settings saved.",
}
_SPLIT_SHORT = re.compile(r"[\n,]+")


# ---- form helpers -----------------------------------------------------------------------------------------


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _short_items(value: str) -> list[str]:
    return [item.strip() for item in _SPLIT_SHORT.split(value) if item.strip()]


def _number(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def persona_to_form(p: Persona) -> dict[str, str]:
    """A persona as the strings its form fields show."""
    form = {f"trait_{n}": f"{float(getattr(p.traits, n)):.2f}" for n in TRAIT_NAMES}
    form.update(
        tone_of_voice=p.tone_of_voice, topics="\n".join(p.topics), taboo_topics="\n".join(p.taboo_topics),
        do_rules="\n".join(p.do_rules), dont_rules="\n".join(p.dont_rules), emoji_habit=p.emoji_habit,
        emoji_palette=" ".join(p.emoji_palette), hashtag_min=str(p.hashtag_habit.min_count),
        hashtag_max=str(p.hashtag_habit.max_count), hashtag_style=p.hashtag_habit.style,
        hashtag_signature=" ".join(f"#{t}" for t in p.hashtag_habit.signature),
        signature_phrases="\n".join(p.signature_phrases), target_audience=p.target_audience,
        languages=", ".join(p.languages), bio=p.bio, age="" if p.age is None else str(p.age), location=p.location,
        interests="\n".join(p.interests), style=p.style,
    )
    return form


def persona_from_form(form: FormData) -> dict[str, Any]:
    """The persona dict a form describes; values that do not parse are passed on so validation names them."""
    traits = {n: _number(_text(form, f"trait_{n}", "0.5")) for n in TRAIT_NAMES}
    age_raw = _text(form, "age").strip()
    age: int | str | None = None
    if age_raw:
        age = int(age_raw) if age_raw.isdigit() else age_raw
    return {
        "traits": traits,
        "tone_of_voice": _text(form, "tone_of_voice"),
        "topics": _short_items(_text(form, "topics")),
        "taboo_topics": _short_items(_text(form, "taboo_topics")),
        "do_rules": _lines(_text(form, "do_rules")),
        "dont_rules": _lines(_text(form, "dont_rules")),
        "emoji_habit": _text(form, "emoji_habit", "light"),
        "emoji_palette": _text(form, "emoji_palette").split(),
        "hashtag_habit": {
            "min_count": _number(_text(form, "hashtag_min", "1")),
            "max_count": _number(_text(form, "hashtag_max", "3")),
            "style": _text(form, "hashtag_style", "lowercase"),
            "signature": [t for t in re.split(r"[\s,]+", _text(form, "hashtag_signature")) if t.strip("#")],
        },
        "signature_phrases": _lines(_text(form, "signature_phrases")),
        "target_audience": _text(form, "target_audience"),
        "languages": _short_items(_text(form, "languages")) or ["en"],
        "bio": _text(form, "bio"),
        "age": age,
        "location": _text(form, "location"),
        "interests": _short_items(_text(form, "interests")),
        "style": _text(form, "style"),
    }


_PERSONA_FIELD_TO_FORM = {
    "persona.hashtag_habit.min_count": "hashtag_min", "persona.hashtag_habit.max_count": "hashtag_max",
    "persona.hashtag_habit.style": "hashtag_style", "persona.hashtag_habit.signature": "hashtag_signature",
    "persona.hashtag_habit": "hashtag_max",
}


def form_field(field: str | None) -> str:
    """The form field an error belongs next to."""
    if not field:
        return "_form"
    if field in _PERSONA_FIELD_TO_FORM:
        return _PERSONA_FIELD_TO_FORM[field]
    if field.startswith("persona.traits."):
        return "trait_" + field.split(".")[2]
    if field.startswith("persona."):
        return field.split(".")[1]
    return field.split(".")[0]


def form_errors(exc: AppError) -> dict[str, str]:
    """Errors keyed by form field, each message once."""
    pairs = exc.errors.items() if isinstance(exc, InvalidFields) else [(exc.field, exc.message)]
    out: dict[str, str] = {}
    for field, message in pairs:
        out.setdefault(form_field(field), _strip_field_prefix(message))
    return out


def _strip_field_prefix(message: str) -> str:
    # Persona errors read "traits.warmth: trait 'warmth' must be …"; next to the field the path is noise.
    return re.sub(r"^[a-z_.0-9]+(?: \(line \d+\))?: ", "", message)


def _faces(session: Session, character_ids: list[int]) -> dict[int, int]:
    from ainfluencer.posts.dashboard import avatars

    return avatars(session, character_ids)


def _trait_rows(form: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for name in TRAIT_NAMES:
        raw = form.get(f"trait_{name}", "0.50")
        try:
            value = min(1.0, max(0.0, float(raw)))
        except ValueError:
            value = 0.5
        rows.append({"name": name, "value": f"{value:.2f}", "level": trait_level(value),
                     "guidance": trait_guidance(name, value), "guides": trait_guides(name)})
    return rows


def diff_words(before: str, after: str) -> Markup:
    """``after`` with the words that changed since ``before`` marked (<ins>) and removed ones struck (<del>)."""
    a, b = re.findall(r"\S+|\s+", before), re.findall(r"\S+|\s+", after)
    out: list[Markup] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(escape("".join(b[j1:j2])))
            continue
        removed, added = "".join(a[i1:i2]).strip(), "".join(b[j1:j2])
        if removed:
            out.append(Markup("<del>{}</del>").format(removed))
            if added.strip():
                out.append(Markup(" "))
        if added.strip():
            out.append(Markup("<ins>{}</ins>").format(added))
        elif added:
            out.append(escape(added))
    return Markup("").join(out)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _choices(session: Session) -> dict[str, Any]:
    return {
        "templates": svc.list_templates(session),
        "backends": svc.backend_names(session),
        "options": writing.writing_options(),
        "trait_names": TRAIT_NAMES,
        "disclosure_default": DISCLOSURE_LINE,
    }


def _notice(request: Request) -> str:
    return done_notice(request, DONE_MESSAGES)


def _character(session: Session, character_id: int, user: User) -> Character:
    return svc.get_character(session, character_id, user=user)


# ---- dashboard --------------------------------------------------------------------------------------------


def _list_url(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    clean = {k: v for k, v in merged.items() if v not in (None, "", "all") and not (k == "page" and v == 1)
             and not (k == "sort" and v == "-created") and not (k == "view" and v == "grid")}
    return "/characters" + (f"?{urlencode(clean)}" if clean else "")


@router.get("/characters", response_class=HTMLResponse)
def read_characters(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The characters dashboard: grid or list, filter, search, sort, pages, bulk actions, statistics."""
    q = request.query_params
    view = q.get("view", "grid") if q.get("view") in VIEWS else "grid"
    status = q.get("status", "all")
    status = status if status in STATUS_TABS else "all"
    sort = q.get("sort", "-created") if q.get("sort") in svc.SORTS else "-created"
    search = (q.get("q") or "").strip()[:100]
    try:
        page_no = max(1, int(q.get("page", "1")))
    except ValueError:
        page_no = 1
    per_page = PER_PAGE[view]
    page = svc.list_characters(session, user=user, status=None if status == "all" else status, q=search, sort=sort,
                               limit=per_page, offset=(page_no - 1) * per_page, with_counts=True)
    if page_no > page.pages:
        page = svc.list_characters(session, user=user, status=None if status == "all" else status, q=search,
                                   sort=sort, limit=per_page, offset=(page.pages - 1) * per_page, with_counts=True)
    params = {"view": view, "status": status, "sort": sort, "q": search, "page": page.page}
    window = range(max(1, page.page - 2), min(page.pages, page.page + 2) + 1)
    ctx = {
        "active": "characters", "page": page, "stats": svc.stats_for(session, page.items), "view": view,
        "faces": _faces(session, [c.id for c in page.items]),
        "status": status, "sort": sort, "q": search, "sorts": svc.SORTS, "tabs": STATUS_TABS,
        "params": params, "list_url": _list_url, "window": window, "notice": _notice(request),
        "public_bio": svc.public_bio, "not_yet": svc.NOT_YET,
    }
    return render(request, "characters/list.html", ctx, user=user)


@router.post("/characters/bulk", response_class=HTMLResponse)
def create_bulk_action(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Pause, resume or archive the selected characters; deleting asks for confirmation first."""
    action = _text(form, "action")
    back = _text(form, "back", "/characters")
    back = back if back.startswith("/characters") and "//" not in back else "/characters"
    ids: list[int] = []
    for raw in form.getlist("ids"):
        if isinstance(raw, str) and raw.isdigit():
            ids.append(int(raw))
    if not ids:
        return redirect(_with_params(back, error="none"))
    if action == "delete" and _text(form, "confirm") != "yes":
        chosen = [c for c in (session.get(Character, i) for i in ids[: svc.BULK_MAX]) if c is not None
                  and (user.is_owner or c.user_id == user.id)]
        ctx = {"active": "characters", "chosen": chosen, "back": back}
        return render(request, "characters/confirm_bulk_delete.html", ctx, user=user)
    result = svc.bulk_action(session, user=user, ids=ids, action=action, settings=get_runtime(request).settings,
                             ip=client_ip(request))
    session.commit()
    return redirect(_with_params(back, done=action, n=len(result.done)))


def _with_params(url: str, **params: Any) -> str:
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith(("done=", "n=", "error="))]
    kept += [urlencode({k: v}) for k, v in params.items()]
    return base + "?" + "&".join(kept)


# ---- create / edit ------------------------------------------------------------------------------------------


def _blank_form(session: Session, template: str | None) -> tuple[dict[str, str], str]:
    persona = Persona()
    chosen = ""
    if template:
        try:
            persona = svc.persona_from_template_key(session, template)
            chosen = template
        except InvalidInput:
            chosen = ""
    form = persona_to_form(persona)
    form.update(name="", handle="", timezone="UTC", disclosure_text=DISCLOSURE_LINE, template=chosen)
    return form, chosen


def _form_page(request: Request, session: Session, user: User, *, form: dict[str, str], errors: dict[str, str],
               character: Character | None, status_code: int = 200, preview: Any = None) -> HTMLResponse:
    ctx = {
        "active": "characters", "form": form, "errors": errors, "character": character,
        "traits": _trait_rows(form), "preview": preview, "diff_words": diff_words, **_choices(session),
    }
    return render(request, "characters/form.html", ctx, user=user, status_code=status_code)


@router.get("/characters/new", response_class=HTMLResponse)
def read_new_character(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The create form, blank or filled from a persona template (?template=slug)."""
    form, _ = _blank_form(session, request.query_params.get("template"))
    return _form_page(request, session, user, form=form, errors={}, character=None)


def _raw_form(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


@router.post("/characters/new", response_class=HTMLResponse)
def create_character(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Create the character; on errors show them next to their fields with every value kept."""
    raw = _raw_form(form)
    try:
        character = svc.create_character(
            session, user=user, name=raw.get("name", ""), handle=raw.get("handle") or None, bio=raw.get("bio", ""),
            persona=persona_from_form(form), disclosure_text=raw.get("disclosure_text", DISCLOSURE_LINE),
            timezone=raw.get("timezone") or "UTC", ip=client_ip(request),
        )
    except AppError as exc:
        session.rollback()
        return _form_page(request, session, user, form=raw, errors=form_errors(exc), character=None,
                          status_code=exc.status_code)
    session.commit()
    return redirect(f"/characters/{character.id}?done=created")


def _character_form(character: Character) -> dict[str, str]:
    form = persona_to_form(svc.persona_of(character))
    form.update(name=character.name, handle=character.handle, bio=character.bio, timezone=character.timezone,
                disclosure_text=character.disclosure_text or DISCLOSURE_LINE,
                disclosure_enabled="on" if character.disclosure_enabled else "")
    return form


@router.get("/characters/{character_id}/edit", response_class=HTMLResponse)
def read_edit_character(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Edit profile and persona: trait sliders with their values, and a live preview."""
    character = _character(session, character_id, user)
    return _form_page(request, session, user, form=_character_form(character), errors={}, character=character)


@router.post("/characters/{character_id}/edit", response_class=HTMLResponse)
def update_character(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                     form: Form) -> Response:
    """Save profile and persona; nothing is saved when any field is wrong."""
    character = _character(session, character_id, user)
    raw = _raw_form(form)
    changes: dict[str, Any] = {
        "name": raw.get("name", ""), "handle": raw.get("handle", ""), "bio": raw.get("bio", ""),
        "persona": persona_from_form(form), "timezone": raw.get("timezone") or "UTC",
        "disclosure_text": raw.get("disclosure_text", ""),
        "disclosure_enabled": raw.get("disclosure_enabled") == "on",
    }
    if not changes["disclosure_enabled"] and character.disclosure_enabled and raw.get("disclosure_confirm") != "yes":
        exc = InvalidInput("Tick the confirmation to turn the disclosure off; your name and the time are recorded.",
                           field="disclosure_confirm")
        return _form_page(request, session, user, form=raw, errors=form_errors(exc), character=character,
                          status_code=422)
    try:
        svc.update_character(session, user=user, character=character, changes=changes, ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        character = _character(session, character_id, user)
        return _form_page(request, session, user, form=raw, errors=form_errors(exc), character=character,
                          status_code=exc.status_code)
    session.commit()
    return redirect(f"/characters/{character.id}?done=saved")


# ---- preview ---------------------------------------------------------------------------------------------


def _preview(request: Request, session: Session, user: User, form: FormData,
             character: Character | None) -> tuple[writing.Preview | None, dict[str, str]]:
    try:
        persona = svc.clean_persona(persona_from_form(form))
    except AppError as exc:
        return None, form_errors(exc)
    seed_raw = _text(form, "seed")
    seed = int(seed_raw) if seed_raw.isdigit() and _text(form, "regenerate") != "1" else None
    if character is not None:
        baseline = svc.persona_of(character)
        name, handle = character.name, character.handle
    else:
        template = _text(form, "template")
        try:
            baseline = svc.persona_from_template_key(session, template) if template else Persona()
        except InvalidInput:
            baseline = Persona()
        name = " ".join(_text(form, "name").split()) or "New character"
        handle = _text(form, "handle").strip().lstrip("@").lower() or svc.suggest_handle(name)
    platforms = [p for p in (_text(form, "preview_platform_1", "instagram"), _text(form, "preview_platform_2", "x"))
                 if p in writing.PLATFORM_RULES] or ["instagram", "x"]
    result = writing.preview(
        session, get_runtime(request), persona=persona, name=name, handle=handle, character=character,
        baseline=baseline, platforms=platforms, seed=seed, brief=_text(form, "preview_brief")[:300],
        use_model=_text(form, "preview_model") == "on" and character is not None,
    )
    session.commit()  # a model preview records its usage
    return result, {}


def _preview_response(request: Request, session: Session, user: User, form: FormData,
                      character: Character | None) -> HTMLResponse:
    result, errors = _preview(request, session, user, form, character)
    if _is_htmx(request):
        ctx = {"preview": result, "errors": errors, "diff_words": diff_words, "character": character,
               "form": _raw_form(form)}
        return render(request, "characters/_preview.html", ctx, user=user)
    return _form_page(request, session, user, form=_raw_form(form), errors=errors, character=character,
                      preview=result, status_code=422 if errors else 200)


@router.post("/characters/preview", response_class=HTMLResponse)
def create_new_preview(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> HTMLResponse:
    """Preview an unsaved persona (the create form)."""
    return _preview_response(request, session, user, form, None)


@router.post("/characters/{character_id}/preview", response_class=HTMLResponse)
def create_preview(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                   form: Form) -> HTMLResponse:
    """Preview edited persona values against the saved ones (same seed: the difference is the traits)."""
    return _preview_response(request, session, user, form, _character(session, character_id, user))


# ---- one character ---------------------------------------------------------------------------------------


def _detail(request: Request, session: Session, user: User, character: Character, *, status_code: int = 200,
            **extra: Any) -> HTMLResponse:
    texts, total_texts = writing.list_generated(session, character=character, limit=10)
    stats = svc.character_stats(session, character)
    ctx = {
        "active": "characters", "character": character, "persona": svc.persona_of(character), "stats": stats,
        "public_bio": svc.public_bio(character), "texts": texts, "total_texts": total_texts,
        "usage": svc.usage_by_model(session, character=character), "notice": _notice(request),
        "chain": writing.plan_chain(session, character), "not_yet": svc.NOT_YET,
        "template_last": writing.ends_with_template(character),
        "gen_form": {"platform": "instagram", "kind": "", "style": "", "template": "", "brief": "", "reply_to": ""},
        "gen_errors": {}, "generated": None, "template_form": {"name": "", "description": ""}, "template_errors": {},
        "cap_reached": character.monthly_usage_cap_usd is not None
        and stats.paid_cost_month_usd >= character.monthly_usage_cap_usd,
        **_choices(session),
    }
    ctx.update(extra)
    return render(request, "characters/detail.html", ctx, user=user, status_code=status_code)


@router.get("/characters/import", response_class=HTMLResponse)
def read_import(request: Request, user: CurrentUser) -> HTMLResponse:
    """Create a character from an exported persona file."""
    return render(request, "characters/import.html", {"active": "characters", "form": {}, "errors": {}}, user=user)


async def _upload_text(form: FormData) -> str:
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return "\x00too-large"
        return data.decode("utf-8-sig", "replace")
    return _text(form, "persona_json")


async def upload_text(request: Request) -> str:
    """The persona file's text: an uploaded file, else the pasted JSON."""
    return await _upload_text(await request.form())


UploadText = Annotated[str, Depends(upload_text)]


@router.post("/characters/import", response_class=HTMLResponse)
def create_import(request: Request, session: SessionDep, user: CurrentUser, form: Form,
                  text: UploadText) -> Response:
    """Create from a persona file; a refused file saves nothing and says what is wrong, where."""
    raw = {"name": _text(form, "name"), "handle": _text(form, "handle"), "persona_json": _text(form, "persona_json")}
    try:
        if text == "\x00too-large":
            raise InvalidInput(f"The file is larger than {MAX_UPLOAD // 1024} KB.", field="json")
        if not text.strip():
            raise InvalidInput("Choose a persona file or paste its JSON.", field="json")
        character = svc.import_character(session, user=user, text=text, name=raw["name"],
                                         handle=raw["handle"] or None, ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        field = exc.field if exc.field in ("name", "handle") else "json"
        errors = {field: exc.message}
        return render(request, "characters/import.html", {"active": "characters", "form": raw, "errors": errors},
                      user=user, status_code=exc.status_code)
    session.commit()
    return redirect(f"/characters/{character.id}?done=imported")


@router.get("/characters/{character_id}", response_class=HTMLResponse)
def read_character(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """One character: profile with disclosure, statistics, writing, recent texts, usage and actions."""
    return _detail(request, session, user, _character(session, character_id, user))


@router.post("/characters/{character_id}/status")
def create_status_action(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                         form: Form) -> Response:
    """Pause, resume or archive one character."""
    character = _character(session, character_id, user)
    action = _text(form, "action")
    svc.change_status(session, user=user, character=character, action=action, ip=client_ip(request))
    session.commit()
    return redirect(f"/characters/{character.id}?done={action}")


@router.post("/characters/{character_id}/duplicate")
def create_duplicate(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Copy the character (profile, persona, model settings); the copy starts paused."""
    copy = svc.duplicate_character(session, user=user, character=_character(session, character_id, user),
                                   ip=client_ip(request))
    session.commit()
    return redirect(f"/characters/{copy.id}/edit?done=duplicated")


@router.get("/characters/{character_id}/delete", response_class=HTMLResponse)
def read_delete(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Ask before deleting."""
    character = _character(session, character_id, user)
    stats = svc.character_stats(session, character)
    return render(request, "characters/confirm_delete.html",
                  {"active": "characters", "character": character, "stats": stats}, user=user)


@router.post("/characters/{character_id}/delete")
def delete_character(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                     form: Form) -> Response:
    """Delete after confirmation."""
    character = _character(session, character_id, user)
    if _text(form, "confirm") != "yes":
        return redirect(f"/characters/{character_id}/delete")
    svc.delete_character(session, user=user, character=character, settings=get_runtime(request).settings,
                         ip=client_ip(request))
    session.commit()
    return redirect("/characters?done=delete&n=1")


@router.get("/characters/{character_id}/export.json")
def read_export(character_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Download the persona as versioned JSON."""
    character = _character(session, character_id, user)
    return Response(svc.export_json(character), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{character.handle}.persona.json"'})


@router.get("/characters/{character_id}/prompt.txt")
def read_prompt(character_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Download the persona as a plain-text system prompt."""
    character = _character(session, character_id, user)
    return Response(svc.export_prompt(character), media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{character.handle}.prompt.txt"'})


@router.post("/characters/{character_id}/persona-import", response_class=HTMLResponse)
def update_persona_import(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                          text: UploadText) -> Response:
    """Replace the persona with an uploaded file (nothing changes when it is refused)."""
    character = _character(session, character_id, user)
    try:
        if text == "\x00too-large":
            raise InvalidInput(f"The file is larger than {MAX_UPLOAD // 1024} KB.", field="json")
        svc.replace_persona(session, user=user, character=character, text=text, ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        character = _character(session, character_id, user)
        return _form_page(request, session, user, form=_character_form(character),
                          errors={"persona_file": exc.message}, character=character, status_code=exc.status_code)
    session.commit()
    return redirect(f"/characters/{character.id}/edit?done=imported")


@router.post("/characters/{character_id}/template", response_class=HTMLResponse)
def create_template(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                    form: Form) -> Response:
    """Save the persona as a template for new characters."""
    character = _character(session, character_id, user)
    raw = {"name": _text(form, "name"), "description": _text(form, "description")}
    try:
        svc.save_as_template(session, user=user, character=character, name=raw["name"],
                             description=raw["description"], ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        character = _character(session, character_id, user)
        return _detail(request, session, user, character, template_form=raw,
                       template_errors={exc.field or "_form": exc.message}, status_code=exc.status_code)
    session.commit()
    return redirect(f"/characters/{character.id}?done=template#templates")


@router.post("/characters/{character_id}/generate", response_class=HTMLResponse)
def create_generated(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                     form: Form) -> HTMLResponse:
    """Write a text for a platform in the character's voice."""
    character = _character(session, character_id, user)
    raw = {k: _text(form, k) for k in ("platform", "kind", "style", "template", "brief", "reply_to", "allow_template")}
    try:
        row = writing.generate(
            session, get_runtime(request), character=character, user=user, platform=raw["platform"],
            kind=raw["kind"] or None, style=raw["style"] or None, brief=raw["brief"], template=raw["template"] or None,
            reply_to=raw["reply_to"] or None, allow_template=raw["allow_template"] in ("1", "true", "on"),
        )
    except AppError as exc:
        session.rollback()
        character = _character(session, character_id, user)
        errors = {exc.field or "_form": exc.message}
        if _is_htmx(request):
            return render(request, "characters/_generated.html",
                          {"generated": None, "gen_errors": errors, "fragment": True},
                          user=user, status_code=exc.status_code)
        return _detail(request, session, user, character, gen_form=raw, gen_errors=errors,
                       status_code=exc.status_code)
    notes = list(getattr(row, "notes", []))
    session.commit()
    if _is_htmx(request):
        return render(request, "characters/_generated.html",
                      {"generated": row, "notes": notes, "gen_errors": {}, "fragment": True}, user=user)
    return _detail(request, session, user, character, gen_form=raw, generated=row, notes=notes)


# ---- model settings ---------------------------------------------------------------------------------------


def _model_form(character: Character) -> dict[str, Any]:
    chain = list(character.fallback_chain or [])
    chain += [{"backend": "", "model": ""}] * (3 - len(chain))
    return {
        "text_backend": character.text_backend, "text_model": character.text_model, "chain": chain[:3],
        "monthly_usage_cap_usd": "" if character.monthly_usage_cap_usd is None
        else f"{character.monthly_usage_cap_usd:g}",
    }


def _model_page(request: Request, session: Session, user: User, character: Character, *, form: dict[str, Any],
                errors: dict[str, str], status_code: int = 200) -> HTMLResponse:
    stats = svc.character_stats(session, character)
    ctx = {
        "active": "characters", "character": character, "form": form, "errors": errors, "stats": stats,
        "configs": writing.list_backend_configs(session), "chain": writing.plan_chain(session, character),
        "usage": svc.usage_by_model(session, character=character), "notice": _notice(request),
        "month_start": svc.month_start(character.timezone), **_choices(session),
    }
    return render(request, "characters/model.html", ctx, user=user, status_code=status_code)


@router.get("/characters/{character_id}/model", response_class=HTMLResponse)
def read_model_settings(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Text model, fallback chain and monthly cap of one character, with its usage per model."""
    character = _character(session, character_id, user)
    return _model_page(request, session, user, character, form=_model_form(character), errors={})


@router.post("/characters/{character_id}/model", response_class=HTMLResponse)
def update_model_settings(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                          form: Form) -> Response:
    """Save the model choice, fallback chain and cap."""
    character = _character(session, character_id, user)
    chain = [{"backend": _text(form, f"chain_{i}_backend"), "model": _text(form, f"chain_{i}_model")}
             for i in range(3)]
    raw: dict[str, Any] = {"text_backend": _text(form, "text_backend"), "text_model": _text(form, "text_model"),
                           "chain": chain, "monthly_usage_cap_usd": _text(form, "monthly_usage_cap_usd")}
    try:
        svc.update_character(session, user=user, character=character, ip=client_ip(request), changes={
            "text_backend": raw["text_backend"], "text_model": raw["text_model"],
            "fallback_chain": [s for s in chain if s["backend"]],
            "monthly_usage_cap_usd": raw["monthly_usage_cap_usd"],
        })
    except AppError as exc:
        session.rollback()
        character = _character(session, character_id, user)
        errors = {("fallback_chain" if (exc.field or "").startswith("fallback_chain") else exc.field or "_form"):
                  exc.message}
        return _model_page(request, session, user, character, form=raw, errors=errors, status_code=exc.status_code)
    session.commit()
    return redirect(f"/characters/{character.id}/model?done=model")


# ---- Settings → Text models ----------------------------------------------------------------------------------


def _text_models_page(request: Request, session: Session, user: User, *, status_code: int = 200,
                      **extra: Any) -> HTMLResponse:
    runtime = get_runtime(request)
    configs = writing.list_backend_configs(session)
    ctx = {
        "active": "settings", "configs": configs,
        "keys": {c.id: writing.has_api_key(session, runtime, c) for c in configs},
        "kinds": [(k, writing.TEXT_BACKENDS[k].label, writing._default_url(k), writing.TEXT_BACKENDS[k].default_model,
                   writing.TEXT_BACKENDS[k].needs_api_key) for k in writing.BACKEND_KINDS],
        "prices": writing.price_rows(session), "form": {"kind": "ollama", "name": "", "base_url": "",
                                                       "default_model": "", "paid": ""},
        "errors": {}, "test_result": None, "price_errors": {}, "notice": request.query_params.get("done", ""),
        "edit_errors": {}, "edit_id": None,
    }
    ctx.update(extra)
    return render(request, "characters/text_models.html", ctx, user=user, status_code=status_code)


@router.get("/settings/text-models", response_class=HTMLResponse)
def read_text_models(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Text backends (Ollama, OpenAI-compatible, Anthropic …): add, test, edit; the price table."""
    return _text_models_page(request, session, user)


@router.post("/settings/text-models", response_class=HTMLResponse)
def create_text_model(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Add a backend, or (button "Test") test the values without saving them."""
    raw = {k: _text(form, k) for k in ("kind", "name", "base_url", "default_model", "paid", "timeout_s")}
    key = _text(form, "api_key")
    if _text(form, "intent") == "test":
        try:
            report = writing.test_backend_values(kind=raw["kind"], base_url=raw["base_url"], api_key=key or None)
        except AppError as exc:
            return _text_models_page(request, session, user, form=raw, errors={exc.field or "_form": exc.message},
                                     status_code=exc.status_code)
        return _text_models_page(request, session, user, form=raw, test_result=report)
    try:
        timeout = float(raw["timeout_s"] or 60)
    except ValueError:
        timeout = -1.0
    try:
        writing.create_backend_config(
            session, get_runtime(request), user=user, name=raw["name"], kind=raw["kind"], base_url=raw["base_url"],
            default_model=raw["default_model"], api_key=key or None,
            paid=None if raw["paid"] == "" else raw["paid"] == "yes", timeout_s=timeout, ip=client_ip(request),
        )
    except AppError as exc:
        session.rollback()
        return _text_models_page(request, session, user, form=raw, errors={exc.field or "_form": exc.message},
                                 status_code=exc.status_code)
    session.commit()
    return redirect("/settings/text-models?done=added")


@router.post("/settings/text-models/{backend_id}/test", response_class=HTMLResponse)
def create_text_model_test(request: Request, backend_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Test a saved backend; the result stays on its row (owner only, like every other model-server change)."""
    row = writing.get_backend_config(session, backend_id)
    if not user.is_owner:
        raise PermissionDenied("Only the owner of this installation can test text backends.")
    writing.test_backend_config(session, get_runtime(request), config=row)
    session.commit()
    return redirect(f"/settings/text-models#backend-{row.id}")


@router.post("/settings/text-models/{backend_id}/pull", response_class=HTMLResponse)
def create_model_pull(request: Request, backend_id: int, session: SessionDep, user: CurrentUser,
                      form: Form) -> Response:
    """Start downloading a model onto an Ollama server; its job page shows the progress live."""
    row = writing.get_backend_config(session, backend_id)
    try:
        job = writing.enqueue_pull(session, user=user, config=row, model=_text(form, "model"))
    except AppError as exc:
        session.rollback()
        return _text_models_page(request, session, user, edit_errors={exc.field or "_form": exc.message},
                                 edit_id=backend_id, status_code=exc.status_code)
    session.commit()
    return redirect(f"/jobs/{job.id}")


@router.post("/settings/text-models/{backend_id}/edit", response_class=HTMLResponse)
def update_text_model(request: Request, backend_id: int, session: SessionDep, user: CurrentUser,
                      form: Form) -> Response:
    """Change a backend's URL, model, key, paid flag or enabled state."""
    row = writing.get_backend_config(session, backend_id)
    changes: dict[str, Any] = {"base_url": _text(form, "base_url"), "default_model": _text(form, "default_model"),
                               "paid": _text(form, "paid") == "on", "enabled": _text(form, "enabled") == "on"}
    key = _text(form, "api_key")
    if key.strip():
        changes["api_key"] = key
    elif _text(form, "remove_key") == "on":
        changes["api_key"] = ""
    try:
        writing.update_backend_config(session, get_runtime(request), user=user, config=row, changes=changes,
                                      ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return _text_models_page(request, session, user, edit_errors={exc.field or "_form": exc.message},
                                 edit_id=backend_id, status_code=exc.status_code)
    session.commit()
    return redirect(f"/settings/text-models?done=saved#backend-{backend_id}")


@router.post("/settings/text-models/{backend_id}/delete")
def delete_text_model(request: Request, backend_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Remove a backend and its key."""
    row = writing.get_backend_config(session, backend_id)
    writing.delete_backend_config(session, get_runtime(request), user=user, config=row, ip=client_ip(request))
    session.commit()
    return redirect("/settings/text-models?done=deleted")


@router.post("/settings/text-models/prices", response_class=HTMLResponse)
def update_prices(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Save the price table (rows with an empty model are dropped)."""
    kinds, models = form.getlist("price_kind"), form.getlist("price_model")
    ins, outs = form.getlist("price_in"), form.getlist("price_out")
    rows = []
    defaults = {(p.backend_kind, p.model, p.input_per_mtok_usd, p.output_per_mtok_usd)
                for p in writing.price_rows(session) if p.source == "default"}
    for kind, model, inp, out in zip(kinds, models, ins, outs, strict=False):
        if not isinstance(model, str) or not model.strip():
            continue
        try:
            if (kind, model.strip(), float(str(inp)), float(str(out))) in defaults:
                continue  # unchanged list price: stays a default
        except ValueError:
            pass
        rows.append({"backend_kind": kind, "model": model, "input_per_mtok_usd": inp or "0",
                     "output_per_mtok_usd": out or "0"})
    try:
        writing.set_price_table(session, user=user, rows=rows, ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return _text_models_page(request, session, user, price_errors={"_form": exc.message},
                                 status_code=exc.status_code)
    session.commit()
    return redirect("/settings/text-models?done=prices#prices")

