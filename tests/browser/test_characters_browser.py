"""Real Chromium against a real `ainfluencer up`: create a character from a template, move sliders, preview,
save, find it by search, bulk-pause it. No inline script or style may be refused by the CSP on the way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from _app import ARTIFACTS, browser_page, owner_env, running_app, sign_in

pytestmark = pytest.mark.browser

EMAIL = "maker@example.com"
PASSWORD = "correct horse battery"



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m ainfluencer up` in a subprocess with an owner account made through the CLI."""
    data_dir = tmp_path_factory.mktemp("ainf-chars")
    env = owner_env(data_dir, EMAIL, PASSWORD)
    with running_app(env, data_dir.parent / "chars-server.log") as base:
        yield base


def test_create_from_template_sliders_preview_save_search_bulk_pause(server: str, browser: Any) -> None:
    with browser_page(browser) as (page, problems):
        sign_in(page, server, EMAIL, PASSWORD, "/characters")
        page.get_by_role("heading", name="Characters", exact=True).wait_for()

        # A second character, so that the search has something to leave out.
        page.get_by_role("link", name="New character").first.click()
        page.wait_for_url("**/characters/new")
        page.fill("#f-name", "Other One")
        page.get_by_role("button", name="Create character").click()
        page.wait_for_url("**/characters/*?done=created")

        # New character from a template: picking it fills the form (the select submits itself).
        page.goto(server + "/characters/new")
        page.select_option("#template-pick", "fitness-coach")
        page.wait_for_url("**/characters/new?template=fitness-coach")
        assert "Energetic" in page.input_value("#f-tone_of_voice")
        page.fill("#f-name", "Robo Coach")
        page.fill("#f-handle", "robo.coach")

        # Move two sliders with the keyboard; their values show live.
        energy = page.locator("#trait-energy")
        start = float(energy.input_value())
        energy.focus()
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        moved = float(energy.input_value())
        assert moved == pytest.approx(start - 0.5, abs=0.001)
        # The behaviour under the slider follows it while it moves, not only the level word.
        assert page.locator("#trait-energy-hint .trait-guidance").inner_text() == \
            energy.get_attribute("data-guide-low" if moved < 0.4 else "data-guide-mid" if moved < 0.6 else
                                 "data-guide-high")
        assert page.locator("#trait-energy-value").inner_text() == f"{moved:.2f}"
        formality = page.locator("#trait-formality")
        formality.focus()
        for _ in range(14):
            page.keyboard.press("ArrowRight")
        assert page.locator("#trait-formality-value").inner_text() == f"{float(formality.input_value()):.2f}"

        # Preview: two platforms, a reply, and what the slider changes did to the same draft.
        page.locator("#preview-button").click()
        panel = page.locator("#preview-panel")
        panel.get_by_role("heading", name="Instagram caption").wait_for()
        panel.get_by_role("heading", name="X post").wait_for()
        panel.get_by_role("heading", name="What the change does").wait_for()
        assert "Energy" in panel.inner_text() and "Formality" in panel.inner_text()
        seed = panel.locator("input[name=seed]").input_value()
        first_draft = panel.locator(".sample-text").first.inner_text()
        page.locator("#regenerate-button").click()
        page.wait_for_function("s => { const i = document.querySelector('#preview-panel input[name=seed]');"
                               " return i && i.value !== s; }", arg=seed)
        assert panel.locator(".sample-text").first.inner_text() != first_draft
        assert page.url.endswith("/characters/new?template=fitness-coach"), "the preview reloaded the page"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "character-new.png"), full_page=True)

        # Save.
        page.locator("#save-button").click()
        page.wait_for_url("**/characters/*?done=created")
        page.get_by_text("Character created.").wait_for()
        assert "@robo.coach" in page.locator("h1").inner_text()

        # Find it by search, then pause it in bulk.
        page.goto(server + "/characters")
        page.fill("#char-search", "robo")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url(re.compile(r"/characters\?q=robo"))
        cards = page.locator(".char-card")
        assert cards.count() == 1 and "Robo Coach" in cards.first.inner_text()
        page.locator(".char-card[data-handle='robo.coach'] input.row-check").check()
        assert page.locator("#selected-count").inner_text() == "1 selected"
        page.get_by_role("button", name="Pause", exact=True).click()
        page.get_by_text("Paused 1 character.").wait_for()
        assert "paused" in page.locator(".char-card[data-handle='robo.coach'] .badge").first.inner_text()
        page.goto(server + "/characters?status=paused")
        assert page.locator(".char-card").count() == 1
        page.screenshot(path=str(ARTIFACTS / "characters-paused.png"), full_page=True)
        assert not problems, problems


def test_writing_streams_into_the_character_page_without_reload(server: str, browser: Any) -> None:
    streamed: list[str] = []
    with browser_page(browser) as (page, problems):
        page.on("response", lambda r: streamed.append(r.headers.get("content-type", "")) if r.url.endswith(
            "/generate/stream") else None)
        sign_in(page, server, EMAIL, PASSWORD, "/characters/new?template=home-chef")
        page.fill("#f-name", "Stream Chef")
        page.fill("#f-handle", "stream.chef")
        page.locator("#save-button").click()
        page.wait_for_url("**/characters/*?done=created")
        url = page.url

        # The offline writer answers (no model configured); the text appears in the panel, no navigation.
        page.evaluate("window.__samePage = true")
        page.select_option("#gen-platform", "x")
        page.fill("#gen-brief", "weeknight pasta")
        page.locator("#generate-button").click()
        result = page.locator("#generated article.generated:not(.is-streaming)")
        result.get_by_text("similarity to earlier texts").wait_for()
        text = result.locator(".generated-text").inner_text()
        assert text.strip() and "written by the template writer (offline fallback)" in result.inner_text()
        assert page.evaluate("window.__samePage === true"), "writing reloaded the page"
        assert page.url == url
        assert streamed and streamed[0].startswith("text/event-stream")
        assert page.locator("#generate-button").is_enabled()

        # A bad request shows the server's words in the panel (the same page, still no reload).
        page.select_option("#gen-kind", "reply")
        page.fill("#gen-reply", "")
        page.fill("#gen-brief", "")
        page.locator("#generate-button").click()
        page.locator("#generated .alert-error").get_by_text("Paste the comment to answer.").wait_for()
        assert page.locator("#gen-reply").get_attribute("aria-invalid") == "true"
        assert page.evaluate("window.__samePage === true")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "character-writing.png"), full_page=True)
        assert not problems, problems


def test_a_model_that_is_down_is_named_and_the_template_writer_waits_for_a_click(server: str, browser: Any) -> None:
    with browser_page(browser) as (page, problems):
        sign_in(page, server, EMAIL, PASSWORD, "/characters/new?template=home-chef")
        page.fill("#f-name", "Local Chef")
        page.fill("#f-handle", "local.chef")
        page.locator("#save-button").click()
        page.wait_for_url("**/characters/*?done=created")
        detail = page.url.split("?")[0]
        # the in-app model is chosen, but its file was never downloaded
        page.goto(f"{detail}/model")
        page.select_option("#f-text_backend", "local")
        page.get_by_role("button", name="Save model settings").click()
        page.goto(detail)
        page.fill("#gen-brief", "a rainy morning market in Porto")
        page.locator("#generate-button").click()
        alert = page.locator("#generated .alert-error")
        alert.get_by_text("local: the model file").wait_for()
        assert "ainfluencer models pull text" in alert.inner_text()
        assert page.locator("#generated article.generated").count() == 0  # nothing written in its place
        alert.get_by_role("button", name="Use the template writer for this text").click()
        result = page.locator("#generated article.generated:not(.is-streaming)")
        result.get_by_text("similarity to earlier texts").wait_for()
        assert "written by the template writer (offline fallback)" in result.inner_text()
        assert "rainymorningmarketinporto" not in result.inner_text().casefold()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "character-model-down.png"), full_page=True)
        assert not problems, problems
