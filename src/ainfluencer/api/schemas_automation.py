"""Schemas of the automation API: rules, runs, dry-run plans and templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

STEP_HELP = (
    "Ordered steps. Each is an object with 'action': generate {content: caption|image, template, platform, style, "
    "brief, count}, pick_asset {kind: image|video, count}, review {} (applies the rule's policy), "
    "schedule {account_ids, platforms} (next free posting slots) or publish {account_ids, platforms} (now). "
    "'schedule'/'publish' must come last; generated text needs a 'review' step before them."
)
TRIGGER_HELP = (
    "cron: {expression: '0 9 * * 1-5'}; interval: {every: 30, unit: minutes|hours}; daily: {time: 'HH:MM'}; "
    "event: {event: asset_approved, kinds: [image, video]} or {event: queue_below, threshold: 5, "
    "check_every_minutes: 15, account_ids: []}. Times are read in the rule's time zone."
)


class RuleCreate(BaseModel):
    """A new rule: from scratch (trigger + steps) or from a template (``template``)."""

    model_config = ConfigDict(extra="forbid")

    character_id: int
    name: str = Field("", max_length=120, description="defaults to the template's name")
    template: str | None = Field(None, description="a template key from GET /automation/templates")
    trigger_kind: Literal["cron", "interval", "daily", "event"] | None = None
    trigger_config: dict[str, Any] = Field(default_factory=dict, description=TRIGGER_HELP)
    steps: list[dict[str, Any]] = Field(default_factory=list, description=STEP_HELP)
    policy: str | None = Field(None, description="review (default: a person approves generated text) or "
                                                 "auto_approve (recorded in every run log)")
    timezone: str | None = Field(None, description="IANA zone; defaults to the character's")
    account_ids: list[int] = Field(default_factory=list, description="with a template: post only to these accounts")
    enabled: bool = True
    description: str = Field("", max_length=2000)


class RuleUpdate(BaseModel):
    """Changed fields of a rule (the character stays)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=120)
    trigger_kind: Literal["cron", "interval", "daily", "event"] | None = None
    trigger_config: dict[str, Any] | None = Field(None, description=TRIGGER_HELP)
    steps: list[dict[str, Any]] | None = Field(None, description=STEP_HELP)
    policy: str | None = None
    timezone: str | None = None
    enabled: bool | None = None
    description: str | None = Field(None, max_length=2000)


class RunSummary(BaseModel):
    """The outcome of a rule's newest run."""

    id: int
    status: str
    finished_at: datetime | None
    message: str


class RulePublic(BaseModel):
    """A rule with its next firing and last outcome."""

    id: int
    character_id: int
    name: str
    description: str
    enabled: bool
    trigger_kind: str
    trigger_config: dict[str, Any]
    trigger_text: str
    steps: list[dict[str, Any]]
    policy: str
    timezone: str
    template_key: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str
    last_run: RunSummary | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class RulesPublic(BaseModel):
    """A list of rules."""

    data: list[RulePublic]
    count: int


class StepOutcome(BaseModel):
    """One step's outcome in a run log or plan."""

    model_config = ConfigDict(extra="allow")

    index: int
    action: str
    outcome: str = Field(description="ok | planned | waiting | skipped | partial | failed")
    message: str
    at: str | None = None


class RunPublic(BaseModel):
    """One run of a rule: why it fired, each step's outcome, what it created."""

    id: int
    rule_id: int
    character_id: int | None
    trigger: str
    trigger_info: dict[str, Any]
    dry_run: bool
    status: str
    message: str
    steps: list[StepOutcome]
    created_ids: dict[str, Any]
    job_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class RunsPublic(BaseModel):
    """A page of runs, newest first."""

    data: list[RunPublic]
    count: int


class DryRunRequest(BaseModel):
    """Options of a dry run."""

    model_config = ConfigDict(extra="forbid")

    record: bool = Field(False, description="keep a run row flagged dry_run (nothing else is ever written)")


class PlanPublic(BaseModel):
    """What the rule would do now; nothing was changed."""

    rule_id: int
    trigger: str
    next_run_at: datetime | None
    due_now: bool
    stopped: str = Field(description="why the rule would not run now ('' when it would)")
    policy: str
    steps: list[StepOutcome]
    run_id: int | None


class TemplatePublic(BaseModel):
    """A ready-made rule."""

    key: str
    name: str
    description: str
    trigger_kind: str
    trigger_config: dict[str, Any]
    steps: list[dict[str, Any]]
    policy: str


class TemplatesPublic(BaseModel):
    """All rule templates."""

    data: list[TemplatePublic]
