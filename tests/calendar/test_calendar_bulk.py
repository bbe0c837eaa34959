"""Bulk schedule: approved vault assets into a character's posting slots, validated first, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from calendar_helpers import Cal, add_asset, add_slot, schedule
from sqlalchemy import func, select

from ainfluencer.db.models_media import ReviewState
from ainfluencer.db.models_publishing import Publication
from ainfluencer.errors import InvalidInput, NotFound
from ainfluencer.services import calendar as svc

AFTER = datetime(2027, 2, 1, 0, 0, tzinfo=UTC)  # Monday; Berlin is UTC+1


def _bulk(world: Cal, asset_ids: list[int], account_ids: list[int], **kw: object) -> list[svc.BulkPlanItem]:
    with world.session() as s:
        return svc.bulk_schedule(s, runtime=world.runtime, user=world.owner(s), character=world.character(s),
                                 asset_ids=asset_ids, account_ids=account_ids, after=AFTER, **kw)  # type: ignore[arg-type]


def _count(world: Cal) -> int:
    with world.session() as s:
        return int(s.scalar(select(func.count()).select_from(Publication)) or 0)


def test_assets_fill_the_next_free_slots_on_each_account(cal: Cal) -> None:
    add_slot(cal, list(range(7)), 9)
    add_slot(cal, list(range(7)), 18)
    assets = [add_asset(cal, caption=f"Post number {i}") for i in range(3)]
    schedule(cal, datetime(2027, 2, 1, 17, 0, tzinfo=UTC))  # Monday 18:00 Berlin taken on the plain account
    plan = _bulk(cal, assets, [cal.account_id, cal.capped_id])
    assert len(plan) == 6 and all(p.publication_id for p in plan)
    plain = [(p.asset_id, p.scheduled_at) for p in plan if p.account_id == cal.account_id]
    capped = [(p.asset_id, p.scheduled_at) for p in plan if p.account_id == cal.capped_id]
    day = datetime(2027, 2, 1, tzinfo=UTC)
    assert plain == [(assets[0], day + timedelta(hours=8)), (assets[1], day + timedelta(days=1, hours=8)),
                     (assets[2], day + timedelta(days=1, hours=17))]
    assert capped == [(assets[0], day + timedelta(hours=8)), (assets[1], day + timedelta(hours=17)),
                      (assets[2], day + timedelta(days=1, hours=8))]
    with cal.session() as s:
        rows = {p.id: p for p in s.scalars(select(Publication))}
        for item in plan:
            row = rows[item.publication_id]  # type: ignore[index]
            assert row.status.value == "planned" and row.account_id == item.account_id
            assert row.scheduled_at == item.scheduled_at
            assert row.text == f"Post number {assets.index(item.asset_id)}"
            assert row.media[0]["asset_id"] == item.asset_id and row.media[0]["kind"] == "image"
            assert row.character_id == cal.character_id


def test_one_failure_queues_nothing_and_all_problems_are_reported(cal: Cal) -> None:
    add_slot(cal, list(range(7)), 9)
    ok = add_asset(cal, caption="Fine everywhere")
    long_caption = add_asset(cal, caption="x" * 150)  # over FakeNet Capped's 100 characters
    draft = add_asset(cal, state=ReviewState.in_review)
    png = add_asset(cal, mime="image/png", name="pic.png")  # FakeNet takes JPEG only
    with pytest.raises(svc.BulkScheduleRefused) as info:
        _bulk(cal, [ok, long_caption, draft, png], [cal.account_id, cal.capped_id])
    problems = info.value.problems
    assert info.value.status_code == 422
    by = {(p.asset_id, p.account_id) for p in problems}
    assert (long_caption, cal.capped_id) in by and (long_caption, cal.account_id) not in by
    assert (draft, None) in by
    assert (png, cal.account_id) in by and (png, cal.capped_id) in by
    assert any("in_review" in p.message and "approved" in p.message for p in problems)
    assert any("150 characters" in p.message and "FakeNet Capped" in p.message for p in problems)
    assert any("JPEG" in p.message for p in problems)
    assert "Nothing was scheduled" in info.value.message
    assert _count(cal) == 0


def test_too_few_slots_is_a_problem_and_queues_nothing(cal: Cal, monkeypatch: pytest.MonkeyPatch) -> None:
    a = add_asset(cal)
    with pytest.raises(svc.BulkScheduleRefused, match="has no posting slots for @"):
        _bulk(cal, [a], [cal.account_id])
    add_slot(cal, [0], 9)  # Mondays only
    assets = [a, add_asset(cal), add_asset(cal), add_asset(cal)]
    assert len(_bulk(cal, assets, [cal.capped_id], dry_run=True)) == 4
    assert _count(cal) == 0
    monkeypatch.setattr(svc, "SEARCH_DAYS", 14)  # two weeks ahead hold three Mondays at most
    with pytest.raises(svc.BulkScheduleRefused, match="only 3 free slots") as info:
        _bulk(cal, assets, [cal.account_id])
    assert "4 are needed" in info.value.message
    assert _count(cal) == 0


def test_user_text_replaces_captions_and_prompt_is_the_fallback(cal: Cal) -> None:
    add_slot(cal, list(range(7)), 9)
    a = add_asset(cal, caption="Own caption")
    b = add_asset(cal, caption="", prompt="portrait of Nova  at the   beach, golden hour")
    plan = _bulk(cal, [a, b], [cal.account_id], dry_run=True)
    assert [p.text for p in plan] == ["Own caption", "portrait of Nova at the beach, golden hour"]
    assert all(p.publication_id is None for p in plan)
    plan = _bulk(cal, [a, b], [cal.account_id], text="Same words for both")
    assert [p.text for p in plan] == ["Same words for both"] * 2
    assert _count(cal) == 2


def test_bad_requests_are_refused_clearly(cal: Cal) -> None:
    a = add_asset(cal)
    with pytest.raises(InvalidInput, match="at least one approved asset"):
        _bulk(cal, [], [cal.account_id])
    with pytest.raises(InvalidInput, match="at least one account"):
        _bulk(cal, [a], [])
    with pytest.raises(NotFound, match="No asset with id 999"):
        _bulk(cal, [999], [cal.account_id])
    add_slot(cal, [0], 9)
    with pytest.raises(svc.BulkScheduleRefused, match="not one of Nova's accounts"):
        _bulk(cal, [a], [12345])
