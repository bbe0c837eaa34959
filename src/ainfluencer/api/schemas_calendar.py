"""Schemas of the calendar API: views, posting slots, account settings, conflicts, best times, bulk schedule."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from ainfluencer.api.schemas_publishing import PublicationPublic

# ---- views -------------------------------------------------------------------------------------------


class ConflictPublic(BaseModel):
    """One clash of a time with an account's other publications."""

    kind: str = Field(description="too_close (within the account's minimum gap) or daily_cap (over the 24-hour cap)")
    message: str
    other_publication_id: int | None = None
    other_scheduled_at: datetime | None = None


class CalendarItemPublic(BaseModel):
    """A publication placed on a local day."""

    publication: PublicationPublic
    local_time: datetime = Field(description="scheduled_at in the view's time zone")
    character_name: str
    movable: bool = Field(description="true while planned or waiting: it can be rescheduled")
    conflicts: list[ConflictPublic]


class CalendarDayPublic(BaseModel):
    """One local day: its UTC bounds, length in hours (23/24/25) and publications."""

    day: date
    start: datetime
    end: datetime
    hours: int
    in_range: bool = Field(description="false for the neighbouring months' days of a month grid")
    items: list[CalendarItemPublic]


class CalendarPublic(BaseModel):
    """A month, week or day of publications in one time zone."""

    view: str
    timezone: str
    anchor: date
    start: datetime
    end: datetime
    previous: date
    next: date
    title: str
    truncated: bool
    days: list[CalendarDayPublic]


# ---- slots and settings -------------------------------------------------------------------------------


class SlotCreate(BaseModel):
    """A posting slot: weekdays (0 = Monday) at a local time of day, in the character's time zone."""

    model_config = ConfigDict(extra="forbid")

    weekdays: list[int] = Field(min_length=1, max_length=7, description="0 = Monday ... 6 = Sunday")
    time: str = Field(pattern=r"^\d{1,2}:\d{2}$", description="local time of day, HH:MM", examples=["09:00"])
    account_id: int | None = Field(None, description="only this account (else every account of the character)")
    platform: str = Field("", max_length=32, description="only this network's accounts (ignored with account_id)")
    label: str = Field("", max_length=80)
    enabled: bool = True


class SlotUpdate(SlotCreate):
    """The slot's new fields (all of them)."""


class SlotPublic(BaseModel):
    """A stored posting slot."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    character_id: int
    account_id: int | None
    platform: str
    weekdays: list[int]
    hour: int
    minute: int
    time: str
    label: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


class SlotsPublic(BaseModel):
    """A character's posting slots and the zone they are read in."""

    data: list[SlotPublic]
    count: int
    timezone: str


class NextSlotsPublic(BaseModel):
    """The next free slots for one account (UTC and local)."""

    account_id: int
    timezone: str
    data: list[datetime]
    local: list[datetime]


class AccountSettingsUpdate(BaseModel):
    """An account's spacing rules."""

    model_config = ConfigDict(extra="forbid")

    min_gap_minutes: int = Field(30, ge=0, le=1440, description="minimum minutes between two posts on the account")
    max_per_day: int | None = Field(None, ge=1, description="own cap below the network's (null: the network's)")


class AccountSettingsPublic(BaseModel):
    """The rules that apply to an account."""

    account_id: int
    min_gap_minutes: int
    max_per_day: int | None
    daily_cap: int | None = Field(description="the cap checked: the network's documented limit or max_per_day")
    cap_source: str


# ---- conflicts, reschedule --------------------------------------------------------------------------


class ConflictCheck(BaseModel):
    """A proposed time for an account: ``scheduled_at`` with offset, or ``local`` plus ``timezone``."""

    model_config = ConfigDict(extra="forbid")

    account_id: int
    scheduled_at: datetime | None = None
    local: datetime | None = Field(None, description="wall-clock time (no offset) read in ``timezone``")
    timezone: str | None = Field(None, max_length=64)
    exclude_publication_id: int | None = Field(None, description="the publication being moved, if any")


class ConflictsPublic(BaseModel):
    """The conflicts of a proposed time (empty: fine)."""

    account_id: int
    scheduled_at: datetime
    ok: bool
    conflicts: list[ConflictPublic]


class CalendarReschedule(BaseModel):
    """A new time for a publication; conflicts refuse unless ``force`` ("schedule anyway")."""

    model_config = ConfigDict(extra="forbid")

    scheduled_at: datetime | None = None
    local: datetime | None = Field(None, description="wall-clock time (no offset) read in ``timezone``")
    timezone: str | None = Field(None, max_length=64)
    force: bool = False


class RescheduledPublic(BaseModel):
    """The moved publication and the conflicts that were accepted with ``force``."""

    publication: PublicationPublic
    conflicts: list[ConflictPublic]


# ---- best times, bulk ------------------------------------------------------------------------------


class BestTimePublic(BaseModel):
    """A suggested local weekday and hour."""

    weekday: int
    hour: int
    label: str
    score: float
    posts: float = Field(description="weighted posts behind the score (0 for defaults)")
    next_at: datetime = Field(description="the next such time, UTC")


class BestTimesPublic(BaseModel):
    """Suggestions for an account and where they came from."""

    account_id: int
    source: str = Field(description="history (the account's own engagement) or defaults (network guidance)")
    timezone: str
    metric: str
    sample_size: int
    note: str
    data: list[BestTimePublic]


class BulkSchedule(BaseModel):
    """Approved vault assets into a character's next free posting slots, one publication per asset and account."""

    model_config = ConfigDict(extra="forbid")

    character_id: int
    asset_ids: list[int] = Field(min_length=1, max_length=100)
    account_ids: list[int] = Field(min_length=1, max_length=20)
    text: str | None = Field(None, max_length=10000, description="post text for all; empty: each asset's caption")
    after: datetime | None = Field(None, description="first slot after this time (default now)")
    dry_run: bool = Field(False, description="return the plan, queue nothing")


class BulkItemPublic(BaseModel):
    """One planned (or created) publication."""

    asset_id: int
    account_id: int
    scheduled_at: datetime
    text: str
    publication_id: int | None


class BulkPublic(BaseModel):
    """The plan; ``created`` is false for a dry run."""

    data: list[BulkItemPublic]
    count: int
    created: bool
