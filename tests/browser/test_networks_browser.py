"""Real Chromium against a real `ainfluencer up`: X is connected through the UI only. The owner enters the X
app's client id and secret in Settings → Networks (no environment variable, no restart), then Accounts →
Connect with X runs the OAuth redirect against a local fake consent server and the account shows as connected.
Screenshots of Settings → Networks at 1440×900 and 390×844 go to test-artifacts/."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _app import ARTIFACTS, browser_page, owner_env, running_app, sign_in

from ainfluencer.config import Settings
from ainfluencer.db.models import Character, User
from ainfluencer.runtime import Runtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platforms"))

from fake_oauth import FakeOAuth  # noqa: E402
from fake_x import FakeX  # noqa: E402

pytestmark = pytest.mark.browser

EMAIL = "networks@example.com"
PASSWORD = "correct horse battery"
CLIENT_ID = "browser-x-client"
SECRET = "browser-x-secret-QRST"  # noqa: S105 - a test value
LAUNCHER = [str(Path(__file__).with_name("networks_app_main.py"))]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, FakeX]]:
    """Fake X API and consent server (knowing only the app entered in the UI), and the app with one character."""
    data_dir = tmp_path_factory.mktemp("ainf-networks")
    env = owner_env(data_dir, EMAIL, PASSWORD)
    runtime = Runtime.build(Settings(data_dir=data_dir))
    try:
        with runtime.db.session() as s:
            user = s.query(User).filter(User.email == EMAIL).one()
            character = Character(user_id=user.id, name="Nova", handle="nova")
            s.add(character)
            s.flush()
            character_id = character.id
    finally:
        runtime.close()
    with FakeX() as api, FakeOAuth(clients={CLIENT_ID: SECRET},
                                   on_token=lambda provider, token: api.valid_tokens.add(token)) as auth:
        env.update(FAKE_X_URL=api.url, AINF_OAUTH_ENDPOINTS=json.dumps(
            {"x_authorize": f"{auth.url}/i/oauth2/authorize", "x_api": auth.url}))
        with running_app(env, data_dir.parent / "networks-server.log", launcher=LAUNCHER) as base:
            yield base, character_id, api


def test_connect_x_through_the_ui_only(world: tuple[str, int, FakeX], browser: Any) -> None:
    base, character_id, api = world
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(browser, width=1440, height=900, failure_screenshot="networks-failure.png") as (page, problems):
        sign_in(page, base, EMAIL, PASSWORD, f"/accounts?character={character_id}")
        card = page.locator("#connect-x")
        assert "Settings → Networks" in card.inner_text()  # not configured yet: says where to fix it
        card.get_by_role("link", name="Set up in Settings → Networks").click()
        page.wait_for_url("**/settings/networks")
        x_card = page.locator("#app-x")
        assert "needs app credentials" in x_card.inner_text()
        assert f"{base}/accounts/oauth/x/callback" in x_card.locator("[data-redirect=x]").inner_text()

        page.fill("#x-client-id", CLIENT_ID)
        page.fill("#x-client-secret", SECRET)
        x_card.get_by_role("button", name="Save X app").click()
        page.wait_for_url("**/settings/networks?done=saved*")
        text = page.locator("#app-x").inner_text()
        assert "set here" in text and CLIENT_ID in text and "…QRST" in text and "ready to connect" in text
        assert SECRET not in page.content()
        page.screenshot(path=str(ARTIFACTS / "settings-networks-1440.png"), full_page=True)

        page.goto(f"{base}/accounts?character={character_id}")
        page.locator("#connect-x").get_by_role("button", name="Connect with X").click()
        # App → fake consent screen (302 back with a code) → callback → live check against the fake X API.
        page.wait_for_url("**/accounts?*done=connected*")
        assert "Account connected" in page.content() and "ava_virtual" in page.content()
        assert problems == []

    with browser_page(browser, width=390, height=844) as (page, problems):
        sign_in(page, base, EMAIL, PASSWORD, "/settings/networks")
        page.locator("#public-media").wait_for()
        assert "Signed links served by this app" in page.content()
        wide = page.evaluate("""() => [...document.querySelectorAll('main *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40))""")
        assert wide == [], wide  # nothing wider than the phone
        page.screenshot(path=str(ARTIFACTS / "settings-networks-390.png"), full_page=True)
        assert problems == []
