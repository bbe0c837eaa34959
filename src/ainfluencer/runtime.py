"""The process's typed runtime: settings, database, key ring and signing secret, built once."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from ainfluencer.config import Settings, check_production, ensure_data_dir, signing_secret
from ainfluencer.db.engine import Database
from ainfluencer.services.secrets import KeyRing, SecretsService

log = logging.getLogger(__name__)


def instance_name(role: str) -> str:
    """A readable id for this process: host:pid:role."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}"


@dataclass
class Runtime:
    """Everything a request, a job or a command needs, passed explicitly."""

    settings: Settings
    db: Database
    keyring: KeyRing = field(repr=False)
    secret: str = field(repr=False)

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
        )

    @property
    def secrets(self) -> SecretsService:
        """Encrypt/decrypt stored credentials."""
        return SecretsService(self.keyring)

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()
