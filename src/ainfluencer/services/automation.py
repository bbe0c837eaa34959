"""Automation rules: triggers, ordered action steps, the approval policy, dry-run, the tick and the run log.

A rule belongs to one character and says *when* (a trigger) and *what* (ordered steps).

Triggers (``trigger_kind`` + ``trigger_config``; all times read in the rule's time zone):

==========  ===========================================  ======================================
kind        config                                       fires
==========  ===========================================  ======================================
cron        ``{"expression": "0 9 * * 1-5"}``            at each cron slot (croniter, DST-correct)
interval    ``{"every": 30, "unit": "minutes"}``         every N minutes/hours from when it was saved
daily       ``{"time": "14:00"}``                        every day at that local wall-clock time
event       ``{"event": "asset_approved"}``              when a vault asset of the character is approved
event       ``{"event": "queue_below", "threshold": 5}``  on a tick that finds fewer than N planned+due posts
==========  ===========================================  ======================================

Steps (``steps``, run in order; each one's outcome and message go to the run log):

- ``generate`` ``{"content": "caption", "template": "tip", "platform": "instagram", "count": 1}`` writes
  captions in the character's voice (``services.writing``; a dead model fails the step, it is not replaced). With
  earlier content (picked or approved assets) it writes one caption for each asset that has none;
  otherwise it makes ``count`` text items (``"fill"``: as many as the queue is short).
  ``{"content": "image", "brief": ..., "count": 1}`` queues a studio job; the images land in the
  vault's review queue (a rule on ``asset_approved`` can take them from there).
- ``pick_asset`` ``{"kind": "image", "count": 1}``: the oldest approved vault assets of the character
  that no publication uses yet.
- ``review``: applies the rule's **policy** to generated text. ``review`` (the default): nothing a
  rule wrote goes out without a person: a caption written for a vault asset is stored on the asset and
  the asset goes back to the review queue; a caption without an asset stays a draft in the writing
  history. ``auto_approve``: generated text counts as approved; the run log says so, and who chose
  the policy.
- ``schedule`` ``{"account_ids": [..], "platforms": [..]}`` (both empty: every connected account):
  one publication per item and account at the account's next free posting slot
  (``services.calendar.next_slots``); ``publish``: the same, due now. Both go through
  ``services.publishing.create_publications`` (validation and the publication state machine).

Firing: the scheduler leader calls :func:`tick` with its clock. A due rule fires once for the latest
due slot (missed slots collapse into one); the run row's unique ``slot_key`` (rule id + slot time)
makes a second scheduler, or a retried tick, a no-op. The run itself is the ``automation.run`` job.
A paused, archived or errored character's rules are skipped (a manual run records why).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ainfluencer.db.models import Character, CharacterStatus, User, utcnow
from ainfluencer.db.models_automation import AutomationRule, AutomationRun, RunStatus, TriggerKind
from ainfluencer.db.models_media import Asset, AssetKind, ReviewState
from ainfluencer.db.models_publishing import AccountStatus, Publication, PublicationStatus, SocialAccount
from ainfluencer.errors import AppError, InvalidInput, NotFound
from ainfluencer.events import AssetApproved
from ainfluencer.jobs.queue import enqueue
from ainfluencer.runtime import Runtime
from ainfluencer.services import characters as characters_svc
from ainfluencer.services.auth import audit

log = logging.getLogger(__name__)

JOB_KIND = "automation.run"
EVENTS = ("asset_approved", "queue_below")
POLICIES = ("review", "auto_approve")
ACTIONS = ("generate", "pick_asset", "review", "schedule", "publish")
TERMINAL = ("schedule", "publish")
CONTENT_KINDS = ("caption", "image")
UNITS = {"minutes": 1, "hours": 60}
MAX_STEPS = 10
MAX_ITEMS = 10
MAX_IMAGES = 4
MAX_INTERVAL_MINUTES = 31 * 24 * 60
DEFAULT_QUEUE_CHECK_MINUTES = 15
DUE_BATCH = 200
MAX_COLLAPSE = 100_000  # slot iterations when catching up after downtime
QUEUED_STATUSES = (PublicationStatus.planned, PublicationStatus.due)
UNFINISHED_RUNS = (RunStatus.queued, RunStatus.running)
POLICY_LABELS = {"review": "Send to review (a person approves)", "auto_approve": "Auto-approve generated text"}
EVENT_LABELS = {"asset_approved": "A vault asset is approved", "queue_below": "The queue falls below N posts"}


# ---- time zones and triggers --------------------------------------------------------------------------------------


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone by name, or InvalidInput a person can act on."""
    raw = (name or "").strip()
    if not raw:
        raise InvalidInput("Give a time zone such as Europe/Berlin or UTC.", field="timezone")
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown time zone {raw!r}; use an IANA name such as Europe/Berlin, America/New_York "
                           "or UTC.", field="timezone") from None


def _int_in(value: Any, lo: int, hi: int, *, field: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{what} must be a whole number from {lo} to {hi}.", field=field)
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number from {lo} to {hi}.", field=field) from None
    if not lo <= number <= hi:
        raise InvalidInput(f"{what} must be from {lo} to {hi} (got {number}).", field=field)
    return number


def parse_hhmm(raw: Any, *, field: str = "trigger_config.time") -> tuple[int, int]:
    """``HH:MM`` as (hour, minute), or InvalidInput."""
    text = str(raw or "").strip()
    try:
        parsed = datetime.strptime(text, "%H:%M")
    except ValueError:
        raise InvalidInput(f"{text!r} is not a time of day; write it as HH:MM, e.g. 14:00.", field=field) from None
    return parsed.hour, parsed.minute


def clean_trigger(kind: str, config: dict[str, Any] | None) -> tuple[TriggerKind, dict[str, Any]]:
    """Check a trigger and return its normalised config (InvalidInput names the field)."""
    try:
        trigger = TriggerKind(kind)
    except ValueError:
        raise InvalidInput(f"Unknown trigger {kind!r}; use one of {', '.join(t.value for t in TriggerKind)}.",
                           field="trigger_kind") from None
    cfg = dict(config or {})
    if trigger == TriggerKind.cron:
        expression = " ".join(str(cfg.get("expression") or "").split())
        if len(expression.split()) != 5 or not croniter.is_valid(expression):
            raise InvalidInput(
                f"{expression!r} is not a valid cron expression. Use five fields: minute hour day-of-month month "
                "day-of-week, e.g. '0 9 * * 1-5' for 09:00 on weekdays.", field="trigger_config.expression")
        return trigger, {"expression": expression}
    if trigger == TriggerKind.interval:
        unit = str(cfg.get("unit") or "minutes").strip().lower()
        if unit not in UNITS:
            raise InvalidInput("The interval unit is 'minutes' or 'hours'.", field="trigger_config.unit")
        raw = cfg.get("every")
        try:
            every = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInput("Give the interval as a whole number, e.g. every 30 minutes.",
                               field="trigger_config.every") from None
        if every <= 0:
            raise InvalidInput(f"The interval must be more than zero (got {every}).", field="trigger_config.every")
        if every * UNITS[unit] > MAX_INTERVAL_MINUTES:
            raise InvalidInput("The interval may be at most 31 days; use a cron expression for rarer runs.",
                               field="trigger_config.every")
        return trigger, {"every": every, "unit": unit}
    if trigger == TriggerKind.daily:
        hour, minute = parse_hhmm(cfg.get("time"))
        return trigger, {"time": f"{hour:02d}:{minute:02d}"}
    event = str(cfg.get("event") or "").strip()
    if event not in EVENTS:
        raise InvalidInput(f"Unknown event {event!r}; use 'asset_approved' or 'queue_below'.",
                           field="trigger_config.event")
    if event == "asset_approved":
        kinds = cfg.get("kinds") or ["image", "video"]
        if not isinstance(kinds, list) or any(k not in ("image", "video") for k in kinds):
            raise InvalidInput("kinds is a list of 'image' and/or 'video'.", field="trigger_config.kinds")
        return trigger, {"event": event, "kinds": sorted(set(kinds))}
    threshold = _int_in(cfg.get("threshold"), 1, 100, field="trigger_config.threshold",
                        what="The queue threshold (posts)")
    every = _int_in(cfg.get("check_every_minutes", DEFAULT_QUEUE_CHECK_MINUTES), 1, 1440,
                    field="trigger_config.check_every_minutes", what="The check interval (minutes)")
    ids = cfg.get("account_ids") or []
    if not isinstance(ids, list):
        raise InvalidInput("account_ids is a list of account ids.", field="trigger_config.account_ids")
    return trigger, {"event": event, "threshold": threshold, "check_every_minutes": every,
                     "account_ids": [_int_in(i, 1, 2**31, field="trigger_config.account_ids", what="An account id")
                                     for i in ids]}


def _local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    # fold=0: a gap time is shifted forward by the gap, a repeated time takes its first occurrence.
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz).astimezone(UTC)


def next_fire(kind: TriggerKind, config: dict[str, Any], tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first firing strictly after ``after`` (UTC); None for events that are not clocked."""
    after = after.astimezone(UTC)
    if kind == TriggerKind.cron:
        nxt: datetime = croniter(config["expression"], after.astimezone(tz)).get_next(datetime)
        return nxt.astimezone(UTC)
    if kind == TriggerKind.interval:
        return after + timedelta(minutes=int(config["every"]) * UNITS[config["unit"]])
    if kind == TriggerKind.daily:
        hour, minute = parse_hhmm(config["time"])
        day = after.astimezone(tz).date()
        for offset in range(3):
            at = _local_to_utc(day + timedelta(days=offset), time(hour, minute), tz)
            if at > after:
                return at
        raise AssertionError("unreachable: a daily time recurs within three days")  # pragma: no cover
    if config.get("event") == "queue_below":
        return after + timedelta(minutes=int(config.get("check_every_minutes") or DEFAULT_QUEUE_CHECK_MINUTES))
    return None


def due_slot(rule: AutomationRule, now: datetime) -> tuple[datetime, datetime]:
    """The latest slot at or before ``now`` (missed slots collapse into it) and the first one after."""
    assert rule.next_run_at is not None
    slot = rule.next_run_at
    tz = zone(rule.timezone)
    if rule.trigger_kind == TriggerKind.interval:
        step = timedelta(minutes=int(rule.trigger_config["every"]) * UNITS[rule.trigger_config["unit"]])
        skipped = (now - slot) // step
        slot = slot + skipped * step
        return slot, slot + step
    nxt = next_fire(rule.trigger_kind, rule.trigger_config, tz, slot)
    for _ in range(MAX_COLLAPSE):
        if nxt is None or nxt > now:
            break
        slot = nxt
        nxt = next_fire(rule.trigger_kind, rule.trigger_config, tz, slot)
    assert nxt is not None
    return slot, nxt


def describe_trigger(rule: AutomationRule) -> str:
    """The trigger in words."""
    cfg = rule.trigger_config or {}
    if rule.trigger_kind == TriggerKind.cron:
        return f"cron {cfg.get('expression')} ({rule.timezone})"
    if rule.trigger_kind == TriggerKind.interval:
        return f"every {cfg.get('every')} {cfg.get('unit')}"
    if rule.trigger_kind == TriggerKind.daily:
        return f"daily at {cfg.get('time')} ({rule.timezone})"
    if cfg.get("event") == "queue_below":
        return f"when fewer than {cfg.get('threshold')} posts are planned (checked every " \
               f"{cfg.get('check_every_minutes')} min)"
    return "when a vault asset is approved"


# ---- rule input ---------------------------------------------------------------------------------------------------


@dataclass
class RuleSpec:
    """A rule as a person or a template gives it."""

    character_id: int
    name: str
    trigger_kind: str
    trigger_config: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    policy: str = "review"
    timezone: str | None = None
    enabled: bool = True
    description: str = ""
    template_key: str = ""


def _character_accounts(session: Session, character: Character) -> list[SocialAccount]:
    return list(session.scalars(select(SocialAccount).where(SocialAccount.character_id == character.id)
                                .order_by(SocialAccount.id)))


def _clean_targets(session: Session, character: Character, step: dict[str, Any], where: str) -> dict[str, Any]:
    from ainfluencer.services.accounts import known_spec, platforms_of

    ids = step.get("account_ids") or []
    platforms = step.get("platforms") or []
    if not isinstance(ids, list) or not isinstance(platforms, list):
        raise InvalidInput("account_ids and platforms are lists.", field=f"{where}.account_ids")
    owned = {a.id: a for a in _character_accounts(session, character)}
    clean_ids = []
    for j, raw in enumerate(ids):
        account_id = _int_in(raw, 1, 2**31, field=f"{where}.account_ids.{j}", what="An account id")
        if account_id not in owned:
            raise InvalidInput(f"Account {account_id} is not one of {character.name}'s accounts.",
                               field=f"{where}.account_ids.{j}")
        clean_ids.append(account_id)
    clean_platforms = []
    for j, raw in enumerate(platforms):
        name = str(raw).strip().lower()
        try:
            known_spec(name, platforms_of(session))
        except AppError:
            raise InvalidInput(f"Unknown network {name!r}.", field=f"{where}.platforms.{j}") from None
        clean_platforms.append(name)
    matching = [a for a in owned.values()
                if (not clean_ids and not clean_platforms) or a.id in clean_ids or a.platform in clean_platforms]
    if not matching:
        what = " or ".join(clean_platforms) + " " if clean_platforms else ""
        raise InvalidInput(f"{character.name} has no {what}account to post to; connect one under Accounts first.",
                           field=f"{where}.account_ids")
    return {"action": step["action"], "account_ids": clean_ids, "platforms": clean_platforms}


def _clean_count(raw: Any, *, where: str, fill_ok: bool, hi: int) -> int | str:
    if raw in (None, ""):
        return "fill" if fill_ok else 1
    if raw == "fill":
        if not fill_ok:
            raise InvalidInput("count 'fill' (as many as the queue is short) only works with the 'queue_below' "
                               "event.", field=f"{where}.count")
        return "fill"
    return _int_in(raw, 1, hi, field=f"{where}.count", what="count")


def clean_steps(session: Session, character: Character, steps: Any, *, trigger: TriggerKind,
                config: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the ordered action steps and return them normalised (InvalidInput names the step)."""
    from ainfluencer.services import writing

    if not isinstance(steps, list) or not steps:
        raise InvalidInput("Add at least one step (e.g. generate a caption, then schedule it).", field="steps")
    if len(steps) > MAX_STEPS:
        raise InvalidInput(f"A rule has at most {MAX_STEPS} steps.", field="steps")
    fill_ok = config.get("event") == "queue_below"
    from_event = config.get("event") == "asset_approved"
    out: list[dict[str, Any]] = []
    has_content = from_event  # the approved asset is the content
    generated_text = False
    reviewed = False
    for i, raw in enumerate(steps):
        where = f"steps.{i}"
        if not isinstance(raw, dict):
            raise InvalidInput("Each step is an object with an 'action'.", field=where)
        action = str(raw.get("action") or "").strip()
        if action not in ACTIONS:
            raise InvalidInput(f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}.", field=f"{where}.action")
        if out and out[-1]["action"] in TERMINAL:
            raise InvalidInput(f"'{out[-1]['action']}' must be the last step.", field=where)
        if action == "generate":
            content = str(raw.get("content") or "caption")
            if content not in CONTENT_KINDS:
                raise InvalidInput("content is 'caption' or 'image'.", field=f"{where}.content")
            brief = str(raw.get("brief") or "").strip()
            if len(brief) > 1000:
                raise InvalidInput("Keep the brief to 1,000 characters.", field=f"{where}.brief")
            style = str(raw.get("style") or "").strip().lower()
            if content == "caption":
                template = str(raw.get("template") or "").strip()
                if template and template not in writing.CONTENT_TEMPLATES:
                    raise InvalidInput(f"Unknown content template {template!r}; use one of "
                                       f"{', '.join(writing.CONTENT_TEMPLATES)}.", field=f"{where}.template")
                if style and style not in writing.STYLES:
                    raise InvalidInput(f"style is one of {', '.join(writing.STYLES)}.", field=f"{where}.style")
                platform = str(raw.get("platform") or "").strip().lower()
                if platform:
                    try:
                        writing.resolve_kind(platform, None)
                    except AppError:
                        raise InvalidInput(f"Unknown network {platform!r} for the caption.",
                                           field=f"{where}.platform") from None
                count = _clean_count(raw.get("count"), where=where, fill_ok=fill_ok, hi=MAX_ITEMS)
                out.append({"action": action, "content": content, "template": template, "platform": platform,
                            "style": style, "brief": brief, "count": count})
                has_content = True
                generated_text = True
            else:
                from ainfluencer.services.studio import STYLE_CATEGORIES

                if style and style not in STYLE_CATEGORIES:
                    raise InvalidInput(f"style is one of {', '.join(STYLE_CATEGORIES)}.", field=f"{where}.style")
                count = _int_in(raw.get("count") or 1, 1, MAX_IMAGES, field=f"{where}.count", what="count")
                out.append({"action": action, "content": content, "brief": brief, "style": style or "casual",
                            "count": count})
        elif action == "pick_asset":
            kind = str(raw.get("kind") or "image")
            if kind not in ("image", "video"):
                raise InvalidInput("kind is 'image' or 'video'.", field=f"{where}.kind")
            count = _clean_count(raw.get("count"), where=where, fill_ok=fill_ok, hi=MAX_ITEMS)
            out.append({"action": action, "kind": kind, "count": count})
            has_content = True
        elif action == "review":
            out.append({"action": action})
            reviewed = True
        else:
            if not has_content:
                raise InvalidInput(
                    f"'{action}' needs content before it: add a 'generate caption' or 'pick asset' step (images "
                    "generated by a rule go to the review queue; schedule them with an 'asset approved' rule).",
                    field=where)
            if generated_text and not reviewed:
                raise InvalidInput(f"Generated text reaches '{action}' without a 'review' step; add one before it "
                                   "(the rule's policy decides whether a person approves).", field=where)
            out.append(_clean_targets(session, character, raw, where))
    return out


def clean_rule(session: Session, *, user: User, spec: RuleSpec) -> tuple[Character, dict[str, Any]]:
    """Check every field of a rule before anything is saved; returns the character and the row values."""
    name = " ".join((spec.name or "").split())
    if not name:
        raise InvalidInput("Give the rule a name.", field="name")
    if len(name) > 120:
        raise InvalidInput("Keep the name to 120 characters.", field="name")
    character = characters_svc.get_character(session, spec.character_id, user=user)
    tz_name = (spec.timezone or "").strip() or character.timezone or "UTC"
    zone(tz_name)
    policy = (spec.policy or "review").strip()
    if policy not in POLICIES:
        raise InvalidInput(f"Unknown policy {policy!r}; use 'review' (a person approves) or 'auto_approve'.",
                           field="policy")
    trigger, config = clean_trigger(spec.trigger_kind, spec.trigger_config)
    if config.get("account_ids"):
        owned = {a.id for a in _character_accounts(session, character)}
        for j, account_id in enumerate(config["account_ids"]):
            if account_id not in owned:
                raise InvalidInput(f"Account {account_id} is not one of {character.name}'s accounts.",
                                   field=f"trigger_config.account_ids.{j}")
    steps = clean_steps(session, character, spec.steps, trigger=trigger, config=config)
    return character, {
        "name": name, "description": (spec.description or "").strip()[:2000], "enabled": bool(spec.enabled),
        "trigger_kind": trigger, "trigger_config": config, "steps": steps, "policy": policy, "timezone": tz_name,
        "template_key": (spec.template_key or "")[:64],
    }


# ---- templates (data) -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleTemplate:
    """A ready-made rule: pick a character (and maybe accounts), then save."""

    key: str
    name: str
    description: str
    trigger_kind: str
    trigger_config: dict[str, Any]
    steps: list[dict[str, Any]]
    policy: str = "review"


RULE_TEMPLATES: dict[str, RuleTemplate] = {t.key: t for t in (
    RuleTemplate(
        "daily_instagram_1400", "Daily Instagram post at 14:00",
        "Every day at 14:00 in the character's time zone: takes the oldest approved vault image no post uses yet, "
        "writes a caption if it has none (sent to review under the default policy), and posts it to Instagram.",
        "daily", {"time": "14:00"},
        [{"action": "pick_asset", "kind": "image", "count": 1},
         {"action": "generate", "content": "caption", "template": "behind_the_scenes", "platform": "instagram"},
         {"action": "review"}, {"action": "publish", "platforms": ["instagram"]}]),
    RuleTemplate(
        "weekday_x_0900", "Weekday X post at 09:00",
        "Monday to Friday at 09:00: writes a tip in the character's voice for X. Under the default policy the text "
        "waits on the Review page for a person; choose 'auto-approve' to let the rule post it.",
        "cron", {"expression": "0 9 * * 1-5"},
        [{"action": "generate", "content": "caption", "template": "tip", "platform": "x"},
         {"action": "review"}, {"action": "publish", "platforms": ["x"]}]),
    RuleTemplate(
        "keep_queue_5", "Keep the queue at 5 posts",
        "Checks every 15 minutes: when fewer than 5 posts are planned, picks approved vault images to fill the gap, "
        "captions the ones without a caption, and schedules them into the next free posting slots.",
        "event", {"event": "queue_below", "threshold": 5, "check_every_minutes": 15},
        [{"action": "pick_asset", "kind": "image", "count": "fill"},
         {"action": "generate", "content": "caption", "template": "story"},
         {"action": "review"}, {"action": "schedule"}]),
    RuleTemplate(
        "approved_image_schedule", "When an image is approved, schedule it",
        "When a person approves an image of the character in the vault: captions it if it has no caption (sent back "
        "to review under the default policy) and schedules it into the next free posting slot of every account.",
        "event", {"event": "asset_approved", "kinds": ["image"]},
        [{"action": "generate", "content": "caption", "template": "behind_the_scenes"},
         {"action": "review"}, {"action": "schedule"}]),
)}


def template_spec(key: str, *, character_id: int, name: str = "", policy: str | None = None,
                  timezone: str | None = None, account_ids: Sequence[int] = ()) -> RuleSpec:
    """A RuleSpec from a template, optionally narrowed to some accounts."""
    template = RULE_TEMPLATES.get(key)
    if template is None:
        raise InvalidInput(f"Unknown template {key!r}; use one of {', '.join(RULE_TEMPLATES)}.", field="template")
    steps = [dict(s) for s in template.steps]
    if account_ids:
        for step in steps:
            if step["action"] in TERMINAL:
                step["account_ids"] = list(account_ids)
                step["platforms"] = []
    return RuleSpec(character_id=character_id, name=name or template.name, trigger_kind=template.trigger_kind,
                    trigger_config=dict(template.trigger_config), steps=steps, policy=policy or template.policy,
                    timezone=timezone, description=template.description, template_key=key)


# ---- reading -----------------------------------------------------------------------------------------------------


def visible_rules(user: User) -> Any:
    """SQL condition: rules of characters this user may see."""
    return characters_svc.visible(user)


def get_rule(session: Session, rule_id: int, *, user: User) -> AutomationRule:
    """One rule the user may see, or NotFound."""
    rule = session.get(AutomationRule, rule_id)
    character = session.get(Character, rule.character_id) if rule else None
    if rule is None or character is None or (not user.is_owner and character.user_id != user.id):
        raise NotFound(f"No automation rule with id {rule_id}.")
    return rule


def list_rules(session: Session, *, user: User, character_id: int | None = None) -> list[AutomationRule]:
    """Rules the user may see, by character then name."""
    q = (select(AutomationRule).join(Character, Character.id == AutomationRule.character_id)
         .where(visible_rules(user)))
    if character_id is not None:
        q = q.where(AutomationRule.character_id == character_id)
    return list(session.scalars(q.order_by(Character.name, AutomationRule.name, AutomationRule.id)))


def list_runs(session: Session, *, user: User, rule_id: int | None = None, limit: int = 50,
              offset: int = 0) -> tuple[list[AutomationRun], int]:
    """Runs (newest first) of rules the user may see, with the total count."""
    q = (select(AutomationRun).join(AutomationRule, AutomationRule.id == AutomationRun.rule_id)
         .join(Character, Character.id == AutomationRule.character_id).where(visible_rules(user)))
    if rule_id is not None:
        q = q.where(AutomationRun.rule_id == rule_id)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(AutomationRun.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def get_run(session: Session, run_id: int, *, user: User) -> AutomationRun:
    """One run the user may see, or NotFound."""
    run = session.get(AutomationRun, run_id)
    try:
        if run is not None:
            get_rule(session, run.rule_id, user=user)
    except NotFound:
        run = None  # the same words as a missing run: the answer must not name the other user's rule
    if run is None:
        raise NotFound(f"No automation run with id {run_id}.")
    return run


def last_runs(session: Session, rule_ids: Sequence[int]) -> dict[int, AutomationRun]:
    """The newest real (not dry) run of each rule."""
    if not rule_ids:
        return {}
    newest = (select(func.max(AutomationRun.id)).where(AutomationRun.rule_id.in_(list(rule_ids)),
                                                        AutomationRun.dry_run.is_(False))
              .group_by(AutomationRun.rule_id))
    return {r.rule_id: r for r in session.scalars(select(AutomationRun).where(AutomationRun.id.in_(newest)))}


# ---- changing ----------------------------------------------------------------------------------------------------


def _schedule_next(rule: AutomationRule, now: datetime) -> None:
    rule.next_run_at = next_fire(rule.trigger_kind, rule.trigger_config, zone(rule.timezone), now) \
        if rule.enabled else None


def create_rule(session: Session, *, user: User, spec: RuleSpec, now: datetime | None = None,
                ip: str = "") -> AutomationRule:
    """Validate and save a rule; its first firing is computed from now (never a past slot)."""
    character, values = clean_rule(session, user=user, spec=spec)
    rule = AutomationRule(character_id=character.id, created_by=user.id, **values)
    _schedule_next(rule, now or utcnow())
    session.add(rule)
    session.flush()
    audit(session, "automation.rule.create", user_id=user.id, ip=ip, rule_id=rule.id, character_id=character.id)
    return rule


def update_rule(session: Session, *, user: User, rule: AutomationRule, spec: RuleSpec, now: datetime | None = None,
                ip: str = "") -> AutomationRule:
    """Validate and replace a rule's settings (the character stays); the next firing is recomputed."""
    if spec.character_id != rule.character_id:
        raise InvalidInput("A rule stays with its character; create a new rule for another one.",
                           field="character_id")
    _, values = clean_rule(session, user=user, spec=spec)
    for key, value in values.items():
        if key == "template_key" and not value:
            continue
        setattr(rule, key, value)
    _schedule_next(rule, now or utcnow())
    rule.updated_at = utcnow()
    audit(session, "automation.rule.update", user_id=user.id, ip=ip, rule_id=rule.id)
    return rule


def set_enabled(session: Session, *, user: User, rule: AutomationRule, enabled: bool, now: datetime | None = None,
                ip: str = "") -> AutomationRule:
    """Turn a rule on (next firing from now: missed slots are not fired) or off."""
    if rule.enabled == enabled:
        return rule
    rule.enabled = enabled
    _schedule_next(rule, now or utcnow())
    rule.updated_at = utcnow()
    audit(session, "automation.rule." + ("enable" if enabled else "disable"), user_id=user.id, ip=ip,
          rule_id=rule.id)
    return rule


def delete_rule(session: Session, *, user: User, rule: AutomationRule, ip: str = "") -> None:
    """Delete a rule and its run log."""
    audit(session, "automation.rule.delete", user_id=user.id, ip=ip, rule_id=rule.id, name=rule.name)
    session.delete(rule)
    session.flush()


# ---- firing --------------------------------------------------------------------------------------------------------


def stopped_reason(character: Character | None) -> str:
    """Why a character's automation does not run now ("" when it does)."""
    if character is None:
        return "The character no longer exists."
    if character.status == CharacterStatus.active:
        return ""
    if character.status == CharacterStatus.paused:
        return f"{character.name} is paused, so all of its automation is stopped; resume the character to run it."
    if character.status == CharacterStatus.archived:
        return f"{character.name} is archived; archived characters run no automation."
    reason = f" ({character.status_reason})" if character.status_reason else ""
    return f"{character.name} is in the error state{reason}; fix it and resume the character."


def _fire(session: Session, rule: AutomationRule, *, trigger: str, info: dict[str, Any], key: str | None,
          user_id: int | None = None) -> AutomationRun | None:
    """Create the run row and its job; None when this slot already fired (unique ``slot_key``)."""
    if key is not None and session.scalar(select(AutomationRun.id).where(AutomationRun.slot_key == key)):
        return None
    run = AutomationRun(rule_id=rule.id, character_id=rule.character_id, trigger=trigger, trigger_info=info,
                        slot_key=key, status=RunStatus.queued, created_by=user_id, steps_log=[], created_ids={})
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:  # a second scheduler fired the same slot between our check and insert
        return None
    # A scheduled firing has no person behind it: the job belongs to the character's owner.
    owner_id = user_id if user_id is not None else session.scalar(
        select(Character.user_id).where(Character.id == rule.character_id))
    job = enqueue(session, JOB_KIND, {"run_id": run.id}, idempotency_key=f"{JOB_KIND}:{run.id}", max_attempts=3,
                  user_id=owner_id)
    run.job_id = job.id
    session.flush()
    return run


def queue_count(session: Session, rule: AutomationRule) -> int:
    """Planned and due publications of the rule's character (or of the accounts its trigger names)."""
    q = select(func.count()).select_from(Publication).where(Publication.character_id == rule.character_id,
                                                            Publication.status.in_(QUEUED_STATUSES))
    ids = (rule.trigger_config or {}).get("account_ids") or []
    if ids:
        q = q.where(Publication.account_id.in_(ids))
    return int(session.scalar(q) or 0)


def _has_unfinished_run(session: Session, rule: AutomationRule) -> bool:
    return bool(session.scalar(select(AutomationRun.id).where(
        AutomationRun.rule_id == rule.id, AutomationRun.dry_run.is_(False),
        AutomationRun.status.in_(UNFINISHED_RUNS)).limit(1)))


def _advance(session: Session, rule: AutomationRule, old: datetime, new: datetime | None) -> bool:
    res = session.execute(update(AutomationRule).where(AutomationRule.id == rule.id, AutomationRule.next_run_at == old)
                          .values(next_run_at=new).execution_options(synchronize_session=False))
    return bool(res.rowcount)  # type: ignore[attr-defined]


def tick(runtime: Runtime, now: datetime | None = None) -> dict[str, Any]:
    """Fire every due rule once for its latest due slot; returns what fired and what was skipped."""
    now = (now or utcnow()).astimezone(UTC)
    fired: list[int] = []
    skipped: list[int] = []
    with runtime.db.session() as s:
        due = list(s.scalars(select(AutomationRule).where(
            AutomationRule.enabled.is_(True), AutomationRule.next_run_at.is_not(None),
            AutomationRule.next_run_at <= now).order_by(AutomationRule.next_run_at).limit(DUE_BATCH)))
        for rule in due:
            old = rule.next_run_at
            assert old is not None
            try:
                with s.begin_nested():
                    run = _tick_rule(s, rule, old, now, skipped)
                if run is not None:
                    fired.append(rule.id)
            except Exception:
                log.exception("automation: rule %s could not be checked", rule.id)
    if fired:
        log.info("automation: fired rule(s) %s", fired)
    return {"fired": fired, "skipped": skipped}


def _tick_rule(s: Session, rule: AutomationRule, old: datetime, now: datetime,
               skipped: list[int]) -> AutomationRun | None:
    character = s.get(Character, rule.character_id)
    stopped = stopped_reason(character)
    if rule.trigger_kind == TriggerKind.event:
        nxt = next_fire(rule.trigger_kind, rule.trigger_config, zone(rule.timezone), now)
        if not _advance(s, rule, old, nxt):
            return None  # another scheduler handled this check
        if stopped or _has_unfinished_run(s, rule):
            skipped.append(rule.id)
            return None
        count = queue_count(s, rule)
        threshold = int(rule.trigger_config.get("threshold") or 0)
        if count >= threshold:
            return None
        minutes = int(rule.trigger_config.get("check_every_minutes") or DEFAULT_QUEUE_CHECK_MINUTES)
        window = now - timedelta(seconds=now.timestamp() % (minutes * 60))
        run = _fire(s, rule, trigger="queue_below",
                    info={"count": count, "threshold": threshold, "deficit": threshold - count,
                          "checked_at": now.isoformat()},
                    key=f"automation:{rule.id}:queue:{window.isoformat()}")
    else:
        slot, nxt = due_slot(rule, now)
        if not _advance(s, rule, old, nxt):
            return None
        if stopped:
            skipped.append(rule.id)  # a paused character's slots pass without firing
            return None
        run = _fire(s, rule, trigger=rule.trigger_kind.value,
                    info={"slot": slot.isoformat(), "fired_at": now.isoformat()},
                    key=f"automation:{rule.id}:{slot.isoformat()}")
    return run


def on_asset_approved(session: Session, asset: Asset) -> list[int]:
    """Vault hook: queue a run of every enabled 'asset approved' rule of the asset's character (same transaction)."""
    if asset.character_id is None:
        return []
    character = session.get(Character, asset.character_id)
    if stopped_reason(character):
        return []
    rules = session.scalars(select(AutomationRule).where(
        AutomationRule.character_id == asset.character_id, AutomationRule.enabled.is_(True),
        AutomationRule.trigger_kind == TriggerKind.event)).all()
    stamp = (asset.reviewed_at or utcnow()).astimezone(UTC).isoformat()
    fired = []
    for rule in rules:
        cfg = rule.trigger_config or {}
        if cfg.get("event") != "asset_approved" or asset.kind.value not in (cfg.get("kinds") or ["image", "video"]):
            continue
        run = _fire(session, rule, trigger="asset_approved", info={"asset_id": asset.id, "approved_at": stamp},
                    key=f"automation:{rule.id}:asset:{asset.id}:{stamp}")
        if run is not None:
            fired.append(run.id)
    return fired


def on_asset_approved_event(session: Session, event: AssetApproved) -> None:
    """Subscriber of ``asset.approved`` (events.SUBSCRIPTIONS); the hub isolates a failure from the approval."""
    on_asset_approved(session, event.asset)


def run_now(session: Session, *, user: User, rule: AutomationRule, ip: str = "") -> AutomationRun:
    """Queue a manual run; for a stopped character the run is recorded as skipped, with the reason."""
    character = session.get(Character, rule.character_id)
    stopped = stopped_reason(character)
    audit(session, "automation.rule.run", user_id=user.id, ip=ip, rule_id=rule.id)
    if stopped:
        now = utcnow()
        run = AutomationRun(rule_id=rule.id, character_id=rule.character_id, trigger="manual", trigger_info={},
                            status=RunStatus.skipped, message=stopped, created_by=user.id, started_at=now,
                            finished_at=now, steps_log=[], created_ids={})
        session.add(run)
        rule.last_status = RunStatus.skipped.value
        session.flush()
        return run
    fired = _fire(session, rule, trigger="manual", info={"by_user": user.id}, key=None, user_id=user.id)
    assert fired is not None
    return fired


# ---- executing steps -------------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    """What the steps of one run share: the rule, its character, who acts, the items being built."""

    session: Session
    runtime: Runtime
    rule: AutomationRule
    character: Character
    actor: User
    now: datetime
    plan: bool
    trigger_info: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    created: dict[str, list[int]] = field(default_factory=dict)
    run_id: int | None = None

    def add(self, kind: str, object_id: int) -> None:
        self.created.setdefault(kind, []).append(object_id)

    def count(self, raw: Any) -> int:
        if raw == "fill":
            return max(0, min(MAX_ITEMS, int(self.trigger_info.get("deficit", 1))))
        return int(raw or 1)


def _entry(index: int, action: str, outcome: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "action": action, "outcome": outcome, "message": message,
            "at": utcnow().isoformat(), **extra}


def _media_of(asset: Asset) -> dict[str, Any]:
    return {"path": asset.path, "kind": asset.kind.value, "mime_type": asset.mime, "asset_id": asset.id,
            "width": asset.width, "height": asset.height, "duration_seconds": asset.duration_s}


def _used_asset_ids(session: Session, character_id: int) -> dict[int, int]:
    """Asset id -> a publication (not cancelled) that carries it."""
    used: dict[int, int] = {}
    rows = session.execute(select(Publication.id, Publication.media).where(
        Publication.character_id == character_id, Publication.status != PublicationStatus.cancelled))
    for pub_id, media in rows:
        for m in media or []:
            if isinstance(m, dict) and m.get("asset_id"):
                used.setdefault(int(m["asset_id"]), pub_id)
    return used


def _asset_item(asset: Asset, origin: str) -> dict[str, Any]:
    return {"origin": origin, "asset_ids": [asset.id], "media": [_media_of(asset)], "text": asset.caption or "",
            "text_from": "asset" if asset.caption else "", "generated_text_id": None, "approved": True,
            "waiting": ""}


def _seed_items(ctx: _Ctx) -> str:
    """Items the trigger brings (the approved asset); returns a note for the log."""
    asset_id = ctx.trigger_info.get("asset_id")
    if not asset_id:
        return ""
    asset = ctx.session.get(Asset, int(asset_id))
    if asset is None or asset.character_id != ctx.character.id:
        return f"asset #{asset_id} is gone"
    if asset.review_state != ReviewState.approved:
        return f"asset #{asset.id} is {asset.review_state.value} now, no longer approved"
    used = _used_asset_ids(ctx.session, ctx.character.id)
    if asset.id in used:
        return f"asset #{asset.id} is already in publication #{used[asset.id]}"
    ctx.items.append(_asset_item(asset, "event"))
    return f"asset #{asset.id} approved"


def _targets(ctx: _Ctx, step: dict[str, Any]) -> tuple[list[SocialAccount], list[str]]:
    ids, platforms = step.get("account_ids") or [], step.get("platforms") or []
    chosen, notes = [], []
    for account in _character_accounts(ctx.session, ctx.character):
        if (ids or platforms) and account.id not in ids and account.platform not in platforms:
            continue
        if account.status == AccountStatus.disconnected:
            notes.append(f"@{(account.handle or str(account.id)).lstrip('@')} ({account.platform}) is disconnected")
            continue
        chosen.append(account)
    return chosen, notes


def _caption_platform(ctx: _Ctx, step: dict[str, Any]) -> str:
    if step.get("platform"):
        return str(step["platform"])
    for later in ctx.rule.steps:
        if later.get("action") in TERMINAL:
            accounts, _ = _targets(ctx, later)
            if accounts:
                return accounts[0].platform
    return "instagram"


def _step_generate(ctx: _Ctx, index: int, step: dict[str, Any]) -> dict[str, Any]:
    if step.get("content") == "image":
        return _step_generate_image(ctx, index, step)
    from ainfluencer.services import writing

    platform = _caption_platform(ctx, step)
    targets = [it for it in ctx.items if not it["text"]] if ctx.items else None
    if targets is None:
        targets = [{"origin": "generated", "asset_ids": [], "media": [], "text": "", "text_from": "",
                    "generated_text_id": None, "approved": False, "waiting": ""}
                   for _ in range(ctx.count(step["count"]))]
        ctx.items.extend(targets)
    if not targets:
        return _entry(index, "generate", "skipped", "every item already has a caption; nothing to write")
    label = f"template '{step['template']}'" if step.get("template") else "the persona's topics"
    if ctx.plan:
        for it in targets:
            it.update(text=f"(a {platform} caption written at run time from {label})", text_from="generated",
                      approved=False)
        return _entry(index, "generate", "planned",
                      f"would write {len(targets)} {platform} caption(s) from {label} with {ctx.character.name}'s "
                      f"text chain (primary: {ctx.character.text_backend or 'offline'})")
    written = []
    for it in targets:
        row = writing.generate(ctx.session, ctx.runtime, character=ctx.character, user=ctx.actor, platform=platform,
                               style=step.get("style") or None, brief=step.get("brief") or "",
                               template=step.get("template") or None)
        it.update(text=row.text, text_from="generated", generated_text_id=row.id, approved=False)
        ctx.add("generated_texts", row.id)
        written.append(f"#{row.id} ({row.backend}{', flagged: ' + row.flag_reason if row.flagged else ''})")
    return _entry(index, "generate", "ok", f"wrote {len(written)} {platform} caption(s) from {label}: "
                  + ", ".join(written))


def _step_generate_image(ctx: _Ctx, index: int, step: dict[str, Any]) -> dict[str, Any]:
    from ainfluencer.services import studio

    if not studio.backend_config(ctx.session)["order"]:
        return _entry(index, "generate", "failed", "No image backend is configured, so no image was generated. "
                      "Set one up under Studio → Image backends (owner), then run the rule again.")
    count = int(step.get("count") or 1)
    if ctx.plan:
        return _entry(index, "generate", "planned", f"would queue a studio job for {count} image(s); they land in "
                      "the vault's review queue")
    job = studio.request_generation(ctx.session, user=ctx.actor, req=studio.GenerationRequest(
        character_id=ctx.character.id, brief=step.get("brief") or "", style=step.get("style") or "casual",
        count=count))
    ctx.add("jobs", job.id)
    return _entry(index, "generate", "ok", f"queued studio job #{job.id} for {count} image(s); they land in the "
                  "vault's review queue (an 'asset approved' rule can schedule them)")


def _step_pick(ctx: _Ctx, index: int, step: dict[str, Any]) -> dict[str, Any]:
    want = ctx.count(step.get("count"))
    if want <= 0:
        return _entry(index, "pick_asset", "skipped", "the queue is full; nothing to pick")
    used = _used_asset_ids(ctx.session, ctx.character.id)
    taken = {i for it in ctx.items for i in it["asset_ids"]}
    rows = ctx.session.scalars(select(Asset).where(
        Asset.character_id == ctx.character.id, Asset.review_state == ReviewState.approved,
        Asset.kind == AssetKind(step.get("kind") or "image")).order_by(Asset.reviewed_at, Asset.id).limit(500))
    picked = [a for a in rows if a.id not in used and a.id not in taken][:want]
    if not picked:
        return _entry(index, "pick_asset", "failed", f"{ctx.character.name} has no approved {step.get('kind')} that "
                      "no post uses yet; approve more in the vault")
    for asset in picked:
        ctx.items.append(_asset_item(asset, "picked"))
    verb = "would use" if ctx.plan else "picked"
    short = f" (wanted {want})" if len(picked) < want else ""
    return _entry(index, "pick_asset", "planned" if ctx.plan else "ok",
                  f"{verb} approved asset(s) " + ", ".join(f"#{a.id}" for a in picked) + short)


def _step_review(ctx: _Ctx, index: int, step: dict[str, Any]) -> dict[str, Any]:
    from ainfluencer.services import vault

    policy = ctx.rule.policy
    pending = [it for it in ctx.items if not it["approved"]]
    who = f"user #{ctx.rule.created_by}" if ctx.rule.created_by else "the rule's owner"
    if not pending:
        return _entry(index, "review", "ok", f"policy {policy}: nothing generated needs approval (every item was "
                      "approved by a person)", policy=policy)
    if policy == "auto_approve":
        for it in pending:
            it["approved"] = True
        return _entry(index, "review", "planned" if ctx.plan else "ok",
                      f"policy auto_approve (chosen by {who}): {len(pending)} generated item(s) "
                      f"{'would be' if ctx.plan else 'were'} approved without a person", policy=policy)
    sent, drafts = [], []
    for it in pending:
        if it["asset_ids"]:
            asset = ctx.session.get(Asset, it["asset_ids"][0])
            if asset is not None and not ctx.plan:
                asset.caption = it["text"]
                vault.set_review_state(ctx.session, user=ctx.actor, asset=asset, state=ReviewState.in_review)
                ctx.add("assets_to_review", asset.id)
            sent.append(f"asset #{it['asset_ids'][0]}")
            it["waiting"] = "sent back to the review queue with its new caption"
        else:
            post_id = None if ctx.plan else _post_for_review(ctx, it)
            if post_id is not None:
                ctx.add("posts", post_id)
                drafts.append(f"post #{post_id}")
            else:
                drafts.append(f"draft #{it['generated_text_id']}" if it["generated_text_id"] else "a draft")
            it["waiting"] = "sent to the Review page as a post (policy: review)"
    parts = []
    if sent:
        parts.append(("would send " if ctx.plan else "sent ") + ", ".join(sent) + " to the review queue with the "
                     "new caption (approving it there continues)")
    if drafts:
        parts.append(("would send " if ctx.plan else "sent ") + ", ".join(drafts) + " to the Review page for a "
                     "person (approving and scheduling it there publishes it)")
    return _entry(index, "review", "waiting", "policy review: " + "; ".join(parts) + ". Nothing unreviewed is "
                  "scheduled.", policy=policy)


def _post_for_review(ctx: _Ctx, item: dict[str, Any]) -> int | None:
    """A post in review holding a drafted text, aimed at the accounts of the rule's first posting step."""
    from ainfluencer.posts import service as posts

    targets: list[int] = []
    for later in ctx.rule.steps:
        if later.get("action") in TERMINAL:
            targets = [a.id for a in _targets(ctx, later)[0]]
            break
    post = posts.create_post(
        ctx.session, user=ctx.actor, character_id=ctx.character.id, submit=True, source="automation",
        generated_text_id=item.get("generated_text_id"), automation_run_id=ctx.run_id, actor=f"rule:{ctx.rule.id}",
        data=posts.PostInput(text=item["text"], account_ids=targets,
                             asset_ids=list(item.get("asset_ids") or [])))
    return post.id


def _step_post(ctx: _Ctx, index: int, step: dict[str, Any]) -> dict[str, Any]:
    from ainfluencer.services import accounts, publishing

    action = step["action"]
    ready = [it for it in ctx.items if it["approved"] and not it["waiting"]]
    waiting = len(ctx.items) - len(ready)
    if not ready:
        why = "waiting for review" if waiting else "no content to post"
        return _entry(index, action, "skipped", f"nothing to {action}: {why}")
    targets, notes = _targets(ctx, step)
    if not targets:
        return _entry(index, action, "failed", "no connected account to post to" +
                      (f" ({'; '.join(notes)})" if notes else "") + "; connect or reconnect one under Accounts")
    lines: list[str] = list(notes)
    made = 0
    failed = 0
    for account in targets:
        handle = f"@{(account.handle or str(account.id)).lstrip('@')} ({account.platform})"
        if action == "schedule":
            from ainfluencer.services import calendar

            times: list[datetime | None] = list(calendar.next_slots(
                ctx.session, character=ctx.character, account=account, count=len(ready), after=ctx.now))
            if not times:
                failed += len(ready)
                lines.append(f"{handle}: no free posting slot; add posting slots on the Calendar page")
                continue
        else:
            times = [None] * len(ready)
        for it, when in zip(ready, times, strict=False):
            at = when.isoformat() if when else "now"
            if ctx.plan:
                cls = accounts.known_platform(account.platform, accounts.platforms_of(ctx.session))
                if cls.capabilities.requires_media and not it["media"]:
                    failed += 1
                    lines.append(f"{handle}: would fail: {cls.display_name} posts need media")
                    continue
                made += 1
                lines.append(f"{handle}: would {action} at {at}")
                continue
            spec = publishing.PostSpec(
                targets=[publishing.TargetSpec(account_id=account.id)], text=it["text"],
                media=[publishing.MediaSpec(**m) for m in it["media"]], scheduled_at=when,
                character_id=ctx.character.id)
            try:
                with ctx.session.begin_nested():
                    pubs = publishing.create_publications(ctx.session, runtime=ctx.runtime, user=ctx.actor, spec=spec)
            except AppError as exc:
                failed += 1
                lines.append(f"{handle}: refused: {exc.message}")
                continue
            for pub in pubs:
                ctx.add("publications", pub.id)
                made += 1
                lines.append(f"{handle}: publication #{pub.id} {pub.status.value} at {at}")
        if len(times) < len(ready):
            failed += len(ready) - len(times)
            lines.append(f"{handle}: only {len(times)} free slot(s) for {len(ready)} item(s)")
    if waiting:
        lines.append(f"{waiting} item(s) wait for review and were not posted")
    outcome = "planned" if ctx.plan and made else ("ok" if made and not failed else ("partial" if made else "failed"))
    return _entry(index, action, outcome, "; ".join(lines))


STEP_FUNCS = {"generate": _step_generate, "pick_asset": _step_pick, "review": _step_review,
              "schedule": _step_post, "publish": _step_post}


def _actor(session: Session, rule: AutomationRule, character: Character) -> User | None:
    """Who the rule acts as: its creator while they may still act for the character, else the character's owner."""
    creator = session.get(User, rule.created_by) if rule.created_by else None
    if creator is not None and creator.is_active and (creator.is_owner or creator.id == character.user_id):
        return creator
    return session.get(User, character.user_id)


def _status_of(log_: list[dict[str, Any]], created: dict[str, list[int]]) -> RunStatus:
    outcomes = {e["outcome"] for e in log_}
    if outcomes & {"failed", "partial"}:
        return RunStatus.partial if any(created.values()) else RunStatus.failed
    return RunStatus.succeeded


def execute_run(runtime: Runtime, run_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Run a queued run's steps in order, committing each step with its log entry (a retry resumes after it)."""
    with runtime.db.session() as s:
        run = s.get(AutomationRun, run_id)
        if run is None or run.status not in UNFINISHED_RUNS:
            return {"run_id": run_id, "status": run.status.value if run else "missing"}
        rule = s.get(AutomationRule, run.rule_id)
        character = s.get(Character, run.character_id) if run.character_id else None
        stopped = stopped_reason(character) if rule is not None else "The rule was deleted."
        if rule is not None and not stopped and run.trigger != "manual" and not rule.enabled:
            stopped = "The rule was disabled before this run started."
        if stopped:
            run.status, run.message, run.finished_at = RunStatus.skipped, stopped, utcnow()
            run.started_at = run.started_at or run.finished_at
            if rule is not None:
                rule.last_status, rule.last_run_at = RunStatus.skipped.value, run.finished_at
            return {"run_id": run_id, "status": "skipped", "message": stopped}
        run.status = RunStatus.running
        run.started_at = run.started_at or utcnow()
        steps = list(rule.steps)  # type: ignore[union-attr]
    when = now or utcnow()
    for index in range(len(steps)):
        with runtime.db.session() as s:
            run = s.get(AutomationRun, run_id)
            assert run is not None
            log_ = list(run.steps_log or [])
            if any(e["index"] == index for e in log_):
                continue  # done before a crash; its effects were committed with its log entry
            rule = s.get(AutomationRule, run.rule_id)
            character = s.get(Character, run.character_id) if run.character_id else None
            assert rule is not None and character is not None
            actor = _actor(s, rule, character)
            if actor is None:
                log_.append(_entry(index, steps[index]["action"], "failed", "The character's owner no longer exists."))
                run.steps_log = log_
                break
            # deep copies: the steps change items in place, and an unchanged-looking JSON value is not written
            state = copy.deepcopy(dict(run.created_ids or {}))
            ctx = _Ctx(session=s, runtime=runtime, rule=rule, character=character, actor=actor, now=when, plan=False,
                       trigger_info=dict(run.trigger_info or {}), items=list(state.pop("items", [])),
                       created={k: list(v) for k, v in state.items()}, run_id=run.id)
            notes = _seed_items(ctx) if index == 0 else ""
            step = steps[index]
            try:
                entry = STEP_FUNCS[step["action"]](ctx, index, step)
            except Exception as exc:
                s.rollback()
                if isinstance(exc, AppError):
                    message = exc.message
                else:
                    log.exception("automation: step %s of run %s failed", index, run_id)
                    message = f"unexpected error ({exc.__class__.__name__}); see the server log"
                entry = _entry(index, step["action"], "failed", message)
                run = s.get(AutomationRun, run_id)
                assert run is not None
                log_ = list(run.steps_log or [])
                state = copy.deepcopy(dict(run.created_ids or {}))
                ctx.items = list(state.pop("items", []))
                ctx.created = {k: list(v) for k, v in state.items()}
            if notes:
                entry["message"] = f"{notes}; {entry['message']}"
            run.steps_log = [*log_, entry]
            run.created_ids = {**ctx.created, "items": ctx.items}
            if entry["outcome"] == "failed" and step["action"] == "pick_asset":
                break  # without its content the later steps have nothing to work on
    with runtime.db.session() as s:
        run = s.get(AutomationRun, run_id)
        assert run is not None
        created = {k: v for k, v in (run.created_ids or {}).items() if k != "items"}
        status = _status_of(run.steps_log or [], created)
        run.status, run.finished_at = status, utcnow()
        last = (run.steps_log or [{}])[-1]
        run.message = last.get("message", "")[:2000] if status != RunStatus.succeeded else \
            f"{len(run.steps_log or [])} step(s) done"
        rule = s.get(AutomationRule, run.rule_id)
        if rule is not None:
            rule.last_run_at, rule.last_status = run.finished_at, status.value
        return {"run_id": run_id, "status": status.value, "created": created}


# ---- dry run ---------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a run would do now: the trigger's state and each step's planned outcome."""

    rule_id: int
    trigger: str
    next_run_at: datetime | None
    due_now: bool
    stopped: str
    policy: str
    steps: list[dict[str, Any]]
    run_id: int | None = None


def dry_run(session: Session, runtime: Runtime, *, user: User, rule: AutomationRule, now: datetime | None = None,
            record: bool = False) -> Plan:
    """Evaluate the trigger and plan every step without writing anything (``record``: keep a dry-run row)."""
    now = (now or utcnow()).astimezone(UTC)
    character = session.get(Character, rule.character_id)
    stopped = stopped_reason(character)
    tz = zone(rule.timezone)
    info: dict[str, Any] = {}
    if rule.trigger_kind == TriggerKind.event and rule.trigger_config.get("event") == "queue_below":
        count = queue_count(session, rule)
        threshold = int(rule.trigger_config["threshold"])
        info = {"count": count, "threshold": threshold, "deficit": max(0, threshold - count)}
        trigger = f"{describe_trigger(rule)}: {count} planned now, " + (
            f"would fire (short by {threshold - count})" if count < threshold else "would not fire")
        due = count < threshold
    elif rule.trigger_kind == TriggerKind.event:
        trigger = describe_trigger(rule) + ": fires on the next approval"
        due = False
    else:
        nxt = rule.next_run_at or next_fire(rule.trigger_kind, rule.trigger_config, tz, now)
        due = nxt is not None and nxt <= now
        local = nxt.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if nxt else "never"
        trigger = f"{describe_trigger(rule)}: next at {local}" + (" (due now)" if due else "")
    steps: list[dict[str, Any]] = []
    if stopped:
        steps.append(_entry(0, "trigger", "skipped", stopped))
    elif character is not None:
        actor = _actor(session, rule, character) or user
        ctx = _Ctx(session=session, runtime=runtime, rule=rule, character=character, actor=actor, now=now, plan=True,
                   trigger_info=info)
        if rule.trigger_config.get("event") == "asset_approved":
            ctx.items.append({"origin": "event", "asset_ids": [], "text": "", "text_from": "", "approved": True,
                              "generated_text_id": None, "waiting": "",
                              "media": [{"kind": "image", "path": "(the approved asset)"}]})
        for index, step in enumerate(rule.steps):
            try:
                steps.append(STEP_FUNCS[step["action"]](ctx, index, step))
            except AppError as exc:
                steps.append(_entry(index, step["action"], "failed", exc.message))
    plan = Plan(rule_id=rule.id, trigger=trigger, next_run_at=rule.next_run_at, due_now=due, stopped=stopped,
                policy=rule.policy, steps=steps)
    if record:
        run = AutomationRun(rule_id=rule.id, character_id=rule.character_id, trigger="dry_run",
                            trigger_info={"plan_trigger": trigger, **info}, dry_run=True,
                            status=RunStatus.skipped if stopped else RunStatus.succeeded,
                            message=stopped or "dry run: nothing was changed", steps_log=steps, created_ids={},
                            started_at=now, finished_at=now, created_by=user.id)
        session.add(run)
        session.flush()
        plan.run_id = run.id
    return plan
