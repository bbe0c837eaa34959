"""Running rules: a full run writes a caption offline and schedules it into a slot; policy; dry-run; bad input."""

from __future__ import annotations

from typing import Any

import pytest
from automation_helpers import CAPTION_STEPS, AutoWorld, add_account
from sqlalchemy import func, select

from ainfluencer.db.models import Character, GeneratedText
from ainfluencer.db.models_automation import AutomationRule, AutomationRun, RunStatus
from ainfluencer.db.models_media import Asset, ReviewState
from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount
from ainfluencer.errors import InvalidInput
from ainfluencer.posts import service as posts
from ainfluencer.posts.models import Post, PostStatus
from ainfluencer.services import automation, calendar


def _run_now(world: AutoWorld, rule_id: int) -> int:
    with world.runtime.db.session() as s:
        rule = s.get(AutomationRule, rule_id)
        assert rule is not None
        return automation.run_now(s, user=world.user_row(s), rule=rule).id


def _run(world: AutoWorld, run_id: int) -> AutomationRun:
    with world.runtime.db.session() as s:
        run = s.get(AutomationRun, run_id)
        assert run is not None
        return run


def test_full_run_writes_a_caption_offline_and_schedules_it_into_the_next_slot(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="interval", trigger_config={"every": 1, "unit": "hours"},
                           steps=CAPTION_STEPS, policy="auto_approve")
    run_id = _run_now(world, rule_id)
    with world.runtime.db.session() as s:
        character = s.get(Character, world.character_id)
        account = s.get(SocialAccount, world.telegram_id)
        assert character is not None and account is not None
        expected = calendar.next_slots(s, character=character, account=account, count=1)
    assert world.run_jobs() == 1
    run = _run(world, run_id)
    assert run.status == RunStatus.succeeded, run.steps_log
    assert [e["action"] for e in run.steps_log] == ["generate", "review", "schedule"]
    assert [e["outcome"] for e in run.steps_log] == ["ok", "ok", "ok"]
    assert run.steps_log[1]["policy"] == "auto_approve" and "auto_approve" in run.steps_log[1]["message"]
    with world.runtime.db.session() as s:
        pubs = list(s.scalars(select(Publication)))
        texts = list(s.scalars(select(GeneratedText)))
    assert len(pubs) == 1 and len(texts) == 1
    pub = pubs[0]
    assert pub.status == PublicationStatus.planned
    assert pub.account_id == world.telegram_id
    assert pub.text == texts[0].text and texts[0].backend == "offline"
    assert [pub.scheduled_at] == expected
    assert pub.scheduled_at.astimezone(calendar.zone("Europe/Berlin")).hour == 10  # the character's 10:00 slot
    assert run.created_ids["publications"] == [pub.id] and run.created_ids["generated_texts"] == [texts[0].id]
    rule = world.rule(rule_id)
    assert rule.last_status == "succeeded" and rule.last_run_at is not None
    # The job is done: running the queue again creates nothing more.
    assert world.run_jobs() == 0


def test_review_policy_keeps_generated_text_as_a_draft_and_schedules_nothing(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="interval", trigger_config={"every": 1, "unit": "hours"},
                           steps=CAPTION_STEPS)  # policy defaults to review
    assert world.rule(rule_id).policy == "review"
    run_id = _run_now(world, rule_id)
    world.run_jobs()
    run = _run(world, run_id)
    assert [e["outcome"] for e in run.steps_log] == ["ok", "waiting", "skipped"]
    assert "policy review" in run.steps_log[1]["message"] and "waiting for review" in run.steps_log[2]["message"]
    assert run.status == RunStatus.succeeded
    with world.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Publication)) == 0
        written = s.scalars(select(GeneratedText)).one()
        # The draft lands on the Review page as a post in review, made by the rule.
        post = s.scalars(select(Post)).one()
        assert (post.status, post.source, post.text, post.generated_text_id, post.automation_run_id) == (
            PostStatus.in_review, "automation", written.text, written.id, run_id)
        assert [(e.action, e.actor) for e in posts.events_of(s, post)] == [
            ("create", f"rule:{rule_id}"), ("submit", f"rule:{rule_id}")]
    assert run.created_ids.get("posts") == [post.id]


def test_approved_asset_with_its_caption_is_scheduled_with_its_media(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="event", trigger_config={"event": "asset_approved"},
                           steps=[{"action": "generate", "content": "caption", "template": "story"},
                                  {"action": "review"}, {"action": "schedule", "platforms": ["telegram"]}])
    asset_id = world.add_asset(caption="Golden hour on the pier")
    world.approve(asset_id)
    world.run_jobs()
    run = world.runs(rule_id)[0]
    assert run.status == RunStatus.succeeded, run.steps_log
    assert run.steps_log[0]["outcome"] == "skipped"  # the asset has its own caption
    with world.runtime.db.session() as s:
        pub = s.scalars(select(Publication)).one()
    assert pub.text == "Golden hour on the pier" and pub.media[0]["asset_id"] == asset_id
    assert pub.status == PublicationStatus.planned


def test_review_policy_sends_an_uncaptioned_asset_back_to_review_with_its_new_caption(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="event", trigger_config={"event": "asset_approved"},
                           steps=[{"action": "generate", "content": "caption", "template": "story"},
                                  {"action": "review"}, {"action": "schedule", "platforms": ["telegram"]}])
    asset_id = world.add_asset()
    world.approve(asset_id)
    world.run_jobs()
    with world.runtime.db.session() as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None
        assert asset.review_state == ReviewState.in_review and asset.caption
        assert s.scalar(select(func.count()).select_from(Publication)) == 0
    # A person approves image + caption: the event fires again and this time it is scheduled.
    world.approve(asset_id)
    world.run_jobs()
    runs = world.runs(rule_id)
    assert len(runs) == 2 and runs[1].created_ids.get("publications")


def test_instagram_without_media_is_refused_with_the_networks_rule(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="interval", trigger_config={"every": 1, "unit": "hours"}, policy="auto_approve",
                           steps=[{"action": "generate", "content": "caption", "platform": "instagram"},
                                  {"action": "review"}, {"action": "publish", "platforms": ["instagram"]}])
    run_id = _run_now(world, rule_id)
    world.run_jobs()
    run = _run(world, run_id)
    assert run.status == RunStatus.partial  # the caption exists, the post was refused
    assert run.steps_log[-1]["outcome"] == "failed" and "Instagram" in run.steps_log[-1]["message"]


def test_image_step_without_an_image_backend_says_so(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="interval", trigger_config={"every": 1, "unit": "hours"},
                           steps=[{"action": "generate", "content": "image", "brief": "a beach at dawn"}])
    run_id = _run_now(world, rule_id)
    world.run_jobs()
    run = _run(world, run_id)
    assert run.status == RunStatus.failed
    assert "No image backend is configured" in run.steps_log[0]["message"]


def test_dry_run_changes_nothing(world: AutoWorld) -> None:
    world.add_asset(caption="ready", state=ReviewState.approved)
    rule_id = world.create(trigger_kind="daily", trigger_config={"time": "14:00"}, policy="auto_approve",
                           steps=[{"action": "pick_asset"}, {"action": "generate", "content": "caption"},
                                  {"action": "review"}, {"action": "schedule"}])
    before = world.counts()
    with world.runtime.db.session() as s:
        rule = s.get(AutomationRule, rule_id)
        assert rule is not None
        plan = automation.dry_run(s, world.runtime, user=world.user_row(s), rule=rule)
    assert world.counts() == before
    assert "daily at 14:00" in plan.trigger and plan.policy == "auto_approve"
    outcomes = [(e["action"], e["outcome"]) for e in plan.steps]
    assert outcomes == [("pick_asset", "planned"), ("generate", "skipped"), ("review", "ok"), ("schedule", "planned")]
    assert "would schedule" in plan.steps[-1]["message"]
    with world.runtime.db.session() as s:
        rule = s.get(AutomationRule, rule_id)
        assert rule is not None
        recorded = automation.dry_run(s, world.runtime, user=world.user_row(s), rule=rule, record=True)
    after = world.counts()
    assert after["automation_runs"] == before["automation_runs"] + 1
    assert {k: v for k, v in after.items() if k != "automation_runs"} == \
        {k: v for k, v in before.items() if k != "automation_runs"}
    assert _run(world, recorded.run_id or 0).dry_run is True


def test_dry_run_of_a_paused_character_says_why(world: AutoWorld) -> None:
    rule_id = world.create(trigger_kind="interval", trigger_config={"every": 1, "unit": "hours"}, steps=CAPTION_STEPS)
    world.set_status("paused")
    with world.runtime.db.session() as s:
        rule = s.get(AutomationRule, rule_id)
        assert rule is not None
        plan = automation.dry_run(s, world.runtime, user=world.user_row(s), rule=rule)
    assert plan.stopped and "paused" in plan.steps[0]["message"]


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"trigger_kind": "cron", "trigger_config": {"expression": "61 * * * *"}}, "trigger_config.expression",
     "not a valid cron expression"),
    ({"trigger_kind": "cron", "trigger_config": {"expression": "every day"}}, "trigger_config.expression", "five"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"}, "timezone": "Mars/Olympus"}, "timezone",
     "Unknown time zone"),
    ({"trigger_kind": "interval", "trigger_config": {"every": 0}}, "trigger_config.every", "more than zero"),
    ({"trigger_kind": "interval", "trigger_config": {"every": -5, "unit": "hours"}}, "trigger_config.every",
     "more than zero"),
    ({"trigger_kind": "event", "trigger_config": {"event": "moon_full"}}, "trigger_config.event", "Unknown event"),
    ({"trigger_kind": "hourly"}, "trigger_kind", "Unknown trigger"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "25:00"}}, "trigger_config.time", "HH:MM"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"}, "policy": "yolo"}, "policy", "Unknown policy"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"}, "steps": [{"action": "teleport"}]},
     "steps.0.action", "Unknown action"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"}, "steps": [{"action": "schedule"}]},
     "steps.0", "needs content"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"},
      "steps": [{"action": "generate"}, {"action": "publish"}]}, "steps.1", "review"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"},
      "steps": [{"action": "pick_asset"}, {"action": "schedule", "account_ids": [999]}]},
     "steps.1.account_ids.0", "not one of"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"}, "steps": []}, "steps", "at least one step"),
    ({"trigger_kind": "daily", "trigger_config": {"time": "14:00"},
      "steps": [{"action": "pick_asset", "count": "fill"}]}, "steps.0.count", "queue_below"),
]


@pytest.mark.parametrize(("changes", "field", "words"), BAD)
def test_invalid_rules_are_refused_before_anything_is_saved(world: AutoWorld, changes: dict[str, Any], field: str,
                                                            words: str) -> None:
    spec: dict[str, Any] = {"steps": CAPTION_STEPS, **changes}
    with pytest.raises(InvalidInput) as info:
        world.create(**spec)
    assert info.value.field == field and words in info.value.message
    with world.runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AutomationRule)) == 0


def test_every_template_saves_and_dry_runs(world: AutoWorld) -> None:
    with world.runtime.db.session() as s:
        add_account(s, world.character_id, "x", "nova_x")
    for key in automation.RULE_TEMPLATES:
        with world.runtime.db.session() as s:
            user = world.user_row(s)
            spec = automation.template_spec(key, character_id=world.character_id)
            rule = automation.create_rule(s, user=user, spec=spec)
            plan = automation.dry_run(s, world.runtime, user=user, rule=rule)
            assert plan.steps and rule.template_key == key
            assert all(e["outcome"] in ("planned", "ok", "skipped", "waiting", "failed") for e in plan.steps)
    names = {t.name for t in automation.RULE_TEMPLATES.values()}
    assert {"Daily Instagram post at 14:00", "Weekday X post at 09:00", "Keep the queue at 5 posts",
            "When an image is approved, schedule it"} <= names
