"""Every adapter test runs with DEBUG logging captured; no credential it used may appear in the log.

One hook for the whole folder, so a new adapter's tests are covered without writing anything: the
credentials each test hands an adapter (and every value the secrets service sealed or opened, and
the fake servers' own secrets) are collected, and after the test the captured log of every logger
(ours, httpx, httpcore, urllib3, python-telegram-bot, tweepy, requests-oauthlib...) is searched.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from ainfluencer.logging_setup import known_secrets
from ainfluencer.platforms.base import Credentials, PlatformAdapter

# Secret-looking constants of the fake servers (tokens, app and account passwords).
_FAKE_SECRET_WORDS = ("TOKEN", "PASSWORD", "SECRET")
_MIN_LEN = 6


def _fake_server_secrets() -> set[str]:
    found: set[str] = set()
    for name, module in list(sys.modules.items()):
        if not (name.startswith("fake_") or name.startswith("_servers_")) or module is None:
            continue
        for attr, value in vars(module).items():
            if attr.isupper() and any(w in attr for w in _FAKE_SECRET_WORDS) and isinstance(value, str):
                found.add(value)
                if ":" in value:  # a Telegram bot token: the part after the bot id is the secret
                    found.add(value.split(":", 1)[1])
    return found


def _credential_values(creds: Credentials) -> set[str]:
    values = {v.get_secret_value() for v in (creds.access_token, creds.refresh_token) if v is not None}
    values |= {v.get_secret_value() for v in creds.secret_extra.values()}
    return values


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # SQL echo is left out: our tables hold credentials only sealed (AES-GCM), while the
        # third-party stand-in servers (mastodon_mock) echo their own plaintext token tables.
        if not record.name.startswith("sqlalchemy."):
            self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def _no_secret_in_debug_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Capture every logger at DEBUG during the test; fail if any credential it used was logged."""
    used: set[str] = set()
    original_init = PlatformAdapter.__init__

    def recording_init(self: PlatformAdapter, credentials: Credentials, **transport: object) -> None:
        used.update(_credential_values(credentials))
        original_init(self, credentials, **transport)

    monkeypatch.setattr(PlatformAdapter, "__init__", recording_init)
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    # Third-party loggers set to a quieter level by someone else are opened up as well.
    opened = {name: lg.level for name, lg in logging.Logger.manager.loggerDict.items()
              if isinstance(lg, logging.Logger) and lg.level > logging.DEBUG}
    for name in opened:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        for name, level in opened.items():
            logging.getLogger(name).setLevel(level)
    secrets = {s for s in used | known_secrets() | _fake_server_secrets() if len(s) >= _MIN_LEN}
    leaks = sorted({s for s in secrets for line in capture.lines if s in line})
    if leaks:
        where = next(line for line in capture.lines if any(s in line for s in leaks))
        pytest.fail(f"{len(leaks)} stored secret(s) reached the DEBUG log, e.g. in: {where[:300]!r}")
