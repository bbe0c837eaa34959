"""Each trigger fires at the right time on a controllable clock, once per slot; pause stops rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from automation_helpers import CAPTION_STEPS, AutoWorld
from sqlalchemy import select, update

from ainfluencer.db.models import Job
from ainfluencer.db.models_automation import AutomationRule, RunStatus
from ainfluencer.db.models_media import ReviewState
from ainfluencer.db.models_publishing import Publication
from ainfluencer.jobs.scheduler import Scheduler
from ainfluencer.services import automation


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_cron_fires_at_local_time_across_the_spring_dst_change(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="cron", trigger_config={"expression": "30 9 * * *"}, steps=CAPTION_STEPS,
                           timezone="Europe/Berlin", now=at(2026, 3, 27, 12, 0))
    # 09:30 CET on the 28th is 08:30 UTC; after the change on the 29th 09:30 CEST is 07:30 UTC.
    assert world.rule(rule_id).next_run_at == at(2026, 3, 28, 8, 30)
    assert automation.tick(world.runtime, at(2026, 3, 28, 8, 29, 59))["fired"] == []
    assert automation.tick(world.runtime, at(2026, 3, 28, 8, 30))["fired"] == [rule_id]
    assert automation.tick(world.runtime, at(2026, 3, 28, 8, 30, 5))["fired"] == [], "no second firing"
    assert world.rule(rule_id).next_run_at == at(2026, 3, 29, 7, 30)
    assert automation.tick(world.runtime, at(2026, 3, 29, 7, 29))["fired"] == []
    assert automation.tick(world.runtime, at(2026, 3, 29, 7, 30))["fired"] == [rule_id]
    runs = world.runs(rule_id)
    assert [r.trigger_info["slot"] for r in runs] == ["2026-03-28T08:30:00+00:00", "2026-03-29T07:30:00+00:00"]
    assert all(r.status == RunStatus.queued and r.job_id for r in runs)


def test_cron_in_the_repeated_autumn_hour_fires_each_real_hour_once(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="cron", trigger_config={"expression": "0 * * * *"}, steps=CAPTION_STEPS,
                           timezone="Europe/Berlin", now=at(2026, 10, 24, 22, 30))
    fired = []
    moment = at(2026, 10, 24, 22, 30)
    while moment < at(2026, 10, 25, 2, 45):
        moment += timedelta(minutes=15)
        if automation.tick(world.runtime, moment)["fired"]:
            fired.append(moment)
    # 01:00 CEST, 02:00 CEST, 02:00 CET (the repeated hour), 03:00 CET = 23, 00, 01, 02 UTC.
    assert fired == [at(2026, 10, 24, 23, 0), at(2026, 10, 25, 0, 0), at(2026, 10, 25, 1, 0),
                     at(2026, 10, 25, 2, 0)]
    slots = [r.trigger_info["slot"] for r in world.runs(rule_id)]
    assert slots == ["2026-10-24T23:00:00+00:00", "2026-10-25T00:00:00+00:00", "2026-10-25T01:00:00+00:00",
                     "2026-10-25T02:00:00+00:00"], "02:00 CEST and 02:00 CET are two different hours"


def test_interval_fires_every_n_minutes_and_collapses_missed_slots(world: AutoWorld) -> None:
    start = at(2026, 6, 1, 8, 0)
    rule_id = world.create(trigger_kind="interval", trigger_config={"every": 90, "unit": "minutes"},
                           steps=CAPTION_STEPS, now=start)
    assert world.rule(rule_id).next_run_at == start + timedelta(minutes=90)
    assert automation.tick(world.runtime, start + timedelta(minutes=89))["fired"] == []
    assert automation.tick(world.runtime, start + timedelta(minutes=90))["fired"] == [rule_id]
    assert automation.tick(world.runtime, start + timedelta(minutes=91))["fired"] == []
    # Ten hours of downtime: one firing for the latest missed slot, then back on the 90-minute grid.
    assert automation.tick(world.runtime, start + timedelta(hours=10))["fired"] == [rule_id]
    runs = world.runs(rule_id)
    assert len(runs) == 2
    assert runs[1].trigger_info["slot"] == (start + timedelta(minutes=360 + 90 + 90)).isoformat()  # 09:00 = 6 x 90
    assert world.rule(rule_id).next_run_at == start + timedelta(minutes=7 * 90)


def test_daily_at_1400_europe_berlin_in_summer_and_winter(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="daily", trigger_config={"time": "14:00"}, steps=CAPTION_STEPS,
                           timezone="Europe/Berlin", now=at(2026, 7, 1, 10, 0))
    assert world.rule(rule_id).next_run_at == at(2026, 7, 1, 12, 0)  # CEST = UTC+2
    assert automation.tick(world.runtime, at(2026, 7, 1, 11, 59))["fired"] == []
    assert automation.tick(world.runtime, at(2026, 7, 1, 12, 0, 1))["fired"] == [rule_id]
    assert world.rule(rule_id).next_run_at == at(2026, 7, 2, 12, 0)
    winter = world.create(trigger_kind="daily", trigger_config={"time": "14:00"}, steps=CAPTION_STEPS,
                          timezone="Europe/Berlin", now=at(2026, 12, 1, 13, 30), name="winter")
    assert world.rule(winter).next_run_at == at(2026, 12, 2, 13, 0)  # 14:00 CET = 13:00 UTC, already past today


def test_repeated_ticks_and_a_second_scheduler_never_double_fire(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="daily", trigger_config={"time": "14:00"}, steps=CAPTION_STEPS,
                           timezone="Europe/Berlin", now=at(2026, 7, 1, 10, 0))
    slot = at(2026, 7, 1, 12, 0)
    for _ in range(3):
        automation.tick(world.runtime, slot + timedelta(seconds=1))
    # A second scheduler that read the rule before the first advanced it: the slot key refuses it.
    with world.runtime.db.session() as s:
        s.execute(update(AutomationRule).where(AutomationRule.id == rule_id).values(next_run_at=slot))
    assert automation.tick(world.runtime, slot + timedelta(seconds=2))["fired"] == []
    runs = world.runs(rule_id)
    assert len(runs) == 1
    with world.runtime.db.session() as s:
        jobs = list(s.scalars(select(Job).where(Job.kind == automation.JOB_KIND)))
    assert len(jobs) == 1 and jobs[0].payload == {"run_id": runs[0].id}


def test_scheduler_leader_tick_fires_due_rules(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="interval", trigger_config={"every": 1, "unit": "hours"},
                           steps=CAPTION_STEPS, now=at(2026, 6, 1, 8, 0))
    scheduler = Scheduler(world.runtime, "test-scheduler", now=lambda: at(2026, 6, 1, 9, 0, 30))
    try:
        summary = scheduler.tick()
    finally:
        scheduler.close()
    assert summary["leader"] is True
    assert summary["automation"]["fired"] == [rule_id]


def test_asset_approved_event_queues_a_run_for_matching_rules_only(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="event", trigger_config={"event": "asset_approved"},
                           steps=[{"action": "review"}, {"action": "schedule", "platforms": ["telegram"]}])
    assert world.rule(rule_id).next_run_at is None  # events are not clocked
    asset_id = world.add_asset(caption="Sunday light")
    assert world.runs(rule_id) == []
    world.approve(asset_id)
    runs = world.runs(rule_id)
    assert len(runs) == 1 and runs[0].trigger == "asset_approved" and runs[0].trigger_info["asset_id"] == asset_id
    # Approving again (no state change) is not a new event.
    world.approve(asset_id)
    assert len(world.runs(rule_id)) == 1
    # Another character's asset does not fire this character's rule.
    with world.runtime.db.session() as s:
        from ainfluencer.db.models import Character

        other = Character(user_id=world.user.id, name="Other", handle="other")
        s.add(other)
        s.flush()
        other_id = other.id
    world.approve(world.add_asset(name="b.jpg", character_id=other_id))
    assert len(world.runs(rule_id)) == 1


def test_asset_approved_does_nothing_for_a_disabled_rule_or_a_paused_character(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="event", trigger_config={"event": "asset_approved"},
                           steps=[{"action": "schedule"}], enabled=False)
    world.approve(world.add_asset(name="c.jpg", state=ReviewState.in_review))
    assert world.runs(rule_id) == []
    with world.runtime.db.session() as s:
        rule = s.get(AutomationRule, rule_id)
        assert rule is not None
        automation.set_enabled(s, user=world.user_row(s), rule=rule, enabled=True)
    world.set_status("paused")
    world.approve(world.add_asset(name="d.jpg"))
    assert world.runs(rule_id) == []
    world.set_status("active")
    world.approve(world.add_asset(name="e.jpg"))
    assert len(world.runs(rule_id)) == 1


def test_queue_below_fires_when_short_and_not_again_while_a_run_is_pending(world: AutoWorld) -> None:
    start = at(2026, 6, 1, 8, 0)
    rule_id = world.create(trigger_kind="event", trigger_config={"event": "queue_below", "threshold": 2,
                                                                 "check_every_minutes": 10},
                           steps=CAPTION_STEPS, now=start)
    assert world.rule(rule_id).next_run_at == start + timedelta(minutes=10)
    assert automation.tick(world.runtime, start + timedelta(minutes=5))["fired"] == [], "not checked yet"
    assert automation.tick(world.runtime, start + timedelta(minutes=10))["fired"] == [rule_id]
    run = world.runs(rule_id)[0]
    assert run.trigger_info["count"] == 0 and run.trigger_info["deficit"] == 2
    # The first run has not run yet: the next check does not pile a second one on top.
    assert automation.tick(world.runtime, start + timedelta(minutes=20)) == {"fired": [], "skipped": [rule_id]}
    with world.runtime.db.session() as s:
        s.get(type(run), run.id).status = RunStatus.succeeded  # type: ignore[union-attr]
        for _ in range(2):
            s.add(Publication(character_id=world.character_id, account_id=world.telegram_id, text="x",
                              scheduled_at=at(2030, 1, 1, 9, 0)))
    assert automation.tick(world.runtime, start + timedelta(minutes=30))["fired"] == [], "the queue is full"
    with world.runtime.db.session() as s:
        s.execute(update(Publication).values(status="published"))
    assert automation.tick(world.runtime, start + timedelta(minutes=40))["fired"] == [rule_id]
    assert len(world.runs(rule_id)) == 2


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_a_stopped_character_stops_all_of_its_rules(world: AutoWorld, status: str) -> None:
    start = at(2026, 6, 1, 8, 0)
    timed = world.create(trigger_kind="interval", trigger_config={"every": 1, "unit": "hours"}, steps=CAPTION_STEPS,
                         now=start)
    queue = world.create(trigger_kind="event", trigger_config={"event": "queue_below", "threshold": 3},
                         steps=CAPTION_STEPS, now=start, name="queue")
    world.set_status(status)
    summary = automation.tick(world.runtime, start + timedelta(hours=2))
    assert summary["fired"] == [] and sorted(summary["skipped"]) == sorted([timed, queue])
    assert world.runs(timed) == [] and world.runs(queue) == []
    # The missed slots passed: resuming does not fire a stale one.
    assert world.rule(timed).next_run_at == start + timedelta(hours=3)
    with world.runtime.db.session() as s:
        rule = s.get(AutomationRule, timed)
        assert rule is not None
        run = automation.run_now(s, user=world.user_row(s), rule=rule)
        assert run.status == RunStatus.skipped
        assert ("paused" if status == "paused" else "archived") in run.message
        assert run.job_id is None
    world.set_status("active")
    assert sorted(automation.tick(world.runtime, start + timedelta(hours=3))["fired"]) == sorted([timed, queue])
