"""Automation rows (issue 5): rules (a trigger plus ordered action steps) and their run log.

A rule belongs to one character. ``next_run_at`` (UTC) is when the scheduler's tick next looks at
it: the next cron/interval/daily slot, or the next "queue below N" check. Each firing creates one
``automation_runs`` row whose ``slot_key`` is unique (rule id + slot time, or + asset id for the
"asset approved" event), so two schedulers or a retried tick can never fire a slot twice.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ainfluencer.db.models import Base, utcnow


class TriggerKind(enum.StrEnum):
    """What makes a rule fire."""

    cron = "cron"
    interval = "interval"
    daily = "daily"
    event = "event"


class RunStatus(enum.StrEnum):
    """Where one run of a rule stands."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    partial = "partial"  # some steps or items did not go through
    failed = "failed"
    skipped = "skipped"  # did not run: character paused/archived, rule disabled


class AutomationRule(Base):
    """A trigger and ordered action steps for one character, with the approval policy it runs under."""

    __tablename__ = "automation_rules"
    __table_args__ = (
        Index("ix_automation_rules_enabled_next", "enabled", "next_run_at"),
        Index("ix_automation_rules_character", "character_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger_kind: Mapped[TriggerKind] = mapped_column(Enum(TriggerKind, native_enum=False, length=16))
    trigger_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    policy: Mapped[str] = mapped_column(String(16), default="review")  # review | auto_approve
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    template_key: Mapped[str] = mapped_column(String(64), default="")
    next_run_at: Mapped[datetime | None] = mapped_column(default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status: Mapped[str] = mapped_column(String(16), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<AutomationRule id={self.id} {self.name!r} {self.trigger_kind} enabled={self.enabled}>"


class AutomationRun(Base):
    """One firing of a rule: why it fired, each step's outcome, and the ids of what it created."""

    __tablename__ = "automation_runs"
    __table_args__ = (Index("ix_automation_runs_rule_created", "rule_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"))
    character_id: Mapped[int | None] = mapped_column(ForeignKey("characters.id", ondelete="SET NULL"),
                                                     default=None)
    trigger: Mapped[str] = mapped_column(String(32))  # cron | interval | daily | asset_approved | queue_below | manual
    trigger_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    slot_key: Mapped[str | None] = mapped_column(String(160), unique=True, default=None)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[RunStatus] = mapped_column(Enum(RunStatus, native_enum=False, length=16),
                                              default=RunStatus.queued)
    message: Mapped[str] = mapped_column(Text, default="")
    steps_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<AutomationRun id={self.id} rule={self.rule_id} status={self.status}>"
