"""The REST API of accounts, publications and webhooks, with clear 4xx before anything is queued."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fake_network import ACCOUNT_ID, TOKEN, FakeNet
from fastapi.testclient import TestClient
from publishing_helpers import World, drain, make_character, pub_row
from sqlalchemy import func, select

from ainfluencer.db.models import Job, User, utcnow
from ainfluencer.db.models_media import ReviewState
from ainfluencer.db.models_publishing import Publication, PublicationStatus
from ainfluencer.services import publishing

S = PublicationStatus


@pytest.fixture
def api(client: TestClient, world: World, make_token: Callable[..., str]) -> TestClient:
    client.headers["Authorization"] = f"Bearer {make_token(world.user)}"
    return client


def counts(world: World) -> tuple[int, int]:
    with world.runtime.db.session() as s:
        return (s.scalar(select(func.count()).select_from(Publication)) or 0,
                s.scalar(select(func.count()).select_from(Job).where(Job.kind == "publish")) or 0)


def test_connect_lists_and_refuses_duplicates(api: TestClient, world: World) -> None:
    other = make_character(world.runtime, world.user, name="Iris", handle="iris")
    body = {"character_id": other, "platform": "fakenet",
            "credentials": {"access_token": TOKEN, "extra": {"base_url": world.net.url}}}
    r = api.post("/api/v1/accounts", json=body)
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "duplicate_account" and "“Nova” (@nova)" in err["message"]

    r = api.post("/api/v1/accounts", json={**body, "credentials": {"access_token": "wrong",
                                                                   "extra": {"base_url": world.net.url}}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "credentials"
    assert "refused these credentials" in r.json()["error"]["message"]

    r = api.post("/api/v1/accounts", json={**body, "platform": "myspace"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "platform"

    r = api.get("/api/v1/accounts")
    assert r.status_code == 200 and r.json()["count"] == 1
    account = r.json()["data"][0]
    assert account["platform_account_id"] == ACCOUNT_ID and account["status"] == "healthy"
    assert account["capabilities"]["max_text_chars"] == 280
    assert "access_token" not in r.text and TOKEN not in r.text

    platforms = api.get("/api/v1/accounts/platforms").json()["data"]
    names = {p["name"] for p in platforms}
    assert {"telegram", "x", "instagram", "mastodon", "bluesky", "youtube", "facebook"} <= names


def test_connect_new_account_then_check_and_disconnect(api: TestClient, world: World) -> None:
    other = make_character(world.runtime, world.user, name="Iris", handle="iris")
    with FakeNet(account_id="fn-9", handle="@iris") as net2:
        r = api.post("/api/v1/accounts", json={"character_id": other, "platform": "fakenet_limited",
                                               "credentials": {"access_token": TOKEN,
                                                               "extra": {"base_url": net2.url}}})
        assert r.status_code == 201, r.text
        account = r.json()
        assert account["handle"] == "@iris" and account["rate_budget"][0]["available"] == 2.0
        net2.expire_token()
        r = api.post(f"/api/v1/accounts/{account['id']}/check")
        assert r.status_code == 200 and r.json()["status"] == "needs_reconnect"
        assert "rejected the token" in r.json()["last_error"]
        net2.tokens.add("fresh-token")
        creds = {"access_token": "fresh-token", "extra": {"base_url": net2.url}}
        r = api.post(f"/api/v1/accounts/{account['id']}/reconnect", json={"credentials": creds})
        assert r.status_code == 200 and r.json()["status"] == "healthy" and r.json()["last_error"] == ""
        # Credentials of a different platform account are refused.
        r = api.post(f"/api/v1/accounts/{account['id']}/reconnect",
                     json={"credentials": {"access_token": TOKEN, "extra": {"base_url": world.net.url}}})
        assert r.status_code == 409 and "not to this account" in r.json()["error"]["message"]
    r = api.post(f"/api/v1/accounts/{account['id']}/disconnect")
    assert r.status_code == 200 and r.json()["status"] == "disconnected"
    with world.runtime.db.session() as s:
        from ainfluencer.db.models import StoredSecret

        left = s.scalar(select(func.count()).select_from(StoredSecret).where(
            StoredSecret.owner_kind == "social_account", StoredSecret.owner_id == account["id"]))
    assert left == 0
    r = api.post("/api/v1/publications", json={"text": "hi", "targets": [{"account_id": account["id"]}]})
    assert r.status_code == 422 and "disconnected" in r.json()["error"]["message"]
    r = api.post("/api/v1/accounts/discover-chats", json={"platform": "fakenet", "token": "x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "platform"


def _bad_requests(world: World) -> list[tuple[str, dict[str, Any], str, str]]:
    past = (utcnow() - timedelta(hours=1)).isoformat()
    big = world.media_asset("big.jpg", size=70 * 1024)
    png = world.media_asset("pic.png", size=1024)
    gif = world.media_asset("loop.gif", size=1024)
    ok = world.media_asset("ok.jpg", size=1024)
    draft = world.media_asset("draft.jpg", size=1024, review_state=ReviewState.draft)
    target = [{"account_id": world.account_id}]
    return [
        # the network's declared text rules are checked by the core, so the field is the text itself
        ("caption over the limit", {"text": "x" * 281, "targets": target}, "targets.0.text", "280"),
        ("variant caption over the limit", {"text": "fine", "targets": [{"account_id": world.account_id,
                                                                          "text": "y" * 300}]}, "targets.0.text",
         "280"),
        ("past date", {"text": "hi", "targets": target, "scheduled_at": past}, "scheduled_at", "past"),
        ("no time zone", {"text": "hi", "targets": target, "scheduled_at": "2031-01-01T10:00:00"}, "scheduled_at",
         "time zone"),
        ("unknown account", {"text": "hi", "targets": [{"account_id": 999}]}, "targets.0.account_id", "999"),
        ("empty post", {"text": "  ", "targets": target}, "targets.0.text", "text or media"),
        ("media too large", {"text": "hi", "targets": target, "media": [{"asset_id": big}]},
         "targets.0.media.0.path", "at most"),
        ("kind the network refuses", {"text": "hi", "targets": target, "media": [{"asset_id": gif}]},
         "targets.0.media.0.kind", "gif"),
        ("network's own rule", {"text": "hi", "targets": target, "media": [{"asset_id": png}]}, "targets.0", "JPEG"),
        ("a file path instead of an asset", {"text": "hi", "targets": target,
                                             "media": [{"path": "../../etc/passwd"}]}, "media.0.asset_id", "required"),
        ("unknown asset", {"text": "hi", "targets": target, "media": [{"asset_id": 999}]},
         "media.0.asset_id", "No asset"),
        ("asset not approved", {"text": "hi", "targets": target, "media": [{"asset_id": draft}]},
         "media.0.asset_id", "approved"),
        ("too many files", {"text": "hi", "targets": target, "media": [{"asset_id": ok}] * 3}, "targets.0.media",
         "allows 2"),
        ("alt text too long", {"text": "hi", "targets": target,
                               "media": [{"asset_id": ok, "alt_text": "a" * 101}]},
         "targets.0.media.0.alt_text", "100"),
        ("account twice", {"text": "hi", "targets": target * 2}, "targets.1.account_id", "twice"),
        ("no first comment here", {"text": "hi", "targets": target, "first_comment": "more"},
         "targets.0.first_comment", "first comment"),
    ]


def test_bad_input_is_refused_before_anything_is_queued(api: TestClient, world: World) -> None:
    for name, body, field, words in _bad_requests(world):
        r = api.post("/api/v1/publications", json=body)
        assert r.status_code == 422, (name, r.text)
        err = r.json()["error"]
        assert err["field"] == field, (name, err)
        assert words.lower() in err["message"].lower(), (name, err)
    assert counts(world) == (0, 0)
    # One bad target refuses the whole request: the good one is not queued either.
    other = make_character(world.runtime, world.user, name="Iris", handle="iris")
    with FakeNet(account_id="fn-9", handle="@iris") as net2:
        r = api.post("/api/v1/accounts", json={"character_id": other, "platform": "fakenet",
                                               "credentials": {"access_token": TOKEN,
                                                               "extra": {"base_url": net2.url}}})
        second = r.json()["id"]
    r = api.post("/api/v1/publications", json={"text": "ok", "targets": [{"account_id": world.account_id},
                                                                          {"account_id": second, "text": "z" * 500}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "targets.1.text"
    assert counts(world) == (0, 0)


def test_create_variants_read_reschedule_cancel(api: TestClient, world: World) -> None:
    other = make_character(world.runtime, world.user, name="Iris", handle="iris")
    at = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    with FakeNet(account_id="fn-9", handle="@iris") as net2:
        second = api.post("/api/v1/accounts", json={
            "character_id": other, "platform": "fakenet",
            "credentials": {"access_token": TOKEN, "extra": {"base_url": net2.url}}}).json()["id"]
    photo = world.media_asset("sunset.jpg", shared=True)
    r = api.post("/api/v1/publications", json={
        "text": "Golden hour", "media": [{"asset_id": photo, "alt_text": "A sunset over the sea"}],
        "scheduled_at": at.isoformat(),
        "targets": [{"account_id": world.account_id}, {"account_id": second, "text": "Golden hour, Iris edition"}],
    })
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert [d["text"] for d in data] == ["Golden hour", "Golden hour, Iris edition"]
    assert data[0]["group_key"] == data[1]["group_key"] and data[0]["status"] == "planned"
    assert data[0]["media"][0]["alt_text"] == "A sunset over the sea" and data[0]["media"][0]["kind"] == "image"
    assert data[0]["actions"] == ["reschedule", "cancel"]
    first = data[0]["id"]

    r = api.get("/api/v1/publications", params={"status": "planned", "account_id": world.account_id})
    assert r.json()["count"] == 1 and r.json()["data"][0]["id"] == first
    assert api.get("/api/v1/publications", params={"status": ["published", "failed"]}).json()["count"] == 0
    assert api.get("/api/v1/publications", params={"platform": "fakenet"}).json()["count"] == 2

    later = (at + timedelta(hours=2)).isoformat()
    r = api.patch(f"/api/v1/publications/{first}", json={"scheduled_at": later})
    assert r.status_code == 200, r.text
    assert r.json()["scheduled_at"].startswith(later[:19])
    assert [e["to_status"] for e in r.json()["events"]] == ["planned", "planned"]
    jobs = {j.idempotency_key: j.status.value for j in _jobs(world)}
    assert jobs[f"publish:{first}:1"] == "cancelled" and jobs[f"publish:{first}:2"] == "queued"

    r = api.patch(f"/api/v1/publications/{first}", json={"scheduled_at": (utcnow() - timedelta(days=1)).isoformat()})
    assert r.status_code == 422 and r.json()["error"]["field"] == "scheduled_at"

    r = api.post(f"/api/v1/publications/{first}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["actions"] == []
    assert api.post(f"/api/v1/publications/{first}/retry").status_code == 409
    assert api.post(f"/api/v1/publications/{first}/mark-published", json={}).status_code == 409
    assert api.get("/api/v1/publications/99999").status_code == 404


def _jobs(world: World) -> list[Job]:
    with world.runtime.db.session() as s:
        return list(s.scalars(select(Job).where(Job.kind == "publish")))


def test_failed_then_one_click_retry_over_the_api(api: TestClient, world: World) -> None:
    world.net.max_text = 5
    r = api.post("/api/v1/publications",
                 json={"text": "longer than five", "targets": [{"account_id": world.account_id}]})
    pub_id = r.json()["data"][0]["id"]
    drain(world.runtime)
    r = api.get(f"/api/v1/publications/{pub_id}")
    body = r.json()
    assert body["status"] == "failed" and body["needs_person"] and body["actions"] == ["retry", "cancel"]
    assert body["platform_message"] == "text is longer than 5 characters"
    world.net.max_text = 280
    r = api.post(f"/api/v1/publications/{pub_id}/retry")
    assert r.status_code == 200 and r.json()["status"] == "due" and r.json()["generation"] == 2
    drain(world.runtime)
    assert api.get(f"/api/v1/publications/{pub_id}").json()["status"] == "published"


def test_other_users_cannot_see_or_touch(api: TestClient, world: World, client: TestClient,
                                         make_user: Callable[..., User], make_token: Callable[..., str]) -> None:
    r = api.post("/api/v1/publications", json={"text": "mine", "targets": [{"account_id": world.account_id}]})
    pub_id = r.json()["data"][0]["id"]
    member = make_user("member@example.com", owner=False)
    headers = {"Authorization": f"Bearer {make_token(member)}"}
    assert client.get(f"/api/v1/publications/{pub_id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/accounts/{world.account_id}", headers=headers).status_code == 404
    assert client.get("/api/v1/publications", headers=headers).json()["count"] == 0
    r = client.post("/api/v1/publications", headers=headers,
                    json={"text": "theirs", "targets": [{"account_id": world.account_id}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "targets.0.account_id"
    reader = {"Authorization": f"Bearer {make_token(world.user, scopes='read')}"}
    assert client.post(f"/api/v1/publications/{pub_id}/cancel", headers=reader).status_code == 403


def test_mark_published_for_unknown(api: TestClient, world: World, runtime: Any) -> None:
    from publishing_helpers import connect

    other = make_character(runtime, world.user, name="Blind", handle="blind")
    world.net.account = {"id": "fn-7", "handle": "@blind", "name": "Blind"}
    account_id = connect(runtime, world.user, other, world.net, platform="fakenet_blind")
    world.net.fault("POST", "/v1/posts", "drop_after")
    pub_id = api.post("/api/v1/publications", json={"text": "?", "targets": [{"account_id": account_id}]}
                      ).json()["data"][0]["id"]
    drain(runtime)
    body = api.get(f"/api/v1/publications/{pub_id}").json()
    assert body["status"] == "unknown" and body["needs_person"] and "cannot tell" in body["last_error"]
    r = api.post(f"/api/v1/publications/{pub_id}/mark-published", json={"url": "ftp://x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "url"
    r = api.post(f"/api/v1/publications/{pub_id}/mark-published",
                 json={"url": "https://fakenet.test/blind/p1", "platform_post_id": "p1"})
    assert r.status_code == 200 and r.json()["status"] == "published" and r.json()["platform_post_id"] == "p1"
    assert pub_row(runtime, pub_id).status == S.published
    assert publishing.allowed_actions(pub_row(runtime, pub_id)) == []
