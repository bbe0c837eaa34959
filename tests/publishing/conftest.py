"""Publishing fixtures: a FakeNet server, the test-only adapters registered, a character with an account."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import fakenet
import pytest
from fake_network import FakeNet
from publishing_helpers import World, connect, make_character

from ainfluencer.db.models import User
from ainfluencer.jobs import queue
from ainfluencer.runtime import Runtime
from ainfluencer.services import publishing

HERE = Path(__file__).parent
PLATFORMS_TESTS = HERE.parent / "platforms"


@pytest.fixture(autouse=True)
def _fakenet(runtime: Runtime) -> None:
    """This test's runtime knows the FakeNet package (one registry line, like a built-in network)."""
    runtime.platforms = runtime.platforms.with_platforms(*fakenet.PLATFORMS)


@pytest.fixture(autouse=True)
def _quick_reconcile(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run due jobs themselves; the delay only matters against real networks' listings.
    monkeypatch.setattr(publishing, "RECONCILE_DELAY", timedelta(0))


@pytest.fixture(autouse=True)
def _restore_dispatchers() -> Iterator[None]:
    before = list(queue._dispatchers)
    yield
    queue._dispatchers[:] = before


@pytest.fixture
def net() -> Iterator[FakeNet]:
    """A running FakeNet (stopped by the test's teardown)."""
    with FakeNet() as server:
        yield server


@pytest.fixture
def world(runtime: Runtime, make_user: Callable[..., User], net: FakeNet) -> World:
    """Owner + character + connected FakeNet account."""
    user = make_user(owner=True)
    character_id = make_character(runtime, user)
    account_id = connect(runtime, user, character_id, net)
    return World(runtime=runtime, user=user, character_id=character_id, account_id=account_id, net=net)


@pytest.fixture(scope="session")
def platforms_path() -> Iterator[None]:
    """Make the platform fakes (tests/platforms) importable."""
    added = str(PLATFORMS_TESTS) not in sys.path
    if added:
        sys.path.insert(0, str(PLATFORMS_TESTS))
    yield
    if added and str(PLATFORMS_TESTS) in sys.path:
        sys.path.remove(str(PLATFORMS_TESTS))
