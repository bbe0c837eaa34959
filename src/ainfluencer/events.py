"""A small in-process domain-event hub: features announce what happened, others react, neither imports the other.

An event is published inside the publisher's transaction; each subscriber runs in a savepoint of
that transaction, so its writes commit (or roll back) with the publisher's, and a failing subscriber
is logged and undone without blocking the publisher (an approval is never refused because a rule
could not be queued). Subscriptions are listed explicitly in :data:`SUBSCRIPTIONS`, one line each;
tests and plug-ins add theirs to a Runtime's own hub with :meth:`EventHub.subscribe`.

Events
    ``asset.approved``  :class:`AssetApproved`, published by the vault; automation queues the
                        character's "asset approved" rules.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ainfluencer.db.models_media import Asset

log = logging.getLogger(__name__)

Subscriber = Callable[["Session", Any], object]


@dataclass(frozen=True)
class AssetApproved:
    """A person (or a rule) approved an asset for publishing."""

    name: ClassVar[str] = "asset.approved"
    asset: Asset


# event name -> "module:function" subscribers, in the order they run.
SUBSCRIPTIONS: Mapping[str, tuple[str, ...]] = {
    AssetApproved.name: ("ainfluencer.services.automation:on_asset_approved_event",),
}


class EventHub:
    """Subscribers by event name; :meth:`publish` calls them in the publisher's transaction."""

    def __init__(self, subscriptions: Mapping[str, Iterable[str | Subscriber]] = SUBSCRIPTIONS) -> None:
        self._subscribers: dict[str, list[str | Subscriber]] = {k: list(v) for k, v in subscriptions.items()}

    def subscribe(self, name: str, fn: str | Subscriber) -> None:
        """Add a subscriber (a callable or "module:function") to an event name."""
        self._subscribers.setdefault(name, []).append(fn)

    def subscribers(self, name: str) -> list[Subscriber]:
        """The callables subscribed to ``name`` (imported on first use)."""
        out: list[Subscriber] = []
        for target in self._subscribers.get(name, []):
            if isinstance(target, str):
                module, _, attr = target.partition(":")
                target = getattr(importlib.import_module(module), attr)
            out.append(target)
        return out

    def publish(self, session: Session, event: Any) -> None:
        """Run every subscriber of ``event`` in a savepoint; a failure is logged and rolled back, not raised."""
        for fn in self.subscribers(event.name):
            try:
                with session.begin_nested():
                    fn(session, event)
            except Exception:
                log.exception("event %s: subscriber %s failed", event.name, getattr(fn, "__qualname__", fn))


def publish(session: Session, event: Any) -> None:
    """Publish on the hub of the Runtime that opened ``session`` (a fresh default hub for a bare session)."""
    runtime = session.info.get("runtime")
    hub: EventHub = runtime.events if runtime is not None else EventHub()
    hub.publish(session, event)
