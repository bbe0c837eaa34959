"""What a network *is*, declared once in its own package as data: the :class:`PlatformSpec`.

Each ``platforms/<name>/__init__.py`` exposes ``PLATFORM = PlatformSpec(...)`` and imports no SDK (the
adapter class is named as ``"module:Class"`` and imported on first use), so listing the networks, their
text rules, video limits, OAuth endpoints, connect forms and posting times costs nothing and one
missing SDK cannot break the others. ``platforms/registry.py`` lists the specs, one line each.

The core reads only these fields; it never compares a network's name with a literal.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ainfluencer.platforms.rules import TextRules

if TYPE_CHECKING:
    from ainfluencer.platforms.base import PlatformAdapter


@dataclass(frozen=True)
class VideoLimits:
    """What one network's upload API accepts for a video (from its published documentation)."""

    name: str
    label: str
    max_duration_s: float | None
    min_duration_s: float
    max_size_bytes: int | None
    video_codecs: tuple[str, ...]
    audio_codecs: tuple[str, ...]
    min_fps: float = 1.0
    max_fps: float = 60.0
    max_width: int | None = None
    max_height: int | None = None
    orientation: str | None = None  # "vertical": height must be >= width
    note: str = ""


@dataclass(frozen=True)
class Endpoint:
    """A URL the OAuth engine calls: ``base`` (overridable by ``key`` in ``AINF_OAUTH_ENDPOINTS``) + ``path``."""

    key: str
    base: str
    path: str = ""


@dataclass(frozen=True)
class AppGuide:
    """How the owner registers this network's developer app (shown on Settings → Networks)."""

    app_name: str  # what the app is called where it is registered ("Meta app", "X app")
    portal: str  # where to register it
    steps: tuple[str, ...]  # the redirect URL and the scopes are added by the page itself
    review: str  # what the network reviews before an app may post publicly
    id_label: str = "Client ID"
    secret_label: str = "Client secret"  # noqa: S105 - a field label


@dataclass(frozen=True)
class OAuthSpec:
    """How a network's OAuth 2.0 code flow is configured; :mod:`ainfluencer.services.oauth` runs it.

    ``hooks`` names a module (in the platform package) with optional functions the generic engine
    calls where a network departs from RFC 6749: ``authorization_url`` (dynamic client registration,
    e.g. a Mastodon instance), ``finish_grant`` (extra exchanges and account choices after the code
    exchange, e.g. Facebook's long-lived token and Page list).
    """

    authorize: Endpoint | None
    token: Endpoint | None
    scopes: tuple[str, ...]
    settings: tuple[str, str] = ("", "")  # Settings fields of client id and secret; empty: registered at connect
    secret_required: bool = True  # False: public clients (PKCE without a secret) are allowed
    pkce: bool = True
    scope_separator: str = " "
    exchange_method: str = "POST"  # Facebook's token endpoint takes GET
    client_auth: str = "client_secret_post"  # or "client_secret_basic" (public clients always send client_id)
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    store_client: bool = True  # keep client id/secret with the tokens (refreshing needs them)
    no_refresh_message: str = ""  # when set, a grant without a refresh token is refused with this message
    hooks: str = ""
    asks_instance: bool = False  # the connect button needs an instance address first
    choice_noun: str = "Page"  # what the picker offers when a login manages several accounts
    guide: AppGuide | None = None  # set with ``settings``: how to register the developer app

    def hook(self, name: str) -> Any:
        """A hook function from ``hooks`` (None when the network needs none)."""
        if not self.hooks:
            return None
        return getattr(importlib.import_module(self.hooks), name, None)


@dataclass(frozen=True)
class FormField:
    """One field of a network's connect form (networks connected without OAuth)."""

    name: str
    label: str
    kind: str = "text"  # "text" | "password" | "url"
    required: bool = True
    placeholder: str = ""
    help: str = ""


@dataclass(frozen=True)
class PlatformSpec:
    """Everything the core knows about one network, as data."""

    name: str
    display_name: str
    adapter: str  # "module:Class", imported lazily
    text_rules: tuple[TextRules, ...]  # the first is the main kind (what a publication's text is)
    media_text_kind: str = ""  # the text kind when media is attached (Telegram: "caption"); "" = the main kind
    writer_kinds: Mapping[str, str] = field(default_factory=dict)  # writer kind -> text kind; first = default
    video: tuple[VideoLimits, ...] = ()
    oauth: OAuthSpec | None = None
    connect_form: tuple[FormField, ...] = ()
    best_times: tuple[tuple[int, int], ...] = ()  # (weekday 0=Monday, local hour), most engaging first
    helpers: str = ""  # module with network-specific helpers the core may offer (e.g. discover_chats)
    reconnect_in_form: bool = False  # reconnect asks for the form again (app passwords) instead of OAuth

    @property
    def connect_method(self) -> str:
        """"oauth" (redirect flow), "form" (fields the person types) or "token" (API only)."""
        return "oauth" if self.oauth else "form" if self.connect_form else "token"

    @cached_property
    def rules(self) -> dict[str, TextRules]:
        """Text rules by kind, in declaration order."""
        return {r.kind: r for r in self.text_rules}

    def text_rules_for(self, *, has_media: bool) -> TextRules:
        """The rules a publication's text is checked against (its caption kind when media is attached)."""
        if has_media and self.media_text_kind:
            return self.rules[self.media_text_kind]
        return self.text_rules[0]

    def adapter_class(self) -> type[PlatformAdapter]:
        """Import and return the adapter class."""
        module, _, cls = self.adapter.partition(":")
        adapter: type[PlatformAdapter] = getattr(importlib.import_module(module), cls)
        return adapter

    def helper(self, name: str) -> Any:
        """A network-specific helper function (None when the network has none)."""
        if not self.helpers:
            return None
        return getattr(importlib.import_module(self.helpers), name, None)
