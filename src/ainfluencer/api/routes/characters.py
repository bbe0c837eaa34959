"""Characters: CRUD, status actions, bulk, import/export, preview, writing and usage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.schemas_characters import (
    BulkRequest,
    BulkResultPublic,
    BulkSkipped,
    CharacterCreate,
    CharacterDuplicate,
    CharacterImport,
    CharacterPublic,
    CharactersPublic,
    CharacterStatsPublic,
    CharacterUpdate,
    FallbackStep,
    GeneratedTextCreated,
    GeneratedTextPublic,
    GeneratedTextsPublic,
    GenerateRequest,
    ModelUsage,
    PersonaImport,
    PreviewPublic,
    PreviewRequest,
    PromptExport,
    UsagePublic,
    WritingOptionsPublic,
)
from ainfluencer.db.models import Character, CharacterStatus
from ainfluencer.runtime import Runtime
from ainfluencer.services import characters as svc
from ainfluencer.services import writing
from ainfluencer.services.characters import CharacterStats

router = APIRouter(prefix="/characters", tags=["characters"])


def character_public(character: Character, stats: CharacterStats | None = None) -> CharacterPublic:
    """Schema for one character."""
    return CharacterPublic(
        id=character.id, owner_id=character.user_id, name=character.name, handle=character.handle,
        status=character.status.value, status_reason=character.status_reason, bio=character.bio,
        public_bio=svc.public_bio(character), persona=character.persona,
        disclosure_enabled=character.disclosure_enabled, disclosure_text=character.disclosure_text,
        disclosure_disabled_by=character.disclosure_disabled_by,
        disclosure_disabled_at=character.disclosure_disabled_at, text_backend=character.text_backend,
        text_model=character.text_model, fallback_chain=[FallbackStep(**s) for s in character.fallback_chain or []],
        monthly_usage_cap_usd=character.monthly_usage_cap_usd, timezone=character.timezone,
        created_at=character.created_at, updated_at=character.updated_at,
        stats=CharacterStatsPublic(**stats.as_dict()) if stats is not None else None,
    )


@router.get("", response_model=CharactersPublic)
def read_characters(
    principal: Reader,
    session: SessionDep,
    status_: CharacterStatus | None = Query(None, alias="status"),
    q: str | None = Query(None, max_length=100, description="search in name and handle"),
    sort: str = Query("-created", description="name, -name, handle, -handle, created, -created, updated, -updated, "
                                             "status"),
    limit: int = Query(24, ge=1, le=200),
    offset: int = Query(0, ge=0),
    stats: bool = Query(True, description="include per-character statistics"),
) -> CharactersPublic:
    """Characters you can see, filtered, sorted and paged."""
    page = svc.list_characters(session, user=principal.user, status=status_, q=q, sort=sort, limit=limit,
                               offset=offset, with_counts=True)
    figures = svc.stats_for(session, page.items) if stats else {}
    # Release the database (SQLite holds its write lock for the whole transaction) before building the JSON.
    session.commit()
    return CharactersPublic(
        data=[character_public(c, figures.get(c.id)) for c in page.items], count=page.total, limit=page.limit,
        offset=page.offset, counts=page.counts,
    )


@router.post("", response_model=CharacterPublic, status_code=status.HTTP_201_CREATED)
def create_character(
    body: CharacterCreate, principal: Writer, session: SessionDep, request: Request
) -> CharacterPublic:
    """Create a character, blank or from a persona template."""
    character = svc.create_character(
        session, user=principal.user, name=body.name, handle=body.handle, bio=body.bio, persona=body.persona,
        template=body.template, disclosure_text=body.disclosure_text, text_backend=body.text_backend,
        text_model=body.text_model, fallback_chain=[s.model_dump() for s in body.fallback_chain],
        monthly_usage_cap_usd=body.monthly_usage_cap_usd, timezone=body.timezone, ip=client_ip(request),
    )
    return character_public(character, svc.character_stats(session, character))


@router.post("/import", response_model=CharacterPublic, status_code=status.HTTP_201_CREATED)
def create_character_import(
    body: CharacterImport, principal: Writer, session: SessionDep, request: Request
) -> CharacterPublic:
    """Create a character from an exported persona file."""
    character = svc.import_character(session, user=principal.user, text=body.persona_json, name=body.name,
                                     handle=body.handle, ip=client_ip(request))
    return character_public(character)


@router.post("/bulk", response_model=BulkResultPublic)
def create_bulk_action(body: BulkRequest, principal: Writer, session: SessionDep, request: Request) -> BulkResultPublic:
    """Pause, resume, archive or delete many characters at once (unknown ids are reported, not fatal)."""
    result = svc.bulk_action(session, user=principal.user, ids=body.ids, action=body.action,
                             settings=request.app.state.runtime.settings, ip=client_ip(request))
    return BulkResultPublic(action=result.action, done=result.done,
                            skipped=[BulkSkipped(id=k, reason=v) for k, v in result.skipped.items()])


@router.get("/writing-options", response_model=WritingOptionsPublic)
def read_writing_options(principal: Reader) -> WritingOptionsPublic:
    """Platforms with their kinds and limits, writing styles, and content templates."""
    return WritingOptionsPublic(**writing.writing_options())


@router.get("/{character_id}", response_model=CharacterPublic)
def read_character(character_id: int, principal: Reader, session: SessionDep) -> CharacterPublic:
    """One character with its statistics."""
    character = svc.get_character(session, character_id, user=principal.user)
    return character_public(character, svc.character_stats(session, character))


@router.patch("/{character_id}", response_model=CharacterPublic)
def update_character(
    character_id: int, body: CharacterUpdate, principal: Writer, session: SessionDep, request: Request
) -> CharacterPublic:
    """Change some fields; everything sent is checked before anything is saved."""
    character = svc.get_character(session, character_id, user=principal.user)
    changes = body.model_dump(exclude_unset=True)
    if "fallback_chain" in changes and changes["fallback_chain"] is None:
        changes["fallback_chain"] = []
    svc.update_character(session, user=principal.user, character=character, changes=changes, ip=client_ip(request))
    return character_public(character, svc.character_stats(session, character))


@router.delete("/{character_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_character(character_id: int, principal: Writer, session: SessionDep, request: Request) -> Response:
    """Delete a character and its generated texts (usage history keeps its costs)."""
    character = svc.get_character(session, character_id, user=principal.user)
    svc.delete_character(session, user=principal.user, character=character,
                         settings=request.app.state.runtime.settings, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _status_action(action: str):  # type: ignore[no-untyped-def]
    def handler(character_id: int, principal: Writer, session: SessionDep, request: Request) -> CharacterPublic:
        character = svc.get_character(session, character_id, user=principal.user)
        svc.change_status(session, user=principal.user, character=character, action=action, ip=client_ip(request))
        return character_public(character)

    handler.__name__ = f"create_{action}"
    handler.__doc__ = {"pause": "Pause a character: nothing is generated or published for it.",
                       "resume": "Make a paused, archived or failed character active again.",
                       "archive": "Archive a character (kept, hidden from the default list)."}[action]
    return handler


for _action in ("pause", "resume", "archive"):
    router.add_api_route(f"/{{character_id}}/{_action}", _status_action(_action), methods=["POST"],
                         response_model=CharacterPublic, name=f"{_action}_character")


@router.post("/{character_id}/duplicate", response_model=CharacterPublic, status_code=status.HTTP_201_CREATED)
def create_duplicate(
    character_id: int, principal: Writer, session: SessionDep, request: Request, body: CharacterDuplicate | None = None
) -> CharacterPublic:
    """Copy a character's profile, persona and model settings; the copy starts paused."""
    character = svc.get_character(session, character_id, user=principal.user)
    body = body or CharacterDuplicate()
    copy = svc.duplicate_character(session, user=principal.user, character=character, name=body.name,
                                   handle=body.handle, ip=client_ip(request))
    return character_public(copy)


@router.get("/{character_id}/export", response_class=PlainTextResponse,
            responses={200: {"content": {"application/json": {}}}})
def read_export(character_id: int, principal: Reader, session: SessionDep) -> Response:
    """The persona as a versioned JSON file (re-imports to an equal persona)."""
    character = svc.get_character(session, character_id, user=principal.user)
    return Response(
        svc.export_json(character), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{character.handle}.persona.json"'},
    )


@router.get("/{character_id}/prompt", response_model=PromptExport)
def read_prompt(character_id: int, principal: Reader, session: SessionDep) -> PromptExport:
    """The persona as a plain-text system prompt for other AI tools."""
    character = svc.get_character(session, character_id, user=principal.user)
    return PromptExport(prompt=svc.export_prompt(character))


@router.put("/{character_id}/persona", response_model=CharacterPublic)
def update_persona_import(
    character_id: int, body: PersonaImport, principal: Writer, session: SessionDep, request: Request
) -> CharacterPublic:
    """Replace the persona with an exported persona file (nothing changes when the file is refused)."""
    character = svc.get_character(session, character_id, user=principal.user)
    svc.replace_persona(session, user=principal.user, character=character, text=body.persona_json,
                        ip=client_ip(request))
    return character_public(character)


@router.post("/{character_id}/preview", response_model=PreviewPublic)
def create_preview(
    character_id: int, body: PreviewRequest, principal: Reader, session: SessionDep, runtime: RuntimeDep
) -> PreviewPublic:
    """Sample captions for two platforms, a sample reply and a trait-shift comparison (nothing is saved)."""
    character = svc.get_character(session, character_id, user=principal.user)
    persona = svc.clean_persona(body.persona) if body.persona is not None else svc.persona_of(character)
    result = writing.preview(
        session, runtime, persona=persona, name=character.name, handle=character.handle, character=character,
        baseline=svc.persona_of(character) if body.persona is not None else None,
        platforms=body.platforms, seed=body.seed, brief=body.brief, shift_trait=body.shift_trait,
        shift_to=body.shift_to, use_model=body.use_model,
    )
    return PreviewPublic.model_validate(result.as_dict())


@router.post("/{character_id}/generate", response_model=GeneratedTextCreated, status_code=status.HTTP_201_CREATED)
def create_generated_text(
    character_id: int, body: GenerateRequest, principal: Writer, session: SessionDep, runtime: RuntimeDep
) -> GeneratedTextCreated:
    """Write a caption, post, thread, title, description or reply in the character's voice."""
    character = svc.get_character(session, character_id, user=principal.user)
    row = writing.generate(
        session, runtime, character=character, user=principal.user, platform=body.platform, kind=body.kind,
        style=body.style, brief=body.brief, template=body.template, reply_to=body.reply_to,
        max_attempts=body.max_attempts, allow_template=body.allow_template,
    )
    return GeneratedTextCreated.model_validate(row).model_copy(update={"notes": getattr(row, "notes", [])})


STREAM_DESCRIPTION = """Server-sent events (`text/event-stream`), each with a JSON `data:` line:

- `event: delta` — `{"text", "backend", "restart"}`: the next piece of text as the model writes it. With
  `restart: true`, drop what was shown so far first (a fallback backend took over, or a near-duplicate is
  being rewritten).
- `event: done` — once, at the end: the saved text exactly as `POST /generate` returns it (fitted to the
  platform, hashtags, `near_dup_score`/`flagged` verdict, backend, model, tokens, cost, `id`).
- `event: error` — `{"message"}` when writing failed after the stream began (nothing is saved; model calls
  already made are still counted in usage). When no model of the chain answered, it also carries
  `"code": "text_backend_unavailable"`, `"can_use_template": true` and `"backends"` (each backend with its
  outcome and message): retry, or send the request again with `allow_template: true`.

Bad input is refused with the usual JSON error before the stream starts."""


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _generate_events(runtime: Runtime, generation: writing.Generation) -> AsyncIterator[str]:
    async with aclosing(writing.stream_generate(runtime, generation=generation)) as events:
        async for event in events:
            kind = event.pop("type")
            if kind == "done":
                event = GeneratedTextCreated.model_validate(event).model_dump(mode="json")
            yield _sse(kind, event)


@router.post(
    "/{character_id}/generate/stream",
    response_class=StreamingResponse,
    responses={200: {"description": STREAM_DESCRIPTION,
                     "content": {"text/event-stream": {"schema": {"type": "string"}, "example": (
                         'event: delta\ndata: {"text": "Sunrise over", "backend": "local-llm", "restart": false}\n\n'
                         'event: done\ndata: {"id": 7, "text": "Sunrise over Lisbon… #travel", "flagged": false}\n\n'
                     )}}}},
)
def create_generated_text_stream(
    character_id: int, body: GenerateRequest, principal: Writer, session: SessionDep, runtime: RuntimeDep
) -> StreamingResponse:
    """Like POST /generate, streaming the text as the model writes it (server-sent events)."""
    character = svc.get_character(session, character_id, user=principal.user)
    generation = writing.prepare_generation(
        session, runtime, character=character, user=principal.user, platform=body.platform, kind=body.kind,
        style=body.style, brief=body.brief, template=body.template, reply_to=body.reply_to,
        max_attempts=body.max_attempts, allow_template=body.allow_template,
    )
    # The stream saves in its own session; end this one now (SQLite would hold its write lock meanwhile).
    session.commit()
    return StreamingResponse(_generate_events(runtime, generation), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{character_id}/texts", response_model=GeneratedTextsPublic)
def read_generated_texts(
    character_id: int, principal: Reader, session: SessionDep,
    limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0),
) -> GeneratedTextsPublic:
    """Texts written for the character, newest first."""
    character = svc.get_character(session, character_id, user=principal.user)
    rows, total = writing.list_generated(session, character=character, limit=limit, offset=offset)
    return GeneratedTextsPublic(data=[GeneratedTextPublic.model_validate(r) for r in rows], count=total)


@router.get("/{character_id}/usage", response_model=UsagePublic)
def read_usage(character_id: int, principal: Reader, session: SessionDep) -> UsagePublic:
    """Spend this month against the cap, and calls/tokens/cost per model."""
    character = svc.get_character(session, character_id, user=principal.user)
    stats = svc.character_stats(session, character)
    cap = character.monthly_usage_cap_usd
    return UsagePublic(
        character_id=character.id, month_start=svc.month_start(character.timezone),
        cost_month_usd=round(stats.cost_month_usd, 6), paid_cost_month_usd=round(stats.paid_cost_month_usd, 6),
        monthly_usage_cap_usd=cap, cap_reached=cap is not None and stats.paid_cost_month_usd >= cap,
        cost_total_usd=round(stats.cost_total_usd, 6),
        by_model=[ModelUsage(**row) for row in svc.usage_by_model(session, character=character)],
    )
