"""The automation REST API: CRUD, enable/disable, dry-run, run now, runs, templates; clear 4xx."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from automation_helpers import CAPTION_STEPS, AutoWorld
from fastapi.testclient import TestClient

from ainfluencer.db.models import User


@pytest.fixture
def api(client: TestClient, world: AutoWorld, make_token: Callable[..., str]) -> TestClient:
    client.headers["Authorization"] = f"Bearer {make_token(world.user)}"
    return client


def test_templates_are_listed(api: TestClient) -> None:
    r = api.get("/api/v1/automation/templates")
    assert r.status_code == 200
    names = [t["name"] for t in r.json()["data"]]
    assert "Daily Instagram post at 14:00" in names and "Keep the queue at 5 posts" in names


def test_rule_lifecycle(api: TestClient, world: AutoWorld) -> None:
    body = {"character_id": world.character_id, "name": "Morning tip", "trigger_kind": "cron",
            "trigger_config": {"expression": "0 9 * * 1-5"}, "steps": CAPTION_STEPS, "policy": "auto_approve"}
    r = api.post("/api/v1/automation/rules", json=body)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["timezone"] == "Europe/Berlin" and rule["next_run_at"] and rule["policy"] == "auto_approve"
    assert rule["trigger_text"].startswith("cron 0 9 * * 1-5")
    rid = rule["id"]
    assert api.get("/api/v1/automation/rules").json()["count"] == 1
    r = api.patch(f"/api/v1/automation/rules/{rid}", json={"name": "Weekday tip", "trigger_kind": "daily",
                                                            "trigger_config": {"time": "08:15"}})
    assert r.status_code == 200 and r.json()["name"] == "Weekday tip" and r.json()["trigger_kind"] == "daily"
    r = api.post(f"/api/v1/automation/rules/{rid}/disable")
    assert r.json()["enabled"] is False and r.json()["next_run_at"] is None
    r = api.post(f"/api/v1/automation/rules/{rid}/enable")
    assert r.json()["enabled"] is True and r.json()["next_run_at"]
    r = api.post(f"/api/v1/automation/rules/{rid}/dry-run")
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["run_id"] is None and [s["outcome"] for s in plan["steps"]] == ["planned", "planned", "planned"]
    r = api.post(f"/api/v1/automation/rules/{rid}/run")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    run_id = r.json()["id"]
    world.run_jobs()
    r = api.get(f"/api/v1/automation/runs/{run_id}")
    assert r.json()["status"] == "succeeded" and len(r.json()["steps"]) == 3
    assert r.json()["created_ids"]["publications"]
    runs = api.get("/api/v1/automation/runs", params={"rule_id": rid}).json()
    assert runs["count"] == 1 and api.get(f"/api/v1/automation/rules/{rid}").json()["last_run"]["status"] == \
        "succeeded"
    assert api.delete(f"/api/v1/automation/rules/{rid}").status_code == 204
    assert api.get(f"/api/v1/automation/rules/{rid}").status_code == 404


def test_create_from_a_template(api: TestClient, world: AutoWorld) -> None:
    r = api.post("/api/v1/automation/rules", json={"character_id": world.character_id,
                                                   "template": "approved_image_schedule",
                                                   "account_ids": [world.telegram_id]})
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["name"] == "When an image is approved, schedule it" and rule["policy"] == "review"
    assert rule["steps"][-1]["account_ids"] == [world.telegram_id]


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"trigger_kind": "cron", "trigger_config": {"expression": "*/0 * *"}}, "trigger_config.expression",
     "cron expression"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"}, "timezone": "Europe/Atlantis"}, "timezone",
     "Unknown time zone"),
    ({"trigger_kind": "interval", "trigger_config": {"every": 0, "unit": "hours"}}, "trigger_config.every", "zero"),
    ({"trigger_kind": "event", "trigger_config": {"event": "new_follower"}}, "trigger_config.event",
     "Unknown event"),
    ({"template": "nope"}, "template", "Unknown template"),
    ({}, "trigger_kind", "trigger_kind"),
])
def test_bad_rules_get_422_with_the_field(api: TestClient, world: AutoWorld, body: dict[str, object], field: str,
                                          words: str) -> None:
    r = api.post("/api/v1/automation/rules", json={"character_id": world.character_id, "name": "x",
                                                   "steps": CAPTION_STEPS, **body})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and words in err["message"]
    assert api.get("/api/v1/automation/rules").json()["count"] == 0


def test_other_users_cannot_see_or_run_a_rule(api: TestClient, world: AutoWorld, client: TestClient,
                                             make_user: Callable[..., User], make_token: Callable[..., str]) -> None:
    rid = world.create(trigger_kind="daily", trigger_config={"time": "14:00"}, steps=CAPTION_STEPS)
    stranger = make_user("stranger@example.com", owner=False)
    headers = {"Authorization": f"Bearer {make_token(stranger)}"}
    assert client.get(f"/api/v1/automation/rules/{rid}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/automation/rules/{rid}/run", headers=headers).status_code == 404
    assert client.get("/api/v1/automation/rules", headers=headers).json()["count"] == 0
    read_only = {"Authorization": f"Bearer {make_token(world.user, scopes='read')}"}
    assert client.post(f"/api/v1/automation/rules/{rid}/run", headers=read_only).status_code == 403


def test_run_now_for_a_paused_character_is_logged_as_skipped(api: TestClient, world: AutoWorld) -> None:
    rid = world.create(trigger_kind="daily", trigger_config={"time": "14:00"}, steps=CAPTION_STEPS)
    world.set_status("paused")
    r = api.post(f"/api/v1/automation/rules/{rid}/run")
    assert r.status_code == 202 and r.json()["status"] == "skipped" and "paused" in r.json()["message"]
