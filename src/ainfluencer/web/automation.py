"""Automation pages: thin handlers over ``services.automation``.

/automation lists rules (enabled toggle, next run, last outcome) and the templates; a rule page edits
it, dry-runs it (the plan is shown, nothing changes), runs it now and lists its runs; a run page shows
each step's outcome. Every form works without JavaScript (``automation.js`` only hides trigger fields
that do not apply).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from ainfluencer.api.deps import SessionDep, client_ip, get_runtime
from ainfluencer.csrf import csrf_protect
from ainfluencer.db.models import Character, User
from ainfluencer.db.models_automation import AutomationRule
from ainfluencer.errors import AppError, InvalidInput
from ainfluencer.services import automation as svc
from ainfluencer.services import characters as characters_svc
from ainfluencer.web.forms import Form
from ainfluencer.web.forms import form_text as _text
from ainfluencer.web.routes import CurrentUser, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

DONE = {"created": "Rule saved.", "saved": "Rule saved.", "enabled": "Rule enabled.", "disabled": "Rule disabled.",
        "deleted": "Rule deleted.", "queued": "Run queued; it shows here when the worker has run it."}
OUTCOME_BADGES = {"ok": "ok", "succeeded": "ok", "planned": "accent", "waiting": "warn", "skipped": "warn",
                  "partial": "warn", "failed": "failed", "queued": "queued", "running": "running"}


def _with(url: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return url + ("?" + query if query else "")


def _characters(session: Session, user: User) -> list[Character]:
    return list(session.scalars(select(Character).where(characters_svc.visible(user)).order_by(Character.name)))


def _local(value: Any, tz_name: str) -> str:
    if value is None:
        return ""
    try:
        zone = ZoneInfo(tz_name)
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    return str(value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"))


def _helpers() -> dict[str, Any]:
    return {"local": _local, "badge": lambda o: OUTCOME_BADGES.get(o, "queued"), "templates": svc.RULE_TEMPLATES,
            "policy_labels": svc.POLICY_LABELS, "event_labels": svc.EVENT_LABELS}


def _form_of(rule: AutomationRule | svc.RuleSpec) -> dict[str, str]:
    """Form values for a rule or a template spec."""
    cfg = dict(rule.trigger_config or {})
    kind = rule.trigger_kind.value if isinstance(rule, AutomationRule) else str(rule.trigger_kind)
    return {
        "character_id": str(rule.character_id or ""), "name": rule.name, "description": rule.description,
        "trigger_kind": kind, "cron_expression": str(cfg.get("expression", "")),
        "interval_every": str(cfg.get("every", "")), "interval_unit": str(cfg.get("unit", "minutes")),
        "daily_time": str(cfg.get("time", "")), "event": str(cfg.get("event", "asset_approved")),
        "threshold": str(cfg.get("threshold", "")), "check_every_minutes": str(cfg.get("check_every_minutes", "")),
        "policy": rule.policy, "timezone": rule.timezone or "",
        "steps_json": json.dumps(list(rule.steps or []), indent=2),
        "template_key": rule.template_key,
    }


def _spec_of(form: FormData, *, character_id: int | None = None) -> svc.RuleSpec:
    """A RuleSpec from the rule form (InvalidInput names the field)."""
    raw_id = _text(form, "character_id").strip()
    if character_id is None:
        if not raw_id.isdigit():
            raise InvalidInput("Choose the character the rule belongs to.", field="character_id")
        character_id = int(raw_id)
    kind = _text(form, "trigger_kind")
    config: dict[str, Any]
    if kind == "cron":
        config = {"expression": _text(form, "cron_expression")}
    elif kind == "interval":
        config = {"every": _text(form, "interval_every").strip(), "unit": _text(form, "interval_unit")}
    elif kind == "daily":
        config = {"time": _text(form, "daily_time")}
    else:
        config = {"event": _text(form, "event")}
        if config["event"] == "queue_below":
            config["threshold"] = _text(form, "threshold").strip()
            if _text(form, "check_every_minutes").strip():
                config["check_every_minutes"] = _text(form, "check_every_minutes").strip()
    if _text(form, "steps_json").strip():  # scripts and older forms may still post the steps as JSON
        try:
            steps = json.loads(_text(form, "steps_json"))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"The steps are not valid JSON ({exc.msg} at line {exc.lineno}).",
                               field="steps_json") from None
    else:
        steps = steps_from_builder(form)
    return svc.RuleSpec(character_id=character_id, name=_text(form, "name"), trigger_kind=kind,
                        trigger_config=config, steps=steps, policy=_text(form, "policy") or "review",
                        timezone=_text(form, "timezone") or None, description=_text(form, "description"),
                        enabled=_text(form, "enabled", "on") == "on", template_key=_text(form, "template_key"))


STEP_FIELDS = ("action", "template", "platform", "style", "brief", "count", "kind")


def steps_from_builder(form: FormData) -> list[dict[str, Any]]:
    """The step builder's rows as the list of step objects the API takes (empty rows are skipped).

    A row's action is one of: generate_caption, generate_image, pick_asset, review, schedule, publish;
    schedule/publish rows name networks (``step_<i>_platforms``) or leave them all unticked for every account.
    """
    steps: list[dict[str, Any]] = []
    for i in range(svc.MAX_STEPS):
        values = {f: _text(form, f"step_{i}_{f}").strip() for f in STEP_FIELDS}
        action = values["action"]
        if not action:
            continue
        count: Any = values["count"]
        if count and count != "fill":
            count = int(count) if count.isdigit() else count
        if action in ("generate_caption", "generate_image"):
            step: dict[str, Any] = {"action": "generate", "content": action.split("_", 1)[1], "brief": values["brief"]}
            if action == "generate_caption":
                step.update(template=values["template"], platform=values["platform"], style=values["style"])
            elif values["style"]:
                step["style"] = values["style"]
            if count:
                step["count"] = count
        elif action == "pick_asset":
            step = {"action": action, "kind": values["kind"] or "image"}
            if count:
                step["count"] = count
        elif action in ("schedule", "publish"):
            step = {"action": action, "platforms": [str(p) for p in form.getlist(f"step_{i}_platforms") if p]}
        else:
            step = {"action": action}
        steps.append(step)
    return steps


def builder_rows(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the step builder from stored steps, padded with empty rows up to the maximum."""
    rows = []
    for step in steps:
        action = step.get("action", "")
        if action == "generate":
            action = f"generate_{step.get('content') or 'caption'}"
        rows.append({"action": action, "template": step.get("template", ""), "platform": step.get("platform", ""),
                     "style": step.get("style", ""), "brief": step.get("brief", ""),
                     "count": str(step.get("count", "") or ""), "kind": step.get("kind", "image"),
                     "platforms": list(step.get("platforms") or [])})
    empty = {"action": "", "template": "", "platform": "", "style": "", "brief": "", "count": "", "kind": "image",
             "platforms": []}
    return rows + [dict(empty) for _ in range(max(2, svc.MAX_STEPS - len(rows)) if len(rows) < svc.MAX_STEPS else 0)]


def _builder_choices() -> dict[str, Any]:
    from ainfluencer.platforms.registry import adapter_class, platform_names
    from ainfluencer.services import writing
    from ainfluencer.services.studio import STYLE_CATEGORIES
    from ainfluencer.writing import platform_rules
    from ainfluencer.writing.offline import STYLES

    return {"step_actions": STEP_ACTIONS, "content_templates": list(writing.CONTENT_TEMPLATES),
            "caption_platforms": list(platform_rules.PLATFORM_RULES), "caption_styles": list(STYLES),
            "image_styles": list(STYLE_CATEGORIES), "max_steps": svc.MAX_STEPS,
            "post_platforms": {p: adapter_class(p).display_name for p in platform_names()}}


STEP_ACTIONS = {"generate_caption": "Write a caption", "generate_image": "Generate images",
                "pick_asset": "Pick approved media", "review": "Review (the rule's policy)",
                "schedule": "Schedule into free posting slots", "publish": "Publish now"}


def _error_field(exc: AppError) -> str:
    name = exc.field or "_form"
    if name.startswith("trigger_config."):
        return {"expression": "cron_expression", "every": "interval_every", "unit": "interval_unit",
                "time": "daily_time", "event": "event"}.get(name.split(".", 1)[1], name.split(".", 1)[1])
    if name.startswith("steps"):
        return "steps_json"
    return name


def _posted(form: FormData) -> dict[str, str]:
    """The posted form as values to show again, the builder's rows kept as steps JSON."""
    values = {k: _text(form, k) for k in form}
    if not values.get("steps_json", "").strip():
        values["steps_json"] = json.dumps(steps_from_builder(form))
    return values


def _render_form(request: Request, session: Session, user: User, *, form: dict[str, str],
                 rule: AutomationRule | None = None, error: AppError | None = None) -> HTMLResponse:
    errors: dict[str, str] = {}
    if error is not None:
        errors[_error_field(error)] = error.message
        errors.setdefault("_form", error.message)
    runs = svc.list_runs(session, user=user, rule_id=rule.id, limit=20)[0] if rule is not None else []
    try:
        stored = json.loads(form.get("steps_json") or "[]")
    except json.JSONDecodeError:
        stored = []
    ctx = {"step_rows": builder_rows(stored if isinstance(stored, list) else []), **_builder_choices(),
           "active": "rules", "form": form, "rule": rule, "errors": errors, "characters": _characters(session, user),
           "runs": runs, "notice": DONE.get(request.query_params.get("done", ""), ""),
           "error": request.query_params.get("error", ""), **_helpers()}
    return render(request, "automation/rule.html", ctx, user=user, status_code=422 if error else 200)


@router.get("/automation", response_class=HTMLResponse)
def read_automation(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Rules with their enabled toggle, next run and last outcome; templates to start from."""
    rules = svc.list_rules(session, user=user)
    chars = _characters(session, user)
    ctx = {"active": "rules", "rules": rules, "last": svc.last_runs(session, [r.id for r in rules]),
           "character_names": {c.id: c.name for c in chars}, "characters": chars, "describe": svc.describe_trigger,
           "notice": DONE.get(request.query_params.get("done", ""), ""), "error": request.query_params.get("error", ""),
           **_helpers()}
    return render(request, "automation/list.html", ctx, user=user)


@router.get("/automation/new", response_class=HTMLResponse)
def read_new_rule(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The rule form, blank or filled from a template."""
    key = request.query_params.get("template", "")
    cid = request.query_params.get("character_id", "")
    if key in svc.RULE_TEMPLATES:
        form = _form_of(svc.template_spec(key, character_id=int(cid) if cid.isdigit() else 0))
        form["character_id"] = cid
    else:
        form = {"trigger_kind": "daily", "daily_time": "14:00", "policy": "review", "character_id": cid,
                "steps_json": json.dumps(svc.RULE_TEMPLATES["approved_image_schedule"].steps, indent=2)}
    return _render_form(request, session, user, form=form)


@router.post("/automation/rules")
def create_rule(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Save a new rule (the form comes back with the problem named when something is wrong)."""
    try:
        rule = svc.create_rule(session, user=user, spec=_spec_of(form), ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return _render_form(request, session, user, form=_posted(form), error=exc)
    session.commit()
    return redirect(f"/automation/rules/{rule.id}?done=created")


@router.get("/automation/rules/{rule_id}", response_class=HTMLResponse)
def read_rule(request: Request, rule_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """One rule: edit form, dry-run, run now, enable/disable, its runs."""
    rule = svc.get_rule(session, rule_id, user=user)
    return _render_form(request, session, user, form=_form_of(rule), rule=rule)


@router.post("/automation/rules/{rule_id}")
def update_rule(request: Request, rule_id: int, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Save changes to a rule."""
    rule = svc.get_rule(session, rule_id, user=user)
    try:
        spec = _spec_of(form, character_id=rule.character_id)
        spec.enabled = rule.enabled
        svc.update_rule(session, user=user, rule=rule, spec=spec, ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        rule = svc.get_rule(session, rule_id, user=user)
        return _render_form(request, session, user, form=_posted(form), rule=rule, error=exc)
    session.commit()
    return redirect(f"/automation/rules/{rule.id}?done=saved")


@router.post("/automation/rules/{rule_id}/toggle")
def toggle_rule(request: Request, rule_id: int, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Enable or disable a rule."""
    rule = svc.get_rule(session, rule_id, user=user)
    enabled = _text(form, "enabled") == "1"
    svc.set_enabled(session, user=user, rule=rule, enabled=enabled, ip=client_ip(request))
    session.commit()
    back = "/automation" if _text(form, "back") == "list" else f"/automation/rules/{rule.id}"
    return redirect(_with(back, done="enabled" if enabled else "disabled"))


@router.post("/automation/rules/{rule_id}/delete")
def delete_rule(request: Request, rule_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Delete a rule and its run log."""
    svc.delete_rule(session, user=user, rule=svc.get_rule(session, rule_id, user=user), ip=client_ip(request))
    session.commit()
    return redirect("/automation?done=deleted")


@router.post("/automation/rules/{rule_id}/dry-run", response_class=HTMLResponse)
def dry_run_rule(request: Request, rule_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Show what the rule would do now; nothing is changed."""
    rule = svc.get_rule(session, rule_id, user=user)
    plan = svc.dry_run(session, get_runtime(request), user=user, rule=rule)
    session.rollback()
    ctx = {"active": "rules", "rule": rule, "plan": plan, **_helpers()}
    return render(request, "automation/plan.html", ctx, user=user)


@router.post("/automation/rules/{rule_id}/run")
def run_rule(request: Request, rule_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Queue a run now (recorded as skipped, with the reason, when the character is stopped)."""
    rule = svc.get_rule(session, rule_id, user=user)
    run = svc.run_now(session, user=user, rule=rule, ip=client_ip(request))
    session.commit()
    return redirect(f"/automation/runs/{run.id}?done=queued")


@router.get("/automation/runs/{run_id}", response_class=HTMLResponse)
def read_run(request: Request, run_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """One run: trigger, status and each step's outcome."""
    run = svc.get_run(session, run_id, user=user)
    rule = svc.get_rule(session, run.rule_id, user=user)
    created = {k: v for k, v in (run.created_ids or {}).items() if k != "items" and v}
    ctx = {"active": "rules", "run": run, "rule": rule, "created": created,
           "notice": DONE.get(request.query_params.get("done", ""), "") if run.status.value == "queued" else "",
           **_helpers()}
    return render(request, "automation/run.html", ctx, user=user)
