"""Calendar fixtures: the FakeNet server and test-only adapters (from tests/publishing), a character with accounts."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PUBLISHING_TESTS = Path(__file__).resolve().parent.parent / "publishing"
if str(PUBLISHING_TESTS) not in sys.path:
    sys.path.insert(0, str(PUBLISHING_TESTS))

import fakenet  # noqa: E402
from calendar_fakes import CAPPED  # noqa: E402
from calendar_helpers import Cal, make_world  # noqa: E402
from fake_network import FakeNet  # noqa: E402

from ainfluencer.db.models import User  # noqa: E402
from ainfluencer.runtime import Runtime  # noqa: E402


@pytest.fixture(autouse=True)
def _fakenet(runtime: Runtime) -> None:
    """This test's runtime knows the FakeNet package and its capped flavour."""
    runtime.platforms = runtime.platforms.with_platforms(*fakenet.PLATFORMS, CAPPED)


@pytest.fixture
def net() -> Iterator[FakeNet]:
    """A running FakeNet (stopped by the test's teardown)."""
    with FakeNet() as server:
        yield server


@pytest.fixture
def cal(runtime: Runtime, make_user: Callable[..., User], net: FakeNet) -> Cal:
    """Owner + character in Europe/Berlin + a FakeNet account and a capped FakeNet account."""
    return make_world(runtime, make_user(owner=True), net, timezone="Europe/Berlin")
