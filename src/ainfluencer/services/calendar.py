"""The calendar: posting slots, free-slot search, conflicts, views, reschedule, bulk schedule, best times.

Time rules (one place, used by every function here)
- Rows store UTC. Posting slots are *local* wall-clock times in the character's time zone, so a
  09:00 slot stays 09:00 local on both sides of a daylight-saving change; its UTC instant moves.
- A local time that does not exist (the spring-forward gap, e.g. 02:30 in Europe/Berlin on
  2026-03-29) is shifted forward by the length of the gap (02:30 becomes 03:30 CEST). A local time
  that happens twice (the fall-back hour) takes the first occurrence (02:30 CEST on 2026-10-25).
  Both are what PEP 495 gives for ``fold=0``.
- A local day runs from its first instant to the next day's first instant, so day views have 23
  or 25 hours on transition days; where midnight itself does not exist the day starts at the
  first valid time.

Conflicts (reported, never silently fixed)
- ``too_close``: another active publication on the same account within the account's minimum
  gap (``account_calendar_settings.min_gap_minutes``, default 30).
- ``daily_cap``: more posts than the network allows in any 24 hours. The cap is derived from the
  adapter's documented rate limits (each publishing limit scaled to 24 hours, the smallest wins;
  ``Capabilities.daily_post_cap`` when set) and lowered by the account's own ``max_per_day``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from ainfluencer.db.models import Character, User, utcnow
from ainfluencer.db.models_calendar import AccountCalendarSettings, PostingSlot, PublicationMetric
from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount
from ainfluencer.errors import Conflict, InvalidInput, NotFound
from ainfluencer.platforms.base import Capabilities, PlatformAdapter
from ainfluencer.platforms.registry import PlatformRegistry
from ainfluencer.services import accounts

S = PublicationStatus
DEFAULT_MIN_GAP_MINUTES = 30
MAX_MIN_GAP_MINUTES = 24 * 60
SEARCH_DAYS = 400  # how far next_slots looks before giving up
MAX_SLOTS_PER_CHARACTER = 100
DAY = timedelta(days=1)
# Publications that occupy their time: everything except the ones that will never go out.
OCCUPYING = (S.planned, S.due, S.sending, S.published, S.retry_wait, S.unknown)
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# ---- time zones and local days ----------------------------------------------------------------


def zone(name: str | None, *, field_name: str = "timezone") -> ZoneInfo:
    """The IANA zone by name, or InvalidInput naming the field."""
    raw = (name or "").strip()
    if not raw:
        raise InvalidInput("Give a time zone such as Europe/Berlin or UTC.", field=field_name)
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"Unknown time zone {raw!r}; use an IANA name such as Europe/Berlin, "
                           "America/New_York or UTC.", field=field_name) from exc


def timezone_names() -> list[str]:
    """All IANA zone names this system knows, sorted (for pickers)."""
    return sorted(available_timezones())


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock time on a local day as a UTC instant (gap: shifted forward; repeated: first)."""
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz).astimezone(UTC)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) of a local day."""
    return local_to_utc(day, time(0, 0), tz)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The local calendar day an instant falls on."""
    return moment.astimezone(tz).date()


def day_hours(day: date, tz: ZoneInfo) -> list[datetime]:
    """The starts (UTC) of every hour of a local day: 23, 24 or 25 of them."""
    start, end = day_start(day, tz), day_start(day + DAY, tz)
    # Hours are counted in real time from the day's start; on a 23-hour day 02:00 is missing.
    hours = []
    at = start
    while at < end:
        hours.append(at)
        at += timedelta(hours=1)
    return hours


def _aware(value: datetime, field_name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput("Give the time with a time zone offset (e.g. 2030-01-01T14:00:00+01:00 or ...Z).",
                           field=field_name)
    return value.astimezone(UTC)


# ---- posting slots ----------------------------------------------------------------------------


@dataclass
class SlotSpec:
    """A posting slot as a person enters it."""

    weekdays: list[int]
    hour: int
    minute: int = 0
    account_id: int | None = None
    platform: str = ""
    label: str = ""
    enabled: bool = True


def parse_local_time(raw: str, *, field_name: str = "time") -> tuple[int, int]:
    """``HH:MM`` as (hour, minute), or InvalidInput."""
    text = (raw or "").strip()
    try:
        parsed = datetime.strptime(text, "%H:%M")
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not a time; write it as HH:MM, e.g. 09:00.", field=field_name) from exc
    return parsed.hour, parsed.minute


def _check_slot(session: Session, character: Character, spec: SlotSpec) -> SlotSpec:
    days = sorted(set(spec.weekdays))
    if not days:
        raise InvalidInput("Pick at least one weekday for the slot.", field="weekdays")
    if any(not isinstance(d, int) or d < 0 or d > 6 for d in days):
        raise InvalidInput("Weekdays are 0 (Monday) to 6 (Sunday).", field="weekdays")
    if not 0 <= spec.hour <= 23:
        raise InvalidInput("The hour is 0 to 23.", field="hour")
    if not 0 <= spec.minute <= 59:
        raise InvalidInput("The minute is 0 to 59.", field="minute")
    platform = (spec.platform or "").strip()
    if spec.account_id is not None:
        account = session.get(SocialAccount, spec.account_id)
        if account is None or account.character_id != character.id:
            raise InvalidInput(f"Account {spec.account_id} is not one of {character.name}'s accounts.",
                               field="account_id")
        platform = ""
    elif platform:
        accounts.known_spec(platform, accounts.platforms_of(session))
    return SlotSpec(weekdays=days, hour=spec.hour, minute=spec.minute, account_id=spec.account_id,
                    platform=platform, label=(spec.label or "").strip()[:80], enabled=spec.enabled)


def list_slots(session: Session, *, character: Character) -> list[PostingSlot]:
    """The character's posting slots, by time of day."""
    return list(session.scalars(select(PostingSlot).where(PostingSlot.character_id == character.id)
                                .order_by(PostingSlot.hour, PostingSlot.minute, PostingSlot.id)))


def create_slot(session: Session, *, character: Character, spec: SlotSpec) -> PostingSlot:
    """Add a posting slot to a character."""
    clean = _check_slot(session, character, spec)
    count = len(list_slots(session, character=character))
    if count >= MAX_SLOTS_PER_CHARACTER:
        raise Conflict(f"{character.name} has {count} posting slots already; remove one first.")
    slot = PostingSlot(character_id=character.id, account_id=clean.account_id, platform=clean.platform,
                       weekdays=clean.weekdays, hour=clean.hour, minute=clean.minute, label=clean.label,
                       enabled=clean.enabled)
    session.add(slot)
    session.flush()
    return slot


def get_slot(session: Session, *, character: Character, slot_id: int) -> PostingSlot:
    """One slot of the character, or NotFound."""
    slot = session.get(PostingSlot, slot_id)
    if slot is None or slot.character_id != character.id:
        raise NotFound(f"No posting slot with id {slot_id} for {character.name}.")
    return slot


def update_slot(session: Session, *, character: Character, slot: PostingSlot, spec: SlotSpec) -> PostingSlot:
    """Replace a slot's fields."""
    clean = _check_slot(session, character, spec)
    slot.account_id, slot.platform, slot.weekdays = clean.account_id, clean.platform, clean.weekdays
    slot.hour, slot.minute, slot.label, slot.enabled = clean.hour, clean.minute, clean.label, clean.enabled
    session.flush()
    return slot


def delete_slot(session: Session, *, slot: PostingSlot) -> None:
    """Remove a slot."""
    session.delete(slot)
    session.flush()


def slots_for_account(session: Session, *, character: Character, account: SocialAccount) -> list[PostingSlot]:
    """Enabled slots of the character that apply to this account (its own, its network's, or general)."""
    return [s for s in list_slots(session, character=character)
            if s.enabled and (s.account_id == account.id
                              or (s.account_id is None and s.platform in ("", account.platform)))]


def slot_text(slot: PostingSlot) -> str:
    """``Mon, Wed, Fri 09:00`` for display."""
    days = ", ".join(WEEKDAY_NAMES[d] for d in sorted(slot.weekdays)) if len(slot.weekdays) < 7 else "Every day"
    return f"{days} {slot.hour:02d}:{slot.minute:02d}"


# ---- account rules: gap and daily cap -----------------------------------------------------------


@dataclass(frozen=True)
class AccountRules:
    """What a new publication on one account must respect."""

    min_gap: timedelta
    daily_cap: int | None
    cap_source: str  # words for messages: where the cap comes from
    network: str


def network_daily_cap(caps: Capabilities) -> int | None:
    """The most posts a network allows in 24 hours, from its documented publishing limits."""
    candidates = [caps.daily_post_cap] if caps.daily_post_cap else []
    for limit in accounts.publishing_limits(caps):
        candidates.append(math.floor(limit.requests * 86400 / limit.per_seconds))
    return min(candidates) if candidates else None


def account_settings(session: Session, account_id: int) -> AccountCalendarSettings | None:
    """The account's calendar settings row, if one was saved."""
    return session.get(AccountCalendarSettings, account_id)


def save_account_settings(session: Session, *, account: SocialAccount, min_gap_minutes: int,
                          max_per_day: int | None) -> AccountCalendarSettings:
    """Set an account's minimum gap and own daily maximum."""
    if not 0 <= min_gap_minutes <= MAX_MIN_GAP_MINUTES:
        raise InvalidInput(f"The minimum gap is 0 to {MAX_MIN_GAP_MINUTES} minutes.", field="min_gap_minutes")
    if max_per_day is not None and max_per_day < 1:
        raise InvalidInput("The daily maximum is at least 1 (leave it empty for the network's limit).",
                           field="max_per_day")
    row = account_settings(session, account.id)
    if row is None:
        row = AccountCalendarSettings(account_id=account.id)
        session.add(row)
    row.min_gap_minutes, row.max_per_day = min_gap_minutes, max_per_day
    session.flush()
    return row


def rules_for(session: Session, account: SocialAccount) -> AccountRules:
    """The gap and cap that apply to one account."""
    cls: type[PlatformAdapter] = accounts.known_platform(account.platform, accounts.platforms_of(session))
    row = account_settings(session, account.id)
    gap = timedelta(minutes=row.min_gap_minutes if row is not None else DEFAULT_MIN_GAP_MINUTES)
    cap = network_daily_cap(cls.capabilities)
    source = f"{cls.display_name} allows {cap} posts in 24 hours" if cap is not None else ""
    if row is not None and row.max_per_day is not None and (cap is None or row.max_per_day < cap):
        cap, source = row.max_per_day, f"this account is set to at most {row.max_per_day} posts a day"
    return AccountRules(min_gap=gap, daily_cap=cap, cap_source=source, network=cls.display_name)


# ---- conflicts ----------------------------------------------------------------------------------


@dataclass
class ScheduleConflict:
    """One reason a time is a bad idea for an account; ``other_*`` names the publication it clashes with."""

    kind: str  # "too_close" | "daily_cap"
    message: str
    other_publication_id: int | None = None
    other_scheduled_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "message": self.message, "other_publication_id": self.other_publication_id,
                "other_scheduled_at": self.other_scheduled_at.isoformat() if self.other_scheduled_at else None}


@dataclass(order=True)
class _Taken:
    at: datetime
    publication_id: int | None = field(default=None, compare=False)


def _occupied(session: Session, account_id: int, start: datetime, end: datetime,
              exclude: Iterable[int] = ()) -> list[_Taken]:
    skip = set(exclude)
    rows = session.execute(
        select(Publication.id, Publication.scheduled_at)
        .where(Publication.account_id == account_id, Publication.status.in_(OCCUPYING),
               Publication.scheduled_at >= start, Publication.scheduled_at <= end)
        .order_by(Publication.scheduled_at, Publication.id)
    ).all()
    return [_Taken(at, pid) for pid, at in rows if pid not in skip]


def _fmt(moment: datetime, tz: ZoneInfo | None) -> str:
    local = moment.astimezone(tz or UTC)
    return local.strftime("%a %Y-%m-%d %H:%M ") + (local.tzname() or "")


def _conflicts_in(at: datetime, taken: Sequence[_Taken], rules: AccountRules,
                  tz: ZoneInfo | None = None) -> list[ScheduleConflict]:
    """Conflicts of ``at`` against sorted ``taken`` times (pure, used in loops)."""
    found: list[ScheduleConflict] = []
    if rules.min_gap > timedelta(0):
        lo = bisect.bisect_left(taken, _Taken(at - rules.min_gap))
        hi = bisect.bisect_right(taken, _Taken(at + rules.min_gap))
        near = [t for t in taken[lo:hi] if abs(t.at - at) < rules.min_gap]
        if near:
            other = min(near, key=lambda t: abs(t.at - at))
            minutes = int(abs(other.at - at).total_seconds() // 60)
            gap = int(rules.min_gap.total_seconds() // 60)
            what = f"publication {other.publication_id}" if other.publication_id else "another post in this plan"
            found.append(ScheduleConflict(
                "too_close", f"Only {minutes} min from {what} on this account at {_fmt(other.at, tz)}; "
                f"keep at least {gap} min between posts.", other.publication_id, other.at))
    if rules.daily_cap is not None:
        lo = bisect.bisect_left(taken, _Taken(at - DAY))
        hi = bisect.bisect_right(taken, _Taken(at + DAY))
        window = [t.at for t in taken[lo:hi]]
        # Every 24-hour window that contains ``at`` starts at ``at`` or at one of the earlier posts.
        starts = [s for s in window if at - DAY < s <= at] + [at]
        worst = max(1 + sum(1 for t in window if s <= t < s + DAY) for s in starts)
        if worst > rules.daily_cap:
            near = [t for t in taken[lo:hi] if abs(t.at - at) < DAY]
            closest = min(near, key=lambda t: abs(t.at - at)) if near else None
            found.append(ScheduleConflict(
                "daily_cap", f"That makes {worst} posts within 24 hours on this account; {rules.cap_source}.",
                closest.publication_id if closest else None, closest.at if closest else None))
    return found


def find_conflicts(session: Session, *, account: SocialAccount, at: datetime, exclude_ids: Iterable[int] = (),
                   tz: ZoneInfo | None = None) -> list[ScheduleConflict]:
    """Conflicts a publication at ``at`` on ``account`` would have with what is scheduled there."""
    at = _aware(at, "scheduled_at")
    rules = rules_for(session, account)
    taken = _occupied(session, account.id, at - DAY, at + DAY, exclude_ids)
    return _conflicts_in(at, taken, rules, tz)


# ---- free slots --------------------------------------------------------------------------------


def next_slots(session: Session, *, character: Character, account: SocialAccount, count: int,
               after: datetime | None = None) -> list[datetime]:
    """The character's next ``count`` free posting slots for ``account`` after ``after`` (UTC, tz-aware).

    Slots are read in the character's time zone (gap times shift forward, repeated times take the
    first occurrence). A slot is free when a publication there would have no conflict (minimum
    gap, daily cap) with the account's scheduled publications or with the slots returned before
    it. Returns fewer (possibly none) when the character has no slots for the account or the next
    ``SEARCH_DAYS`` days are full.
    """
    if count <= 0:
        return []
    start = _aware(after, "after") if after is not None else utcnow()
    tz = zone(character.timezone)
    times: dict[int, set[time]] = {d: set() for d in range(7)}
    for slot in slots_for_account(session, character=character, account=account):
        for d in slot.weekdays:
            times[d].add(time(slot.hour, slot.minute))
    if not any(times.values()):
        return []
    rules = rules_for(session, account)
    first_day = local_day(start, tz)
    horizon = day_start(first_day + timedelta(days=SEARCH_DAYS + 1), tz)
    taken = _occupied(session, account.id, start - DAY, horizon + DAY)
    chosen: list[datetime] = []
    for offset in range(SEARCH_DAYS + 1):
        day = first_day + timedelta(days=offset)
        for at_local in sorted(times[day.weekday()]):
            at = local_to_utc(day, at_local, tz)
            if at <= start or (chosen and at <= chosen[-1]):
                continue
            if _conflicts_in(at, taken, rules):
                continue
            chosen.append(at)
            bisect.insort(taken, _Taken(at))
            if len(chosen) >= count:
                return chosen
    return chosen


# ---- viewer zone and views -----------------------------------------------------------------------


VIEWS = ("month", "week", "day")
VIEW_LIMIT = 5000  # publications drawn in one view


def viewer_zone(*, user: User, character: Character | None = None, choice: str | None = None) -> ZoneInfo:
    """The zone a calendar is drawn in: ``choice`` ("user", "character" or an IANA name) or the default.

    The default is the character's zone when the view is filtered to one character, else the user's.
    """
    picked = (choice or "").strip()
    if picked == "user":
        return zone(user.timezone or "UTC", field_name="tz")
    if picked == "character":
        if character is None:
            raise InvalidInput("Pick a character to use its time zone.", field="tz")
        return zone(character.timezone or "UTC", field_name="tz")
    if picked:
        return zone(picked, field_name="tz")
    if character is not None:
        return zone(character.timezone or "UTC", field_name="tz")
    return zone(user.timezone or "UTC", field_name="tz")


@dataclass
class CalendarItem:
    """One publication placed on a local day."""

    publication: Publication
    account: SocialAccount
    character_name: str
    local: datetime
    conflicts: list[ScheduleConflict] = field(default_factory=list)
    movable: bool = False


@dataclass
class CalendarDay:
    """One local day of a view."""

    day: date
    start: datetime
    end: datetime
    items: list[CalendarItem] = field(default_factory=list)
    in_range: bool = True

    @property
    def hours(self) -> int:
        """Length of the local day in hours: 23, 24 or 25."""
        return round((self.end - self.start).total_seconds() / 3600)


@dataclass
class CalendarView:
    """A month, week or day of publications in one zone."""

    view: str
    anchor: date
    tz: ZoneInfo
    start: datetime
    end: datetime
    days: list[CalendarDay]
    previous: date
    next: date
    title: str
    truncated: bool = False

    @property
    def weeks(self) -> list[list[CalendarDay]]:
        """Days in rows of seven (month grid)."""
        return [self.days[i:i + 7] for i in range(0, len(self.days), 7)]

    @property
    def items(self) -> list[CalendarItem]:
        """Every item in the view, in time order."""
        return [item for d in self.days for item in d.items]


def view_range(view: str, anchor: date) -> tuple[date, date, date, date, str]:
    """First day, day after the last, previous anchor, next anchor and a title for a view."""
    if view == "day":
        return anchor, anchor + DAY, anchor - DAY, anchor + DAY, anchor.strftime("%A %d %B %Y")
    if view == "week":
        first = anchor - timedelta(days=anchor.weekday())
        iso = first.isocalendar()
        return first, first + timedelta(days=7), first - timedelta(days=7), first + timedelta(days=7), (
            f"Week {iso.week}, {first.strftime('%d %b')} – {(first + timedelta(days=6)).strftime('%d %b %Y')}")
    if view == "month":
        month_first = anchor.replace(day=1)
        next_month = (month_first + timedelta(days=32)).replace(day=1)
        prev_month = (month_first - DAY).replace(day=1)
        first = month_first - timedelta(days=month_first.weekday())
        last = next_month + timedelta(days=(7 - next_month.weekday()) % 7)
        return first, last, prev_month, next_month, month_first.strftime("%B %Y")
    raise InvalidInput(f"Unknown view {view!r}; use month, week or day.", field="view")


def parse_day(raw: str | None, *, tz: ZoneInfo, field_name: str = "date") -> date:
    """``YYYY-MM-DD`` (default: today in ``tz``)."""
    if not raw:
        return utcnow().astimezone(tz).date()
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise InvalidInput(f"{raw!r} is not a date; write it as YYYY-MM-DD.", field=field_name) from exc


def calendar_view(
    session: Session, *, user: User, view: str = "month", anchor: date, tz: ZoneInfo,
    character_id: int | None = None, account_id: int | None = None, platform: str | None = None,
    statuses: Sequence[PublicationStatus] = (),
) -> CalendarView:
    """Publications in a month/week/day, bucketed by local day in ``tz``, with their conflicts."""
    first, after_last, previous, nxt, title = view_range(view, anchor)
    month = anchor.month if view == "month" else None
    days: list[CalendarDay] = []
    d = first
    while d < after_last:
        days.append(CalendarDay(day=d, start=day_start(d, tz), end=day_start(d + DAY, tz),
                                in_range=month is None or d.month == month))
        d += DAY
    start, end = days[0].start, days[-1].end
    pubs, total = _publications_between(session, user=user, start=start, end=end, character_id=character_id,
                                        account_id=account_id, platform=platform, statuses=statuses)
    items = _items_with_conflicts(session, pubs, tz)
    by_day = {cd.day: cd for cd in days}
    for item in items:
        cd = by_day.get(item.local.date())
        if cd is not None:
            cd.items.append(item)
    return CalendarView(view=view, anchor=anchor, tz=tz, start=start, end=end, days=days, previous=previous,
                        next=nxt, title=title, truncated=total > len(pubs))


def _publications_between(
    session: Session, *, user: User, start: datetime, end: datetime, character_id: int | None = None,
    account_id: int | None = None, platform: str | None = None, statuses: Sequence[PublicationStatus] = (),
) -> tuple[list[Publication], int]:
    from ainfluencer.services import publishing

    return publishing.list_publications(
        session, user=user, statuses=statuses, character_id=character_id, account_id=account_id,
        platform=platform or None, scheduled_from=start, scheduled_to=end, newest_first=False, limit=VIEW_LIMIT)


def _items_with_conflicts(session: Session, pubs: Sequence[Publication], tz: ZoneInfo) -> list[CalendarItem]:
    if not pubs:
        return []
    account_ids = {p.account_id for p in pubs}
    account_rows = {a.id: a for a in session.scalars(select(SocialAccount).where(SocialAccount.id.in_(account_ids)))}
    character_ids = {p.character_id for p in pubs}
    names = dict(session.execute(select(Character.id, Character.name).where(Character.id.in_(character_ids))).all())
    lo, hi = min(p.scheduled_at for p in pubs), max(p.scheduled_at for p in pubs)
    taken_by_account: dict[int, list[_Taken]] = {}
    rules_by_account: dict[int, AccountRules] = {}
    items = []
    for pub in pubs:
        account = account_rows[pub.account_id]
        item = CalendarItem(publication=pub, account=account, character_name=names.get(pub.character_id, ""),
                            local=pub.scheduled_at.astimezone(tz),
                            movable=pub.status in (S.planned, S.retry_wait))
        if pub.status in (S.planned, S.due, S.retry_wait):
            if pub.account_id not in taken_by_account:
                taken_by_account[pub.account_id] = _occupied(session, pub.account_id, lo - DAY, hi + DAY)
                try:
                    rules_by_account[pub.account_id] = rules_for(session, account)
                except Exception:  # noqa: BLE001 - an uninstalled platform must not break the calendar
                    rules_by_account[pub.account_id] = AccountRules(timedelta(0), None, "", account.platform)
            taken = [t for t in taken_by_account[pub.account_id] if t.publication_id != pub.id]
            item.conflicts = _conflicts_in(pub.scheduled_at, taken, rules_by_account[pub.account_id], tz)
        items.append(item)
    return items


# ---- reschedule ------------------------------------------------------------------------------------


class ScheduleConflicts(Conflict):
    """The time clashes with the account's other publications; ``conflicts`` lists each clash."""

    code = "schedule_conflict"

    def __init__(self, conflicts: list[ScheduleConflict]) -> None:
        lines = " ".join(c.message for c in conflicts)
        super().__init__(f"{lines} Choose another time, or confirm “schedule anyway”.", field="scheduled_at")
        self.conflicts = conflicts


def resolve_time(*, scheduled_at: datetime | None = None, local: datetime | None = None,
                 timezone: str | None = None) -> datetime:
    """An instant from either an aware ``scheduled_at`` or a naive ``local`` time in ``timezone``."""
    if scheduled_at is not None:
        return _aware(scheduled_at, "scheduled_at")
    if local is None:
        raise InvalidInput("Give the new time.", field="scheduled_at")
    tz = zone(timezone, field_name="timezone")
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return local_to_utc(local.date(), local.time(), tz)


def reschedule(session: Session, *, user: User, pub: Publication, at: datetime, force: bool = False,
               tz: ZoneInfo | None = None) -> tuple[Publication, list[ScheduleConflict]]:
    """Move a publication after checking the time and the account's conflicts.

    Refuses times in the past and, unless ``force`` ("schedule anyway"), times with conflicts;
    returns the publication and the conflicts that were accepted.
    """
    from ainfluencer.services import publishing

    at = _aware(at, "scheduled_at")
    if pub.status not in (S.planned, S.retry_wait):
        raise Conflict(f"Publication {pub.id} is {pub.status.value}; only planned or waiting posts can be moved.")
    if at < utcnow():
        raise InvalidInput(f"{_fmt(at, tz)} is in the past; pick a time from now on.", field="scheduled_at")
    account = session.get(SocialAccount, pub.account_id)
    if account is None:
        raise NotFound(f"The account of publication {pub.id} is gone.")
    conflicts = find_conflicts(session, account=account, at=at, exclude_ids=[pub.id], tz=tz)
    if conflicts and not force:
        raise ScheduleConflicts(conflicts)
    publishing.reschedule(session, user=user, pub=pub, scheduled_at=at)
    return pub, conflicts


def move_to_day(session: Session, *, user: User, pub: Publication, day: date, tz: ZoneInfo,
                hour: int | None = None, force: bool = False) -> tuple[Publication, list[ScheduleConflict]]:
    """Drag and drop: the same local time of day (or ``hour``:00) on another local day in ``tz``."""
    if hour is not None and not 0 <= hour <= 23:
        raise InvalidInput("The hour is 0 to 23.", field="hour")
    current = pub.scheduled_at.astimezone(tz)
    at_local = time(hour, 0) if hour is not None else time(current.hour, current.minute, current.second)
    return reschedule(session, user=user, pub=pub, at=local_to_utc(day, at_local, tz), force=force, tz=tz)


# ---- bulk schedule ------------------------------------------------------------------------------------


MAX_BULK_ASSETS = 100
PROMPT_TEXT_CHARS = 200


@dataclass
class BulkProblem:
    """One reason a bulk plan cannot be queued."""

    message: str
    field: str = ""
    asset_id: int | None = None
    account_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"message": self.message, "field": self.field, "asset_id": self.asset_id,
                "account_id": self.account_id}


class BulkScheduleRefused(InvalidInput):
    """Nothing was queued; ``problems`` lists every reason at once."""

    code = "bulk_refused"

    def __init__(self, problems: list[BulkProblem]) -> None:
        n = len(problems)
        summary = " ".join(p.message for p in problems[:20]) + (f" (and {n - 20} more)" if n > 20 else "")
        super().__init__(f"Nothing was scheduled: {n} problem{'s' if n != 1 else ''}. {summary}", field="assets")
        self.problems = problems


@dataclass
class BulkPlanItem:
    """One asset to one account at one slot."""

    asset_id: int
    account_id: int
    scheduled_at: datetime
    text: str
    publication_id: int | None = None


def asset_text(asset: Any) -> str:
    """The post text an asset brings: its caption, else text derived from its prompt."""
    caption = (getattr(asset, "caption", "") or "").strip()
    if caption:
        return caption
    prompt = " ".join((getattr(asset, "prompt", "") or "").split())
    if len(prompt) > PROMPT_TEXT_CHARS:
        prompt = prompt[:PROMPT_TEXT_CHARS].rsplit(" ", 1)[0] + "…"
    return prompt


def bulk_schedule(
    session: Session, *, runtime: Any, user: User, character: Character, asset_ids: Sequence[int],
    account_ids: Sequence[int], text: str | None = None, after: datetime | None = None, dry_run: bool = False,
) -> list[BulkPlanItem]:
    """Put approved vault assets into the character's next free posting slots on each account.

    Each asset becomes one publication per account, in asset order, slot after slot. Every asset
    is validated against every network first; if anything fails (asset not approved, validation,
    too few free slots) nothing is queued and :class:`BulkScheduleRefused` lists all problems.
    ``dry_run`` returns the plan without creating anything.
    """
    from ainfluencer.db.models_media import AssetKind, ReviewState
    from ainfluencer.services import publishing, vault

    problems: list[BulkProblem] = []
    ids = list(dict.fromkeys(int(i) for i in asset_ids))
    if not ids:
        raise InvalidInput("Select at least one approved asset.", field="assets")
    if len(ids) > MAX_BULK_ASSETS:
        raise InvalidInput(f"At most {MAX_BULK_ASSETS} assets at a time.", field="assets")
    wanted_accounts = list(dict.fromkeys(int(i) for i in account_ids))
    if not wanted_accounts:
        raise InvalidInput("Pick at least one account.", field="accounts")
    found = {a.id: a for a in vault.assets_by_ids(session, user=user, ids=ids)}
    assets = [found[i] for i in ids]
    account_rows: list[SocialAccount] = []
    for account_id in wanted_accounts:
        account = session.get(SocialAccount, account_id)
        if account is None or account.character_id != character.id:
            problems.append(BulkProblem(f"Account {account_id} is not one of {character.name}'s accounts.",
                                        "accounts", account_id=account_id))
            continue
        reason = accounts.usable_for_publishing(account)
        if reason:
            problems.append(BulkProblem(reason, "accounts", account_id=account_id))
            continue
        account_rows.append(account)
    user_text = text.strip() if text and text.strip() else None
    for asset in assets:
        if asset.review_state != ReviewState.approved:
            problems.append(BulkProblem(f"Asset {asset.id} is {asset.review_state.value}; only approved assets "
                                        "can be scheduled.", "assets", asset_id=asset.id))
            continue
        if asset.character_id not in (None, character.id):
            problems.append(BulkProblem(f"Asset {asset.id} belongs to another character.", "assets",
                                        asset_id=asset.id))
            continue
        if asset.kind not in (AssetKind.image, AssetKind.video):
            problems.append(BulkProblem(f"Asset {asset.id} is {asset.kind.value}; only images and videos can be "
                                        "posted.", "assets", asset_id=asset.id))
            continue
        body = user_text if user_text is not None else asset_text(asset)
        for account in account_rows:
            cls = accounts.known_platform(account.platform, runtime.platforms)
            try:
                publishing.validate_post(cls=cls, spec=runtime.platforms.spec(account.platform),
                                         media_dir=runtime.settings.media_dir, text=body, title="",
                                         media=[_asset_media(asset)], options={}, first_comment="", tags=[],
                                         ai_generated=True, where=f"asset {asset.id}")
            except InvalidInput as exc:
                who = f"@{account.handle.lstrip('@')}" if account.handle else f"account {account.id}"
                problems.append(BulkProblem(f"Asset {asset.id} on {cls.display_name} {who}: {exc.message}",
                                            exc.field or "assets", asset.id, account.id))
    start = _aware(after, "after") if after is not None else utcnow()
    slots: dict[int, list[datetime]] = {}
    for account in account_rows:
        free = next_slots(session, character=character, account=account, count=len(assets), after=start)
        if len(free) < len(assets):
            who = f"@{account.handle.lstrip('@')}" if account.handle else f"account {account.id}"
            problems.append(BulkProblem(
                f"{character.name} has {'no posting slots' if not free else f'only {len(free)} free slots'} "
                f"for {who} in the next {SEARCH_DAYS} days; {len(assets)} are needed. Add posting slots first.",
                "slots", account_id=account.id))
        slots[account.id] = free
    if problems:
        raise BulkScheduleRefused(problems)
    plan = [BulkPlanItem(asset_id=asset.id, account_id=account.id, scheduled_at=slots[account.id][i],
                         text=user_text if user_text is not None else asset_text(asset))
            for i, asset in enumerate(assets) for account in account_rows]
    if dry_run:
        return plan
    by_id = {a.id: a for a in assets}
    for item in plan:
        spec = publishing.PostSpec(targets=[publishing.TargetSpec(account_id=item.account_id)], text=item.text,
                                   media=[_asset_media(by_id[item.asset_id])], scheduled_at=item.scheduled_at,
                                   character_id=character.id)
        item.publication_id = publishing.create_publications(session, runtime=runtime, user=user, spec=spec)[0].id
    return plan


def _asset_media(asset: Any) -> Any:
    from ainfluencer.services import publishing

    return publishing.MediaSpec(path=asset.path, kind=asset.kind.value, mime_type=asset.mime or None,
                                asset_id=asset.id, duration_seconds=asset.duration_s, width=asset.width,
                                height=asset.height)


# ---- best times ----------------------------------------------------------------------------------------


MIN_HISTORY = 5  # published posts with metrics before history beats the defaults
SMOOTHING_POSTS = 2.0  # pseudo-posts at the account's mean engagement added to every hour (shrinkage)
NEIGHBOUR_WEIGHT = 0.5  # an hour also learns from the hours beside it
HISTORY_DAYS = 180

# Starting points before an account has history: each network's package declares when its audiences
# are typically active (``PlatformSpec.best_times``). Networks without them use GENERIC_BEST_HOURS.
GENERIC_BEST_HOURS: tuple[tuple[int, int], ...] = ((1, 12), (2, 9), (3, 12), (0, 18), (4, 11))


def default_best_hours(platform: str, platforms: PlatformRegistry | None = None) -> tuple[tuple[int, int], ...]:
    """The network's declared typical good (weekday, local hour) pairs, or the generic ones."""
    try:
        return accounts.known_spec(platform, platforms).best_times or GENERIC_BEST_HOURS
    except InvalidInput:
        return GENERIC_BEST_HOURS


@dataclass
class BestTime:
    """A suggested weekday and local hour with its score (history: smoothed engagement)."""

    weekday: int
    hour: int
    score: float
    posts: float = 0.0

    @property
    def label(self) -> str:
        """``Tue 11:00``."""
        return f"{WEEKDAY_NAMES[self.weekday]} {self.hour:02d}:00"

    def next_at(self, tz: ZoneInfo, after: datetime | None = None) -> datetime:
        """The next instant (UTC) of this weekday and hour in ``tz`` after ``after``."""
        start = after or utcnow()
        day = local_day(start, tz)
        for offset in range(8):
            d = day + timedelta(days=offset)
            if d.weekday() == self.weekday:
                at = local_to_utc(d, time(self.hour), tz)
                if at > start:
                    return at
        return local_to_utc(day + timedelta(days=7), time(self.hour), tz)  # pragma: no cover


@dataclass
class BestTimes:
    """Suggestions for one account and where they came from."""

    account_id: int
    source: str  # "history" | "defaults"
    timezone: str
    suggestions: list[BestTime]
    sample_size: int
    metric: str
    note: str


def best_times(session: Session, *, account: SocialAccount, tz: ZoneInfo | None = None, limit: int = 5,
               now: datetime | None = None) -> BestTimes:
    """When this account's posts did best (engagement by local weekday/hour, smoothed), or network defaults."""
    character = session.get(Character, account.character_id)
    tz = tz or zone(character.timezone if character else "UTC")
    since = (now or utcnow()) - timedelta(days=HISTORY_DAYS)
    latest = (select(PublicationMetric.publication_id, PublicationMetric.likes, PublicationMetric.comments,
                     PublicationMetric.shares, PublicationMetric.views, PublicationMetric.collected_at,
                     Publication.published_at, Publication.scheduled_at)
              .join(Publication, Publication.id == PublicationMetric.publication_id)
              .where(Publication.account_id == account.id, Publication.status == S.published,
                     Publication.scheduled_at >= since)
              .order_by(PublicationMetric.publication_id, PublicationMetric.collected_at))
    per_pub: dict[int, tuple[int, int, datetime]] = {}
    for pid, likes, comments, shares, views, _collected, published_at, scheduled_at in session.execute(latest):
        per_pub[pid] = (likes + comments + shares, views, published_at or scheduled_at)  # last reading wins
    samples = list(per_pub.values())
    if len(samples) < MIN_HISTORY:
        return _default_times(account, tz, limit, len(samples), accounts.platforms_of(session))
    use_rate = all(views > 0 for _, views, _ in samples)
    scores = [(eng / views if use_rate else float(eng), at.astimezone(tz)) for eng, views, at in samples]
    mean = sum(s for s, _ in scores) / len(scores)
    total: dict[tuple[int, int], float] = {}
    weight: dict[tuple[int, int], float] = {}
    for score, local in scores:
        base = local.weekday() * 24 + local.hour
        for delta, w in ((0, 1.0), (-1, NEIGHBOUR_WEIGHT), (1, NEIGHBOUR_WEIGHT)):
            idx = (base + delta) % (7 * 24)
            key = (idx // 24, idx % 24)
            total[key] = total.get(key, 0.0) + w * score
            weight[key] = weight.get(key, 0.0) + w
    ranked = []
    for key, w in weight.items():
        smoothed = (total[key] + SMOOTHING_POSTS * mean) / (w + SMOOTHING_POSTS)
        ranked.append(BestTime(weekday=key[0], hour=key[1], score=round(smoothed, 6), posts=round(w, 2)))
    ranked.sort(key=lambda b: (-b.score, -b.posts, b.weekday, b.hour))
    metric = "engagement rate ((likes + comments + shares) / views)" if use_rate else \
        "engagements per post (likes + comments + shares; views not reported)"
    return BestTimes(account_id=account.id, source="history", timezone=str(tz.key), suggestions=ranked[:limit],
                     sample_size=len(samples), metric=metric,
                     note=f"From {len(samples)} published posts of the last {HISTORY_DAYS} days, by local weekday "
                          f"and hour in {tz.key}, smoothed toward the account's average.")


def _default_times(account: SocialAccount, tz: ZoneInfo, limit: int, have: int,
                   platforms: PlatformRegistry | None = None) -> BestTimes:
    hours = default_best_hours(account.platform, platforms)
    suggestions = [BestTime(weekday=d, hour=h, score=round(1.0 - i * 0.1, 2)) for i, (d, h) in enumerate(hours)]
    try:
        network = accounts.known_spec(account.platform, platforms).display_name
    except InvalidInput:  # an unknown network still gets generic defaults
        network = account.platform
    return BestTimes(account_id=account.id, source="defaults", timezone=str(tz.key), suggestions=suggestions[:limit],
                     sample_size=have, metric="typical audience activity",
                     note=f"Not enough history yet ({have} of {MIN_HISTORY} published posts with metrics): typical "
                          f"good times for {network} audiences, in {tz.key}. Suggestions switch to this account's "
                          "own engagement once it has history.")
