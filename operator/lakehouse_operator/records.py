"""What a run leaves outside Kubernetes: its PostgreSQL rows, its Kafka events and its metrics.

StatusWriter owns the run's status; RunRecords owns everything else a phase change records. A
handler says what happened as a Record, and `handlers._transition` hands it here before it moves
the status. The change's rows and its event are written in one PostgreSQL transaction, the event
into the outbox that the relay publishes to Kafka (outbox_relay.py), so a run never waits for Kafka
and no event goes missing. A crash between the records and the status write repeats the records
on the retry, never skips them: every row is an upsert on its natural key and every event carries
a stable id, which the outbox holds once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakehouse.db.metadata import JobRow, LineageRow, MetadataStore, MetadataTransaction, WorkflowRow
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, INGESTION_FAILED, RAW_DATA_READY, PipelineEvent
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName
from lakehouse.k8s.ingestionrun.status import EngineChoice, IngestionRunStatus, parse_time
from lakehouse_operator import metrics
from lakehouse_operator.engines.base import IngestOutcome, RunContext, TransformOutcome
from lakehouse_operator.outbox_relay import OutboxRelay
from lakehouse_operator.status_writer import PhaseChange

if TYPE_CHECKING:
    from lakehouse_operator.lineage_records import LineageRecorder


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
    def __init__(
        self,
        metadata: MetadataStore,
        relay: OutboxRelay,
        delivery_seconds: float,
        lineage: LineageRecorder | None = None,  # None: no OpenLineage events (lineage not configured)
    ) -> None:
        self._metadata = metadata
        self._relay = relay
        self._delivery_seconds = delivery_seconds
        self._lineage = lineage

    def write(self, body: dict[str, Any], change: PhaseChange, record: Record) -> None:
        """Everything `record` leaves outside Kubernetes and the run's workflow row for `change`, committed
        together; then its metrics, and a bounded wait for its event to reach Kafka while Kafka answers."""
        now = dt.datetime.now(dt.UTC)
        workflow: dict[str, Any] = {}
        with self._metadata.transaction() as writes:
            match record:
                case Accepted() | TransformStarted():
                    pass
                case Validated():
                    self._validated(writes, body, record)
                case IngestSucceeded():
                    self._ingest_succeeded(writes, body, record, now)
                    workflow = {"attempts": record.attempt}  # the status counts the next stage's from 0
                case TransformSucceeded():
                    self._transform_succeeded(writes, body, record, now)
                    workflow = {
                        "target_table": record.outcome.table,
                        "snapshot_id": record.outcome.snapshot_id,
                        "finished_at": now,
                        "attempts": record.attempt,
                    }
                case RunFailed():
                    self._run_failed(writes, body, record, now)
                    workflow = {"finished_at": now, "attempts": record.attempt}
            writes.upsert_workflow(_workflow_row(body, change, **workflow))
            if self._lineage is not None:
                self._lineage.add(writes, body, record, now)
        if not isinstance(record, Accepted | TransformStarted):  # the two changes that announce nothing
            self._relay.deliver(self._delivery_seconds)

    def _validated(self, writes: MetadataTransaction, body: dict[str, Any], record: Validated) -> None:
        spec = body["spec"]
        data = {"dataset": spec["dataset"], "source": spec["source"], "ingestEngine": record.engine}
        writes.add_event(_event(body, FILE_UPLOADED, data))

    def _ingest_succeeded(
        self, writes: MetadataTransaction, body: dict[str, Any], record: IngestSucceeded, now: dt.datetime
    ) -> None:
        name, outcome = body["metadata"]["name"], record.outcome
        writes.record_job(
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
            writes.record_quality(name, record.dataset, outcome.checks)
        writes.add_event(
            _event(
                body,
                RAW_DATA_READY,
                {
                    "dataset": record.dataset,
                    "rawPath": outcome.raw_uri,
                    "quarantinePath": outcome.quarantine_uri,
                    "counts": _row_counts(outcome),
                },
            )
        )

    def _transform_succeeded(
        self, writes: MetadataTransaction, body: dict[str, Any], record: TransformSucceeded, now: dt.datetime
    ) -> None:
        name, outcome, run = body["metadata"]["name"], record.outcome, record.run
        status = IngestionRunStatus.from_body(body.get("status"))
        writes.record_job(
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
        writes.record_lineage(
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
        writes.add_event(
            _event(
                body,
                BRONZE_LAYER_COMPLETE,
                {
                    "dataset": run.dataset,
                    "table": outcome.table,
                    "snapshotId": outcome.snapshot_id,
                    "rowsWritten": outcome.rows_written,
                },
            )
        )

    def _run_failed(
        self, writes: MetadataTransaction, body: dict[str, Any], record: RunFailed, now: dt.datetime
    ) -> None:
        spec = body["spec"]
        writes.add_event(
            _event(
                body,
                INGESTION_FAILED,
                {"dataset": spec["dataset"], "stage": record.stage, "reason": record.reason, "message": record.message},
            )
        )
        # A job row only for a stage whose engine was at work: a run that fails before its
        # transform starts (RawReady) has no transform job to account for.
        engine = IngestionRunStatus.from_body(body.get("status")).engine_in(record.phase)
        if engine is None:
            return
        writes.record_job(
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


def _event(body: dict[str, Any], topic: str, data: dict[str, Any]) -> PipelineEvent:
    return PipelineEvent(
        topic=topic,
        run_id=body["metadata"]["name"],
        upload_id=body["spec"]["uploadId"],
        # The run's namespace lets a consumer (Airflow's asset watchers) keep to its install's runs.
        data={"namespace": body["metadata"].get("namespace"), **data},
        time=dt.datetime.now(dt.UTC),
    )


def _row_counts(outcome: IngestOutcome) -> dict[str, int]:
    return {"input": outcome.input_rows, "valid": outcome.valid_rows, "rejected": outcome.rejected_rows}


def count_rows(record: Record) -> None:
    """The pipeline's row counters; `_transition` calls it once the status moved, so a step that is retried
    after its records were written counts its rows once."""
    match record:
        case IngestSucceeded():
            for kind, value in _row_counts(record.outcome).items():
                metrics.ROWS.labels(record.dataset, kind).inc(value)
        case TransformSucceeded():
            metrics.ROWS.labels(record.run.dataset, "written").inc(record.outcome.rows_written)


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
