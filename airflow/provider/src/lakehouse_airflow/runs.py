"""IngestionRuns for DAGs: create or adopt one, and judge from its status whether a wait is over.

Kubernetes client and the platform's lakehouse.k8s only, no Airflow: the hooks, the trigger and the sensor
call these, and tests/unit/test_airflow_provider.py tests them without Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestionRunSpec, ingestion_run
from lakehouse.k8s.objects import get_custom_object

CREATED_BY_LABEL = {"app.kubernetes.io/created-by": "airflow"}


@dataclass(frozen=True)
class RunRequest:
    namespace: str
    upload_id: str
    dataset: str | None = None
    source_uri: str | None = None
    source_format: str | None = None
    ingest_engine: str | None = None
    transform_engine: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def run_body(self) -> dict[str, Any]:
        """The IngestionRun to create when none exists for this upload yet; ValueError when the request
        cannot make one (a conf error: retrying cannot help)."""
        missing = [name for name in ("dataset", "source_uri", "source_format") if not getattr(self, name)]
        if missing:
            raise ValueError(
                f"no IngestionRun {self.namespace}/{self.upload_id} to adopt, and {', '.join(missing)} "
                "not given to create one"
            )
        engines = {k: v for k, v in (("ingest", self.ingest_engine), ("transform", self.transform_engine)) if v}
        try:
            spec = IngestionRunSpec.model_validate(
                {
                    "uploadId": self.upload_id,
                    "dataset": self.dataset,
                    "source": {"uri": self.source_uri, "format": self.source_format},
                    "engines": engines or None,
                }
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
            )
            raise ValueError(f"cannot create IngestionRun {self.namespace}/{self.upload_id}: {problems}") from error
        body = ingestion_run(spec, labels=CREATED_BY_LABEL)
        if self.annotations:
            body["metadata"]["annotations"] = dict(self.annotations)
        return body


def create_or_adopt(api: client.CustomObjectsApi, request: RunRequest) -> tuple[str, bool]:
    """(run name, adopted). A run that already exists for the upload (the API made it, or an earlier
    try of this task did) is adopted when it matches; a retry never creates a second run."""
    existing = get_run(api, request.namespace, request.upload_id)
    if existing is None:
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, request.namespace, PLURAL, request.run_body())
            return request.upload_id, False
        except ApiException as error:
            if error.status != 409:
                raise
            existing = get_run(api, request.namespace, request.upload_id)
            assert existing is not None
    spec = existing["spec"]
    for name, wanted, actual in (
        ("dataset", request.dataset, spec.get("dataset")),
        ("source_uri", request.source_uri, spec.get("source", {}).get("uri")),
    ):
        if wanted and wanted != actual:
            raise ValueError(f"IngestionRun {request.upload_id} exists with {name} {actual!r}, not {wanted!r}")
    return request.upload_id, True


def get_run(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    return get_custom_object(api, GROUP, VERSION, PLURAL, namespace, name)


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
