"""The domain-event hub: the vault announces an approval, subscribers react in its transaction."""

from __future__ import annotations

from typing import Any

from automation_helpers import AutoWorld
from sqlalchemy import select
from sqlalchemy.orm import Session

from ainfluencer.db.models_media import Asset, ReviewState
from ainfluencer.events import SUBSCRIPTIONS, AssetApproved, EventHub


def test_vault_no_longer_imports_automation() -> None:
    import ainfluencer.services.vault as vault_module

    source = open(vault_module.__file__, encoding="utf-8").read()  # noqa: PTH123
    assert "services.automation" not in source and "automation import" not in source
    assert SUBSCRIPTIONS[AssetApproved.name] == ("ainfluencer.services.automation:on_asset_approved_event",)


def test_a_subscriber_on_the_runtime_hub_sees_the_approval_in_the_same_transaction(world: AutoWorld) -> None:
    seen: list[tuple[int, str]] = []

    def watch(session: Session, event: AssetApproved) -> None:
        row = session.get(Asset, event.asset.id)
        assert row is not None
        seen.append((event.asset.id, row.review_state.value))  # the approval is visible, not yet committed

    world.runtime.events.subscribe(AssetApproved.name, watch)
    asset_id = world.add_asset(caption="Harbour at dawn")
    world.approve(asset_id)
    assert seen == [(asset_id, "approved")]


def test_a_failing_subscriber_is_rolled_back_and_does_not_block_the_approval(world: AutoWorld) -> None:
    def broken(session: Session, event: AssetApproved) -> Any:
        row = session.get(Asset, event.asset.id)
        assert row is not None
        row.caption = "written by a subscriber that then failed"
        session.flush()
        raise RuntimeError("subscriber bug")

    world.runtime.events = EventHub({AssetApproved.name: [broken]})
    asset_id = world.add_asset(caption="Original caption")
    world.approve(asset_id)
    with world.runtime.db.session() as s:
        row = s.scalar(select(Asset).where(Asset.id == asset_id))
        assert row is not None
        assert row.review_state == ReviewState.approved and row.caption == "Original caption"
