"""Automation jobs: run one fired rule's steps and write its run log (see ``services/automation.py``)."""

from __future__ import annotations

from typing import Any

from ainfluencer.jobs.errors import PermanentJobError
from ainfluencer.jobs.registry import Handler, JobContext


def run_rule(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Execute the steps of one queued automation run; a retry resumes after the last logged step."""
    from ainfluencer.services.automation import execute_run

    try:
        run_id = int(payload["run_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentJobError("payload needs a whole number 'run_id'") from exc
    return execute_run(ctx.runtime, run_id)


HANDLERS: dict[str, Handler] = {"automation.run": run_rule}
