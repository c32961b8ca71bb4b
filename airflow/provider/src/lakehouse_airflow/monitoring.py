"""Which runs need a person: in flight in one phase for too long, or failed since the last check."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.status import parse_time


@dataclass(frozen=True)
class Finding:
    run: str
    problem: str  # "stuck" | "failed"
    detail: str

    def __str__(self) -> str:
        return f"{self.run}: {self.problem} - {self.detail}"


def findings(
    runs: list[dict[str, Any]], now: dt.datetime, stuck_after: dt.timedelta, since: dt.datetime
) -> list[Finding]:
    """Runs in a non-terminal phase for longer than `stuck_after`, and runs that failed after `since`."""
    found: list[Finding] = []
    for run in runs:
        name = f"{run['metadata'].get('namespace')}/{run['metadata']['name']}"
        status = run.get("status") or {}
        phase, entered = status.get("phase"), status.get("phaseStartTime")
        if phase == Phase.FAILED:
            finished = status.get("completionTime") or entered
            if finished and parse_time(finished) > since:
                failed = next((c for c in status.get("conditions", []) if c.get("type") == ConditionType.FAILED), {})
                found.append(Finding(name, "failed", f"{failed.get('reason')} at {finished}: {status.get('message')}"))
        elif phase != Phase.SUCCEEDED and entered and now - parse_time(entered) > stuck_after:
            found.append(Finding(name, "stuck", f"in {phase} since {entered} (over {stuck_after})"))
    return found
