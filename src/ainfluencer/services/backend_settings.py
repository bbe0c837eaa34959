"""Owner-configured model backends (image, voice): option checks, the settings row, API keys in the key ring."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from ainfluencer.db.models import AppSetting, User
from ainfluencer.errors import InvalidInput
from ainfluencer.runtime import Runtime


def clean_options(name: str, options: Mapping[str, Any] | None, limits: Mapping[str, int]) -> dict[str, str]:
    """The known, non-empty options of backend ``name`` (trimmed, length-checked; base URLs must be http(s))."""
    clean: dict[str, str] = {}
    for key, limit in limits.items():
        value = str((options or {}).get(key) or "").strip()
        if len(value) > limit:
            raise InvalidInput(f"{name}.{key} may be at most {limit} characters.", field=f"{name}.{key}")
        if key == "base_url" and value and not value.startswith(("http://", "https://")):
            raise InvalidInput(f"{name}: the base URL must start with http:// or https://.", field=f"{name}.base_url")
        if value:
            clean[key] = value
    return clean


def put_setting(session: Session, *, key: str, value: Any, user: User) -> None:
    """Create or replace one ``app_settings`` row, recording who changed it."""
    row = session.get(AppSetting, key)
    if row is None:
        session.add(AppSetting(key=key, value=value, updated_by=user.id))
    else:
        row.value, row.updated_by = value, user.id


def put_api_keys(session: Session, runtime: Runtime, *, owner_kind: str, api_keys: Mapping[str, str] | None,
                 check: Callable[[str], object]) -> None:
    """Store each non-empty key sealed under (owner_kind, 0, backend name); ``check`` refuses unknown names."""
    for name, key in (api_keys or {}).items():
        check(name)
        if key.strip():
            runtime.secrets.put(session, owner_kind=owner_kind, owner_id=0, name=name, value=key.strip())
