"""Posts fixtures: FakeNet (from tests/publishing) registered, an owner with a character and a FakeNet account,
and a second, non-owner user with a character of their own."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publishing"))

import fakenet  # noqa: E402
from fake_network import FakeNet  # noqa: E402
from publishing_helpers import World, connect, make_character  # noqa: E402

from ainfluencer.db.models import User  # noqa: E402
from ainfluencer.runtime import Runtime  # noqa: E402


@pytest.fixture(autouse=True)
def _fakenet(runtime: Runtime) -> None:
    """This test's runtime knows the FakeNet package (one registry line, like a built-in network)."""
    runtime.platforms = runtime.platforms.with_platforms(*fakenet.PLATFORMS)


@pytest.fixture
def net() -> Iterator[FakeNet]:
    """A running FakeNet."""
    with FakeNet() as server:
        yield server


@pytest.fixture
def world(runtime: Runtime, make_user: Callable[..., User], net: FakeNet) -> World:
    """Owner + character + connected FakeNet account."""
    user = make_user(owner=True)
    character_id = make_character(runtime, user)
    account_id = connect(runtime, user, character_id, net)
    return World(runtime=runtime, user=user, character_id=character_id, account_id=account_id, net=net)


@pytest.fixture
def other(runtime: Runtime, make_user: Callable[..., User], world: World) -> tuple[User, int]:
    """A second (non-owner) user and their own character."""
    user = make_user("member@example.com", owner=False)
    return user, make_character(runtime, user, name="Ivy", handle="ivy")
