"""Real Chromium against a real `ainfluencer up` (FakeNet registered through AINF_EXTRA_PLATFORMS): a character made
from a template → "Write with" in Compose (streamed, offline persona writer) → saved and sent to review → approved
on the Review page with the keyboard → scheduled → published by the in-process worker to a local FakeNet server → the
dashboard shows it live. Every step goes through the pages, none through the API. Afterwards the main pages are
photographed at 1440×900 and 390×844 into test-artifacts/ for a person to look at.

The only step outside the browser is connecting the FakeNet account: FakeNet is a test network with no connect
form, so its account is connected through the accounts service (live check included) on the app's database."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _app import ARTIFACTS, browser_page, owner_env, running_app, sign_in

PUBLISHING_TESTS = str(Path(__file__).resolve().parents[1] / "publishing")
sys.path.insert(0, PUBLISHING_TESTS)

from fake_network import TOKEN, FakeNet  # noqa: E402

from ainfluencer.config import Settings  # noqa: E402
from ainfluencer.db.models import User  # noqa: E402
from ainfluencer.runtime import Runtime  # noqa: E402
from ainfluencer.services import accounts  # noqa: E402

pytestmark = pytest.mark.browser

EMAIL = "creator@example.com"
PASSWORD = "correct horse battery"
# The test network is a platform package (tests/publishing/fakenet) registered the way a plug-in would be.
EXTRA_PLATFORMS = ["fakenet"]
PAGES = ["/dashboard", "/compose?character={cid}", "/posts", "/posts/{pid}", "/publications",
         "/calendar", "/characters", "/characters/{cid}", "/accounts", "/automation",
         "/automation/new?character_id={cid}", "/settings/operations"]
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A FakeNet server and the app (owner made through the CLI) that publishes to it."""
    data_dir = tmp_path_factory.mktemp("ainf-posts")
    env = owner_env(data_dir, EMAIL, PASSWORD)
    env["AINF_EXTRA_PLATFORMS"] = json.dumps(EXTRA_PLATFORMS)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PUBLISHING_TESTS, env.get("PYTHONPATH", "")) if p)
    with FakeNet() as net, running_app(env, data_dir.parent / "posts-server.log") as base:
        yield {"base": base, "net": net, "data_dir": data_dir}


def _connect_fakenet(data_dir: Path, character_id: int, net: FakeNet) -> None:
    runtime = Runtime.build(Settings(data_dir=data_dir, extra_platforms=EXTRA_PLATFORMS))
    try:
        with runtime.db.session() as s:
            user = s.query(User).filter(User.email == EMAIL).one()
            accounts.connect_account(s, runtime=runtime, user=user, character_id=character_id, platform="fakenet",
                                     credentials=accounts.credentials_from_input(
                                         access_token=TOKEN, extra={"base_url": net.url}))
    finally:
        runtime.close()


def test_template_character_to_published_post(world: dict[str, Any], browser: Any) -> None:
    base, net = world["base"], world["net"]
    with browser_page(browser, width=1440, height=900, failure_screenshot="posts-flow-failure.png") as (
            page, problems):
        sign_in(page, base, EMAIL, PASSWORD, "/dashboard")
        # An empty install says what to do first.
        assert "Start with a character" in page.locator("#dashboard-live").inner_text()

        # 1. A character from a template.
        page.goto(base + "/characters/new")
        page.select_option("#template-pick", "travel-photographer")
        page.wait_for_url("**/characters/new?template=travel-photographer")
        page.fill("#f-name", "Mira Vale")
        page.fill("#f-handle", "mira.vale")
        page.get_by_role("button", name="Create character").click()
        page.wait_for_url(re.compile(r".*/characters/\d+\?done=created"))
        character_id = int(re.search(r"/characters/(\d+)", page.url).group(1))  # type: ignore[union-attr]
        # Playwright's sync API holds an event loop in this thread; the service runs the adapter in its own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(_connect_fakenet, world["data_dir"], character_id, net).result()

        # 2. Compose from the navigation; "Write with Mira Vale" streams the text into the field.
        page.locator(".sidebar").get_by_role("link", name="Compose").click()
        page.wait_for_url("**/compose")
        assert page.locator(".sidebar a[aria-current=page]").inner_text() == "Compose"
        page.select_option("#compose-character", str(character_id))
        page.wait_for_url(f"**/compose?character={character_id}")
        page.locator("input[name=account_ids]").check()
        page.select_option("#c-write-for", "x")
        page.fill("#c-brief", "golden hour over the harbour")
        page.get_by_role("button", name="Write with Mira Vale").click()
        page.locator("#write-status", has_text="Written by").wait_for()
        text = page.input_value("#c-text")
        assert len(text) > 20
        page.locator("#preview .pv-card.is-ok").wait_for()

        # 3. Saved as a post and sent to review.
        page.get_by_role("button", name="Send to review").click()
        page.wait_for_url(re.compile(r".*/posts/\d+\?notice=.*"))
        post_id = int(re.search(r"/posts/(\d+)", page.url).group(1))  # type: ignore[union-attr]
        assert page.locator("#post-status").inner_text() == "In review"

        # 4. Review: the post is there with its preview; j focuses it, a approves it.
        page.locator(".sidebar").get_by_role("link", name="Review").click()
        page.wait_for_url("**/review")
        card = page.locator(f"#post-{post_id}")
        assert "FakeNet" in card.inner_text() and "ready" in card.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for size, (width, height) in SIZES.items():  # the queue with a post in it, for a person to look at
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(ARTIFACTS / f"page-review-{size}.png"), full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})
        page.keyboard.press("j")
        page.keyboard.press("a")
        page.wait_for_url("**/review?notice=*")
        assert "now approved" in page.locator(".alert-success").inner_text()
        assert "Nothing waits for review" in page.inner_text("main")

        # 5. Scheduled from the post's page: the publication is created and goes out at once.
        page.goto(f"{base}/posts/{post_id}")
        page.get_by_role("button", name="Schedule").click()
        page.wait_for_url(f"**/posts/{post_id}?notice=*")
        assert "1 publication queued" in page.locator(".alert-success").inner_text()

        # 6. The dashboard shows it published (the live channel swaps the board in when the worker is done).
        page.goto(base + "/dashboard")
        page.locator("#live-indicator[data-state=live]").wait_for()
        page.locator(f"#dash-character-{character_id} .dash-published", has_text="FakeNet").wait_for(timeout=30_000)
        assert len(net.markers()) == 1 and list(net.markers().values()) == [1]
        page.goto(f"{base}/posts/{post_id}")
        assert page.locator("#post-status").inner_text() == "Published"
        history = page.locator(".timeline").inner_text()
        for step in ("Submit for review", "Approve", "Schedule", "Published"):
            assert step in history, step
        assert problems == [], problems

    _photograph_pages(browser, base, character_id, post_id)


def _photograph_pages(browser: Any, base: str, character_id: int, post_id: int) -> None:
    """Every main page at desktop and phone size, for a person to look at (no assertion on looks)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        with browser_page(browser, width=width, height=height) as (page, problems):
            sign_in(page, base, EMAIL, PASSWORD, "/dashboard")
            for path in PAGES:
                url = path.format(cid=character_id, pid=post_id)
                page.goto(base + url)
                page.wait_for_load_state("load")
                name = url.strip("/").split("?")[0].replace("/", "-") or "home"
                page.screenshot(path=str(ARTIFACTS / f"page-{name}-{size}.png"), full_page=True)
            if size == "phone":  # the phone menu, open, with the current page highlighted
                page.goto(base + "/review")
                page.locator(".mobile-menu summary").click()
                assert page.locator(".mobile-menu-panel a[aria-current=page]").inner_text() == "Review"
                page.screenshot(path=str(ARTIFACTS / "page-menu-phone.png"))
            assert problems == [], problems
