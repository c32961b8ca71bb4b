"""The status model. BaseStatus holds what every resource status has; IngestionRunStatus adds the run's."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from lakehouse.k8s.ingestionrun.conditions import Condition
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName
from lakehouse.k8s.model import K8sModel


class BaseStatus(K8sModel):
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = Field(default=None, alias="observedGeneration")


class RowCounts(K8sModel):
    input: int | None = None
    valid: int | None = None
    rejected: int | None = None
    written: int | None = None


class EngineChoice(K8sModel):
    ingest: IngestEngineName | None = None
    transform: TransformEngineName | None = None


class IngestionRunStatus(BaseStatus):
    phase: Phase | None = None
    message: str | None = None
    start_time: str | None = Field(default=None, alias="startTime")
    completion_time: str | None = Field(default=None, alias="completionTime")
    phase_start_time: str | None = Field(default=None, alias="phaseStartTime")
    processing_date: str | None = Field(default=None, alias="processingDate")
    engines: EngineChoice | None = None
    counts: RowCounts | None = None
    raw_path: str | None = Field(default=None, alias="rawPath")
    quarantine_path: str | None = Field(default=None, alias="quarantinePath")
    table: str | None = None
    snapshot_id: int | None = Field(default=None, alias="snapshotId")
    attempts: int | None = None
    # Fixed when the run is validated: the contract every stage uses, and its Dataset's generation (None when
    # it came from a contract file), so a Dataset changed mid-run cannot mix two versions in one run.
    dataset_generation: int | None = Field(default=None, alias="datasetGeneration")
    contract: dict[str, Any] | None = None

    @classmethod
    def from_body(cls, status: dict[str, Any] | None) -> IngestionRunStatus:
        return cls.model_validate(dict(status or {}))

    def engine_in(self, phase: Phase) -> str | None:
        """The engine at work while the run is in `phase` (Ingesting or Transforming), if chosen."""
        engines = self.engines or EngineChoice()
        return {Phase.INGESTING: engines.ingest, Phase.TRANSFORMING: engines.transform}.get(phase)

    @property
    def is_done(self) -> bool:
        return self.phase is not None and self.phase.is_terminal


def parse_time(value: str) -> dt.datetime:
    """A status timestamp (RFC 3339, as Kubernetes writes it) as an aware datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
