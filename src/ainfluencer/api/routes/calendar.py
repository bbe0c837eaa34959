"""Calendar: views by local day, posting slots, account spacing, conflict checks, best times, bulk schedule."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer
from ainfluencer.api.routes.publications import publication_public
from ainfluencer.api.schemas_calendar import (
    AccountSettingsPublic,
    AccountSettingsUpdate,
    BestTimePublic,
    BestTimesPublic,
    BulkItemPublic,
    BulkPublic,
    BulkSchedule,
    CalendarDayPublic,
    CalendarItemPublic,
    CalendarPublic,
    CalendarReschedule,
    ConflictCheck,
    ConflictPublic,
    ConflictsPublic,
    NextSlotsPublic,
    RescheduledPublic,
    SlotCreate,
    SlotPublic,
    SlotsPublic,
    SlotUpdate,
)
from ainfluencer.db.models_calendar import PostingSlot
from ainfluencer.db.models_publishing import PublicationStatus, SocialAccount
from ainfluencer.errors import InvalidInput
from ainfluencer.services import accounts, publishing
from ainfluencer.services import calendar as svc

router = APIRouter(prefix="/calendar", tags=["calendar"])

ERROR_WITH_DETAILS = {
    "description": "Refused: ``error.conflicts`` (409) or ``error.problems`` (422) lists every reason",
    "content": {"application/json": {"example": {"error": {"code": "schedule_conflict", "message": "...",
                                                            "conflicts": []}}}},
}


def _conflicts(items: list[svc.ScheduleConflict]) -> list[ConflictPublic]:
    return [ConflictPublic(**c.as_dict()) for c in items]


def _slot_public(slot: PostingSlot) -> SlotPublic:
    return SlotPublic(id=slot.id, character_id=slot.character_id, account_id=slot.account_id, platform=slot.platform,
                      weekdays=list(slot.weekdays), hour=slot.hour, minute=slot.minute,
                      time=f"{slot.hour:02d}:{slot.minute:02d}", label=slot.label, enabled=slot.enabled,
                      created_at=slot.created_at, updated_at=slot.updated_at)


def _slot_spec(body: SlotCreate) -> svc.SlotSpec:
    hour, minute = svc.parse_local_time(body.time)
    return svc.SlotSpec(weekdays=body.weekdays, hour=hour, minute=minute, account_id=body.account_id,
                        platform=body.platform, label=body.label, enabled=body.enabled)


def _refusal(exc: svc.ScheduleConflicts | svc.BulkScheduleRefused) -> JSONResponse:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message, "field": exc.field}
    if isinstance(exc, svc.ScheduleConflicts):
        body["conflicts"] = [c.as_dict() for c in exc.conflicts]
    else:
        body["problems"] = [p.as_dict() for p in exc.problems]
    return JSONResponse({"error": jsonable(body)}, status_code=exc.status_code)


def jsonable(value: Any) -> Any:
    """Datetimes as ISO strings, recursively (for hand-built JSON error bodies)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _account(session: Session, account_id: int, principal: Any) -> SocialAccount:
    return accounts.get_account(session, account_id, user=principal.user)


# ---- views -------------------------------------------------------------------------------------------------


@router.get("", response_model=CalendarPublic)
def read_calendar(
    principal: Reader,
    session: SessionDep,
    view: str = Query("month", pattern="^(month|week|day)$"),
    day: date | None = Query(None, alias="date", description="any day in the month/week, or the day (default today)"),
    tz: str | None = Query(None, max_length=64,
                           description="IANA zone, 'user' or 'character' (default: the character's zone when "
                                       "filtered to one character, else yours)"),
    character_id: int | None = Query(None),
    account_id: int | None = Query(None),
    platform: str | None = Query(None, max_length=32),
    status_: list[PublicationStatus] = Query(default=[], alias="status"),
) -> CalendarPublic:
    """Publications of a month, week or day, bucketed by local day (23/25-hour days across DST), with conflicts."""
    character = accounts.get_character(session, character_id, user=principal.user) if character_id else None
    if account_id is not None:
        _account(session, account_id, principal)
    zone = svc.viewer_zone(user=principal.user, character=character, choice=tz)
    anchor = day or svc.parse_day(None, tz=zone)
    data = svc.calendar_view(session, user=principal.user, view=view, anchor=anchor, tz=zone,
                             character_id=character_id, account_id=account_id, platform=platform, statuses=status_)
    days = [CalendarDayPublic(
        day=d.day, start=d.start, end=d.end, hours=d.hours, in_range=d.in_range,
        items=[CalendarItemPublic(publication=publication_public(session, i.publication), local_time=i.local,
                                  character_name=i.character_name, movable=i.movable,
                                  conflicts=_conflicts(i.conflicts)) for i in d.items],
    ) for d in data.days]
    return CalendarPublic(view=data.view, timezone=zone.key, anchor=data.anchor, start=data.start, end=data.end,
                          previous=data.previous, next=data.next, title=data.title, truncated=data.truncated,
                          days=days)


# ---- posting slots ----------------------------------------------------------------------------------------


@router.get("/characters/{character_id}/slots", response_model=SlotsPublic)
def read_slots(character_id: int, principal: Reader, session: SessionDep) -> SlotsPublic:
    """A character's posting slots (local times in the character's time zone)."""
    character = accounts.get_character(session, character_id, user=principal.user)
    rows = svc.list_slots(session, character=character)
    return SlotsPublic(data=[_slot_public(s) for s in rows], count=len(rows), timezone=character.timezone or "UTC")


@router.post("/characters/{character_id}/slots", response_model=SlotPublic, status_code=status.HTTP_201_CREATED)
def create_slot(character_id: int, body: SlotCreate, principal: Writer, session: SessionDep) -> SlotPublic:
    """Add a posting slot."""
    character = accounts.get_character(session, character_id, user=principal.user)
    return _slot_public(svc.create_slot(session, character=character, spec=_slot_spec(body)))


@router.put("/characters/{character_id}/slots/{slot_id}", response_model=SlotPublic)
def update_slot(character_id: int, slot_id: int, body: SlotUpdate, principal: Writer,
                session: SessionDep) -> SlotPublic:
    """Replace a posting slot's fields."""
    character = accounts.get_character(session, character_id, user=principal.user)
    slot = svc.get_slot(session, character=character, slot_id=slot_id)
    return _slot_public(svc.update_slot(session, character=character, slot=slot, spec=_slot_spec(body)))


@router.delete("/characters/{character_id}/slots/{slot_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_slot(character_id: int, slot_id: int, principal: Writer, session: SessionDep) -> None:
    """Remove a posting slot."""
    character = accounts.get_character(session, character_id, user=principal.user)
    svc.delete_slot(session, slot=svc.get_slot(session, character=character, slot_id=slot_id))


@router.get("/characters/{character_id}/next-slots", response_model=NextSlotsPublic)
def read_next_slots(
    character_id: int, principal: Reader, session: SessionDep,
    account_id: int = Query(...), count: int = Query(5, ge=1, le=100),
    after: datetime | None = Query(None, description="with offset; default now"),
) -> NextSlotsPublic:
    """The character's next free posting slots for one account (no conflicts with what is scheduled)."""
    character = accounts.get_character(session, character_id, user=principal.user)
    account = _account(session, account_id, principal)
    if account.character_id != character.id:
        raise InvalidInput(f"Account {account_id} is not one of {character.name}'s accounts.", field="account_id")
    zone = svc.zone(character.timezone or "UTC")
    found = svc.next_slots(session, character=character, account=account, count=count, after=after)
    return NextSlotsPublic(account_id=account.id, timezone=zone.key, data=found,
                           local=[f.astimezone(zone) for f in found])


# ---- accounts ---------------------------------------------------------------------------------------------


def _settings_public(session: Session, account: SocialAccount) -> AccountSettingsPublic:
    row = svc.account_settings(session, account.id)
    rules = svc.rules_for(session, account)
    return AccountSettingsPublic(account_id=account.id,
                                 min_gap_minutes=row.min_gap_minutes if row else svc.DEFAULT_MIN_GAP_MINUTES,
                                 max_per_day=row.max_per_day if row else None, daily_cap=rules.daily_cap,
                                 cap_source=rules.cap_source)


@router.get("/accounts/{account_id}/settings", response_model=AccountSettingsPublic)
def read_account_settings(account_id: int, principal: Reader, session: SessionDep) -> AccountSettingsPublic:
    """An account's minimum gap and the daily cap that applies."""
    return _settings_public(session, _account(session, account_id, principal))


@router.put("/accounts/{account_id}/settings", response_model=AccountSettingsPublic)
def update_account_settings(account_id: int, body: AccountSettingsUpdate, principal: Writer,
                            session: SessionDep) -> AccountSettingsPublic:
    """Set an account's minimum gap and own daily maximum."""
    account = _account(session, account_id, principal)
    svc.save_account_settings(session, account=account, min_gap_minutes=body.min_gap_minutes,
                              max_per_day=body.max_per_day)
    return _settings_public(session, account)


@router.get("/accounts/{account_id}/best-times", response_model=BestTimesPublic)
def read_best_times(
    account_id: int, principal: Reader, session: SessionDep,
    tz: str | None = Query(None, max_length=64, description="IANA zone (default: the character's)"),
    limit: int = Query(5, ge=1, le=24),
) -> BestTimesPublic:
    """When this account's posts did best (its own engagement history), or network defaults before there is any."""
    account = _account(session, account_id, principal)
    zone = svc.zone(tz, field_name="tz") if tz else None
    result = svc.best_times(session, account=account, tz=zone, limit=limit)
    used = svc.zone(result.timezone)
    return BestTimesPublic(
        account_id=account.id, source=result.source, timezone=result.timezone, metric=result.metric,
        sample_size=result.sample_size, note=result.note,
        data=[BestTimePublic(weekday=b.weekday, hour=b.hour, label=b.label, score=b.score, posts=b.posts,
                             next_at=b.next_at(used)) for b in result.suggestions],
    )


# ---- conflicts, reschedule, bulk ----------------------------------------------------------------------


@router.post("/conflicts", response_model=ConflictsPublic)
def check_conflicts(body: ConflictCheck, principal: Reader, session: SessionDep) -> ConflictsPublic:
    """Conflicts a publication at the proposed time would have on the account (too close, over the daily cap)."""
    account = _account(session, body.account_id, principal)
    at = svc.resolve_time(scheduled_at=body.scheduled_at, local=body.local, timezone=body.timezone)
    exclude = [body.exclude_publication_id] if body.exclude_publication_id else []
    found = svc.find_conflicts(session, account=account, at=at, exclude_ids=exclude)
    return ConflictsPublic(account_id=account.id, scheduled_at=at, ok=not found, conflicts=_conflicts(found))


@router.post("/publications/{publication_id}/reschedule", response_model=RescheduledPublic,
             responses={409: ERROR_WITH_DETAILS})
def reschedule_publication(publication_id: int, body: CalendarReschedule, principal: Writer,
                           session: SessionDep) -> RescheduledPublic | JSONResponse:
    """Move a planned or waiting publication; past times, unknown zones and conflicts (unless ``force``) refuse."""
    pub = publishing.get_publication(session, publication_id, user=principal.user)
    at = svc.resolve_time(scheduled_at=body.scheduled_at, local=body.local, timezone=body.timezone)
    zone = svc.zone(body.timezone) if body.timezone else None
    try:
        pub, accepted = svc.reschedule(session, user=principal.user, pub=pub, at=at, force=body.force, tz=zone)
    except svc.ScheduleConflicts as exc:
        session.rollback()
        return _refusal(exc)
    return RescheduledPublic(publication=publication_public(session, pub), conflicts=_conflicts(accepted))


@router.post("/bulk", response_model=BulkPublic, status_code=status.HTTP_201_CREATED,
             responses={422: ERROR_WITH_DETAILS})
def create_bulk_schedule(body: BulkSchedule, request: Request, principal: Writer, session: SessionDep,
                         runtime: RuntimeDep) -> BulkPublic | JSONResponse:
    """Schedule approved assets into the character's posting slots; all validated first, nothing queued on failure."""
    character = accounts.get_character(session, body.character_id, user=principal.user)
    try:
        plan = svc.bulk_schedule(session, runtime=runtime, user=principal.user, character=character,
                                 asset_ids=body.asset_ids, account_ids=body.account_ids, text=body.text,
                                 after=body.after, dry_run=body.dry_run)
    except svc.BulkScheduleRefused as exc:
        session.rollback()
        return _refusal(exc)
    data = [BulkItemPublic(asset_id=p.asset_id, account_id=p.account_id, scheduled_at=p.scheduled_at, text=p.text,
                           publication_id=p.publication_id) for p in plan]
    if body.dry_run:
        return JSONResponse(BulkPublic(data=data, count=len(data), created=False).model_dump(mode="json"),
                            status_code=status.HTTP_200_OK)
    return BulkPublic(data=data, count=len(data), created=True)
