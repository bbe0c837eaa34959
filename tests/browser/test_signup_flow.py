"""Real Chromium against the real `ainfluencer up` process and a real SMTP server.

Landing → sign up → verification mail over SMTP → sign in → live self-test job on the dashboard →
API token from Settings used against the REST API → sign out. Plus the landing page on a phone.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _app import ARTIFACTS, app_env, browser_page, free_port, running_app

pytestmark = pytest.mark.browser

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


class Inbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, subject_part: str, timeout: float = 30.0) -> str:
        """The body of the first message to ``to`` whose subject contains ``subject_part``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.messages:
                if to in str(msg["To"]) and subject_part in str(msg["Subject"]):
                    return str(msg.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
            time.sleep(0.1)
        raise AssertionError(f"no mail to {to} about {subject_part!r}; got {[m['Subject'] for m in self.messages]}")


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on localhost."""
    inbox = Inbox()
    port = free_port()
    controller = aiosmtpd_controller.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: tuple[Inbox, int]) -> Iterator[str]:
    """`python -m ainfluencer up` in a subprocess, mailing through the local SMTP server."""
    _, smtp_port = smtp
    data_dir = tmp_path_factory.mktemp("ainf-data")
    env = app_env(data_dir, AINF_SMTP_HOST="127.0.0.1", AINF_SMTP_PORT=str(smtp_port), AINF_SMTP_SECURITY="none",
                  AINF_SMTP_FROM="AInfluencer <noreply@example.com>")
    with running_app(env, data_dir.parent / "server.log") as base:
        yield base


def test_sign_up_verify_sign_in_watch_a_job_create_a_token_sign_out(server: str, smtp: tuple[Inbox, int],
                                                                    browser: Any) -> None:
    inbox, _ = smtp
    with browser_page(browser, width=1280, height=900) as (page, problems):
        # Landing page → sign-up.
        page.goto(server + "/")
        assert "AInfluencer" in page.title()
        page.get_by_role("link", name="Create your account").click()
        page.wait_for_url("**/signup")
        page.fill("#display_name", "Ada")
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.get_by_role("heading", name="Check your inbox").wait_for()

        # The verification link arrives over real SMTP (sent by the in-process worker).
        body = inbox.wait_for(EMAIL, "Confirm")
        link = re.search(r"http://\S+/verify-email\?token=\S+", body)
        assert link, body
        page.goto(link.group(0))
        page.get_by_role("heading", name="E-mail confirmed").wait_for()
        page.get_by_role("link", name="Sign in").last.click()
        page.wait_for_url("**/login")

        # A wrong password gives a clear message.
        page.fill("#email", EMAIL)
        page.fill("#password", "not the password")
        page.locator("form.form button[type=submit]").click()
        assert page.locator("#login-error").inner_text() == "Email or password is incorrect."

        # Sign in.
        page.fill("#password", PASSWORD)
        page.locator("form.form button[type=submit]").click()
        page.wait_for_url("**/dashboard")
        page.get_by_role("heading", name=re.compile(r"^Hello, ")).wait_for()
        assert "Start with a character" in page.locator("#dashboard-live").inner_text()

        # Settings → Operations: start a self-test and watch it move, live, without a reload.
        page.locator(".sidebar").get_by_role("link", name="Settings").click()
        page.wait_for_url("**/settings")
        page.get_by_role("link", name="Operations").click()
        page.wait_for_url("**/settings/operations")
        page.locator("#live-indicator[data-state=live]").wait_for()
        page.evaluate("window.__sameDocument = true")
        page.get_by_role("button", name="Run self-test job").click()
        running = "#jobs-panel tr[data-kind=selftest][data-status=running]"
        done = "#jobs-panel tr[data-kind=selftest][data-status=succeeded]"
        page.locator(running).wait_for()
        page.wait_for_function(
            "sel => { const p = document.querySelector(sel + ' progress'); return p && p.value > 0 && p.value < 100; }",
            arg=running,
        )
        page.locator(done).wait_for(timeout=30_000)
        assert page.locator(f"{done} progress").get_attribute("value") == "100"
        assert page.evaluate("window.__sameDocument === true"), "the operations page reloaded"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

        # Settings → create an API token and use it.
        page.locator(".sidebar").get_by_role("link", name="Settings").click()
        page.wait_for_url("**/settings")
        page.get_by_role("heading", name="Configuration").wait_for()
        page.fill("#token-name", "browser test")
        page.check("input[name=scopes][value=write]")
        page.get_by_role("button", name="Create token").click()
        token = page.locator("#new-token-value").input_value()
        assert token.startswith("ainf_")
        me = httpx.get(f"{server}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == EMAIL

        # Sign out.
        page.locator(".sidebar").get_by_role("button", name="Sign out").click()
        page.wait_for_url(server + "/")
        page.get_by_role("link", name="Sign in").first.wait_for()
        page.goto(server + "/dashboard")
        page.wait_for_url("**/login?next=%2Fdashboard")
        assert not problems, problems


def test_landing_page_fits_a_phone(server: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    try:
        page.goto(server + "/")
        page.get_by_role("heading", name=re.compile("openly virtual")).wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "landing-mobile.png"), full_page=True)
    finally:
        context.close()
