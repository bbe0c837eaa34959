"""Time zones and DST: local days of 23/25 hours, slots that keep their local time, gap and repeated times.

Europe/Berlin: summer time starts 2026-03-29 02:00 -> 03:00 and ends 2026-10-25 03:00 -> 02:00.
Australia/Sydney (southern hemisphere): summer time ends 2026-04-05 03:00 -> 02:00 and starts
2026-10-04 02:00 -> 03:00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from calendar_helpers import Cal, add_slot, pub, schedule
from sqlalchemy import update

from ainfluencer.db.models_publishing import Publication
from ainfluencer.errors import InvalidInput
from ainfluencer.services import calendar as svc

BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.nodb
@pytest.mark.parametrize(("tz", "day", "hours"), [
    (BERLIN, date(2026, 3, 29), 23), (BERLIN, date(2026, 10, 25), 25), (BERLIN, date(2026, 6, 1), 24),
    (SYDNEY, date(2026, 4, 5), 25), (SYDNEY, date(2026, 10, 4), 23), (SYDNEY, date(2026, 7, 1), 24),
])
def test_local_day_lengths(tz: ZoneInfo, day: date, hours: int) -> None:
    starts = svc.day_hours(day, tz)
    assert len(starts) == hours
    assert starts[0] == svc.day_start(day, tz)
    assert starts[0].astimezone(tz).time() == time(0, 0)
    assert svc.day_start(day, tz) + (starts[1] - starts[0]) * hours == svc.day_start(date.fromordinal(
        day.toordinal() + 1), tz)


@pytest.mark.nodb
def test_gap_times_shift_forward_and_repeated_times_take_the_first() -> None:
    # Berlin spring: 02:30 does not exist -> 03:30 CEST (01:30 UTC).
    gap = svc.local_to_utc(date(2026, 3, 29), time(2, 30), BERLIN)
    assert gap == utc(2026, 3, 29, 1, 30)
    assert gap.astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    # Berlin autumn: 02:30 happens twice -> the first (CEST, 00:30 UTC), not the second (01:30 UTC).
    assert svc.local_to_utc(date(2026, 10, 25), time(2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)
    # Sydney spring (October): 02:30 does not exist -> 03:30 AEDT (16:30 UTC the day before).
    assert svc.local_to_utc(date(2026, 10, 4), time(2, 30), SYDNEY) == utc(2026, 10, 3, 16, 30)
    # Sydney autumn (April): 02:30 happens twice -> the first, still AEDT (+11).
    assert svc.local_to_utc(date(2026, 4, 5), time(2, 30), SYDNEY) == utc(2026, 4, 4, 15, 30)


@pytest.mark.nodb
def test_unknown_zone_is_refused_with_a_clear_message() -> None:
    with pytest.raises(InvalidInput, match="Unknown time zone 'Mars/Olympus'"):
        svc.zone("Mars/Olympus")
    with pytest.raises(InvalidInput, match="Give a time zone"):
        svc.zone("")
    with pytest.raises(InvalidInput, match="Unknown time zone"):
        svc.resolve_time(local=datetime(2030, 1, 1, 9), timezone="../etc/passwd")


def _next(world: Cal, after: datetime, count: int, account_id: int | None = None) -> list[datetime]:
    with world.session() as s:
        return svc.next_slots(s, character=world.character(s), account=world.account(s, account_id),
                              count=count, after=after)


def test_a_nine_oclock_slot_stays_nine_local_across_both_berlin_transitions(cal: Cal) -> None:
    add_slot(cal, list(range(7)), 9)
    spring = _next(cal, utc(2026, 3, 27, 0), 4)
    assert spring == [utc(2026, 3, 27, 8), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]
    assert {s.astimezone(BERLIN).strftime("%H:%M") for s in spring} == {"09:00"}
    autumn = _next(cal, utc(2026, 10, 24, 0), 3)
    assert autumn == [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]
    assert {s.astimezone(BERLIN).strftime("%H:%M") for s in autumn} == {"09:00"}
    assert all(s.tzinfo is not None and s.utcoffset() == UTC.utcoffset(None) for s in spring + autumn)


def test_sydney_slots_follow_southern_hemisphere_dst(cal: Cal) -> None:
    with cal.session() as s:
        cal.character(s).timezone = "Australia/Sydney"
    add_slot(cal, list(range(7)), 9)
    april = _next(cal, utc(2026, 4, 3, 0), 2)  # Apr 4 (AEDT +11), Apr 5 (AEST +10)
    assert april == [utc(2026, 4, 3, 22), utc(2026, 4, 4, 23)]
    october = _next(cal, utc(2026, 10, 2, 12), 2)  # Oct 3 (AEST +10), Oct 4 (AEDT +11)
    assert october == [utc(2026, 10, 2, 23), utc(2026, 10, 3, 22)]
    assert {x.astimezone(SYDNEY).hour for x in april + october} == {9}


def test_slot_inside_the_gap_and_the_repeated_hour(cal: Cal) -> None:
    add_slot(cal, [6], 2, 30)  # Sundays 02:30
    assert _next(cal, utc(2026, 3, 28, 0), 1) == [utc(2026, 3, 29, 1, 30)]  # shifted to 03:30 CEST
    assert _next(cal, utc(2026, 10, 24, 0), 1) == [utc(2026, 10, 25, 0, 30)]  # first 02:30 (CEST)


def _place(world: Cal, at: datetime) -> int:
    """A publication moved (directly) to ``at``, which may be in the past: the view only reads."""
    pid = schedule(world, utc(2027, 6, 1, 12))
    with world.session() as s:
        s.execute(update(Publication).where(Publication.id == pid).values(scheduled_at=at))
    return pid


def test_day_view_buckets_by_local_day_on_the_25_hour_day(cal: Cal) -> None:
    before = _place(cal, utc(2026, 10, 24, 21, 59))  # Oct 24 23:59 CEST
    first = _place(cal, utc(2026, 10, 24, 22, 0))  # Oct 25 00:00 CEST
    repeated_a = _place(cal, utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    repeated_b = _place(cal, utc(2026, 10, 25, 1, 30))  # 02:30 CET
    last = _place(cal, utc(2026, 10, 25, 22, 59))  # 23:59 CET
    after = _place(cal, utc(2026, 10, 25, 23, 0))  # Oct 26 00:00 CET
    with cal.session() as s:
        view = svc.calendar_view(s, user=cal.owner(s), view="day", anchor=date(2026, 10, 25), tz=BERLIN)
        assert len(view.days) == 1 and view.days[0].hours == 25
        ids = [i.publication.id for i in view.days[0].items]
        week = svc.calendar_view(s, user=cal.owner(s), view="week", anchor=date(2026, 10, 25), tz=BERLIN)
        by_day = {d.day: [i.publication.id for i in d.items] for d in week.days}
        next_week = svc.calendar_view(s, user=cal.owner(s), view="week", anchor=date(2026, 10, 26), tz=BERLIN)
    assert ids == [first, repeated_a, repeated_b, last]
    assert by_day[date(2026, 10, 24)] == [before]
    assert by_day[date(2026, 10, 25)] == ids
    assert [d.day for d in week.days][0] == date(2026, 10, 19)
    assert [d.hours for d in week.days] == [24, 24, 24, 24, 24, 24, 25]
    assert [i.publication.id for i in next_week.days[0].items] == [after]


def test_month_view_in_sydney_and_in_utc_put_a_post_on_different_days(cal: Cal) -> None:
    pid = _place(cal, utc(2026, 10, 3, 14, 30))  # Sydney: Oct 4 00:30 AEST (the 23-hour day)
    with cal.session() as s:
        sydney = svc.calendar_view(s, user=cal.owner(s), view="month", anchor=date(2026, 10, 15), tz=SYDNEY)
        in_utc = svc.calendar_view(s, user=cal.owner(s), view="month", anchor=date(2026, 10, 15), tz=ZoneInfo("UTC"))
    syd_days = {d.day: [i.publication.id for i in d.items] for d in sydney.days}
    utc_days = {d.day: [i.publication.id for i in d.items] for d in in_utc.days}
    assert syd_days[date(2026, 10, 4)] == [pid] and syd_days[date(2026, 10, 3)] == []
    assert utc_days[date(2026, 10, 3)] == [pid]
    assert len(sydney.days) % 7 == 0 and sydney.days[0].day.weekday() == 0
    assert next(d for d in sydney.days if d.day == date(2026, 10, 4)).hours == 23
    assert pub(cal, pid).scheduled_at == utc(2026, 10, 3, 14, 30)
