"""Secrets at rest: AES-256-GCM, raw rows unreadable, rotation, masking."""

from __future__ import annotations

import os
import stat

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from ainfluencer.config import ConfigError, Settings
from ainfluencer.services.secrets import (
    KeyRing,
    SecretsError,
    SecretsService,
    export_key,
    generate_key,
    retire_old_keys,
    rotate_key,
)

PLAIN = "sk-live-THIS-IS-A-PAID-API-KEY-1234567890"


def _raw_rows(runtime):
    with runtime.db.engine.connect() as c:
        return c.execute(text("SELECT key_id, ciphertext FROM stored_secrets")).all()


def test_encrypted_on_disk_and_key_file_private(runtime):
    svc = runtime.secrets
    with runtime.db.session() as s:
        svc.put(s, owner_kind="backend", owner_id=1, name="openai", value=PLAIN)
    rows = _raw_rows(runtime)
    assert len(rows) == 1
    assert PLAIN.encode() not in bytes(rows[0][1])
    assert b"sk-live" not in bytes(rows[0][1])
    key_file = runtime.settings.resolved_data_dir / "encryption.keys"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    # The key is not in the database at all.
    assert export_key(runtime.keyring).encode() not in bytes(rows[0][1])
    if runtime.db.is_sqlite:
        db_bytes = (runtime.settings.resolved_data_dir / "ainfluencer.db").read_bytes()
        assert PLAIN.encode() not in db_bytes
    with runtime.db.session() as s:
        got = svc.get(s, owner_kind="backend", owner_id=1, name="openai")
    assert isinstance(got, SecretStr) and got.get_secret_value() == PLAIN
    assert PLAIN not in repr(got) and PLAIN not in str(got)
    assert export_key(runtime.keyring) not in repr(runtime.keyring) + repr(svc)


def test_tampered_or_moved_ciphertext_is_refused(runtime):
    svc = runtime.secrets
    with runtime.db.session() as s:
        svc.put(s, owner_kind="account", owner_id=1, name="token", value="one")
        svc.put(s, owner_kind="account", owner_id=2, name="token", value="two")
    with runtime.db.engine.begin() as c:
        blob = c.execute(text("SELECT ciphertext FROM stored_secrets WHERE owner_id = 1")).scalar_one()
        c.execute(text("UPDATE stored_secrets SET ciphertext = :b WHERE owner_id = 2"), {"b": blob})
    with runtime.db.session() as s, pytest.raises(SecretsError):
        svc.get(s, owner_kind="account", owner_id=2, name="token")


def test_rotation_round_trip(runtime):
    svc = runtime.secrets
    with runtime.db.session() as s:
        for i in range(5):
            svc.put(s, owner_kind="account", owner_id=i, name="token", value=f"value-{i}")
    old_id = runtime.keyring.active
    before = {bytes(r[1]) for r in _raw_rows(runtime)}
    with runtime.db.session() as s:
        ring, count = rotate_key(s, runtime.keyring)
    ring = retire_old_keys(ring)
    assert count == 5 and ring.active != old_id and list(ring.keys) == [ring.active]
    rows = _raw_rows(runtime)
    assert {r[0] for r in rows} == {ring.active}
    assert before.isdisjoint({bytes(r[1]) for r in rows})
    # A fresh load from disk (as after a restart) reads every value.
    reloaded = KeyRing.load(runtime.settings)
    assert reloaded.active == ring.active
    with runtime.db.session() as s:
        values = [SecretsService(reloaded).get(s, owner_kind="account", owner_id=i, name="token") for i in range(5)]
    assert [v.get_secret_value() for v in values if v] == [f"value-{i}" for i in range(5)]
    # The old key no longer opens anything: it is gone.
    assert old_id not in reloaded.keys


def test_env_key_and_bad_env_key(tmp_path):
    key = generate_key()
    ring = KeyRing.load(Settings(data_dir=tmp_path, encryption_key=key))
    assert export_key(ring) == key
    assert not (tmp_path / "encryption.keys").exists()
    with pytest.raises(ConfigError, match="32 bytes"):
        KeyRing.load(Settings(data_dir=tmp_path, encryption_key="c2hvcnQ="))
    with pytest.raises(ConfigError, match="base64"):
        KeyRing.load(Settings(data_dir=tmp_path, encryption_key="not base64 !!"))
