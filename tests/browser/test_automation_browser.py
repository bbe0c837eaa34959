"""Real Chromium against a real `ainfluencer up`: create a rule from the "Daily Instagram post at 14:00" template,
dry-run it (the plan is shown; no run, job or publication is written), then turn it off on the rule page and on
again from the rules list, checking the page and GET /api/v1/automation/rules/{id} each time. No inline script
or style may be refused by the CSP on the way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _app import browser_page, owner_env, running_app, sign_in
from sqlalchemy import func, select

from ainfluencer.config import Settings
from ainfluencer.db.models import Character, Job, User
from ainfluencer.db.models_automation import AutomationRun
from ainfluencer.db.models_publishing import Publication, SocialAccount
from ainfluencer.runtime import Runtime

pytestmark = pytest.mark.browser

EMAIL = "automator@example.com"
PASSWORD = "correct horse battery"
TEMPLATE = "Daily Instagram post at 14:00"


@dataclass
class Setup:
    base: str
    data_dir: Path
    character_id: int


def _counts(data_dir: Path) -> dict[str, int]:
    """Rows a run would write: automation runs (dry-run rows included), jobs and publications."""
    rt = Runtime.build(Settings(data_dir=data_dir))
    try:
        with rt.db.session() as s:
            return {name: int(s.scalar(select(func.count()).select_from(model)) or 0)
                    for name, model in (("runs", AutomationRun), ("jobs", Job), ("publications", Publication))}
    finally:
        rt.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """An owner made through the CLI and a character in Europe/Berlin with an Instagram account row (the template
    posts there; the account has no credentials and nothing in this test contacts the network)."""
    data_dir = tmp_path_factory.mktemp("ainf-automation")
    env = owner_env(data_dir, EMAIL, PASSWORD)
    rt = Runtime.build(Settings(data_dir=data_dir))
    try:
        with rt.db.session() as s:
            user = s.query(User).filter(User.email == EMAIL).one()
            character = Character(user_id=user.id, name="Nova", handle="nova", timezone="Europe/Berlin")
            s.add(character)
            s.flush()
            s.add(SocialAccount(character_id=character.id, platform="instagram", platform_account_id="17841400000",
                                handle="nova.ig", display_name="Nova on Instagram"))
            character_id = character.id
    finally:
        rt.close()
    with running_app(env, data_dir.parent / "automation-server.log") as base:
        yield Setup(base=base, data_dir=data_dir, character_id=character_id)


def _api_rule(page: Any, base: str, rule_id: int) -> dict[str, Any]:
    """GET /api/v1/automation/rules/{id} with the page's session cookie."""
    resp = page.request.get(f"{base}/api/v1/automation/rules/{rule_id}")
    assert resp.status == 200, resp.text()
    body: dict[str, Any] = resp.json()
    return body


def test_template_rule_dry_run_and_toggle(server: Setup, browser: Any) -> None:
    base = server.base
    with browser_page(browser, failure_screenshot="automation-browser.png") as (page, problems):
        sign_in(page, base, EMAIL, PASSWORD, "/automation")
        page.get_by_role("heading", name="Automation rules", exact=True).wait_for()
        assert "No rules yet." in page.locator(".card.empty").inner_text()

        # 1. Start from the template: the form comes filled (daily at 14:00, the character chosen).
        card = page.locator("form.rule-template", has_text=TEMPLATE)
        assert card.locator("select[name=character_id]").input_value() == str(server.character_id)
        card.get_by_role("button", name="Use this template").click()
        page.wait_for_url(re.compile(r"/automation/new\?template=daily_instagram_1400"))
        assert page.locator("#f-name").input_value() == TEMPLATE
        assert page.locator("#f-trigger_kind").input_value() == "daily"
        assert page.locator("#f-daily_time").input_value() == "14:00"
        assert page.locator("#f-character_id").input_value() == str(server.character_id)
        # automation.js shows only the chosen trigger's fields
        assert page.locator("[data-trigger=daily]").is_visible()
        for other in ("cron", "interval", "event"):
            assert page.locator(f"[data-trigger={other}]").is_hidden(), other
        page.get_by_role("button", name="Create rule").click()
        page.wait_for_url(re.compile(r"/automation/rules/\d+\?done=created"))
        match = re.search(r"/automation/rules/(\d+)", page.url)
        assert match is not None
        rule_id = int(match.group(1))
        assert "Rule saved." in page.locator(".alert-success").inner_text()
        assert page.locator("h1 .badge").inner_text() == "enabled"
        # the next run is shown at 14:00 in the character's zone
        assert re.search(r"Next run: \d{4}-\d\d-\d\d 14:00 CES?T", page.locator(".page-head .muted").inner_text())
        rule = _api_rule(page, base, rule_id)
        assert rule["enabled"] is True and rule["template_key"] == "daily_instagram_1400"
        assert rule["trigger_config"] == {"time": "14:00"} and rule["next_run_at"] is not None
        before = _counts(server.data_dir)

        # 2. Dry run: the plan of every step is shown; nothing is written.
        page.get_by_role("button", name="Dry run").click()
        page.wait_for_url(f"**/automation/rules/{rule_id}/dry-run")
        assert page.locator("h1").inner_text() == f"Dry run: {TEMPLATE}"
        assert "Nothing was written, queued or published." in page.locator(".page-head").inner_text()
        trigger = page.locator(".facts dt", has_text="Trigger").locator("xpath=following-sibling::dd").inner_text()
        assert "daily at 14:00 (Europe/Berlin)" in trigger and "next at" in trigger
        steps = page.locator(".step-log .step-entry")
        actions = [steps.nth(i).locator("strong").inner_text() for i in range(steps.count())]
        assert actions == ["pick_asset", "generate", "review", "publish"]
        outcomes = steps.locator(".badge").all_inner_texts()
        assert all(o for o in outcomes), outcomes
        assert _counts(server.data_dir) == before == {"runs": 0, "jobs": 0, "publications": 0}
        runs = page.request.get(f"{base}/api/v1/automation/runs?rule_id={rule_id}").json()
        assert runs["count"] == 0 and runs["data"] == []
        assert _api_rule(page, base, rule_id)["last_run"] is None

        # 3. Turn it off on the rule page.
        page.get_by_role("link", name="Back to the rule").click()
        page.wait_for_url(f"**/automation/rules/{rule_id}")
        assert "No runs yet." in page.content()
        page.get_by_role("button", name="Disable").click()
        page.wait_for_url(f"**/automation/rules/{rule_id}?done=disabled")
        assert "Rule disabled." in page.locator(".alert-success").inner_text()
        assert page.locator("h1 .badge").inner_text() == "disabled"
        assert "Next run: off" in page.locator(".page-head .muted").inner_text()
        assert page.get_by_role("button", name="Enable").is_visible()
        rule = _api_rule(page, base, rule_id)
        assert rule["enabled"] is False

        # 4. ... and on again from the rules list.
        page.goto(base + "/automation")
        row = page.locator(f"#rule-{rule_id}")
        toggle = row.locator("form.inline-form button")
        assert toggle.inner_text() == "Off" and toggle.get_attribute("aria-pressed") == "false"
        assert "off" in row.locator("td").nth(3).inner_text()
        toggle.click()
        page.wait_for_url("**/automation?done=enabled")
        assert "Rule enabled." in page.locator(".alert-success").inner_text()
        toggle = page.locator(f"#rule-{rule_id} form.inline-form button")
        assert toggle.inner_text() == "On" and toggle.get_attribute("aria-pressed") == "true"
        assert re.search(r"14:00 CES?T", page.locator(f"#rule-{rule_id} td").nth(3).inner_text())
        rule = _api_rule(page, base, rule_id)
        assert rule["enabled"] is True and rule["next_run_at"] is not None

        # Nothing ran on the way: toggling and dry-running write no run, job or publication.
        assert _counts(server.data_dir) == {"runs": 0, "jobs": 0, "publications": 0}
        assert problems == [], problems
