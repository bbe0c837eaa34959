"""Conflicts: too close on one account (configurable gap), over the network's daily cap; next_slots avoids both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from calendar_helpers import Cal, add_slot, schedule
from fake_network import FakeNetAdapter, FakeNetLimitedAdapter

from ainfluencer.errors import InvalidInput
from ainfluencer.platforms.base import Capabilities, RateLimit
from ainfluencer.platforms.x.adapter import XAdapter
from ainfluencer.services import calendar as svc
from ainfluencer.services import publishing

T = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)  # a Monday


def _conflicts(world: Cal, at: datetime, account_id: int | None = None) -> list[svc.ScheduleConflict]:
    with world.session() as s:
        return svc.find_conflicts(s, account=world.account(s, account_id), at=at)


@pytest.mark.nodb
def test_daily_cap_is_derived_from_documented_rate_limits() -> None:
    from calendar_fakes import FakeNetCappedAdapter

    assert svc.network_daily_cap(FakeNetCappedAdapter.capabilities) == 3  # 3/24h beats 2/h (48/24h)
    assert svc.network_daily_cap(FakeNetLimitedAdapter.capabilities) == 48  # 2/h, deletes not counted
    assert svc.network_daily_cap(FakeNetAdapter.capabilities) is None  # nothing documented
    assert svc.network_daily_cap(XAdapter.capabilities) == 2400  # 2400/24h beats 100/15min (9600)
    assert svc.network_daily_cap(Capabilities(max_text_chars=1, daily_post_cap=25,
                                              rate_limits=(RateLimit("post", 50, 86400),))) == 25


def test_too_close_on_the_same_account_with_the_default_gap(cal: Cal) -> None:
    other = schedule(cal, T)
    near = _conflicts(cal, T + timedelta(minutes=10))
    assert [c.kind for c in near] == ["too_close"]
    assert near[0].other_publication_id == other and near[0].other_scheduled_at == T
    assert "Only 10 min" in near[0].message and "at least 30 min" in near[0].message
    assert _conflicts(cal, T + timedelta(minutes=30)) == []  # exactly the gap is fine
    assert _conflicts(cal, T - timedelta(minutes=29))[0].kind == "too_close"
    assert _conflicts(cal, T + timedelta(minutes=10), cal.capped_id) == []  # another account


def test_gap_is_configurable_per_account_and_cancelled_posts_do_not_count(cal: Cal) -> None:
    other = schedule(cal, T)
    with cal.session() as s:
        svc.save_account_settings(s, account=cal.account(s), min_gap_minutes=120, max_per_day=None)
    assert _conflicts(cal, T + timedelta(minutes=90))[0].kind == "too_close"
    assert _conflicts(cal, T + timedelta(minutes=120)) == []
    with cal.session() as s:
        publishing.cancel(s, user=cal.owner(s), pub=publishing.get_publication(s, other, user=cal.owner(s)))
    assert _conflicts(cal, T + timedelta(minutes=5)) == []
    with cal.session() as s, pytest.raises(InvalidInput, match="0 to 1440"):
        svc.save_account_settings(s, account=cal.account(s), min_gap_minutes=5000, max_per_day=None)


def test_over_the_networks_daily_cap_in_any_24_hours(cal: Cal) -> None:
    ids = [schedule(cal, T + timedelta(hours=h), account_id=cal.capped_id) for h in (0, 2, 4)]
    over = _conflicts(cal, T + timedelta(hours=6), cal.capped_id)
    assert [c.kind for c in over] == ["daily_cap"]
    assert "4 posts within 24 hours" in over[0].message
    assert "FakeNet Capped allows 3 posts in 24 hours" in over[0].message
    assert over[0].other_publication_id == ids[2]
    assert _conflicts(cal, T + timedelta(hours=23), cal.capped_id)[0].kind == "daily_cap"
    assert _conflicts(cal, T + timedelta(hours=25), cal.capped_id) == []  # the first post left the window
    assert _conflicts(cal, T - timedelta(hours=19), cal.capped_id)[0].kind == "daily_cap"  # before counts too
    assert _conflicts(cal, T - timedelta(hours=21), cal.capped_id) == []  # only T and T+2h share its 24 hours


def test_own_daily_maximum_lowers_the_cap(cal: Cal) -> None:
    schedule(cal, T)
    assert _conflicts(cal, T + timedelta(hours=5)) == []  # FakeNet documents no cap
    with cal.session() as s:
        svc.save_account_settings(s, account=cal.account(s), min_gap_minutes=30, max_per_day=1)
    found = _conflicts(cal, T + timedelta(hours=5))
    assert [c.kind for c in found] == ["daily_cap"]
    assert "set to at most 1 posts a day" in found[0].message


def test_both_conflicts_at_once(cal: Cal) -> None:
    for h in (0, 2, 4):
        schedule(cal, T + timedelta(hours=h), account_id=cal.capped_id)
    kinds = {c.kind for c in _conflicts(cal, T + timedelta(hours=4, minutes=5), cal.capped_id)}
    assert kinds == {"too_close", "daily_cap"}


def test_next_slots_skip_taken_times_and_respect_gap_and_cap(cal: Cal) -> None:
    add_slot(cal, list(range(7)), 9)  # Berlin 09:00 = 08:00 UTC in February
    add_slot(cal, list(range(7)), 9, 15)  # too close to 09:00 with the default 30-minute gap
    add_slot(cal, list(range(7)), 12)
    add_slot(cal, list(range(7)), 15)
    add_slot(cal, list(range(7)), 18)
    taken = schedule(cal, datetime(2027, 2, 1, 11, 0, tzinfo=UTC))  # Monday 12:00 Berlin
    assert taken
    with cal.session() as s:
        got = svc.next_slots(s, character=cal.character(s), account=cal.account(s), count=4,
                             after=datetime(2027, 2, 1, 0, 0, tzinfo=UTC))
        capped = svc.next_slots(s, character=cal.character(s), account=cal.account(s, cal.capped_id), count=5,
                                after=datetime(2027, 2, 1, 0, 0, tzinfo=UTC))
    hours = [(g.day, g.hour) for g in got]
    assert hours == [(1, 8), (1, 14), (1, 17), (2, 8)]  # 09:15 too close, 12:00 taken
    # Capped at 3 in any 24 hours: Monday 09/12/15, then Tuesday 09:00 (exactly 24 h after the first) and 12:00.
    assert [(c.day, c.hour) for c in capped] == [(1, 8), (1, 11), (1, 14), (2, 8), (2, 11)]
    with cal.session() as s:
        for at in capped:
            svc.find_conflicts(s, account=cal.account(s, cal.capped_id), at=at)


def test_next_slots_respects_account_and_platform_scoping(cal: Cal) -> None:
    add_slot(cal, [0], 9, account_id=cal.capped_id)
    add_slot(cal, [0], 11, platform="fakenet")
    add_slot(cal, [0], 13)
    add_slot(cal, [0], 15, enabled=False)
    after = datetime(2027, 2, 1, 0, 0, tzinfo=UTC)
    with cal.session() as s:
        plain = svc.next_slots(s, character=cal.character(s), account=cal.account(s), count=2, after=after)
        capped = svc.next_slots(s, character=cal.character(s), account=cal.account(s, cal.capped_id), count=2,
                                after=after)
        none = svc.next_slots(s, character=cal.character(s), account=cal.account(s), count=0, after=after)
    assert [p.hour for p in plain] == [10, 12]  # 11:00 and 13:00 Berlin
    assert [p.hour for p in capped] == [8, 12]  # its own 09:00 and the general 13:00
    assert none == []


def test_next_slots_without_slots_is_empty_and_needs_an_aware_after(cal: Cal) -> None:
    with cal.session() as s:
        assert svc.next_slots(s, character=cal.character(s), account=cal.account(s), count=3) == []
    add_slot(cal, [0], 9)
    with cal.session() as s:
        with pytest.raises(InvalidInput, match="time zone offset"):
            svc.next_slots(s, character=cal.character(s), account=cal.account(s), count=1,
                           after=datetime(2027, 1, 1, 9, 0))
