"""Real Chromium against a real `ainfluencer up`: the compose page's live preview (htmx, debounced) updates as
text is typed, flags an over-limit X post, and a valid post is scheduled in the chosen time zone. No inline
script or style may be refused by the CSP on the way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from _app import browser_page, owner_env, running_app, sign_in

from ainfluencer.config import Settings
from ainfluencer.db.models import Character, User
from ainfluencer.db.models_publishing import SocialAccount
from ainfluencer.runtime import Runtime

pytestmark = pytest.mark.browser

EMAIL = "composer@example.com"
PASSWORD = "correct horse battery"
YEAR = datetime.now(UTC).year + 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The app with an owner, a character and an X account row (no network: the post is scheduled ahead)."""
    data_dir = tmp_path_factory.mktemp("ainf-compose")
    env = owner_env(data_dir, EMAIL, PASSWORD)
    runtime = Runtime.build(Settings(data_dir=data_dir))
    try:
        with runtime.db.session() as s:
            user = s.query(User).filter(User.email == EMAIL).one()
            character = Character(user_id=user.id, name="Nova", handle="nova")
            s.add(character)
            s.flush()
            s.add(SocialAccount(character_id=character.id, platform="x", platform_account_id="42",
                                handle="nova_x"))
            character_id = character.id
    finally:
        runtime.close()
    with running_app(env, data_dir.parent / "compose-server.log") as base:
        yield base, character_id


def test_live_preview_and_scheduling(server: tuple[str, int], browser: Any) -> None:
    base, character_id = server
    with browser_page(browser, failure_screenshot="publishing-ui-compose.png") as (page, problems):
        sign_in(page, base, EMAIL, PASSWORD, f"/compose?character={character_id}")

        page.locator("input[name=account_ids]").check()
        page.fill("#c-text", "x" * 290)
        card = page.locator("#preview .pv-card")
        card.locator(".counter.is-over").wait_for()
        assert "290 / 280" in card.inner_text() and "problem" in card.inner_text()

        page.fill("#c-text", "Hello from Nova, a virtual character 🌊")
        page.locator("#preview .pv-card.is-ok").wait_for()
        assert "ready" in page.locator("#preview .pv-card").inner_text()

        # The date/time only counts with "At" chosen.
        assert page.locator("#c-when").is_disabled()
        page.locator("input[name=when][value=at]").check()
        assert page.locator("#c-when").is_enabled()
        page.fill("#c-when", f"{YEAR}-07-01T14:00")
        page.fill("#c-tz", "Europe/Berlin")
        page.locator("#preview", has_text="Goes out").wait_for()

        page.get_by_role("button", name="Schedule").click()
        page.wait_for_url("**/publications?*done=scheduled*")
        assert "Queued 1 publication." in page.locator(".alert-success").inner_text()
        page.locator(".pub-table a").first.click()
        page.wait_for_url("**/publications/*")
        assert "Planned" in page.locator("#pub-status").inner_text()
        assert problems == [], problems
