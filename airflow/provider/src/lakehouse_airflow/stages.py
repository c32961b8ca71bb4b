"""When a wait is over: a run's status judged against the stage a task waits for. Pure, no Kubernetes client.

The trigger, the sensor and the operator share it; DAG files import it at parse time, so it stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import Phase


class RunStage(StrEnum):
    """What a task waits for. Each is a condition the operator sets (or the phase it moves to)."""

    ACCEPTED = "accepted"  # Validated: spec, contract and source checked
    RAW_READY = "raw_ready"  # Ingested: raw and quarantine written (NiFi or built-in)
    TRANSFORM_STARTED = "transform_started"  # the transform has begun (Spark or the fast path)
    SUCCEEDED = "succeeded"  # Ready: bronze rows committed


class Verdict(StrEnum):
    WAITING = "waiting"
    REACHED = "reached"
    FAILED = "failed"


@dataclass(frozen=True)
class StageOutcome:
    verdict: Verdict
    message: str = ""
    status: dict[str, Any] = field(default_factory=dict)

    def to_event(self) -> dict[str, Any]:
        return {"verdict": str(self.verdict), "message": self.message, "status": self.status}


def stage_outcome(run: dict[str, Any] | None, stage: RunStage, namespace: str, name: str) -> StageOutcome:
    """Whether the wait for `stage` is over for this run (None: the run does not exist).

    A stage the run got past counts as reached even when the run failed later, so a failed run fails the
    task that waits on the stage it failed in, with the run's reason."""
    if run is None:
        return StageOutcome(Verdict.FAILED, f"IngestionRun {namespace}/{name} does not exist (deleted?)")
    status = run.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions", [])}
    phase = status.get("phase")

    def condition_true(type_: ConditionType) -> bool:
        return conditions.get(type_, {}).get("status") == "True"

    reached = {
        RunStage.ACCEPTED: condition_true(ConditionType.VALIDATED),
        RunStage.RAW_READY: condition_true(ConditionType.INGESTED),
        # The transform began once ingest finished: in Transforming, done, or failed after RawReady.
        RunStage.TRANSFORM_STARTED: phase in (Phase.TRANSFORMING, Phase.SUCCEEDED)
        or (phase == Phase.FAILED and condition_true(ConditionType.INGESTED)),
        RunStage.SUCCEEDED: phase == Phase.SUCCEEDED,
    }[stage]
    if reached:
        return StageOutcome(Verdict.REACHED, f"IngestionRun {namespace}/{name}: {stage} ({phase})", status)
    if phase == Phase.FAILED:
        failed = conditions.get(ConditionType.FAILED) or conditions.get(ConditionType.READY) or {}
        message = f"IngestionRun {namespace}/{name} failed ({failed.get('reason')}): {status.get('message')}"
        return StageOutcome(Verdict.FAILED, message, status)
    return StageOutcome(Verdict.WAITING, f"IngestionRun {namespace}/{name}: {phase or 'not started'}", status)
