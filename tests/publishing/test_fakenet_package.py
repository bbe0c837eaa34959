"""A new network is one package plus a registry line: FakeNet (tests/publishing/fakenet/) goes everywhere a
built-in network goes (accounts, Compose preview with its own counting, creation, publishing) although
nothing under src/ names it; and the Runtime's loop runs every adapter call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import fakenet
import pytest
from publishing_helpers import World, drain, pub_row, publish

from ainfluencer.db.models import User
from ainfluencer.db.models_publishing import PublicationStatus
from ainfluencer.errors import InvalidInput
from ainfluencer.platforms.registry import DEFAULT, PlatformRegistry
from ainfluencer.runtime import LoopThread
from ainfluencer.services import compose

SRC = Path(__file__).resolve().parents[2] / "src" / "ainfluencer"


def test_nothing_in_the_package_knows_the_test_network() -> None:
    assert "fakenet" not in DEFAULT
    assert not [p for p in SRC.rglob("*.py") if "fakenet" in p.read_text(encoding="utf-8").lower()]


def test_one_registry_line_makes_it_a_network(world: World) -> None:
    registry = PlatformRegistry().with_platforms(*fakenet.PLATFORMS)  # what the conftest does to the runtime
    assert registry.spec("fakenet") is fakenet.PLATFORM and registry.adapter_class("fakenet").name == "fakenet"
    assert "fakenet" in world.runtime.platforms
    with world.runtime.db.session() as s:
        u = s.get(User, world.user.id)
        assert u is not None
        over = compose.preview(s, runtime=world.runtime, user=u, draft=compose.Draft(
            account_ids=[world.account_id], text="é" * 281, character_id=world.character_id))
    target = over.targets[0]
    assert (target.length, target.limit) == (281, 280)  # its own rules: code points, 280
    assert any("280" in p for p in target.problems)
    pub_id = publish(world, "Hello from a package-defined network")
    drain(world.runtime)
    assert pub_row(world.runtime, pub_id).status == PublicationStatus.published
    assert list(world.net.markers().values()) == [1]


def test_create_time_validation_uses_the_declared_rules_for_every_adapter(world: World) -> None:
    with pytest.raises(InvalidInput) as err:
        publish(world, "x" * 281)
    assert err.value.field == "targets.0.text" and "280" in err.value.message


def test_runtime_loop_is_one_long_lived_loop() -> None:
    loop = LoopThread()
    try:
        first = loop.run(_current_loop())
        assert loop.run(_current_loop()) is first  # not a new loop per call

        async def nested() -> None:
            loop.run(_current_loop())

        with pytest.raises(RuntimeError, match="running event loop"):
            asyncio.run(nested())
    finally:
        loop.close()


async def _current_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
