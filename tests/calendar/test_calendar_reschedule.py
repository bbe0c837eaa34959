"""Reschedule with validation: past dates, unknown time zones and conflicts refuse; "schedule anyway" overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from calendar_helpers import Cal, pub, schedule

from ainfluencer.db.models import utcnow
from ainfluencer.errors import Conflict, InvalidInput
from ainfluencer.services import calendar as svc
from ainfluencer.services import publishing

BERLIN = ZoneInfo("Europe/Berlin")
T = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)


def _move(world: Cal, pid: int, at: datetime, *, force: bool = False) -> list[svc.ScheduleConflict]:
    with world.session() as s:
        p = publishing.get_publication(s, pid, user=world.owner(s))
        return svc.reschedule(s, user=world.owner(s), pub=p, at=at, force=force, tz=BERLIN)[1]


def test_reschedule_moves_and_requeues(cal: Cal) -> None:
    pid = schedule(cal, T)
    assert _move(cal, pid, T + timedelta(days=2)) == []
    row = pub(cal, pid)
    assert row.scheduled_at == T + timedelta(days=2) and row.status.value == "planned"


def test_past_date_is_refused(cal: Cal) -> None:
    pid = schedule(cal, T)
    with pytest.raises(InvalidInput, match="in the past; pick a time from now on"):
        _move(cal, pid, utcnow() - timedelta(hours=1))
    assert pub(cal, pid).scheduled_at == T


def test_unknown_time_zone_is_refused(cal: Cal) -> None:
    with pytest.raises(InvalidInput, match="Unknown time zone 'Europe/Atlantis'") as info:
        svc.resolve_time(local=datetime(2027, 2, 3, 9, 0), timezone="Europe/Atlantis")
    assert info.value.field == "timezone"
    with pytest.raises(InvalidInput, match="time zone offset"):
        _move(cal, schedule(cal, T), datetime(2027, 2, 3, 9, 0))


def test_conflict_refuses_unless_scheduled_anyway(cal: Cal) -> None:
    first = schedule(cal, T)
    second = schedule(cal, T + timedelta(days=1))
    with pytest.raises(svc.ScheduleConflicts) as info:
        _move(cal, second, T + timedelta(minutes=15))
    assert info.value.status_code == 409
    assert [c.kind for c in info.value.conflicts] == ["too_close"]
    assert info.value.conflicts[0].other_publication_id == first
    assert "schedule anyway" in info.value.message
    assert pub(cal, second).scheduled_at == T + timedelta(days=1)
    accepted = _move(cal, second, T + timedelta(minutes=15), force=True)
    assert [c.kind for c in accepted] == ["too_close"]
    assert pub(cal, second).scheduled_at == T + timedelta(minutes=15)


def test_moving_a_publication_onto_its_own_time_is_no_conflict(cal: Cal) -> None:
    pid = schedule(cal, T)
    assert _move(cal, pid, T + timedelta(minutes=5)) == []


def test_only_planned_or_waiting_publications_move(cal: Cal) -> None:
    pid = schedule(cal, T)
    with cal.session() as s:
        publishing.cancel(s, user=cal.owner(s), pub=publishing.get_publication(s, pid, user=cal.owner(s)))
    with pytest.raises(Conflict, match="only planned or waiting"):
        _move(cal, pid, T + timedelta(days=1))


def test_drag_to_another_day_keeps_local_time_across_dst(cal: Cal) -> None:
    pid = schedule(cal, datetime(2027, 3, 26, 8, 0, tzinfo=UTC))  # Fri 09:00 CET
    with cal.session() as s:
        p = publishing.get_publication(s, pid, user=cal.owner(s))
        svc.move_to_day(s, user=cal.owner(s), pub=p, day=date(2027, 3, 29), tz=BERLIN)  # Mon, after the change
    moved = pub(cal, pid).scheduled_at
    assert moved == datetime(2027, 3, 29, 7, 0, tzinfo=UTC)
    assert moved.astimezone(BERLIN).strftime("%H:%M") == "09:00"
    with cal.session() as s:
        p = publishing.get_publication(s, pid, user=cal.owner(s))
        svc.move_to_day(s, user=cal.owner(s), pub=p, day=date(2027, 3, 30), tz=BERLIN, hour=14)
        with pytest.raises(InvalidInput, match="0 to 23"):
            svc.move_to_day(s, user=cal.owner(s), pub=p, day=date(2027, 3, 30), tz=BERLIN, hour=24)
    assert pub(cal, pid).scheduled_at == datetime(2027, 3, 30, 12, 0, tzinfo=UTC)


def test_local_time_resolution_in_a_zone(cal: Cal) -> None:
    assert svc.resolve_time(local=datetime(2027, 3, 28, 9, 0), timezone="Europe/Berlin") == \
        datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    assert svc.resolve_time(local=datetime(2027, 3, 27, 9, 0), timezone="Europe/Berlin") == \
        datetime(2027, 3, 27, 8, 0, tzinfo=UTC)
    assert svc.resolve_time(scheduled_at=datetime(2027, 3, 27, 9, 0, tzinfo=BERLIN)) == \
        datetime(2027, 3, 27, 8, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="Give the new time"):
        svc.resolve_time()
