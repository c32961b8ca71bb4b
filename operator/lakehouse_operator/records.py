"""What a run leaves outside Kubernetes: its PostgreSQL rows, its Kafka events and its metrics.

StatusWriter owns the run's status; RunRecords owns everything else a phase change records. A
handler says what happened as a Record, and `handlers._transition` hands it here before it moves
the status. A crash between the two repeats the records on the retry, never skips them: every row
is an upsert on its natural key and every event carries a stable id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from lakehouse.db.metadata import JobRow, LineageRow, MetadataStore, WorkflowRow
from lakehouse.events import (
    BRONZE_LAYER_COMPLETE,
    FILE_UPLOADED,
    INGESTION_FAILED,
    RAW_DATA_READY,
    KafkaEventPublisher,
    PipelineEvent,
)
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName
from lakehouse.k8s.ingestionrun.status import EngineChoice, IngestionRunStatus, parse_time
from lakehouse_operator import metrics
from lakehouse_operator.engines.base import IngestOutcome, RunContext, TransformOutcome
from lakehouse_operator.status_writer import PhaseChange


@dataclass(frozen=True)
class Accepted:
    """The operator took the run on (Pending)."""


@dataclass(frozen=True)
class Validated:
    """Dataset and source checked; the ingest engine is chosen (Ingesting)."""

    engine: IngestEngineName


@dataclass(frozen=True)
class IngestSucceeded:
    """raw/ and quarantine/ are written (RawReady)."""

    engine: IngestEngineName
    attempt: int
    started_at: dt.datetime
    outcome: IngestOutcome
    dataset: str


@dataclass(frozen=True)
class TransformStarted:
    """The transform engine is chosen (Transforming)."""

    engine: TransformEngineName


@dataclass(frozen=True)
class TransformSucceeded:
    """The bronze rows are committed (Succeeded)."""

    engine: TransformEngineName
    attempt: int
    started_at: dt.datetime
    outcome: TransformOutcome
    run: RunContext


@dataclass(frozen=True)
class RunFailed:
    """The run ended Failed in `phase`; `stage` names the step for events and metrics."""

    phase: Phase
    stage: str
    attempt: int
    reason: str
    message: str


Record = Accepted | Validated | IngestSucceeded | TransformStarted | TransformSucceeded | RunFailed


class RunRecords:
    def __init__(self, metadata: MetadataStore, events: KafkaEventPublisher) -> None:
        self._metadata = metadata
        self._events = events

    def write(self, body: dict[str, Any], change: PhaseChange, record: Record) -> None:
        """Everything `record` leaves outside Kubernetes, then the run's workflow row for `change`."""
        now = dt.datetime.now(dt.UTC)
        workflow: dict[str, Any] = {}
        match record:
            case Accepted():
                pass
            case Validated():
                self._validated(body, record)
            case IngestSucceeded():
                self._ingest_succeeded(body, record, now)
                workflow = {"attempts": record.attempt}  # the status counts the next stage's from 0
            case TransformStarted():
                pass
            case TransformSucceeded():
                self._transform_succeeded(body, record, now)
                workflow = {
                    "target_table": record.outcome.table,
                    "snapshot_id": record.outcome.snapshot_id,
                    "finished_at": now,
                    "attempts": record.attempt,
                }
            case RunFailed():
                self._run_failed(body, record, now)
                workflow = {"finished_at": now, "attempts": record.attempt}
        self._metadata.upsert_workflow(_workflow_row(body, change, **workflow))

    def _validated(self, body: dict[str, Any], record: Validated) -> None:
        spec = body["spec"]
        self._publish(
            body, FILE_UPLOADED, {"dataset": spec["dataset"], "source": spec["source"], "ingestEngine": record.engine}
        )

    def _ingest_succeeded(self, body: dict[str, Any], record: IngestSucceeded, now: dt.datetime) -> None:
        name, outcome = body["metadata"]["name"], record.outcome
        self._metadata.record_job(
            JobRow(
                run_id=name,
                stage="ingest",
                engine=record.engine,
                attempt=record.attempt,
                status="succeeded",
                started_at=outcome.started_at or record.started_at,
                finished_at=now,
                rows_in=outcome.input_rows,
                rows_out=outcome.valid_rows,
                rows_rejected=outcome.rejected_rows,
                bytes_in=outcome.bytes_in,
            )
        )
        if outcome.checks:
            self._metadata.record_quality(name, record.dataset, outcome.checks)
        counts = {"input": outcome.input_rows, "valid": outcome.valid_rows, "rejected": outcome.rejected_rows}
        self._publish(
            body,
            RAW_DATA_READY,
            {
                "dataset": record.dataset,
                "rawPath": outcome.raw_uri,
                "quarantinePath": outcome.quarantine_uri,
                "counts": counts,
            },
        )
        for kind, value in counts.items():
            metrics.ROWS.labels(record.dataset, kind).inc(value)

    def _transform_succeeded(self, body: dict[str, Any], record: TransformSucceeded, now: dt.datetime) -> None:
        name, outcome, run = body["metadata"]["name"], record.outcome, record.run
        status = IngestionRunStatus.from_body(body.get("status"))
        self._metadata.record_job(
            JobRow(
                run_id=name,
                stage="transform",
                engine=record.engine,
                attempt=record.attempt,
                status="succeeded",
                started_at=record.started_at,
                finished_at=now,
                rows_in=status.counts.valid if status.counts else None,
                rows_out=outcome.rows_written,
                rows_rejected=0,
            )
        )
        self._metadata.record_lineage(
            LineageRow(
                run_id=name,
                source_uri=run.source_uri,
                source_sha256=run.source_sha256,
                raw_uri=status.raw_path,
                quarantine_uri=status.quarantine_path,
                target_table=outcome.table,
                snapshot_id=outcome.snapshot_id,
                rows_written=outcome.rows_written,
            )
        )
        self._publish(
            body,
            BRONZE_LAYER_COMPLETE,
            {
                "dataset": run.dataset,
                "table": outcome.table,
                "snapshotId": outcome.snapshot_id,
                "rowsWritten": outcome.rows_written,
            },
        )
        metrics.ROWS.labels(run.dataset, "written").inc(outcome.rows_written)

    def _run_failed(self, body: dict[str, Any], record: RunFailed, now: dt.datetime) -> None:
        spec = body["spec"]
        self._publish(
            body,
            INGESTION_FAILED,
            {"dataset": spec["dataset"], "stage": record.stage, "reason": record.reason, "message": record.message},
        )
        # A job row only for a stage whose engine was at work: a run that fails before its
        # transform starts (RawReady) has no transform job to account for.
        engine = IngestionRunStatus.from_body(body.get("status")).engine_in(record.phase)
        if engine is None:
            return
        self._metadata.record_job(
            JobRow(
                run_id=body["metadata"]["name"],
                stage="ingest" if record.phase is Phase.INGESTING else "transform",
                engine=engine,
                attempt=record.attempt,
                status="failed",
                started_at=now,
                finished_at=now,
                error_message=record.message,
            )
        )

    def _publish(self, body: dict[str, Any], topic: str, data: dict[str, Any]) -> None:
        metadata, spec = body["metadata"], body["spec"]
        self._events.publish(
            PipelineEvent(
                topic=topic,
                run_id=metadata["name"],
                upload_id=spec["uploadId"],
                data=data,
                time=dt.datetime.now(dt.UTC),
            )
        )


def _workflow_row(body: dict[str, Any], change: PhaseChange, **fields: Any) -> WorkflowRow:
    """The run's one workflow row as it will be after `change` (engines and start time included)."""
    spec, metadata = body["spec"], body["metadata"]
    status = IngestionRunStatus.from_body(body.get("status")).model_copy(update=change.fields)
    engines = status.engines or EngineChoice()
    values: dict[str, Any] = {
        "run_id": metadata["name"],
        "namespace": metadata["namespace"],
        "dataset": spec["dataset"],
        "upload_id": spec["uploadId"],
        "source_uri": spec["source"]["uri"],
        "source_format": spec["source"]["format"],
        "phase": change.phase.value,
        "ingest_engine": engines.ingest,
        "transform_engine": engines.transform,
        "attempts": status.attempts or 0,
        "message": change.message,
        "started_at": parse_time(status.start_time) if status.start_time else None,
    }
    values.update(fields)
    return WorkflowRow(**values)
