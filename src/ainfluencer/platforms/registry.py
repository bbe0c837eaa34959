"""The networks this build knows, one line each, and the per-process registry the Runtime hands out.

A new network is one package under ``platforms/`` exposing ``PLATFORM`` plus one line in
:data:`PLATFORMS`. Services never import a network's package: they ask ``runtime.platforms``, which
also carries the transports (base URLs, clients) adapters are built with, so tests hand the Runtime
a registry pointed at local fakes instead of patching this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ainfluencer.platforms import bluesky, facebook, instagram, mastodon, telegram, x, youtube
from ainfluencer.platforms.base import Credentials, PlatformAdapter
from ainfluencer.platforms.spec import PlatformSpec

PLATFORMS: tuple[PlatformSpec, ...] = (
    x.PLATFORM,
    youtube.PLATFORM,
    facebook.PLATFORM,
    instagram.PLATFORM,
    telegram.PLATFORM,
    mastodon.PLATFORM,
    bluesky.PLATFORM,
)


@dataclass(frozen=True)
class PlatformRegistry:
    """Specs by name, plus the transport keyword arguments each adapter is built with."""

    specs: Mapping[str, PlatformSpec] = field(default_factory=lambda: {p.name: p for p in PLATFORMS})
    transports: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    adapters: Mapping[str, type[PlatformAdapter]] = field(default_factory=dict)

    def spec(self, name: str) -> PlatformSpec:
        """The spec of a platform name (KeyError naming the known ones)."""
        try:
            return self.specs[name]
        except KeyError:
            raise KeyError(f"unknown platform {name!r}; known: {', '.join(sorted(self.specs))}") from None

    def names(self) -> list[str]:
        """All registered platform names, sorted."""
        return sorted(self.specs)

    def __iter__(self) -> Any:
        return iter(self.specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def adapter_class(self, name: str) -> type[PlatformAdapter]:
        """The adapter class for a platform name."""
        return self.adapters.get(name) or self.spec(name).adapter_class()

    def adapter(self, name: str, credentials: Credentials) -> PlatformAdapter:
        """An adapter holding ``credentials``, built with this registry's transport for the network."""
        return self.adapter_class(name)(credentials, **dict(self.transports.get(name, {})))

    def transport(self, name: str) -> dict[str, Any]:
        """Transport keyword arguments for the network's module-level helpers (discover_chats ...)."""
        return dict(self.transports.get(name, {}))

    def with_platforms(self, *specs: PlatformSpec) -> PlatformRegistry:
        """A copy that also knows ``specs`` (a plug-in network, the test network)."""
        return replace(self, specs={**self.specs, **{s.name: s for s in specs}})

    def with_transport(self, name: str, **transport: Any) -> PlatformRegistry:
        """A copy whose adapters for ``name`` get these transport arguments (base URL, client, session)."""
        return replace(self, transports={**self.transports, name: {**self.transports.get(name, {}), **transport}})

    def with_adapter(self, name: str, cls: type[PlatformAdapter]) -> PlatformRegistry:
        """A copy that builds ``name`` with another adapter class (a test double that speaks a fake)."""
        return replace(self, adapters={**self.adapters, name: cls})


DEFAULT = PlatformRegistry()


def load_platforms(modules: Iterable[str]) -> list[PlatformSpec]:
    """The specs of importable platform packages (``AINF_EXTRA_PLATFORMS``: plug-ins, the test network)."""
    out: list[PlatformSpec] = []
    for module in modules:
        package = importlib.import_module(module)
        specs = getattr(package, "PLATFORMS", None) or (package.PLATFORM,)
        out.extend(specs)
    return out


def default_registry(extra: Iterable[PlatformSpec] = ()) -> PlatformRegistry:
    """The built-in networks (plus ``extra``) with production transports."""
    return DEFAULT.with_platforms(*extra) if extra else DEFAULT


def adapter_class(name: str) -> type[PlatformAdapter]:
    """The built-in adapter class for a platform name."""
    return DEFAULT.adapter_class(name)


def platform_names() -> list[str]:
    """All built-in platform names."""
    return DEFAULT.names()


def spec(name: str) -> PlatformSpec:
    """The built-in spec of a platform name."""
    return DEFAULT.spec(name)
