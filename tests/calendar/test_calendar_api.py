"""REST API: calendar range, slots CRUD, next slots, account settings, conflicts, reschedule, best times, bulk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from calendar_helpers import Cal, add_asset, add_slot, mark_published, pub, schedule
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from ainfluencer.db.models import User
from ainfluencer.db.models_publishing import Publication

T = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)  # Monday 11:00 Berlin
API = "/api/v1/calendar"


@pytest.fixture
def api(cal: Cal, client: TestClient, make_token: Callable[..., str]) -> TestClient:
    client.headers["Authorization"] = f"Bearer {make_token(cal.user)}"
    return client


def test_calendar_range_by_local_day_with_conflicts(cal: Cal, api: TestClient) -> None:
    a = schedule(cal, T)
    b = schedule(cal, T + timedelta(minutes=5))
    r = api.get(API, params={"view": "week", "date": "2027-02-03", "character_id": cal.character_id})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timezone"] == "Europe/Berlin" and body["view"] == "week" and len(body["days"]) == 7
    monday = body["days"][0]
    assert monday["day"] == "2027-02-01" and monday["hours"] == 24
    assert [i["publication"]["id"] for i in monday["items"]] == [a, b]
    assert monday["items"][0]["local_time"].startswith("2027-02-01T11:00:00+01:00")
    assert monday["items"][1]["conflicts"][0]["kind"] == "too_close"
    assert monday["items"][1]["conflicts"][0]["other_publication_id"] == a
    other = api.get(API, params={"view": "day", "date": "2027-02-01", "tz": "Asia/Tokyo"}).json()
    assert other["timezone"] == "Asia/Tokyo" and [i["publication"]["id"] for i in other["days"][0]["items"]] == [a, b]
    dst = api.get(API, params={"view": "day", "date": "2026-10-25", "tz": "Europe/Berlin"}).json()
    assert dst["days"][0]["hours"] == 25
    assert api.get(API, params={"tz": "Nope/Nope"}).status_code == 422
    assert api.get(API, params={"view": "decade"}).status_code == 422
    assert api.get(API, params={"character_id": 999}).status_code == 404
    filtered = api.get(API, params={"view": "week", "date": "2027-02-03", "account_id": cal.capped_id}).json()
    assert all(not d["items"] for d in filtered["days"])


def test_slots_crud_and_next_slots(cal: Cal, api: TestClient) -> None:
    base = f"{API}/characters/{cal.character_id}/slots"
    created = api.post(base, json={"weekdays": [0, 2, 4], "time": "09:00", "label": "Morning"})
    assert created.status_code == 201, created.text
    slot = created.json()
    assert (slot["weekdays"], slot["time"], slot["account_id"], slot["enabled"]) == ([0, 2, 4], "09:00", None, True)
    listed = api.get(base).json()
    assert listed["count"] == 1 and listed["timezone"] == "Europe/Berlin"
    updated = api.put(f"{base}/{slot['id']}", json={"weekdays": [0], "time": "18:30", "account_id": cal.account_id})
    assert updated.status_code == 200 and updated.json()["time"] == "18:30"
    nxt = api.get(f"{API}/characters/{cal.character_id}/next-slots",
                  params={"account_id": cal.account_id, "count": 2, "after": "2027-03-22T00:00:00Z"}).json()
    assert nxt["data"] == ["2027-03-22T17:30:00Z", "2027-03-29T16:30:00Z"]  # 18:30 CET, then 18:30 CEST
    assert [x[11:16] for x in nxt["local"]] == ["18:30", "18:30"]
    none = api.get(f"{API}/characters/{cal.character_id}/next-slots",
                   params={"account_id": cal.capped_id, "after": "2027-03-22T00:00:00Z"}).json()
    assert none["data"] == []  # the slot is the plain account's own
    for bad, message in (({"weekdays": [], "time": "09:00"}, "weekdays"),
                         ({"weekdays": [7], "time": "09:00"}, "0 (Monday)"),
                         ({"weekdays": [1], "time": "24:00"}, "HH:MM"), ({"weekdays": [1], "time": "9am"}, "time"),
                         ({"weekdays": [1], "time": "09:00", "account_id": 999}, "not one of Nova's accounts"),
                         ({"weekdays": [1], "time": "09:00", "platform": "myspace"}, "myspace")):
        r = api.post(base, json=bad)
        assert r.status_code == 422 and message in r.json()["error"]["message"], (bad, r.text)
    assert api.delete(f"{base}/{slot['id']}").status_code == 204
    assert api.get(base).json()["count"] == 0
    assert api.delete(f"{base}/{slot['id']}").status_code == 404


def test_account_settings_and_conflicts_check(cal: Cal, api: TestClient) -> None:
    first = schedule(cal, T, account_id=cal.capped_id)
    settings = api.get(f"{API}/accounts/{cal.capped_id}/settings").json()
    assert settings == {"account_id": cal.capped_id, "min_gap_minutes": 30, "max_per_day": None, "daily_cap": 3,
                        "cap_source": "FakeNet Capped allows 3 posts in 24 hours"}
    check = api.post(f"{API}/conflicts", json={"account_id": cal.capped_id, "local": "2027-02-01T11:20:00",
                                               "timezone": "Europe/Berlin"}).json()
    assert check["ok"] is False and check["conflicts"][0]["kind"] == "too_close"
    assert check["conflicts"][0]["other_publication_id"] == first
    assert check["scheduled_at"] == "2027-02-01T10:20:00Z"
    fine = api.post(f"{API}/conflicts", json={"account_id": cal.capped_id, "scheduled_at": "2027-02-01T12:00:00Z"})
    assert fine.json()["ok"] is True
    own = api.post(f"{API}/conflicts", json={"account_id": cal.capped_id, "scheduled_at": "2027-02-01T10:10:00Z",
                                             "exclude_publication_id": first}).json()
    assert own["ok"] is True
    put = api.put(f"{API}/accounts/{cal.capped_id}/settings", json={"min_gap_minutes": 180, "max_per_day": 1})
    assert put.status_code == 200 and put.json()["daily_cap"] == 1
    capped = api.post(f"{API}/conflicts", json={"account_id": cal.capped_id, "scheduled_at": "2027-02-01T20:00:00Z"})
    assert [c["kind"] for c in capped.json()["conflicts"]] == ["daily_cap"]
    assert api.put(f"{API}/accounts/{cal.capped_id}/settings", json={"min_gap_minutes": -1}).status_code == 422
    assert api.post(f"{API}/conflicts", json={"account_id": cal.capped_id, "local": "2027-02-01T11:20:00",
                                              "timezone": "Moon/Crater"}).status_code == 422
    assert api.post(f"{API}/conflicts", json={"account_id": cal.capped_id}).status_code == 422


def test_reschedule_refusals_and_schedule_anyway(cal: Cal, api: TestClient) -> None:
    first = schedule(cal, T)
    second = schedule(cal, T + timedelta(days=1))
    url = f"{API}/publications/{second}/reschedule"
    past = api.post(url, json={"scheduled_at": "2020-01-01T09:00:00Z"})
    assert past.status_code == 422 and "in the past" in past.json()["error"]["message"]
    tz = api.post(url, json={"local": "2027-02-03T09:00:00", "timezone": "Atlantis/Capital"})
    assert tz.status_code == 422 and "Unknown time zone 'Atlantis/Capital'" in tz.json()["error"]["message"]
    naive = api.post(url, json={"scheduled_at": "2027-02-03T09:00:00"})
    assert naive.status_code == 422 and "offset" in naive.json()["error"]["message"]
    clash = api.post(url, json={"local": "2027-02-01T11:10:00", "timezone": "Europe/Berlin"})
    assert clash.status_code == 409
    err = clash.json()["error"]
    assert err["code"] == "schedule_conflict" and err["conflicts"][0]["other_publication_id"] == first
    assert pub(cal, second).scheduled_at == T + timedelta(days=1)
    forced = api.post(url, json={"local": "2027-02-01T11:10:00", "timezone": "Europe/Berlin", "force": True})
    assert forced.status_code == 200 and forced.json()["conflicts"][0]["kind"] == "too_close"
    assert forced.json()["publication"]["scheduled_at"] == "2027-02-01T10:10:00Z"
    dst = api.post(url, json={"local": "2027-03-28T02:30:00", "timezone": "Europe/Berlin"})
    assert dst.status_code == 200 and dst.json()["publication"]["scheduled_at"] == "2027-03-28T01:30:00Z"
    assert api.post(f"{API}/publications/999/reschedule", json={"scheduled_at": "2027-03-01T09:00:00Z"}
                    ).status_code == 404


def test_best_times_from_defaults_then_history(cal: Cal, api: TestClient) -> None:
    first = api.get(f"{API}/accounts/{cal.account_id}/best-times").json()
    assert first["source"] == "defaults" and first["timezone"] == "Europe/Berlin" and len(first["data"]) == 5
    assert first["data"][0]["next_at"] > datetime.now(UTC).isoformat()[:19]
    now = datetime.now(UTC)
    for i in range(5):
        pid = schedule(cal, now + timedelta(days=10 + i))
        mark_published(cal, pid, now - timedelta(days=7 * (i + 1), hours=3), likes=5 + i, views=100)
    later = api.get(f"{API}/accounts/{cal.account_id}/best-times", params={"tz": "UTC", "limit": 2}).json()
    assert later["source"] == "history" and later["sample_size"] == 5 and len(later["data"]) == 2
    assert later["timezone"] == "UTC"
    assert api.get(f"{API}/accounts/{cal.account_id}/best-times", params={"tz": "Nope"}).status_code == 422
    assert api.get(f"{API}/accounts/999/best-times").status_code == 404


def test_bulk_schedule_dry_run_create_and_refusal(cal: Cal, api: TestClient) -> None:
    add_slot(cal, list(range(7)), 9)
    a, b = add_asset(cal, caption="One"), add_asset(cal, caption="Two")
    body = {"character_id": cal.character_id, "asset_ids": [a, b], "account_ids": [cal.account_id],
            "after": "2027-02-01T00:00:00Z"}
    dry = api.post(f"{API}/bulk", json={**body, "dry_run": True})
    assert dry.status_code == 200 and dry.json()["created"] is False
    assert [d["scheduled_at"] for d in dry.json()["data"]] == ["2027-02-01T08:00:00Z", "2027-02-02T08:00:00Z"]
    made = api.post(f"{API}/bulk", json=body)
    assert made.status_code == 201 and made.json()["count"] == 2
    assert all(d["publication_id"] for d in made.json()["data"])
    long = add_asset(cal, caption="z" * 150)
    refused = api.post(f"{API}/bulk", json={**body, "asset_ids": [long, a], "account_ids": [cal.capped_id, 4242]})
    assert refused.status_code == 422
    err = refused.json()["error"]
    assert err["code"] == "bulk_refused" and len(err["problems"]) == 2
    assert {p["account_id"] for p in err["problems"]} == {4242, cal.capped_id}
    with cal.session() as s:
        assert s.scalar(select(func.count()).select_from(Publication)) == 2


def test_read_only_token_and_other_users(cal: Cal, client: TestClient, make_token: Callable[..., str],
                                         make_user: Callable[..., User]) -> None:
    reader = make_token(cal.user, scopes="read")
    client.headers["Authorization"] = f"Bearer {reader}"
    assert client.get(f"{API}/characters/{cal.character_id}/slots").status_code == 200
    r = client.post(f"{API}/characters/{cal.character_id}/slots", json={"weekdays": [1], "time": "09:00"})
    assert r.status_code == 403
    stranger = make_user(email="stranger@example.com", owner=False)
    client.headers["Authorization"] = f"Bearer {make_token(stranger)}"
    assert client.get(f"{API}/characters/{cal.character_id}/slots").status_code == 404
    assert client.get(f"{API}/accounts/{cal.account_id}/best-times").status_code == 404
    pid = schedule(cal, T)
    with cal.session() as s:
        s.execute(update(Publication).where(Publication.id == pid).values(scheduled_at=T))
    assert client.post(f"{API}/publications/{pid}/reschedule",
                       json={"scheduled_at": "2027-03-01T09:00:00Z"}).status_code == 404
    week = client.get(API, params={"view": "week", "date": "2027-02-01"}).json()
    assert all(not d["items"] for d in week["days"])
