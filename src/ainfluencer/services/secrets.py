"""Secrets at rest: AES-256-GCM with a key kept outside the database.

The key ring is ``AINF_ENCRYPTION_KEY`` (one base64 key) or the file ``<data_dir>/encryption.keys``
(mode 0600, JSON ``{"active": id, "keys": {id: base64}}``) created on first use. Every stored
row records the id of the key that sealed it, so rotation can re-encrypt row by row and a
half-finished rotation still decrypts everything.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets as pysecrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from ainfluencer.config import ConfigError, Settings
from ainfluencer.db.models import StoredSecret
from ainfluencer.logging_setup import register_secret

KEYRING_FILE = "encryption.keys"
ENV_KEY_ID = "env"
# What a person reads wherever a credential cannot be opened (accounts page, /readyz, a failed post).
UNREADABLE_MESSAGE = (
    "reconnect: these credentials were sealed with a key that is not in this installation's key ring"
)


class SecretsError(Exception):
    """A secret cannot be sealed or opened (wrong or missing key, tampered row)."""


def generate_key() -> str:
    """A fresh base64-encoded 256-bit key."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _decode_key(value: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where} is not valid base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"{where} must decode to 32 bytes (AES-256), got {len(raw)}")
    return raw


def _key_id_for(raw: bytes) -> str:
    # A stable, non-secret id derived from the key, so env keys and file keys both label rows.
    from hashlib import sha256

    return "k" + sha256(b"ainfluencer-key-id" + raw).hexdigest()[:12]


@dataclass
class KeyRing:
    """The active key plus older keys that still open rows sealed before a rotation."""

    active: str
    keys: dict[str, bytes] = field(repr=False)
    path: Path | None = None

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active!r}, ids={sorted(self.keys)!r})"

    @classmethod
    def load(cls, settings: Settings) -> KeyRing:
        """Load the key ring from the environment or the data dir (creating it on first run)."""
        env_value = settings.encryption_key.get_secret_value()
        path = settings.resolved_data_dir / KEYRING_FILE
        file_keys: dict[str, bytes] = {}
        file_active = None
        if path.exists():
            data = json.loads(path.read_text())
            file_keys = {k: _decode_key(v, f"{path} key {k}") for k, v in data["keys"].items()}
            file_active = data["active"]
        if env_value:
            raw = _decode_key(env_value, "AINF_ENCRYPTION_KEY")
            kid = _key_id_for(raw)
            keys = {**file_keys, kid: raw}
            return cls(active=kid, keys=keys, path=path if path.exists() else None)
        if file_active:
            return cls(active=file_active, keys=file_keys, path=path)
        raw = AESGCM.generate_key(bit_length=256)
        ring = cls(active=_key_id_for(raw), keys={_key_id_for(raw): raw}, path=path)
        ring.save()
        return ring

    def save(self) -> None:
        """Write the key file atomically with mode 0600."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        payload = json.dumps(
            {"active": self.active, "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()}}
        )
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, self.path)
        os.chmod(self.path, 0o600)

    def seal(self, plaintext: str, *, aad: bytes) -> tuple[str, bytes]:
        """Encrypt with the active key; returns (key_id, nonce||ciphertext)."""
        nonce = pysecrets.token_bytes(12)
        ct = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext.encode(), aad)
        return self.active, nonce + ct

    def open(self, key_id: str, blob: bytes, *, aad: bytes) -> str:
        """Decrypt a blob sealed by ``key_id``."""
        key = self.keys.get(key_id)
        if key is None:
            raise SecretsError(f"key {key_id} is not in the key ring; restore the old key file or key")
        try:
            return AESGCM(key).decrypt(blob[:12], blob[12:], aad).decode()
        except InvalidTag as exc:
            raise SecretsError("stored secret failed authentication (tampered or wrong key)") from exc


def _register_for_redaction(plain: str) -> None:
    # Every value this service seals or opens is masked in the process's logs from then on; a JSON
    # bundle (OAuth tokens, app passwords) registers each of its string values as well.
    register_secret(plain)
    if plain.startswith("{"):
        try:
            bundle = json.loads(plain)
        except ValueError:
            return
        if isinstance(bundle, dict):
            for item in bundle.values():
                if isinstance(item, str):
                    register_secret(item)


def _aad(owner_kind: str, owner_id: int, name: str) -> bytes:
    # Binding the row's identity stops a ciphertext being copied onto another row.
    return f"{owner_kind}:{owner_id}:{name}".encode()


class SecretsService:
    """Store and read credentials; values come back as ``SecretStr`` so they mask themselves."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def __repr__(self) -> str:
        return f"SecretsService({self.ring!r})"

    def put(self, session: Session, *, owner_kind: str, owner_id: int, name: str, value: str | SecretStr) -> None:
        """Create or replace a secret."""
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        _register_for_redaction(plain)
        key_id, blob = self.ring.seal(plain, aad=_aad(owner_kind, owner_id, name))
        row = session.scalar(
            select(StoredSecret).where(
                StoredSecret.owner_kind == owner_kind, StoredSecret.owner_id == owner_id, StoredSecret.name == name
            )
        )
        if row is None:
            row = StoredSecret(owner_kind=owner_kind, owner_id=owner_id, name=name, key_id=key_id, ciphertext=blob)
            session.add(row)
        else:
            row.key_id, row.ciphertext = key_id, blob
        session.flush()

    def get(self, session: Session, *, owner_kind: str, owner_id: int, name: str) -> SecretStr | None:
        """Read a secret, or None when it was never stored."""
        row = session.scalar(
            select(StoredSecret).where(
                StoredSecret.owner_kind == owner_kind, StoredSecret.owner_id == owner_id, StoredSecret.name == name
            )
        )
        if row is None:
            return None
        plain = self.ring.open(row.key_id, row.ciphertext, aad=_aad(owner_kind, owner_id, name))
        _register_for_redaction(plain)
        return SecretStr(plain)

    def can_open(self, row: StoredSecret) -> bool:
        """True when this key ring opens the row (its key is present and the ciphertext authenticates)."""
        if row.key_id not in self.ring.keys:
            return False
        try:
            self.ring.open(row.key_id, row.ciphertext, aad=_aad(row.owner_kind, row.owner_id, row.name))
        except SecretsError:
            return False
        return True

    def unreadable(self, session: Session, *, owner_kind: str | None = None,
                   owner_id: int | None = None) -> list[StoredSecret]:
        """Stored secrets this installation cannot open (e.g. a backup restored without its key)."""
        q = select(StoredSecret)
        if owner_kind is not None:
            q = q.where(StoredSecret.owner_kind == owner_kind)
        if owner_id is not None:
            q = q.where(StoredSecret.owner_id == owner_id)
        return [row for row in session.scalars(q) if not self.can_open(row)]

    def delete(self, session: Session, *, owner_kind: str, owner_id: int, name: str) -> bool:
        """Remove a secret; True when one existed."""
        row = session.scalar(
            select(StoredSecret).where(
                StoredSecret.owner_kind == owner_kind, StoredSecret.owner_id == owner_id, StoredSecret.name == name
            )
        )
        if row is None:
            return False
        session.delete(row)
        return True


def rotate_key(session: Session, ring: KeyRing, new_key_b64: str | None = None) -> tuple[KeyRing, int]:
    """Add a new active key and re-encrypt every stored secret with it.

    The caller commits the session, then calls :func:`retire_old_keys` to drop the old keys
    from the key file. Returns the new ring and the number of rows re-encrypted.
    """
    raw = _decode_key(new_key_b64, "new key") if new_key_b64 else AESGCM.generate_key(bit_length=256)
    new_id = _key_id_for(raw)
    new_ring = KeyRing(active=new_id, keys={**ring.keys, new_id: raw}, path=ring.path)
    # Persist the union first: a crash mid-rotation leaves every row openable.
    new_ring.save()
    count = 0
    for row in session.scalars(select(StoredSecret)):
        aad = _aad(row.owner_kind, row.owner_id, row.name)
        plain = new_ring.open(row.key_id, row.ciphertext, aad=aad)
        row.key_id, row.ciphertext = new_ring.seal(plain, aad=aad)
        count += 1
    session.flush()
    return new_ring, count


def retire_old_keys(ring: KeyRing) -> KeyRing:
    """Keep only the active key in the key file (after the re-encryption committed)."""
    kept = KeyRing(active=ring.active, keys={ring.active: ring.keys[ring.active]}, path=ring.path)
    kept.save()
    return kept


def export_key(ring: KeyRing) -> str:
    """The active key as base64 (for moving it into AINF_ENCRYPTION_KEY)."""
    return base64.b64encode(ring.keys[ring.active]).decode()
