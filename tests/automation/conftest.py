"""Automation fixtures: an owner, a character in Europe/Berlin, connected accounts (rows), a posting slot."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from automation_helpers import AutoWorld, add_account

from ainfluencer.db.models import Character, User
from ainfluencer.runtime import Runtime
from ainfluencer.services import calendar


@pytest.fixture
def world(runtime: Runtime, make_user: Callable[..., User]) -> AutoWorld:
    """Owner + character (Europe/Berlin) + a Telegram and an Instagram account + a daily 10:00 posting slot."""
    user = make_user(owner=True)
    with runtime.db.session() as s:
        character = Character(user_id=user.id, name="Nova", handle="nova", timezone="Europe/Berlin")
        s.add(character)
        s.flush()
        telegram_id = add_account(s, character.id, "telegram", "nova_channel")
        instagram_id = add_account(s, character.id, "instagram", "nova.ig")
        calendar.create_slot(s, character=character, spec=calendar.SlotSpec(weekdays=list(range(7)), hour=10))
        character_id = character.id
    return AutoWorld(runtime=runtime, user=user, character_id=character_id, telegram_id=telegram_id,
                     instagram_id=instagram_id)
