"""Best-time suggestions: network defaults without history, the account's own smoothed engagement with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from calendar_helpers import Cal, mark_published, schedule

from ainfluencer.db.models import utcnow
from ainfluencer.services import calendar as svc

BERLIN = ZoneInfo("Europe/Berlin")


def _best(world: Cal, **kw: object) -> svc.BestTimes:
    with world.session() as s:
        return svc.best_times(s, account=world.account(s), **kw)  # type: ignore[arg-type]


def _post_at(world: Cal, local: datetime, **metrics: int) -> int:
    pid = schedule(world, utcnow() + timedelta(days=30))
    mark_published(world, pid, local.astimezone(UTC), **metrics)
    return pid


def _last(weekday: int, hour: int, weeks_back: int) -> datetime:
    """A local Berlin time ``weeks_back`` weeks ago on ``weekday`` at ``hour``."""
    today = utcnow().astimezone(BERLIN).date()
    day = today - timedelta(days=(today.weekday() - weekday) % 7 + 7 * weeks_back)
    return datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN)


def test_defaults_before_there_is_history(cal: Cal) -> None:
    best = _best(cal)
    assert best.source == "defaults" and best.sample_size == 0
    assert best.timezone == "Europe/Berlin"
    assert "Not enough history" in best.note and "FakeNet" in best.note
    assert [(b.weekday, b.hour) for b in best.suggestions] == list(svc.GENERIC_BEST_HOURS)
    with cal.session() as s:
        cal.account(s).platform = "instagram"  # in memory only: which table row a known network gets
        insta = svc.best_times(s, account=cal.account(s), limit=2)
        s.rollback()
    assert [(b.weekday, b.hour) for b in insta.suggestions] == list(svc.default_best_hours("instagram")[:2])


def test_four_posts_are_not_yet_history(cal: Cal) -> None:
    for week in range(1, 5):
        _post_at(cal, _last(1, 18, week), likes=50, views=100)
    best = _best(cal)
    assert best.source == "defaults" and best.sample_size == 4


def test_history_ranks_by_smoothed_engagement_rate_by_local_hour(cal: Cal) -> None:
    for week in (1, 2, 3):  # Tuesdays 18:00 Berlin: 14 % engagement, three times
        _post_at(cal, _last(1, 18, week), likes=10, comments=3, shares=1, views=100)
    _post_at(cal, _last(3, 8, 1), likes=16, views=100)  # Thursday 08:00: 16 %, but only once
    _post_at(cal, _last(5, 12, 1), likes=1, views=100)  # Saturdays noon: 1 %
    _post_at(cal, _last(5, 12, 2), likes=1, views=100)
    best = _best(cal)
    assert best.source == "history" and best.sample_size == 6
    assert best.metric.startswith("engagement rate")
    top = best.suggestions[0]
    assert (top.weekday, top.hour, top.label) == (1, 18, "Tue 18:00")
    # Smoothing: the single 16 % post ranks below three 14 % posts and below its own raw rate.
    thursday = next(b for b in best.suggestions if (b.weekday, b.hour) == (3, 8))
    assert thursday.score < top.score and thursday.score < 0.16
    assert (5, 12) not in [(b.weekday, b.hour) for b in best.suggestions[:3]]
    next_at = top.next_at(BERLIN)
    assert next_at > utcnow() and next_at.astimezone(BERLIN).strftime("%a %H:%M") == "Tue 18:00"


def test_history_is_read_in_the_zone_asked_for_and_uses_the_latest_reading(cal: Cal) -> None:
    for week in (1, 2, 3, 4):
        _post_at(cal, _last(2, 20, week), likes=1)  # Wednesdays 20:00 Berlin, no views reported
    star = _post_at(cal, _last(4, 10, 1), likes=0)  # Friday 10:00 Berlin: nothing at first ...
    mark_published(cal, star, _last(4, 10, 1).astimezone(UTC), likes=500,
                   collected_at=utcnow())  # ... then a later reading with 500 likes
    best = _best(cal, tz=ZoneInfo("America/New_York"))
    assert best.source == "history" and best.timezone == "America/New_York" and best.sample_size == 5
    assert best.metric.startswith("engagements per post")  # no views reported
    top = best.suggestions[0]
    local = _last(4, 10, 1).astimezone(ZoneInfo("America/New_York"))
    assert (top.weekday, top.hour) == (local.weekday(), local.hour)
