"""Automation pages: list with toggle, create from a template and from scratch, edit, dry-run, run now, run log."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from automation_helpers import CAPTION_STEPS, AutoWorld
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ainfluencer.db.models_automation import AutomationRule
from ainfluencer.db.models_publishing import Publication


def csrf(client: TestClient) -> str:
    if "ainf_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["ainf_csrf"]


def assert_csp_clean(html: str) -> None:
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="/static/' in tag, tag


@pytest.fixture
def web(client: TestClient, world: AutoWorld, login: Callable[[TestClient], None]) -> TestClient:
    login(client)
    return client


def _rule_form(world: AutoWorld, **changes: str) -> dict[str, str]:
    return {"character_id": str(world.character_id), "name": "Evening tip", "trigger_kind": "daily",
            "daily_time": "19:30", "policy": "auto_approve", "timezone": "", "steps_json": json.dumps(CAPTION_STEPS),
            **changes}


def test_list_template_and_scratch_creation(web: TestClient, world: AutoWorld) -> None:
    html = web.get("/automation").text
    assert_csp_clean(html)
    assert "No rules yet" in html and "Daily Instagram post at 14:00" in html
    assert '/static/automation.js' in html
    html = web.get(f"/automation/new?template=keep_queue_5&character_id={world.character_id}").text
    assert_csp_clean(html)
    assert "Keep the queue at 5 posts" in html and "queue_below" in html

    r = web.post("/automation/rules", data={**_rule_form(world), "csrf_token": csrf(web)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    rule_url = r.headers["location"].split("?")[0]
    html = web.get(rule_url).text
    assert_csp_clean(html)
    assert "Evening tip" in html and re.search(r"Next run: \d{4}-\d\d-\d\d 19:30 CES?T", html), "local time"
    html = web.get("/automation").text
    assert "Evening tip" in html and "daily at 19:30 (Europe/Berlin)" in html and "never" in html


def test_bad_input_comes_back_with_the_problem_named(web: TestClient, world: AutoWorld) -> None:
    r = web.post("/automation/rules", data={**_rule_form(world, trigger_kind="cron", cron_expression="99 * * * *"),
                                            "csrf_token": csrf(web)})
    assert r.status_code == 422 and "not a valid cron expression" in r.text
    assert_csp_clean(r.text)
    r = web.post("/automation/rules", data={**_rule_form(world, steps_json="[{"), "csrf_token": csrf(web)})
    assert r.status_code == 422 and "not valid JSON" in r.text
    r = web.post("/automation/rules", data={**_rule_form(world, timezone="Nowhere/Land"), "csrf_token": csrf(web)})
    assert r.status_code == 422 and "Unknown time zone" in r.text
    with world.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AutomationRule)) == 0


def test_edit_toggle_dry_run_run_now_and_run_log(web: TestClient, world: AutoWorld) -> None:
    rid = world.create(trigger_kind="daily", trigger_config={"time": "14:00"}, steps=CAPTION_STEPS,
                       policy="auto_approve", name="Lunch post")
    token = csrf(web)
    r = web.post(f"/automation/rules/{rid}", data={**_rule_form(world, name="Lunch post v2", daily_time="13:45"),
                                                   "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert world.rule(rid).name == "Lunch post v2" and world.rule(rid).trigger_config == {"time": "13:45"}
    r = web.post(f"/automation/rules/{rid}/toggle", data={"enabled": "0", "back": "list", "csrf_token": token},
                 follow_redirects=False)
    assert r.status_code == 303 and world.rule(rid).enabled is False
    assert 'aria-pressed="false"' in web.get("/automation").text
    web.post(f"/automation/rules/{rid}/toggle", data={"enabled": "1", "csrf_token": token})
    assert world.rule(rid).enabled is True

    before = world.counts()
    html = web.post(f"/automation/rules/{rid}/dry-run", data={"csrf_token": token}).text
    assert_csp_clean(html)
    assert "Nothing was written" in html and "would schedule" in html and "auto_approve" in html
    assert world.counts() == before

    r = web.post(f"/automation/rules/{rid}/run", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/automation/runs/")
    run_url = r.headers["location"].split("?")[0]
    assert "The steps show here once the worker has run them" in web.get(run_url).text
    world.run_jobs()
    html = web.get(run_url).text
    assert_csp_clean(html)
    assert html.count('class="step-entry"') == 3 and "succeeded" in html and "publication #" in html
    with world.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Publication)) == 1
    assert "succeeded" in web.get("/automation").text

    r = web.post(f"/automation/rules/{rid}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and web.get(f"/automation/rules/{rid}").status_code == 404


def test_pages_need_sign_in(client: TestClient, world: AutoWorld) -> None:
    r = client.get("/automation", follow_redirects=False)
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]


def test_step_builder_rows_become_the_api_steps(web: TestClient, world: AutoWorld) -> None:
    html = web.get(f"/automation/new?character_id={world.character_id}").text
    assert_csp_clean(html)
    assert 'name="step_0_action"' in html and "Write a caption" in html and "Schedule into free posting slots" in html
    form = {**_rule_form(world), "steps_json": "", "csrf_token": csrf(web),
            "step_0_action": "generate_caption", "step_0_template": "tip", "step_0_platform": "telegram",
            "step_0_count": "2", "step_0_brief": "morning stretch",
            "step_1_action": "review",
            "step_2_action": "", "step_2_brief": "ignored: the row is off",
            "step_3_action": "schedule", "step_3_platforms": "telegram"}
    r = web.post("/automation/rules", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    with world.runtime.db.session() as s:
        rule = s.scalars(select(AutomationRule)).one()
        assert [st["action"] for st in rule.steps] == ["generate", "review", "schedule"]
        assert rule.steps[0]["content"] == "caption" and rule.steps[0]["count"] == 2
        assert rule.steps[0]["brief"] == "morning stretch" and rule.steps[2]["platforms"] == ["telegram"]
    # The edit page shows the same steps in the builder, selected.
    html = web.get(r.headers["location"].split("?")[0]).text
    assert re.search(r'name="step_0_action"[^>]*>.*?<option value="generate_caption" selected', html, re.S)
    assert re.search(r'name="step_2_action"[^>]*>.*?<option value="schedule" selected', html, re.S)

    # A step the service refuses comes back with the rows kept and the problem named.
    bad = {**form, "name": "No review", "step_1_action": ""}
    r = web.post("/automation/rules", data=bad)
    assert r.status_code == 422 and "without a &#39;review&#39; step" in r.text
    assert re.search(r'name="step_0_action"[^>]*>.*?<option value="generate_caption" selected', r.text, re.S)
