"""Real Chromium against a real `ainfluencer up`: the compose page's live preview (htmx, debounced) updates as
text is typed, flags an over-limit X post, and a valid post is scheduled in the chosen time zone. No inline
script or style may be refused by the CSP on the way."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

BROWSER_TESTS = Path(__file__).parent.parent / "browser"
if str(BROWSER_TESTS) not in sys.path:
    sys.path.insert(0, str(BROWSER_TESTS))

from _app import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, app_env, cli, running_app  # noqa: E402

pytestmark = pytest.mark.browser

EMAIL = "composer@example.com"
PASSWORD = "correct horse battery"
YEAR = datetime.now(UTC).year + 1


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium for this module (Debian's, through Playwright)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The app with an owner, a character and an X account row (no network: the post is scheduled ahead)."""
    from ainfluencer.config import Settings
    from ainfluencer.db.models import Character, User
    from ainfluencer.db.models_publishing import SocialAccount
    from ainfluencer.runtime import Runtime

    data_dir = tmp_path_factory.mktemp("ainf-compose")
    env = app_env(data_dir)
    cli(env, "db", "upgrade")
    cli(env, "user", "create", "--email", EMAIL, "--password", PASSWORD, "--owner")
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


def test_live_preview_and_scheduling(server: tuple[str, int], chromium: Any) -> None:
    base, character_id = server
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto(f"{base}/login?next=/compose?character={character_id}")
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        page.locator("form.form button[type=submit]").click()
        page.wait_for_url(f"**/compose?character={character_id}")

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
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "publishing-ui-compose.png"), full_page=True)
        raise
    finally:
        context.close()
