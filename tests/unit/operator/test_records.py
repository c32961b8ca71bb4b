"""RunRecords: which rows and events each kind of phase change leaves (fakes stand in for PostgreSQL and Kafka)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lakehouse_operator.engines.base import IngestOutcome
from lakehouse_operator.records import Accepted, IngestSucceeded, RunFailed, RunRecords
from lakehouse_operator.status_writer import PhaseChange

from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestEngineName


class FakeMetadata:
    def __init__(self) -> None:
        self.workflow: list[Any] = []
        self.jobs: list[Any] = []
        self.quality: list[Any] = []

    def upsert_workflow(self, row: Any) -> None:
        self.workflow.append(row)

    def record_job(self, row: Any) -> None:
        self.jobs.append(row)

    def record_quality(self, run_id: str, dataset: str, checks: Any) -> None:
        self.quality.append((run_id, dataset, list(checks)))


class FakeEvents:
    def __init__(self) -> None:
        self.published: list[Any] = []

    def publish(self, event: Any) -> None:
        self.published.append(event)


def body(phase: str, engines: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "up-1", "namespace": "ns"},
        "spec": {"uploadId": "up-1", "dataset": "orders", "source": {"uri": "s3://uploads/o.csv", "format": "csv"}},
        "status": {"phase": phase, "startTime": "2026-12-01T10:00:00Z", "engines": engines or {}},
    }


def records() -> tuple[RunRecords, FakeMetadata, FakeEvents]:
    metadata, events = FakeMetadata(), FakeEvents()
    return RunRecords(metadata, events), metadata, events  # type: ignore[arg-type]


def test_a_run_failing_before_its_transform_starts_has_no_transform_job() -> None:
    runs, metadata, events = records()
    failure = RunFailed(Phase.RAW_READY, "start-transform", 1, "EngineUnavailable", "spark is not enabled")
    change = PhaseChange(Phase.FAILED, failure.reason, failure.message)
    runs.write(body("RawReady", {"ingest": "builtin"}), change, failure)

    assert metadata.jobs == []
    assert [(e.topic, e.data["stage"]) for e in events.published] == [("ingestion-failed", "start-transform")]
    (row,) = metadata.workflow
    assert (row.phase, row.ingest_engine, row.finished_at is not None) == ("Failed", "builtin", True)


def test_an_ingest_failure_is_a_failed_job_of_its_engine() -> None:
    runs, metadata, _ = records()
    failure = RunFailed(Phase.INGESTING, "ingest", 2, "MissingColumns", "no order_id")
    runs.write(body("Ingesting", {"ingest": "nifi"}), PhaseChange(Phase.FAILED, "MissingColumns", "no"), failure)

    (job,) = metadata.jobs
    assert (job.stage, job.engine, job.attempt, job.status) == ("ingest", "nifi", 2, "failed")


def test_the_workflow_row_shows_the_change_not_the_old_status() -> None:
    runs, metadata, events = records()
    outcome = IngestOutcome(10, 9, 1, "s3://raw/k", "s3://quarantine/k", 100)
    started = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    # The status starts RawReady's own attempts at 0; the rows keep the 2 attempts the ingest needed.
    change = PhaseChange(Phase.RAW_READY, "RawWritten", "9 valid", fields={"attempts": 0})
    runs.write(
        body("Ingesting", {"ingest": "builtin"}),
        change,
        IngestSucceeded(IngestEngineName.BUILTIN, 2, started, outcome, "orders"),
    )
    runs.write(body("Pending"), PhaseChange(Phase.PENDING, "Accepted", "accepted"), Accepted())

    assert [(r.phase, r.attempts) for r in metadata.workflow] == [("RawReady", 2), ("Pending", 0)]
    assert [(j.stage, j.attempt) for j in metadata.jobs] == [("ingest", 2)]
    assert [e.topic for e in events.published] == ["raw-data-ready"]
    assert (metadata.jobs[0].rows_in, metadata.jobs[0].rows_out, metadata.jobs[0].rows_rejected) == (10, 9, 1)
