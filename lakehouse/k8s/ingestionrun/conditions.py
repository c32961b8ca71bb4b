"""Conditions in the Kubernetes shape (metav1.Condition)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from lakehouse.k8s.ingestionrun.phase import Phase


class ConditionType(StrEnum):
    VALIDATED = "Validated"  # spec, contract and source object checked
    INGESTED = "Ingested"  # raw and quarantine written
    TRANSFORMED = "Transformed"  # bronze rows committed
    READY = "Ready"  # the run succeeded; False with the phase as reason while it is under way
    FAILED = "Failed"


# The condition each in-flight phase's stage sets True when it succeeds, and False (with the run's reason) when
# the run fails in it, so `kubectl describe` shows which stage failed. RawReady starts the transform.
STAGE_CONDITION: dict[Phase, ConditionType] = {
    Phase.PENDING: ConditionType.VALIDATED,
    Phase.INGESTING: ConditionType.INGESTED,
    Phase.RAW_READY: ConditionType.TRANSFORMED,
    Phase.TRANSFORMING: ConditionType.TRANSFORMED,
}


class Condition(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = ""
    last_transition_time: str = Field(alias="lastTransitionTime")
    observed_generation: int | None = Field(default=None, alias="observedGeneration")


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def upsert_condition(
    conditions: list[Condition], type_: str, status: str, reason: str, message: str, generation: int | None
) -> list[Condition]:
    """A new list with the condition set; lastTransitionTime moves only when status changes."""
    previous = next((c for c in conditions if c.type == type_), None)
    transition_time = (
        previous.last_transition_time if previous is not None and previous.status == status else now_rfc3339()
    )
    condition = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        lastTransitionTime=transition_time,
        observedGeneration=generation,
    )
    if previous is None:
        return [*conditions, condition]
    return [condition if c.type == type_ else c for c in conditions]
