"""The status model. BaseStatus holds what every resource status has; IngestionRunStatus adds the run's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lakehouse_operator.api.conditions import Condition
from lakehouse_operator.api.phase import Phase


class _CamelModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    def to_k8s(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class BaseStatus(_CamelModel):
    conditions: list[Condition] = []
    observed_generation: int | None = Field(default=None, alias="observedGeneration")


class RowCounts(_CamelModel):
    input: int | None = None
    valid: int | None = None
    rejected: int | None = None
    written: int | None = None


class EngineChoice(_CamelModel):
    ingest: str | None = None
    transform: str | None = None


class IngestionRunStatus(BaseStatus):
    phase: Phase | None = None
    message: str | None = None
    start_time: str | None = Field(default=None, alias="startTime")
    completion_time: str | None = Field(default=None, alias="completionTime")
    processing_date: str | None = Field(default=None, alias="processingDate")
    engines: EngineChoice | None = None
    counts: RowCounts | None = None
    raw_path: str | None = Field(default=None, alias="rawPath")
    quarantine_path: str | None = Field(default=None, alias="quarantinePath")
    table: str | None = None
    snapshot_id: int | None = Field(default=None, alias="snapshotId")
    attempts: int | None = None

    @classmethod
    def from_body(cls, status: dict[str, Any] | None) -> IngestionRunStatus:
        return cls.model_validate(dict(status or {}))

    @property
    def is_done(self) -> bool:
        return self.phase is not None and self.phase.is_terminal
