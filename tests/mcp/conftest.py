"""MCP fixtures: the real app served by uvicorn on 127.0.0.1 (free port), an owner with a character, a
FakeNet account and an approved vault image, and a second user with a character of their own."""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publishing"))

import fakenet  # noqa: E402
from fake_network import FakeNet  # noqa: E402
from mcp_helpers import McpWorld  # noqa: E402
from publishing_helpers import connect, make_character  # noqa: E402

from ainfluencer.db.models import Character, User  # noqa: E402
from ainfluencer.db.models_media import ReviewState  # noqa: E402
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_url(runtime: Runtime) -> Iterator[str]:
    """The app (create_app, lifespan included) served by uvicorn in a thread; yields the /mcp URL."""
    from ainfluencer.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_config=None,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="mcp-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def world(runtime: Runtime, make_user: Callable[..., User], make_token: Callable[..., str], net: FakeNet,
          live_url: str) -> McpWorld:
    """Owner + character + FakeNet account + approved image; a member with their own character; tokens."""
    from ainfluencer.services import vault

    owner = make_user(owner=True)
    character_id = make_character(runtime, owner)
    account_id = connect(runtime, owner, character_id, net)
    with runtime.db.session() as s:
        character = s.get(Character, character_id)
        asset_id = vault.ingest(s, settings=runtime.settings, data=_jpeg(), filename="beach.jpg", character=character,
                                user_id=owner.id, review_state=ReviewState.approved, run_gates=False,
                                tags=["beach"]).asset.id
    member = make_user("member@example.com", owner=False)
    member_character_id = make_character(runtime, member, name="Ivy", handle="ivy")
    return McpWorld(
        runtime=runtime, url=live_url, owner=owner, character_id=character_id, account_id=account_id,
        asset_id=asset_id, member=member, member_character_id=member_character_id,
        writer=make_token(owner, "read,write", name="claude-desktop"),
        reader=make_token(owner, "read", name="read-only agent"),
        member_writer=make_token(member, "read,write", name="member agent"),
    )
