"""Automation rules: CRUD, enable/disable, dry-run, run now, run log, templates."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.schemas_automation import (
    DryRunRequest,
    PlanPublic,
    RuleCreate,
    RulePublic,
    RulesPublic,
    RuleUpdate,
    RunPublic,
    RunsPublic,
    RunSummary,
    StepOutcome,
    TemplatePublic,
    TemplatesPublic,
)
from ainfluencer.db.models_automation import AutomationRule, AutomationRun
from ainfluencer.errors import InvalidInput
from ainfluencer.services import automation as svc

router = APIRouter(prefix="/automation", tags=["automation"])


def rule_public(session: Session, rule: AutomationRule, last: AutomationRun | None = None) -> RulePublic:
    """Schema for one rule."""
    if last is None:
        last = svc.last_runs(session, [rule.id]).get(rule.id)
    return RulePublic(
        id=rule.id, character_id=rule.character_id, name=rule.name, description=rule.description,
        enabled=rule.enabled, trigger_kind=rule.trigger_kind.value, trigger_config=rule.trigger_config or {},
        trigger_text=svc.describe_trigger(rule), steps=list(rule.steps or []), policy=rule.policy,
        timezone=rule.timezone, template_key=rule.template_key, next_run_at=rule.next_run_at,
        last_run_at=rule.last_run_at, last_status=rule.last_status,
        last_run=RunSummary(id=last.id, status=last.status.value, finished_at=last.finished_at, message=last.message)
        if last else None,
        created_by=rule.created_by, created_at=rule.created_at, updated_at=rule.updated_at,
    )


def run_public(run: AutomationRun) -> RunPublic:
    """Schema for one run."""
    return RunPublic(
        id=run.id, rule_id=run.rule_id, character_id=run.character_id, trigger=run.trigger,
        trigger_info=run.trigger_info or {}, dry_run=run.dry_run, status=run.status.value, message=run.message,
        steps=[StepOutcome.model_validate(e) for e in run.steps_log or []],
        created_ids={k: v for k, v in (run.created_ids or {}).items() if k != "items"}, job_id=run.job_id,
        started_at=run.started_at, finished_at=run.finished_at, created_at=run.created_at,
    )


def _spec(body: RuleCreate) -> svc.RuleSpec:
    if body.template:
        spec = svc.template_spec(body.template, character_id=body.character_id, name=body.name, policy=body.policy,
                                 timezone=body.timezone, account_ids=body.account_ids)
        spec.enabled = body.enabled
        return spec
    if body.trigger_kind is None:
        raise InvalidInput("Give a trigger_kind (cron, interval, daily, event) or a template.", field="trigger_kind")
    return svc.RuleSpec(character_id=body.character_id, name=body.name, trigger_kind=body.trigger_kind,
                        trigger_config=body.trigger_config, steps=body.steps, policy=body.policy or "review",
                        timezone=body.timezone, enabled=body.enabled, description=body.description)


@router.get("/templates", response_model=TemplatesPublic)
def read_templates(principal: Reader) -> TemplatesPublic:
    """Ready-made rules (as data): create one with POST /automation/rules {"template": key, ...}."""
    return TemplatesPublic(data=[
        TemplatePublic(key=t.key, name=t.name, description=t.description, trigger_kind=t.trigger_kind,
                       trigger_config=t.trigger_config, steps=t.steps, policy=t.policy)
        for t in svc.RULE_TEMPLATES.values()
    ])


@router.get("/rules", response_model=RulesPublic)
def read_rules(principal: Reader, session: SessionDep, character_id: int | None = Query(None)) -> RulesPublic:
    """Rules of the characters you can see, with next run and last outcome."""
    rules = svc.list_rules(session, user=principal.user, character_id=character_id)
    last = svc.last_runs(session, [r.id for r in rules])
    return RulesPublic(data=[rule_public(session, r, last.get(r.id)) for r in rules], count=len(rules))


@router.post("/rules", response_model=RulePublic, status_code=status.HTTP_201_CREATED)
def create_rule(body: RuleCreate, request: Request, principal: Writer, session: SessionDep) -> RulePublic:
    """Create a rule; every field is checked before anything is saved (422 names the field)."""
    rule = svc.create_rule(session, user=principal.user, spec=_spec(body), ip=client_ip(request))
    return rule_public(session, rule)


@router.get("/rules/{rule_id}", response_model=RulePublic)
def read_rule(rule_id: int, principal: Reader, session: SessionDep) -> RulePublic:
    """One rule."""
    return rule_public(session, svc.get_rule(session, rule_id, user=principal.user))


@router.patch("/rules/{rule_id}", response_model=RulePublic)
def update_rule(rule_id: int, body: RuleUpdate, request: Request, principal: Writer,
                session: SessionDep) -> RulePublic:
    """Change a rule; the next firing is recomputed from now."""
    rule = svc.get_rule(session, rule_id, user=principal.user)
    spec = svc.RuleSpec(
        character_id=rule.character_id, name=body.name if body.name is not None else rule.name,
        trigger_kind=body.trigger_kind or rule.trigger_kind.value,
        trigger_config=body.trigger_config if body.trigger_config is not None else dict(rule.trigger_config),
        steps=body.steps if body.steps is not None else list(rule.steps), policy=body.policy or rule.policy,
        timezone=body.timezone or rule.timezone, enabled=rule.enabled if body.enabled is None else body.enabled,
        description=body.description if body.description is not None else rule.description,
    )
    svc.update_rule(session, user=principal.user, rule=rule, spec=spec, ip=client_ip(request))
    return rule_public(session, rule)


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: int, request: Request, principal: Writer, session: SessionDep) -> Response:
    """Delete a rule and its run log."""
    svc.delete_rule(session, user=principal.user, rule=svc.get_rule(session, rule_id, user=principal.user),
                    ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/rules/{rule_id}/enable", response_model=RulePublic)
def enable_rule(rule_id: int, request: Request, principal: Writer, session: SessionDep) -> RulePublic:
    """Turn a rule on; its next firing counts from now (missed slots are not fired)."""
    rule = svc.get_rule(session, rule_id, user=principal.user)
    svc.set_enabled(session, user=principal.user, rule=rule, enabled=True, ip=client_ip(request))
    return rule_public(session, rule)


@router.post("/rules/{rule_id}/disable", response_model=RulePublic)
def disable_rule(rule_id: int, request: Request, principal: Writer, session: SessionDep) -> RulePublic:
    """Turn a rule off."""
    rule = svc.get_rule(session, rule_id, user=principal.user)
    svc.set_enabled(session, user=principal.user, rule=rule, enabled=False, ip=client_ip(request))
    return rule_public(session, rule)


@router.post("/rules/{rule_id}/dry-run", response_model=PlanPublic)
def dry_run_rule(rule_id: int, principal: Writer, session: SessionDep, runtime: RuntimeDep,
                 body: DryRunRequest | None = None) -> PlanPublic:
    """What the rule would do now, step by step; writes nothing (``record`` keeps a dry-run row)."""
    rule = svc.get_rule(session, rule_id, user=principal.user)
    plan = svc.dry_run(session, runtime, user=principal.user, rule=rule, record=bool(body and body.record))
    return PlanPublic(rule_id=plan.rule_id, trigger=plan.trigger, next_run_at=plan.next_run_at, due_now=plan.due_now,
                      stopped=plan.stopped, policy=plan.policy,
                      steps=[StepOutcome.model_validate(e) for e in plan.steps], run_id=plan.run_id)


@router.post("/rules/{rule_id}/run", response_model=RunPublic, status_code=status.HTTP_202_ACCEPTED)
def run_rule(rule_id: int, request: Request, principal: Writer, session: SessionDep) -> RunPublic:
    """Queue a run now; a paused or archived character's run is recorded as skipped with the reason."""
    rule = svc.get_rule(session, rule_id, user=principal.user)
    return run_public(svc.run_now(session, user=principal.user, rule=rule, ip=client_ip(request)))


@router.get("/runs", response_model=RunsPublic)
def read_runs(principal: Reader, session: SessionDep, rule_id: int | None = Query(None),
              limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0)) -> RunsPublic:
    """The run log, newest first (optionally of one rule)."""
    if rule_id is not None:
        svc.get_rule(session, rule_id, user=principal.user)
    rows, total = svc.list_runs(session, user=principal.user, rule_id=rule_id, limit=limit, offset=offset)
    return RunsPublic(data=[run_public(r) for r in rows], count=total)


@router.get("/runs/{run_id}", response_model=RunPublic)
def read_run(run_id: int, principal: Reader, session: SessionDep) -> RunPublic:
    """One run with each step's outcome."""
    return run_public(svc.get_run(session, run_id, user=principal.user))
