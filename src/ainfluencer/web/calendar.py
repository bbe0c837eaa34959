"""Calendar pages: thin handlers over ``services.calendar``.

``/calendar`` draws a month (default), week or day of publications in the viewer's zone (the
user's, or the character's when filtered to one; selectable), with conflict warnings, the
best-time panel and the bulk-schedule form. ``calendar.js`` adds drag and drop: a card dropped on
another day (or hour, in the day view) posts to ``/calendar/move``; a refusal is shown inline and
the card goes back. Every action also works as a plain form without JavaScript.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from ainfluencer.api.deps import SessionDep, get_runtime
from ainfluencer.csrf import csrf_protect
from ainfluencer.db.models import Character, User
from ainfluencer.db.models_media import Asset, ReviewState
from ainfluencer.db.models_publishing import PublicationStatus, SocialAccount
from ainfluencer.errors import AppError, InvalidInput
from ainfluencer.services import accounts, publishing
from ainfluencer.services import calendar as cal
from ainfluencer.services import characters as characters_svc
from ainfluencer.web.forms import Form, done_notice
from ainfluencer.web.forms import form_text as _text
from ainfluencer.web.routes import CurrentUser, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

STATUS_LABELS = {s.value: s.value.replace("_", " ") for s in PublicationStatus}
BULK_ASSET_LIMIT = 60
DONE = {
    "moved": "Publication moved.", "slot": "Posting slot added.", "slot_deleted": "Posting slot removed.",
    "slot_toggled": "Posting slot updated.", "settings": "Account calendar settings saved.",
    "bulk": "Scheduled {n} publication{s}.",
}


def _ints(values: list[Any], field: str) -> list[int]:
    out = []
    for raw in values:
        text = str(raw).strip()
        if not text:
            continue
        if not text.isdigit():
            raise InvalidInput(f"{field.replace('_', ' ')} must be whole numbers.", field=field)
        out.append(int(text))
    return out


def _int(value: str | None, field: str) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise InvalidInput(f"{field.replace('_', ' ')} must be a whole number.", field=field)
    return int(text)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _safe_back(value: str, default: str = "/calendar") -> str:
    return value if value.startswith("/") and not value.startswith("//") and "\n" not in value else default


def _with(url: str, **params: Any) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _notice(request: Request) -> str:
    return done_notice(request, DONE)


def calendar_url(params: dict[str, Any], **changes: Any) -> str:
    """The calendar URL with the current filters, some changed."""
    merged = {**params, **changes}
    if merged.get("view") == "month":
        merged.pop("view")
    query = urlencode({k: v for k, v in merged.items() if v not in (None, "")})
    return "/calendar" + (f"?{query}" if query else "")


def _characters(session: Session, user: User) -> list[Character]:
    return list(session.scalars(select(Character).where(characters_svc.visible(user)).order_by(Character.name)))


def _accounts(session: Session, user: User, character_id: int | None = None) -> list[SocialAccount]:
    q = (select(SocialAccount).join(Character, Character.id == SocialAccount.character_id)
         .where(characters_svc.visible(user)).order_by(SocialAccount.platform, SocialAccount.handle))
    if character_id is not None:
        q = q.where(SocialAccount.character_id == character_id)
    return list(session.scalars(q))


def _network(platform: str) -> str:
    try:
        return accounts.known_platform(platform).display_name
    except AppError:
        return platform


def _account_label(account: SocialAccount) -> str:
    # Some networks' handles already start with "@" (Bluesky, Mastodon); never print "@@".
    return f"{_network(account.platform)} @{account.handle.lstrip('@')}" if account.handle else \
        f"{_network(account.platform)} #{account.id}"


def _approved_assets(session: Session, user: User, character: Character) -> list[Asset]:
    from ainfluencer.services import vault

    return list(session.scalars(
        select(Asset).where(vault.visible(user), Asset.review_state == ReviewState.approved,
                            Asset.character_id == character.id)
        .order_by(Asset.created_at.desc(), Asset.id.desc()).limit(BULK_ASSET_LIMIT)))


# ---- the calendar ------------------------------------------------------------------------------------


def _calendar_context(request: Request, session: Session, user: User) -> dict[str, Any]:
    q = request.query_params
    view = q.get("view") or "month"
    if view not in cal.VIEWS:
        raise InvalidInput(f"Unknown view {view!r}; use month, week or day.", field="view")
    character_id = _int(q.get("character"), "character")
    account_id = _int(q.get("account"), "account")
    platform = (q.get("platform") or "").strip()
    status = (q.get("status") or "").strip()
    statuses: list[PublicationStatus] = []
    if status:
        if status not in STATUS_LABELS:
            raise InvalidInput(f"Unknown status {status!r}.", field="status")
        statuses = [PublicationStatus(status)]
    character = accounts.get_character(session, character_id, user=user) if character_id is not None else None
    account = accounts.get_account(session, account_id, user=user) if account_id is not None else None
    tz_choice = (q.get("tz") or "").strip()
    tz = cal.viewer_zone(user=user, character=character, choice=tz_choice)
    anchor = cal.parse_day(q.get("date"), tz=tz)
    view_data = cal.calendar_view(session, user=user, view=view, anchor=anchor, tz=tz, character_id=character_id,
                                  account_id=account_id, platform=platform or None, statuses=statuses)
    params = {"view": view, "date": anchor.isoformat(), "character": character_id or "", "account": account_id or "",
              "platform": platform, "status": status, "tz": tz_choice}
    all_accounts = _accounts(session, user, character_id)
    best_for = [account] if account is not None else all_accounts[:4]
    best = [(a, cal.best_times(session, account=a, tz=tz)) for a in best_for]
    conflicted = [item for item in view_data.items if item.conflicts]
    ctx: dict[str, Any] = {
        "active": "calendar", "cal": view_data, "params": params, "characters": _characters(session, user),
        "accounts": all_accounts, "character": character, "account": account, "best": best,
        "conflicted": conflicted, "today": datetime.now(tz).date(), "tz_name": tz.key,
        "platforms": sorted({a.platform for a in all_accounts}), "statuses": STATUS_LABELS,
        "notice": _notice(request), "error": q.get("error", ""), "calendar_url": calendar_url,
        "network": _network, "account_label": _account_label, "weekday_names": cal.WEEKDAY_NAMES,
        "bulk_problems": [], "slots": [],
    }
    if view == "day":
        day = view_data.days[0]
        rows: list[dict[str, Any]] = [{"local": h.astimezone(tz), "start": h, "items": []}
                                      for h in cal.day_hours(day.day, tz)]
        for item in day.items:
            for row in reversed(rows):
                if row["start"] <= item.publication.scheduled_at:
                    row["items"].append(item)
                    break
        ctx["day_rows"] = rows
    if character is not None:
        ctx["slots"] = cal.list_slots(session, character=character)
        ctx["assets"] = _approved_assets(session, user, character)
    return ctx


@router.get("/calendar", response_class=HTMLResponse)
def read_calendar(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Month (default), week or day of publications across characters and accounts."""
    return render(request, "calendar/calendar.html", _calendar_context(request, session, user), user=user)


def _move_json(item_pub: Any, tz: ZoneInfo, conflicts: list[cal.ScheduleConflict]) -> dict[str, Any]:
    local = item_pub.scheduled_at.astimezone(tz)
    return {"id": item_pub.id, "status": item_pub.status.value, "scheduled_at": item_pub.scheduled_at.isoformat(),
            "local": local.isoformat(), "local_day": local.date().isoformat(), "local_time": local.strftime("%H:%M"),
            "conflicts": [c.as_dict() for c in conflicts]}


@router.post("/calendar/move")
def update_calendar_move(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Move a publication to another local day (drag and drop), keeping its time or to a given hour."""
    back = _safe_back(_text(form, "back"))
    json_reply = _wants_json(request)
    try:
        pub_id = _int(_text(form, "publication_id"), "publication_id")
        if pub_id is None:
            raise InvalidInput("Which publication? publication_id is missing.", field="publication_id")
        pub = publishing.get_publication(session, pub_id, user=user)
        tz = cal.zone(_text(form, "tz"), field_name="tz")
        day = cal.parse_day(_text(form, "date") or None, tz=tz)
        hour = _int(_text(form, "hour"), "hour")
        force = _text(form, "force") in ("1", "true", "on", "yes")
        pub, conflicts = cal.move_to_day(session, user=user, pub=pub, day=day, tz=tz, hour=hour, force=force)
    except AppError as exc:
        session.rollback()
        if json_reply:
            body: dict[str, Any] = {"code": exc.code, "message": exc.message, "field": exc.field}
            if isinstance(exc, cal.ScheduleConflicts):
                body["conflicts"] = [c.as_dict() for c in exc.conflicts]
                body["can_force"] = True
            return JSONResponse({"error": body}, status_code=exc.status_code)
        return redirect(_with(back, error=exc.message))
    session.commit()
    if json_reply:
        return JSONResponse(_move_json(pub, tz, conflicts))
    return redirect(_with(back, done="moved"))


@router.post("/calendar/reschedule")
def update_calendar_reschedule(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Move a publication to a local date and time in a zone (the no-JavaScript form)."""
    back = _safe_back(_text(form, "back"))
    try:
        pub_id = _int(_text(form, "publication_id"), "publication_id")
        if pub_id is None:
            raise InvalidInput("Which publication? publication_id is missing.", field="publication_id")
        pub = publishing.get_publication(session, pub_id, user=user)
        raw = _text(form, "local").strip()
        try:
            local = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(f"{raw!r} is not a date and time; use YYYY-MM-DDTHH:MM.", field="local") from None
        tz_name = _text(form, "tz")
        at = cal.resolve_time(local=local, timezone=tz_name)
        force = _text(form, "force") in ("1", "true", "on", "yes")
        cal.reschedule(session, user=user, pub=pub, at=at, force=force, tz=cal.zone(tz_name))
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    return redirect(_with(back, done="moved"))


# ---- bulk schedule -----------------------------------------------------------------------------------


@router.post("/calendar/bulk", response_model=None)
def create_calendar_bulk(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Schedule approved assets into the character's posting slots (all or nothing)."""
    back = _safe_back(_text(form, "back"))
    try:
        character_id = _int(_text(form, "character_id"), "character_id")
        if character_id is None:
            raise InvalidInput("Pick a character first.", field="character_id")
        character = accounts.get_character(session, character_id, user=user)
        asset_ids = _ints(form.getlist("asset_ids"), "asset_ids")
        account_ids = _ints(form.getlist("account_ids"), "account_ids")
        plan = cal.bulk_schedule(session, runtime=get_runtime(request), user=user, character=character,
                                 asset_ids=asset_ids, account_ids=account_ids, text=_text(form, "text") or None)
    except cal.BulkScheduleRefused as exc:
        session.rollback()
        ctx = _calendar_context(request, session, user)
        ctx["bulk_problems"] = exc.problems
        ctx["error"] = f"Nothing was scheduled: {len(exc.problems)} problem(s) to fix first."
        return render(request, "calendar/calendar.html", ctx, user=user, status_code=422)
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    return redirect(_with(back, done="bulk", n=len(plan)))


# ---- posting slots and account settings ----------------------------------------------------------------


@router.get("/calendar/slots/{character_id}", response_class=HTMLResponse)
def read_calendar_slots(request: Request, character_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The character's posting slots and each account's gap and daily maximum."""
    character = accounts.get_character(session, character_id, user=user)
    tz = cal.zone(character.timezone or "UTC")
    account_rows = _accounts(session, user, character.id)
    rows = []
    for a in account_rows:
        rules = cal.rules_for(session, a)
        settings = cal.account_settings(session, a.id)
        upcoming = cal.next_slots(session, character=character, account=a, count=3)
        rows.append({"account": a, "rules": rules, "settings": settings,
                     "upcoming": [u.astimezone(tz) for u in upcoming]})
    ctx = {"active": "calendar", "character": character, "slots": cal.list_slots(session, character=character),
           "account_rows": rows, "accounts": account_rows, "weekday_names": cal.WEEKDAY_NAMES,
           "slot_text": cal.slot_text, "notice": _notice(request), "error": request.query_params.get("error", ""),
           "network": _network, "account_label": _account_label, "default_gap": cal.DEFAULT_MIN_GAP_MINUTES,
           "platforms": sorted({a.platform for a in account_rows})}
    return render(request, "calendar/slots.html", ctx, user=user)


def _slot_spec(form: FormData) -> cal.SlotSpec:
    hour, minute = cal.parse_local_time(_text(form, "time"), field_name="time")
    target = _text(form, "target")
    account_id: int | None = None
    platform = ""
    if target.startswith("account:"):
        account_id = _int(target.removeprefix("account:"), "target")
    elif target.startswith("platform:"):
        platform = target.removeprefix("platform:")
    return cal.SlotSpec(weekdays=_ints(form.getlist("weekdays"), "weekdays"), hour=hour, minute=minute,
                        account_id=account_id, platform=platform, label=_text(form, "label"))


@router.post("/calendar/slots/{character_id}")
def create_calendar_slot(request: Request, character_id: int, session: SessionDep, user: CurrentUser,
                         form: Form) -> Response:
    """Add a posting slot."""
    back = f"/calendar/slots/{character_id}"
    try:
        character = accounts.get_character(session, character_id, user=user)
        cal.create_slot(session, character=character, spec=_slot_spec(form))
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    return redirect(_with(back, done="slot"))


@router.post("/calendar/slots/{character_id}/{slot_id}/toggle")
def update_calendar_slot(request: Request, character_id: int, slot_id: int, session: SessionDep,
                         user: CurrentUser) -> Response:
    """Pause or resume a posting slot."""
    character = accounts.get_character(session, character_id, user=user)
    slot = cal.get_slot(session, character=character, slot_id=slot_id)
    slot.enabled = not slot.enabled
    session.commit()
    return redirect(_with(f"/calendar/slots/{character_id}", done="slot_toggled"))


@router.post("/calendar/slots/{character_id}/{slot_id}/delete")
def delete_calendar_slot(request: Request, character_id: int, slot_id: int, session: SessionDep,
                         user: CurrentUser) -> Response:
    """Remove a posting slot."""
    character = accounts.get_character(session, character_id, user=user)
    cal.delete_slot(session, slot=cal.get_slot(session, character=character, slot_id=slot_id))
    session.commit()
    return redirect(_with(f"/calendar/slots/{character_id}", done="slot_deleted"))


@router.post("/calendar/accounts/{account_id}/settings")
def update_calendar_account_settings(request: Request, account_id: int, session: SessionDep, user: CurrentUser,
                                     form: Form) -> Response:
    """Save an account's minimum gap and own daily maximum."""
    account = accounts.get_account(session, account_id, user=user)
    back = f"/calendar/slots/{account.character_id}"
    try:
        gap = _int(_text(form, "min_gap_minutes"), "min_gap_minutes")
        cal.save_account_settings(session, account=account,
                                  min_gap_minutes=cal.DEFAULT_MIN_GAP_MINUTES if gap is None else gap,
                                  max_per_day=_int(_text(form, "max_per_day"), "max_per_day"))
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    return redirect(_with(back, done="settings"))


