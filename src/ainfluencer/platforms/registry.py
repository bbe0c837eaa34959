"""Adapters by platform name. A new network touches its own module plus one line here."""

from __future__ import annotations

import importlib

from ainfluencer.platforms.base import PlatformAdapter

# name -> "module:Class"; imported lazily so one SDK's absence cannot break the others.
ADAPTERS: dict[str, str] = {
    "x": "ainfluencer.platforms.x:XAdapter",
    "youtube": "ainfluencer.platforms.youtube:YouTubeAdapter",
    "facebook": "ainfluencer.platforms.facebook:FacebookPageAdapter",
    "instagram": "ainfluencer.platforms.instagram:InstagramAdapter",
    "telegram": "ainfluencer.platforms.telegram:TelegramAdapter",
    "mastodon": "ainfluencer.platforms.mastodon:MastodonAdapter",
    "bluesky": "ainfluencer.platforms.bluesky:BlueskyAdapter",
}


def adapter_class(name: str) -> type[PlatformAdapter]:
    """The adapter class for a platform name."""
    try:
        target = ADAPTERS[name]
    except KeyError as exc:
        raise KeyError(f"unknown platform {name!r}; known: {', '.join(sorted(ADAPTERS))}") from exc
    module, _, cls = target.partition(":")
    adapter: type[PlatformAdapter] = getattr(importlib.import_module(module), cls)
    return adapter


def platform_names() -> list[str]:
    """All registered platform names."""
    return sorted(ADAPTERS)
