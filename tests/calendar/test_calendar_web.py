"""Calendar pages: month/week/day render (DST days included), drag-and-drop endpoint, slot editor, bulk form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from calendar_helpers import Cal, add_asset, add_slot, pub, schedule
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from ainfluencer.db.models_calendar import PostingSlot
from ainfluencer.db.models_publishing import Publication

T = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)  # Monday 11:00 Berlin


@pytest.fixture
def web(cal: Cal, client: TestClient, login: object) -> TestClient:
    login(client)  # type: ignore[operator]
    return client


def _csrf(client: TestClient) -> str:
    return client.cookies["ainf_csrf"]


def _routes(router: Any) -> list[Any]:
    """Every route under a router, through included routers (nested in recent FastAPI versions)."""
    found = []
    for route in getattr(router, "routes", []):
        inner = getattr(route, "original_router", None)
        found.extend(_routes(inner) if inner is not None else [route])
    return found


def test_calendar_replaces_the_coming_soon_page(web: TestClient) -> None:
    from ainfluencer.web.routes import NAV_ITEMS, build_web_router

    assert next(i for i in NAV_ITEMS if i.key == "calendar").ready is True
    routes = [r for r in _routes(build_web_router()) if getattr(r, "path", "") == "/calendar"]
    assert [r.endpoint.__module__ for r in routes] == ["ainfluencer.web.calendar"]  # no coming-soon route
    page = web.get("/calendar")
    assert page.status_code == 200
    assert 'id="calendar"' in page.text and "coming soon" not in page.text.lower()
    assert 'href="/compose"' in page.text and 'href="/automation"' in page.text
    assert '/static/calendar.js' in page.text and "<script>" not in page.text and "style=" not in page.text
    assert re.search(r'<a[^>]*href="/calendar"[^>]*aria-current="page"', page.text)


def test_week_view_shows_cards_with_local_times_and_conflicts(cal: Cal, web: TestClient) -> None:
    first = schedule(cal, T, text="Morning coffee")
    second = schedule(cal, T + timedelta(minutes=10), text="Too soon after")
    page = web.get(f"/calendar?view=week&date=2027-02-03&character={cal.character_id}")
    assert page.status_code == 200
    assert f'data-publication-id="{first}"' in page.text and f'data-publication-id="{second}"' in page.text
    assert 'data-date="2027-02-01"' in page.text and "Europe/Berlin" in page.text
    assert ">11:00<" in page.text and ">11:10<" in page.text  # Berlin local, the character's zone
    assert "Only 10 min from publication" in page.text
    assert page.text.count('draggable="true"') == 2
    in_utc = web.get(f"/calendar?view=week&date=2027-02-03&character={cal.character_id}&tz=UTC")
    assert ">10:00<" in in_utc.text and 'data-tz="UTC"' in in_utc.text
    mine = web.get("/calendar?view=week&date=2027-02-03&tz=user")
    assert 'data-tz="UTC"' in mine.text  # the user's zone defaults to UTC


def test_day_view_on_dst_days_has_23_and_25_hours(cal: Cal, web: TestClient) -> None:
    pid = schedule(cal, T)
    with cal.session() as s:
        s.execute(update(Publication).where(Publication.id == pid)
                  .values(scheduled_at=datetime(2026, 10, 25, 1, 30, tzinfo=UTC)))  # 02:30 CET, the second one
    autumn = web.get(f"/calendar?view=day&date=2026-10-25&character={cal.character_id}")
    assert autumn.text.count('class="cal-hour"') == 25
    assert "25 hours on this day" in autumn.text
    assert '02:00 <span class="muted small">CEST' in autumn.text
    assert '02:00 <span class="muted small">CET<' in autumn.text
    assert f'data-publication-id="{pid}"' in autumn.text
    spring = web.get(f"/calendar?view=day&date=2026-03-29&character={cal.character_id}")
    assert spring.text.count('class="cal-hour"') == 23 and "02:00 <span" not in spring.text
    month = web.get(f"/calendar?date=2026-10-01&character={cal.character_id}")
    assert "25 h" in month.text


@pytest.mark.parametrize(("query", "message"), [
    ("view=year", "Unknown view"), ("date=2027-13-01", "is not a date"), ("tz=Mars/Base", "Unknown time zone"),
    ("character=abc", "whole number"), ("status=lost", "Unknown status"),
])
def test_bad_filters_are_a_clear_4xx(web: TestClient, query: str, message: str) -> None:
    page = web.get(f"/calendar?{query}")
    assert page.status_code == 422 and message in page.text


def test_move_endpoint_json_success_refusal_and_force(cal: Cal, web: TestClient) -> None:
    first = schedule(cal, T)
    second = schedule(cal, T + timedelta(days=2))
    headers = {"Accept": "application/json", "X-CSRF-Token": _csrf(web)}
    ok = web.post("/calendar/move", data={"publication_id": second, "date": "2027-02-02", "tz": "Europe/Berlin"},
                  headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["local_day"] == "2027-02-02" and ok.json()["local_time"] == "11:00"
    assert pub(cal, second).scheduled_at == T + timedelta(days=1)
    refused = web.post("/calendar/move", data={"publication_id": second, "date": "2027-02-01",
                                               "tz": "Europe/Berlin"}, headers=headers)
    assert refused.status_code == 409
    err = refused.json()["error"]
    assert err["can_force"] is True and err["conflicts"][0]["other_publication_id"] == first
    assert "Only 0 min" in err["message"] and "schedule anyway" in err["message"]
    assert pub(cal, second).scheduled_at == T + timedelta(days=1)
    forced = web.post("/calendar/move", data={"publication_id": second, "date": "2027-02-01", "hour": "15",
                                              "tz": "Europe/Berlin", "force": "1"}, headers=headers)
    assert forced.status_code == 200 and forced.json()["conflicts"] == []
    assert pub(cal, second).scheduled_at == datetime(2027, 2, 1, 14, 0, tzinfo=UTC)
    past = web.post("/calendar/move", data={"publication_id": second, "date": "2020-01-01", "tz": "Europe/Berlin"},
                    headers=headers)
    assert past.status_code == 422 and "in the past" in past.json()["error"]["message"]
    bad_tz = web.post("/calendar/move", data={"publication_id": second, "date": "2027-02-05", "tz": "Nowhere/Land"},
                      headers=headers)
    assert bad_tz.status_code == 422 and "Unknown time zone" in bad_tz.json()["error"]["message"]
    no_csrf = web.post("/calendar/move", data={"publication_id": second, "date": "2027-02-05", "tz": "UTC"},
                       headers={"Accept": "application/json"})
    assert no_csrf.status_code == 403


def test_no_javascript_reschedule_form(cal: Cal, web: TestClient) -> None:
    pid = schedule(cal, T)
    r = web.post("/calendar/reschedule", data={"csrf_token": _csrf(web), "publication_id": pid,
                                               "local": "2027-03-28T09:00", "tz": "Europe/Berlin",
                                               "back": "/calendar?view=week"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/calendar?view=week&done=moved"
    assert pub(cal, pid).scheduled_at == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)  # 09:00 CEST
    r = web.post("/calendar/reschedule", data={"csrf_token": _csrf(web), "publication_id": pid,
                                               "local": "yesterday", "tz": "Europe/Berlin"}, follow_redirects=False)
    assert r.status_code == 303 and "error=" in r.headers["location"]
    shown = web.get(r.headers["location"])
    assert "is not a date and time" in shown.text


def test_slot_editor_adds_toggles_and_removes_slots(cal: Cal, web: TestClient) -> None:
    page = web.get(f"/calendar/slots/{cal.character_id}")
    assert page.status_code == 200 and "No posting slots yet" in page.text and "Europe/Berlin" in page.text
    r = web.post(f"/calendar/slots/{cal.character_id}", data={"csrf_token": _csrf(web), "weekdays": ["0", "2"],
                                                                "time": "09:30", "target": f"account:{cal.account_id}",
                                                                "label": "Morning"}, follow_redirects=False)
    assert r.status_code == 303 and "done=slot" in r.headers["location"]
    page = web.get(f"/calendar/slots/{cal.character_id}")
    assert "Mon, Wed 09:30" in page.text and "Morning" in page.text
    with cal.session() as s:
        slot = s.scalars(select(PostingSlot)).one()
        assert (slot.weekdays, slot.hour, slot.minute, slot.account_id) == ([0, 2], 9, 30, cal.account_id)
        slot_id = slot.id
    bad = web.post(f"/calendar/slots/{cal.character_id}", data={"csrf_token": _csrf(web), "weekdays": ["1"],
                                                                  "time": "25:00"}, follow_redirects=False)
    assert "error=" in bad.headers["location"] and "HH%3AMM" in bad.headers["location"]
    none = web.post(f"/calendar/slots/{cal.character_id}", data={"csrf_token": _csrf(web), "time": "10:00"},
                    follow_redirects=False)
    assert "at+least+one+weekday" in none.headers["location"]
    web.post(f"/calendar/slots/{cal.character_id}/{slot_id}/toggle", data={"csrf_token": _csrf(web)})
    with cal.session() as s:
        assert s.get(PostingSlot, slot_id).enabled is False  # type: ignore[union-attr]
    web.post(f"/calendar/slots/{cal.character_id}/{slot_id}/delete", data={"csrf_token": _csrf(web)})
    with cal.session() as s:
        assert s.scalar(select(func.count()).select_from(PostingSlot)) == 0
    assert web.get("/calendar/slots/999").status_code == 404


def test_account_settings_form(cal: Cal, web: TestClient) -> None:
    r = web.post(f"/calendar/accounts/{cal.capped_id}/settings",
                 data={"csrf_token": _csrf(web), "min_gap_minutes": "90", "max_per_day": "2"}, follow_redirects=False)
    assert r.status_code == 303 and "done=settings" in r.headers["location"]
    page = web.get(f"/calendar/slots/{cal.character_id}")
    assert "Daily cap: 2 (this account is set to at most 2 posts a day)" in page.text
    assert "Daily cap: 3 (FakeNet Capped allows 3 posts in 24 hours)" not in page.text
    bad = web.post(f"/calendar/accounts/{cal.capped_id}/settings",
                   data={"csrf_token": _csrf(web), "min_gap_minutes": "-5"}, follow_redirects=False)
    assert "error=" in bad.headers["location"]


def test_bulk_form_schedules_or_lists_every_problem(cal: Cal, web: TestClient) -> None:
    add_slot(cal, list(range(7)), 9)
    good = add_asset(cal, caption="Hello")
    long = add_asset(cal, caption="y" * 150)
    page = web.get(f"/calendar?character={cal.character_id}")
    assert 'id="bulk-form"' in page.text and f'value="{good}"' in page.text
    refused = web.post("/calendar/bulk", data={"csrf_token": _csrf(web), "character_id": cal.character_id,
                                               "asset_ids": [good, long], "account_ids": [cal.capped_id]})
    assert refused.status_code == 422
    assert "Nothing was scheduled" in refused.text and "150 characters" in refused.text
    with cal.session() as s:
        assert s.scalar(select(func.count()).select_from(Publication)) == 0
    ok = web.post("/calendar/bulk", data={"csrf_token": _csrf(web), "character_id": cal.character_id,
                                          "asset_ids": [good, long], "account_ids": [cal.account_id],
                                          "back": f"/calendar?character={cal.character_id}"}, follow_redirects=False)
    assert ok.status_code == 303 and "done=bulk&n=2" in ok.headers["location"]
    assert "Scheduled 2 publications." in web.get(ok.headers["location"]).text
    with cal.session() as s:
        assert s.scalar(select(func.count()).select_from(Publication)) == 2


def test_best_time_panel_says_where_suggestions_come_from(cal: Cal, web: TestClient) -> None:
    page = web.get(f"/calendar?account={cal.account_id}")
    assert 'id="best-times"' in page.text and 'data-source="defaults"' in page.text
    assert "Not enough history yet" in page.text
