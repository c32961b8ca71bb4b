from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from lakehouse.k8s.ingestionrun.conditions import Condition
from lakehouse.k8s.ingestionrun.spec import (
    DATASET_NAME_MAX_LENGTH,
    DATASET_NAME_PATTERN,
    IngestEngineName,
    IngestionRunSpec,
    Source,
    TransformEngineName,
)
from lakehouse.k8s.ingestionrun.status import IngestionRunStatus, RowCounts
from lakehouse_api.schemas.base import CamelModel


class UploadCreate(CamelModel):
    """The form fields of an upload; they must come before the `file` part, which is streamed."""

    dataset: str = Field(
        pattern=DATASET_NAME_PATTERN,
        max_length=DATASET_NAME_MAX_LENGTH,
        description="Dataset contract the file must satisfy.",
    )
    ingest_engine: IngestEngineName | None = Field(
        default=None, description="Ingest engine; the operator picks if unset."
    )
    transform_engine: TransformEngineName | None = Field(
        default=None, description="Transform engine; the operator picks by file size if unset."
    )


class UploadAccepted(CamelModel):
    upload_id: str
    run_name: str
    dataset: str
    status_url: str
    object_uri: str
    format: str
    size_bytes: int
    sha256: str
    filename: str
    replayed: bool = Field(default=False, description="True when an earlier upload with this Idempotency-Key answered.")


class EventPublic(CamelModel):
    type: str | None
    reason: str | None
    message: str | None
    count: int | None
    first_time: dt.datetime | None
    last_time: dt.datetime | None

    @classmethod
    def from_event(cls, event: Any) -> EventPublic:  # a kubernetes V1Event / CoreV1Event
        first = event.first_timestamp or event.event_time or event.metadata.creation_timestamp
        return cls(
            type=event.type,
            reason=event.reason,
            message=event.message,
            count=event.count,
            first_time=first,
            last_time=event.last_timestamp or first,
        )


class UploadPublic(CamelModel):
    upload_id: str
    run_name: str
    dataset: str
    phase: str | None
    message: str | None
    source: Source
    engines: dict[str, str] = Field(default_factory=dict)
    conditions: list[Condition] = Field(default_factory=list)
    counts: RowCounts | None = None
    table: str | None = None
    snapshot_id: int | None = None
    raw_path: str | None = None
    quarantine_path: str | None = None
    created_at: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    events: list[EventPublic] | None = Field(default=None, description="Kubernetes events; only on a single upload.")

    @classmethod
    def from_run(cls, run: dict[str, Any], events: list[Any] | None = None) -> UploadPublic:
        spec, metadata = IngestionRunSpec.from_body(run), run["metadata"]
        status = IngestionRunStatus.from_body(run.get("status"))
        engines = status.engines or spec.engines
        return cls(
            upload_id=spec.upload_id,
            run_name=metadata["name"],
            dataset=spec.dataset,
            phase=status.phase,
            message=status.message,
            source=spec.source,
            engines=engines.to_k8s() if engines else {},
            conditions=status.conditions,
            counts=status.counts,
            table=status.table,
            snapshot_id=status.snapshot_id,
            raw_path=status.raw_path,
            quarantine_path=status.quarantine_path,
            created_at=metadata.get("creationTimestamp"),
            start_time=status.start_time,
            completion_time=status.completion_time,
            events=[EventPublic.from_event(e) for e in events] if events is not None else None,
        )


class UploadsPublic(CamelModel):
    data: list[UploadPublic]
    count: int = Field(description="Uploads matching the filters, across all pages.")
