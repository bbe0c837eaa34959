"""Publishing UI test helpers (not fixtures), in a uniquely named module so imports never hit another conftest."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from ainfluencer.db.models import Character, User
from ainfluencer.db.models_media import Asset, AssetKind, AssetSource, ReviewState
from ainfluencer.db.models_publishing import AccountStatus, SocialAccount
from ainfluencer.runtime import Runtime

PLATFORMS_TESTS = Path(__file__).parent.parent / "platforms"
if str(PLATFORMS_TESTS) not in sys.path:  # the fakes (fake_*.py, _servers_*.py) import each other by name
    sys.path.insert(0, str(PLATFORMS_TESTS))

# A JPEG header is enough for validation (the networks' validators look at kind, size and MIME type).
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2048


def assert_csp_clean(html: str) -> None:
    """No inline scripts, inline styles or event handlers (CSP allows only 'self')."""
    assert "<style" not in html and not re.search(r"\sstyle\s*=", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="/static/' in tag, tag


@dataclass
class Studio:
    runtime: Runtime
    user: User
    client: TestClient
    character_id: int

    def csrf(self) -> str:
        return str(self.client.cookies["ainf_csrf"])

    def post(self, path: str, data: dict[str, Any] | list[tuple[str, Any]] | None = None, **kw: Any) -> Any:
        """A form POST with the CSRF token, not following redirects."""
        items = list(data.items()) if isinstance(data, dict) else list(data or [])
        form: dict[str, Any] = {}
        for key, value in items:  # repeated keys become lists (checkboxes)
            if key in form:
                form[key] = [*(form[key] if isinstance(form[key], list) else [form[key]]), value]
            else:
                form[key] = value
        form["csrf_token"] = self.csrf()
        return self.client.post(path, data=form, follow_redirects=False, **kw)


def make_character(runtime: Runtime, user: User, name: str = "Nova", handle: str = "nova") -> int:
    with runtime.db.session() as s:
        character = Character(user_id=user.id, name=name, handle=handle)
        s.add(character)
        s.flush()
        return character.id


def add_account(runtime: Runtime, character_id: int, platform: str, handle: str, **values: Any) -> int:
    """An account row without a live check (for pages and compose, which never call the network)."""
    with runtime.db.session() as s:
        account = SocialAccount(character_id=character_id, platform=platform,
                                platform_account_id=f"{platform}-{handle}", handle=handle,
                                status=values.pop("status", AccountStatus.healthy), **values)
        s.add(account)
        s.flush()
        return account.id


def add_asset(runtime: Runtime, user: User, character_id: int | None, name: str, *, kind: AssetKind = AssetKind.image,
              mime: str = "image/jpeg", data: bytes = JPEG, state: ReviewState = ReviewState.approved,
              duration: float | None = None) -> int:
    """A vault asset with its file in the media folder."""
    digest = hashlib.sha256(data + name.encode()).hexdigest()
    rel = f"test/{digest[:8]}-{name}"
    path = runtime.settings.media_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with runtime.db.session() as s:
        asset = Asset(character_id=character_id, created_by=user.id, kind=kind, source=AssetSource.upload,
                      sha256=digest, path=rel, original_name=name, mime=mime, size=len(data), width=1080,
                      height=1350, duration_s=duration, review_state=state)
        s.add(asset)
        s.flush()
        return asset.id


