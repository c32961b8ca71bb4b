from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from lakehouse.k8s.ingestionrun.spec import (
    DATASET_NAME_MAX_LENGTH,
    DATASET_NAME_PATTERN,
    IngestEngineName,
    TransformEngineName,
)
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


class SourcePublic(CamelModel):
    uri: str
    format: str
    size_bytes: int | None = None
    sha256: str | None = None
    filename: str | None = None


class ConditionPublic(CamelModel):
    type: str
    status: str
    reason: str
    message: str = ""
    last_transition_time: str | None = None


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


class RowCountsPublic(CamelModel):
    input: int | None = None
    valid: int | None = None
    rejected: int | None = None
    written: int | None = None


class UploadPublic(CamelModel):
    upload_id: str
    run_name: str
    dataset: str
    phase: str | None
    message: str | None
    source: SourcePublic
    engines: dict[str, str] = Field(default_factory=dict)
    conditions: list[ConditionPublic] = Field(default_factory=list)
    counts: RowCountsPublic | None = None
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
        spec, status, metadata = run.get("spec", {}), run.get("status") or {}, run["metadata"]
        return cls(
            upload_id=spec.get("uploadId", metadata["name"]),
            run_name=metadata["name"],
            dataset=spec.get("dataset", ""),
            phase=status.get("phase"),
            message=status.get("message"),
            source=SourcePublic.model_validate(spec.get("source", {})),
            engines=status.get("engines") or spec.get("engines") or {},
            conditions=[ConditionPublic.model_validate(c) for c in status.get("conditions", [])],
            counts=RowCountsPublic.model_validate(status["counts"]) if status.get("counts") else None,
            table=status.get("table"),
            snapshot_id=status.get("snapshotId"),
            raw_path=status.get("rawPath"),
            quarantine_path=status.get("quarantinePath"),
            created_at=metadata.get("creationTimestamp"),
            start_time=status.get("startTime"),
            completion_time=status.get("completionTime"),
            events=[EventPublic.from_event(e) for e in events] if events is not None else None,
        )


class UploadsPublic(CamelModel):
    data: list[UploadPublic]
    count: int = Field(description="Uploads matching the filters, across all pages.")
