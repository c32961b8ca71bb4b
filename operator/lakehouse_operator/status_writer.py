"""The one place that writes IngestionRun status.

`set_phase` re-reads the object, refuses moves the state machine does not allow, updates the
matching conditions and observedGeneration, skips writes that change nothing, and patches
the status subresource with a resourceVersion precondition so a concurrent write is retried
on fresh data instead of being overwritten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.conditions import STAGE_CONDITION, ConditionType, now_rfc3339, upsert_condition
from lakehouse.k8s.ingestionrun.phase import ALLOWED_TRANSITIONS, Phase
from lakehouse.k8s.ingestionrun.status import IngestionRunStatus

log = logging.getLogger(__name__)
_CONFLICT_RETRIES = 5


class IllegalTransitionError(RuntimeError):
    pass


@dataclass(frozen=True)
class ConditionUpdate:
    type: ConditionType
    status: str
    reason: str
    message: str = ""


@dataclass
class PhaseChange:
    phase: Phase
    reason: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)  # other status fields, by their Python names
    conditions: list[ConditionUpdate] = field(default_factory=list)


@dataclass(frozen=True)
class WriteOutcome:
    status: IngestionRunStatus
    changed: bool
    transitioned: bool  # the phase itself moved
    # The run as the API server answered the write (its new resourceVersion), or as read when nothing was written:
    # a handler that goes on to the next stage (handlers._go_on) writes on it without reading the run again.
    run: dict[str, Any] | None = None


class StatusWriter:
    def __init__(self, api: client.CustomObjectsApi | None = None) -> None:
        self._api = api or client.CustomObjectsApi()

    def read(self, namespace: str, name: str) -> dict[str, Any]:
        return self._api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def list_runs(self, namespace: str) -> list[dict[str, Any]]:
        return self._api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _request_timeout=5)["items"]

    def set_phase(
        self, namespace: str, name: str, change: PhaseChange, read: dict[str, Any] | None = None
    ) -> WriteOutcome:
        """`read`: the run as the caller just read it, which saves a read; a write it makes stale is refused
        (resourceVersion) and retried on a fresh read."""
        for _ in range(_CONFLICT_RETRIES):
            body, read = read or self.read(namespace, name), None
            current = IngestionRunStatus.from_body(body.get("status"))
            if current.is_done:
                return WriteOutcome(current, changed=False, transitioned=False, run=body)
            if change.phase != current.phase and change.phase not in ALLOWED_TRANSITIONS[current.phase]:
                raise IllegalTransitionError(f"{name}: {current.phase} -> {change.phase} is not allowed")
            desired = apply_change(current, change, body["metadata"].get("generation"))
            if desired.to_k8s() == current.to_k8s():
                return WriteOutcome(current, changed=False, transitioned=False, run=body)
            patch = {
                "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                "status": desired.to_k8s(),
            }
            try:
                patched = self._api.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, PLURAL, name, patch
                )
            except ApiException as error:
                if error.status == 409:
                    continue
                raise
            return WriteOutcome(desired, changed=True, transitioned=desired.phase != current.phase, run=patched)
        raise RuntimeError(f"{name}: status kept changing under us; giving up after {_CONFLICT_RETRIES} tries")


def apply_change(current: IngestionRunStatus, change: PhaseChange, generation: int | None) -> IngestionRunStatus:
    """The status after the change (pure; tested without an API server)."""
    desired = current.model_copy(update={**change.fields, "phase": change.phase, "message": change.message})
    conditions = list(current.conditions)
    for update in change.conditions:
        conditions = upsert_condition(conditions, update.type, update.status, update.reason, update.message, generation)
    ready = "True" if change.phase is Phase.SUCCEEDED else "False"
    conditions = upsert_condition(conditions, ConditionType.READY, ready, change.reason, change.message, generation)
    if change.phase is Phase.FAILED:
        conditions = upsert_condition(
            conditions, ConditionType.FAILED, "True", change.reason, change.message, generation
        )
        if (stage := STAGE_CONDITION.get(current.phase)) is not None:  # None: refused before it was Pending
            conditions = upsert_condition(conditions, stage, "False", change.reason, change.message, generation)
    updates: dict[str, Any] = {"conditions": conditions, "observed_generation": generation}
    if change.phase is not current.phase:
        updates["phase_start_time"] = now_rfc3339()
    if change.phase.is_terminal and not current.completion_time:
        updates["completion_time"] = now_rfc3339()
    return desired.model_copy(update=updates)
