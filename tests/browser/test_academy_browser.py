"""Real Chromium against a real `ainfluencer up`: open the Academy, take the first lesson, answer its quiz (wrong,
then right), follow "Do it now" into the character form, come back through the menu and see the progress marks.
Screenshots at 1440x900 and 390x844 go to test-artifacts/. No inline script or style may be refused by the CSP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from _app import ARTIFACTS, browser_page, owner_env, running_app, sign_in

pytestmark = pytest.mark.browser

EMAIL = "learner@example.com"
PASSWORD = "correct horse battery"
LESSON = "/academy/getting-started/create-from-template"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m ainfluencer up` in a subprocess with an owner account made through the CLI."""
    data_dir = tmp_path_factory.mktemp("ainf-academy")
    env = owner_env(data_dir, EMAIL, PASSWORD)
    with running_app(env, data_dir.parent / "academy-server.log") as base:
        yield base


def _shot(page: Any, name: str) -> None:
    """A full-page screenshot from the top (an anchor such as #quiz would leave the sticky sidebar mid-page)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_lesson_quiz_do_it_now_and_progress_mark(server: str, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(browser, width=1440, height=900, failure_screenshot="academy-failure.png") as (page, problems):
        sign_in(page, server, EMAIL, PASSWORD, "/academy")
        page.get_by_role("heading", name="Academy", exact=True).wait_for()
        overall = page.locator("#overall").inner_text()
        assert re.fullmatch(r"0 of \d+ lessons done", overall), overall
        assert page.locator(".course-card").count() >= 8
        _shot(page, "academy-catalogue-1440.png")

        # Search finds the lesson, and the course page lists it not done.
        page.fill("#academy-q", "fitness coach template")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url("**/academy?q=*")
        page.locator(".hit a", has_text="Create a character from a template").click()
        page.wait_for_url(f"**{LESSON}")
        assert page.locator("#lesson-status").inner_text() == "not done yet"
        assert page.locator(".lesson-body table").count() == 1  # Markdown table rendered

        # A wrong answer first: the explanation shows, the lesson stays not done.
        page.get_by_label("It has no disclosure until you add one by hand.").check()
        page.get_by_role("button", name="Check answer").click()
        page.wait_for_url(f"**{LESSON}#quiz")
        assert "Not quite" in page.locator(".quiz-result").inner_text()
        assert page.locator("#lesson-status").inner_text() == "not done yet"
        # Then the right one.
        page.get_by_label(re.compile("It carries the disclosure line")).check()
        page.get_by_role("button", name="Answer again").click()
        # Same URL as before (…#quiz), so wait for the new page's result instead of the URL.
        page.locator(".quiz-result", has_text="Correct.").wait_for()
        result = page.locator(".quiz-result").inner_text()
        assert result.startswith("Correct.") and "records who turned it off" in result
        assert page.locator("#lesson-status").inner_text() == "done"
        _shot(page, "academy-lesson-1440.png")

        # "Do it now" opens the character form filled from the template.
        page.locator("#do-it-now").click()
        page.wait_for_url("**/characters/new?template=fitness-coach")
        assert page.locator("#template-pick").input_value() == "fitness-coach"

        # Back through the menu: the catalogue, the course and the lesson show the progress mark.
        page.locator(".sidebar .nav-link", has_text="Academy").click()
        page.wait_for_url("**/academy")
        assert re.fullmatch(r"1 of \d+ lessons done", page.locator("#overall").inner_text())
        card = page.locator("#course-getting-started")
        assert "1 of 5 done" in card.inner_text()
        card.get_by_role("link", name="Getting started").click()
        page.wait_for_url("**/academy/getting-started")
        item = page.locator("#lesson-create-from-template")
        assert "is-done" in (item.get_attribute("class") or "")
        assert item.locator(".done-mark").count() == 1
        assert page.locator(".lesson-item .done-mark").count() == 1
        _shot(page, "academy-course-1440.png")
        assert problems == []

    with browser_page(browser, width=390, height=844, failure_screenshot="academy-failure-390.png") as (page, problems):
        sign_in(page, server, EMAIL, PASSWORD, LESSON)
        assert page.locator("#lesson-status").inner_text() == "done"
        assert _no_sideways_scroll(page)
        _shot(page, "academy-lesson-390.png")
        page.goto(f"{server}/academy")
        assert _no_sideways_scroll(page)
        _shot(page, "academy-catalogue-390.png")
        assert problems == []
