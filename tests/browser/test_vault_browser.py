"""Real Chromium against a real `ainfluencer up`: upload two images to the vault, approve one and reject the
other in the review queue with the keyboard, then filter the vault by approved. No inline script or style may
be refused by the CSP on the way."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from _app import browser_page, owner_env, running_app, sign_in

pytestmark = pytest.mark.browser

EMAIL = "curator@example.com"
PASSWORD = "correct horse battery"

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((240, 320, 3)) * 255).astype("uint8")
    pixels[40:160, 60:200] = rng.integers(0, 255, 3)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m ainfluencer up` in a subprocess with an owner account made through the CLI."""
    data_dir = tmp_path_factory.mktemp("ainf-vault")
    env = owner_env(data_dir, EMAIL, PASSWORD, provenance=True)
    with running_app(env, data_dir.parent / "vault-server.log") as base:
        yield base


def test_upload_review_with_keyboard_and_filter_approved(server: str, browser: Any) -> None:
    with browser_page(browser, failure_screenshot="vault-failure.png") as (page, problems):
        sign_in(page, server, EMAIL, PASSWORD, "/vault")
        page.get_by_role("heading", name="Vault", exact=True).wait_for()

        # Upload two images at once (the upload panel is open while the vault is empty).
        page.set_input_files("#upload-files", [
            {"name": "first.png", "mimeType": "image/png", "buffer": _png(1)},
            {"name": "second.png", "mimeType": "image/png", "buffer": _png(2)},
        ])
        page.fill("#upload-tags", "launch")
        page.check("input[name=origin][value=ai]")  # required: say what the files are
        page.locator("#upload-form button[type=submit]").click()
        page.wait_for_url("**/vault?done=uploaded*")
        assert "Uploaded 2 files." in page.locator(".alert-success").inner_text()
        cards = page.locator(".asset-card")
        assert cards.count() == 2
        assert page.locator(".asset-card .badge-provenance").count() == 2
        ids = sorted(int(i) for i in cards.evaluate_all("els => els.map(e => e.dataset.assetId)"))
        first, second = ids

        # Review queue: oldest first; j/k move, a approves, r rejects, each moving on by itself.
        page.get_by_role("link", name=re.compile("Review queue")).click()
        page.wait_for_url("**/vault/review")
        current = page.locator(".review-item.is-current")
        assert current.get_attribute("data-asset-id") == str(first)
        page.keyboard.press("j")
        assert current.get_attribute("data-asset-id") == str(second)
        page.keyboard.press("k")
        assert current.get_attribute("data-asset-id") == str(first)
        page.keyboard.press("a")
        page.locator(f"#review-{first}[data-decided=approved]").wait_for(state="attached")
        page.wait_for_function(
            f"document.querySelector('.review-item.is-current').dataset.assetId === '{second}'")
        page.keyboard.press("r")
        page.locator(f"#review-{second}[data-decided=rejected]").wait_for(state="attached")
        page.locator("#review-done").wait_for()
        assert "All done" in page.locator("#review-status").inner_text()

        # The vault filtered by "approved" holds exactly the approved one.
        page.goto(server + "/vault")
        page.locator(".status-tab", has_text="Approved").click()
        page.wait_for_url("**/vault?state=approved")
        approved = page.locator(".asset-card")
        assert approved.count() == 1
        assert approved.first.get_attribute("data-asset-id") == str(first)
        assert "Approved" in approved.first.inner_text()
        page.locator(".status-tab", has_text="Rejected").click()
        page.wait_for_url("**/vault?state=rejected")
        assert page.locator(".asset-card").first.get_attribute("data-asset-id") == str(second)

        # The asset page shows the preview and the provenance badge.
        page.goto(f"{server}/vault/assets/{first}")
        page.locator(".detail-media").wait_for()
        assert page.locator(".badge-provenance").first.is_visible()
        assert problems == [], problems
