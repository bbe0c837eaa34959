"""Real Chromium against a real `ainfluencer up`: drag a publication card to another day in the week view
(the row's scheduled_at changes), drop it onto a day where it clashes with another post (the refusal is shown
inline and the card goes back), then "Schedule anyway". No inline script or style may be refused by the CSP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _app import browser_page, owner_env, running_app, sign_in

from ainfluencer.config import Settings
from ainfluencer.db.models import Character, User
from ainfluencer.db.models_publishing import Publication, SocialAccount
from ainfluencer.runtime import Runtime
from ainfluencer.services import publishing

pytestmark = pytest.mark.browser

EMAIL = "planner@example.com"
PASSWORD = "correct horse battery"


@dataclass
class Setup:
    base: str
    data_dir: Path
    monday: date
    moving: int
    fixed: int


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _scheduled(data_dir: Path, publication_id: int) -> datetime:
    rt = Runtime.build(Settings(data_dir=data_dir))
    try:
        with rt.db.session() as s:
            row = s.get(Publication, publication_id)
            assert row is not None
            return row.scheduled_at
    finally:
        rt.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """An owner, a character with a Telegram channel account and two planned posts in a week two weeks ahead."""
    data_dir = tmp_path_factory.mktemp("ainf-calendar")
    env = owner_env(data_dir, EMAIL, PASSWORD)
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday()) + timedelta(days=14)
    rt = Runtime.build(Settings(data_dir=data_dir))
    try:
        with rt.db.session() as s:
            user = s.query(User).filter(User.email == EMAIL).one()
            character = Character(user_id=user.id, name="Nova", handle="nova", timezone="UTC")
            s.add(character)
            s.flush()
            account = SocialAccount(character_id=character.id, platform="telegram", platform_account_id="-100123",
                                    handle="nova_channel", display_name="Nova channel")
            s.add(account)
            s.flush()
            made = []
            for day, text in ((monday, "Monday post to move"), (monday + timedelta(days=2), "Wednesday post")):
                spec = publishing.PostSpec(targets=[publishing.TargetSpec(account_id=account.id)], text=text,
                                           scheduled_at=_at(day, 10))
                made.append(publishing.create_publications(s, runtime=rt, user=user, spec=spec)[0].id)
    finally:
        rt.close()
    with running_app(env, data_dir.parent / "calendar-server.log") as base:
        yield Setup(base=base, data_dir=data_dir, monday=monday, moving=made[0], fixed=made[1])


def _settled(page: Any, publication_id: int) -> None:
    page.wait_for_function(
        "id => { const c = document.getElementById('pub-' + id); return c && !c.classList.contains('is-saving'); }",
        arg=publication_id)


def test_drag_to_another_day_then_a_refused_drop_then_schedule_anyway(server: Setup, browser: Any) -> None:
    tuesday, wednesday = server.monday + timedelta(days=1), server.monday + timedelta(days=2)
    card = f"#pub-{server.moving}"
    with browser_page(browser, width=1500, failure_screenshot="calendar-browser.png") as (page, problems):
        sign_in(page, server.base, EMAIL, PASSWORD, f"/calendar?view=week%26date={server.monday.isoformat()}",
                landed="**/calendar?view=week*")
        page.locator(f'.cal-day[data-date="{server.monday.isoformat()}"] {card}').wait_for()

        # 1. Drag Monday's card to Tuesday: the row moves one day, same time.
        page.drag_and_drop(card, f'.cal-day[data-date="{tuesday.isoformat()}"]')
        page.locator(f'.cal-day[data-date="{tuesday.isoformat()}"] {card}').wait_for()
        _settled(page, server.moving)
        assert page.locator("#cal-message").is_hidden()
        assert _scheduled(server.data_dir, server.moving) == _at(tuesday, 10)

        # 2. Drop it on Wednesday, where the other post is at the same time: refused, shown, card goes back.
        page.drag_and_drop(card, f'.cal-day[data-date="{wednesday.isoformat()}"]')
        page.locator("#cal-message").wait_for(state="visible")
        message = page.locator("#cal-message-text").inner_text()
        assert "Only 0 min from publication" in message and "schedule anyway" in message
        assert page.locator(f'.cal-day[data-date="{tuesday.isoformat()}"] {card}').count() == 1
        assert page.locator(f'.cal-day[data-date="{wednesday.isoformat()}"] {card}').count() == 0
        assert _scheduled(server.data_dir, server.moving) == _at(tuesday, 10)

        # 3. "Schedule anyway" overrides the conflict.
        page.locator("#cal-force").click()
        page.locator(f'.cal-day[data-date="{wednesday.isoformat()}"] {card}').wait_for()
        page.locator("#cal-message").wait_for(state="hidden")
        _settled(page, server.moving)
        assert _scheduled(server.data_dir, server.moving) == _at(wednesday, 10)

        # The page drawn again agrees with the row and flags the clash.
        page.reload()
        assert page.locator(f'.cal-day[data-date="{wednesday.isoformat()}"] {card}.has-conflict').count() == 1
        assert page.locator(f"#pub-{server.fixed}.has-conflict").count() == 1
        assert problems == []
