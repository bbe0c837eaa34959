"""The process's typed runtime: settings, database, key ring, signing secret and platforms, built once."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ainfluencer.config import Settings, check_production, ensure_data_dir, signing_secret
from ainfluencer.db.engine import Database
from ainfluencer.events import EventHub
from ainfluencer.platforms.registry import PlatformRegistry, default_registry, load_platforms
from ainfluencer.services.secrets import KeyRing, SecretsService

log = logging.getLogger(__name__)
T = TypeVar("T")


def instance_name(role: str) -> str:
    """A readable id for this process: host:pid:role."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}"


class LoopThread:
    """One long-lived event loop on a daemon thread: how synchronous code (requests, job workers) runs adapters.

    Adapters are async (their SDK calls go to worker threads); every call from sync code is submitted
    here instead of building a new loop per call, so clients an adapter keeps stay on one loop and
    many workers share it. Created on first use and again after a fork (Celery's prefork pool).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="ainf-adapters", daemon=True)
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (refused from inside a running loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run_coroutine_threadsafe(coro, self._ensure()).result()
        coro.close()
        raise RuntimeError("Runtime.run() was called inside a running event loop; await the adapter instead")

    def close(self) -> None:
        """Stop the loop (pending calls are cancelled by the caller's timeout, not here)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and self._pid == os.getpid():
            loop.call_soon_threadsafe(loop.stop)


@dataclass
class Runtime:
    """Everything a request, a job or a command needs, passed explicitly.

    ``platforms`` is the network registry services build adapters from (with its transports): tests
    hand in one that knows the test network or points a network at a local fake.
    """

    settings: Settings
    db: Database
    keyring: KeyRing = field(repr=False)
    secret: str = field(repr=False)
    platforms: PlatformRegistry = field(default_factory=default_registry)
    events: EventHub = field(default_factory=EventHub, repr=False)
    loop: LoopThread = field(default_factory=LoopThread, repr=False)

    def __post_init__(self) -> None:
        # Code that holds only a Session (calendar rules, pages) finds the platform registry through it.
        self.db.sessionmaker.configure(info={"runtime": self})

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Check the configuration, prepare the data dir and connect."""
        check_production(settings)
        ensure_data_dir(settings)
        return cls(
            settings=settings,
            db=Database.from_settings(settings),
            keyring=KeyRing.load(settings),
            secret=signing_secret(settings),
            platforms=default_registry(load_platforms(settings.extra_platforms)),
        )

    @property
    def secrets(self) -> SecretsService:
        """Encrypt/decrypt stored credentials."""
        return SecretsService(self.keyring)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run an adapter coroutine from synchronous code on the runtime's long-lived loop."""
        return self.loop.run(coro)

    def close(self) -> None:
        """Release database connections and stop the adapter loop."""
        self.loop.close()
        self.db.dispose()
