"""Kopf handlers: each moves an IngestionRun one phase on.

    create -> Pending -> Ingesting -> RawReady -> Transforming -> Succeeded
                 \\__________\\____________\\____________\\______-> Failed

Handlers are plain `def`s (Kopf runs them in worker threads) because every step makes
blocking calls. Each re-reads the run first and returns when the run has already moved on,
so a replayed event or an operator restart never repeats a finished step. Status is written
only through StatusWriter.set_phase.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import config as kube_config
from prometheus_client import start_http_server

from lakehouse.db.metadata import JobRow, LineageRow, WorkflowRow
from lakehouse.events import (
    BRONZE_LAYER_COMPLETE,
    FILE_UPLOADED,
    INGESTION_FAILED,
    RAW_DATA_READY,
    PipelineEvent,
)
from lakehouse.storage.s3 import S3Location, head_object
from lakehouse_operator import log_filters, metrics
from lakehouse_operator.api import GROUP, PLURAL, VERSION
from lakehouse_operator.api.conditions import ConditionType
from lakehouse_operator.api.phase import Phase
from lakehouse_operator.api.status import EngineChoice, IngestionRunStatus, RowCounts
from lakehouse_operator.context import load_contract, parse_time, run_context
from lakehouse_operator.engine_selection import choose_ingest_engine, choose_transform_engine
from lakehouse_operator.engines.base import RunRejectedError, StillRunning
from lakehouse_operator.faults import crash_point
from lakehouse_operator.runtime import Runtime
from lakehouse_operator.settings import OperatorSettings
from lakehouse_operator.status_writer import ConditionUpdate, PhaseChange

RESOURCE = (GROUP, VERSION, PLURAL)
_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator's start-up handler has not run")
    return _runtime


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: logging.Logger, **_: Any) -> None:
    global _runtime
    operator_settings = OperatorSettings()
    log_filters.install()
    # Progress and the last handled state live in annotations, so the status stays ours alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.execution.max_workers = operator_settings.workers
    # One exact namespace is watched: no cluster-wide scanning of namespaces and CRDs, so the
    # operator's Role needs no cluster-scoped rights (charts/lakehouse grants none).
    settings.scanning.disabled = True
    settings.posting.level = logging.INFO
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    if operator_settings.metrics_port:
        start_http_server(operator_settings.metrics_port, addr=operator_settings.listen_host)
    _runtime = Runtime(operator_settings)
    logger.info("watching IngestionRuns in namespace %s", operator_settings.namespace)


@kopf.on.create(*RESOURCE, backoff=5)
def admit(name: str, namespace: str, **_: Any) -> None:
    """A new run: stamp its start and processing date (fixed for all retries), then Pending."""
    rt = runtime()
    current = rt.status.read(namespace, name)
    if IngestionRunStatus.from_body(current.get("status")).phase is not None:
        return
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    spec = current["spec"]
    rt.metadata.upsert_workflow(_workflow_row(current, Phase.PENDING, "accepted", started_at=now))
    _transition(
        current,
        PhaseChange(
            Phase.PENDING,
            "Accepted",
            f"accepted {spec['source']['uri']} for dataset {spec['dataset']}",
            fields={
                "start_time": now.isoformat().replace("+00:00", "Z"),
                "processing_date": now.date().isoformat(),
                "attempts": 0,
            },
        ),
    )


@kopf.on.field(*RESOURCE, field="status.phase", new=Phase.PENDING.value)
def validate(name: str, namespace: str, **_: Any) -> None:
    def work(body: dict[str, Any], attempt: int) -> None:
        rt = runtime()
        spec = body["spec"]
        load_contract(spec["dataset"], rt.contracts)
        source = S3Location.parse(spec["source"]["uri"])
        if head_object(rt.s3, source) is None:
            raise RunRejectedError(
                "SourceNotFound", f"{source.uri} does not exist; upload the file again to start a new run"
            )
        engine = choose_ingest_engine(spec, rt.settings, rt.ingest_engines)
        _publish(
            body,
            FILE_UPLOADED,
            {
                "dataset": spec["dataset"],
                "source": spec["source"],
                "ingestEngine": engine,
            },
        )
        crash_point("validate.after-event", name)
        _transition(
            body,
            PhaseChange(
                Phase.INGESTING,
                "IngestStarted",
                f"ingesting with the {engine} engine",
                fields={"engines": EngineChoice(ingest=engine), "attempts": 0},
                conditions=[
                    ConditionUpdate(ConditionType.VALIDATED, "True", "SourceFound", "dataset and source checked")
                ],
            ),
        )

    _stage(Phase.PENDING, "validate", name, namespace, work)


@kopf.on.field(*RESOURCE, field="status.phase", new=Phase.INGESTING.value)
def ingest(name: str, namespace: str, **_: Any) -> None:
    def work(body: dict[str, Any], attempt: int) -> None:
        rt = runtime()
        status = IngestionRunStatus.from_body(body.get("status"))
        context = run_context(body, rt.contracts)
        engine_name = (status.engines.ingest if status.engines else None) or "builtin"
        engine = rt.ingest_engines[engine_name]
        started = dt.datetime.now(dt.UTC)
        with metrics.STAGE_SECONDS.labels("ingest", engine_name).time():
            outcome = engine.ingest(context)
        if isinstance(outcome, StillRunning):
            _wait(body, outcome)
        crash_point("ingest.after-raw", name)
        rt.metadata.record_job(
            JobRow(
                run_id=name,
                stage="ingest",
                engine=engine_name,
                attempt=attempt,
                status="succeeded",
                started_at=outcome.started_at or started,
                finished_at=dt.datetime.now(dt.UTC),
                rows_in=outcome.input_rows,
                rows_out=outcome.valid_rows,
                rows_rejected=outcome.rejected_rows,
                bytes_in=outcome.bytes_in,
            )
        )
        if outcome.checks:
            rt.metadata.record_quality(name, context.dataset, outcome.checks)
        _publish(
            body,
            RAW_DATA_READY,
            {
                "dataset": context.dataset,
                "rawPath": outcome.raw_uri,
                "quarantinePath": outcome.quarantine_uri,
                "counts": {
                    "input": outcome.input_rows,
                    "valid": outcome.valid_rows,
                    "rejected": outcome.rejected_rows,
                },
            },
        )
        crash_point("ingest.after-event", name)
        for kind, value in (
            ("input", outcome.input_rows),
            ("valid", outcome.valid_rows),
            ("rejected", outcome.rejected_rows),
        ):
            metrics.ROWS.labels(context.dataset, kind).inc(value)
        _transition(
            body,
            PhaseChange(
                Phase.RAW_READY,
                "RawWritten",
                f"{outcome.valid_rows} valid and {outcome.rejected_rows} rejected of {outcome.input_rows} rows",
                fields={
                    "counts": RowCounts(
                        input=outcome.input_rows, valid=outcome.valid_rows, rejected=outcome.rejected_rows
                    ),
                    "raw_path": outcome.raw_uri,
                    "quarantine_path": outcome.quarantine_uri,
                    "attempts": attempt,
                },
                conditions=[
                    ConditionUpdate(ConditionType.INGESTED, "True", "RawWritten", f"raw rows in {outcome.raw_uri}")
                ],
            ),
        )

    _stage(Phase.INGESTING, "ingest", name, namespace, work)


@kopf.on.field(*RESOURCE, field="status.phase", new=Phase.RAW_READY.value)
def start_transform(name: str, namespace: str, **_: Any) -> None:
    def work(body: dict[str, Any], attempt: int) -> None:
        rt = runtime()
        status = IngestionRunStatus.from_body(body.get("status"))
        engine = choose_transform_engine(body["spec"], rt.settings, rt.transform_engines)
        choice = EngineChoice(ingest=status.engines.ingest if status.engines else None, transform=engine)
        crash_point("raw-ready.before-transition", name)
        _transition(
            body,
            PhaseChange(
                Phase.TRANSFORMING,
                "TransformStarted",
                f"writing bronze rows with the {engine} engine",
                fields={"engines": choice, "attempts": 0},
            ),
        )

    _stage(Phase.RAW_READY, "transform", name, namespace, work)


@kopf.on.field(*RESOURCE, field="status.phase", new=Phase.TRANSFORMING.value)
def transform(name: str, namespace: str, **_: Any) -> None:
    def work(body: dict[str, Any], attempt: int) -> None:
        rt = runtime()
        status = IngestionRunStatus.from_body(body.get("status"))
        context = run_context(body, rt.contracts)
        engine_name = (status.engines.transform if status.engines else None) or "arrow"
        engine = rt.transform_engines[engine_name]
        started = dt.datetime.now(dt.UTC)
        with metrics.STAGE_SECONDS.labels("transform", engine_name).time():
            outcome = engine.transform(context, status.raw_path or "")
        if isinstance(outcome, StillRunning):
            _wait(body, outcome)
        crash_point("transform.after-commit", name)
        counts = status.counts or RowCounts()
        rt.metadata.record_job(
            JobRow(
                run_id=name,
                stage="transform",
                engine=engine_name,
                attempt=attempt,
                status="succeeded",
                started_at=started,
                finished_at=dt.datetime.now(dt.UTC),
                rows_in=counts.valid,
                rows_out=outcome.rows_written,
                rows_rejected=0,
            )
        )
        rt.metadata.record_lineage(
            LineageRow(
                run_id=name,
                source_uri=context.source_uri,
                source_sha256=context.source_sha256,
                raw_uri=status.raw_path,
                quarantine_uri=status.quarantine_path,
                target_table=outcome.table,
                snapshot_id=outcome.snapshot_id,
                rows_written=outcome.rows_written,
            )
        )
        _publish(
            body,
            BRONZE_LAYER_COMPLETE,
            {
                "dataset": context.dataset,
                "table": outcome.table,
                "snapshotId": outcome.snapshot_id,
                "rowsWritten": outcome.rows_written,
            },
        )
        crash_point("transform.after-event", name)
        metrics.ROWS.labels(context.dataset, "written").inc(outcome.rows_written)
        rt.metadata.upsert_workflow(
            _workflow_row(
                body,
                Phase.SUCCEEDED,
                "bronze rows committed",
                target_table=outcome.table,
                snapshot_id=outcome.snapshot_id,
                finished_at=dt.datetime.now(dt.UTC),
            )
        )
        _transition(
            body,
            PhaseChange(
                Phase.SUCCEEDED,
                "BronzeCommitted",
                f"{outcome.rows_written} rows in {outcome.table}"
                + (f" (snapshot {outcome.snapshot_id})" if outcome.snapshot_id else ""),
                fields={
                    "table": outcome.table,
                    "snapshot_id": outcome.snapshot_id,
                    "counts": counts.model_copy(update={"written": outcome.rows_written}),
                    "attempts": attempt,
                },
                conditions=[
                    ConditionUpdate(
                        ConditionType.TRANSFORMED, "True", "BronzeCommitted", f"committed to {outcome.table}"
                    )
                ],
            ),
            record_workflow=False,
        )

    _stage(Phase.TRANSFORMING, "transform", name, namespace, work)


def _stage(
    phase: Phase,
    stage: str,
    name: str,
    namespace: str,
    work: Callable[[dict[str, Any], int], None],
) -> None:
    """Runs one step with the run re-read first, turning errors into retries or a Failed run.

    Attempts are counted on the status, not with Kopf's `retry`: an engine that is still
    running also comes back through a TemporaryError, and that is not a failed attempt.
    """
    rt = runtime()
    body = rt.status.read(namespace, name)
    status = IngestionRunStatus.from_body(body.get("status"))
    if status.phase is not phase:
        return  # an old event: the run has moved on (or is done)
    attempt = (status.attempts or 0) + 1
    try:
        work(body, attempt)
    except RunRejectedError as error:
        metrics.STAGE_FAILURES.labels(stage, error.reason).inc()
        _fail(body, stage, attempt, error.reason, error.message)
    except kopf.TemporaryError:
        raise
    except Exception as error:
        metrics.STAGE_FAILURES.labels(stage, type(error).__name__).inc()
        if attempt >= rt.settings.max_attempts:
            _fail(
                body,
                stage,
                attempt,
                "RetriesExhausted",
                f"{stage} failed {attempt} times, last with {type(error).__name__}: {error}; "
                "fix the cause and create a new run",
            )
            return
        delay = rt.settings.retry_delay(attempt - 1)
        rt.status.set_phase(
            namespace,
            name,
            PhaseChange(
                phase,
                "Retrying",
                f"{stage} attempt {attempt} failed ({error}); retrying in {delay:.0f}s",
                fields={"attempts": attempt},
            ),
        )
        raise kopf.TemporaryError(f"{stage} attempt {attempt} failed: {error}", delay=delay) from error


def _wait(body: dict[str, Any], waiting: StillRunning) -> None:
    """Shows what the run waits for on its status (written only when that line changes), then asks Kopf
    to call the handler again later."""
    if waiting.status:
        metadata = body["metadata"]
        phase = IngestionRunStatus.from_body(body.get("status")).phase
        try:
            if phase is not None:
                runtime().status.set_phase(
                    metadata["namespace"], metadata["name"], PhaseChange(phase, "Waiting", waiting.status)
                )
        except Exception as error:  # only a display: never let it count as a failed attempt
            logging.getLogger(__name__).warning("could not show %r on %s: %s", waiting.status, metadata["name"], error)
    raise kopf.TemporaryError(f"{log_filters.WAITING}{waiting.message}", delay=waiting.delay)


def _fail(body: dict[str, Any], stage: str, attempt: int, reason: str, message: str) -> None:
    rt = runtime()
    name = body["metadata"]["name"]
    spec = body["spec"]
    _publish(
        body,
        INGESTION_FAILED,
        {"dataset": spec["dataset"], "stage": stage, "reason": reason, "message": message},
    )
    now = dt.datetime.now(dt.UTC)
    if stage in ("ingest", "transform"):
        status = IngestionRunStatus.from_body(body.get("status"))
        engines = status.engines or EngineChoice()
        engine = (engines.ingest if stage == "ingest" else engines.transform) or "unknown"
        rt.metadata.record_job(
            JobRow(
                run_id=name,
                stage=stage,
                engine=engine,
                attempt=attempt,
                status="failed",
                started_at=now,
                finished_at=now,
                error_message=message,
            )
        )
    rt.metadata.upsert_workflow(_workflow_row(body, Phase.FAILED, message, finished_at=now, attempts=attempt))
    _transition(
        body,
        PhaseChange(Phase.FAILED, reason, message, fields={"attempts": attempt}),
        record_workflow=False,
        warning=True,
    )


def _transition(body: dict[str, Any], change: PhaseChange, record_workflow: bool = True, warning: bool = False) -> None:
    rt = runtime()
    metadata = body["metadata"]
    if record_workflow and change.phase is not Phase.PENDING:
        rt.metadata.upsert_workflow(_workflow_row(body, change.phase, change.message))
    outcome = rt.status.set_phase(metadata["namespace"], metadata["name"], change)
    if outcome.transitioned:
        metrics.RUNS_BY_PHASE.labels(change.phase.value, body["spec"]["dataset"]).inc()
        post = kopf.warn if warning else kopf.info
        post(body, reason=change.reason, message=f"{change.phase.value}: {change.message}")


def _publish(body: dict[str, Any], topic: str, data: dict[str, Any]) -> None:
    metadata, spec = body["metadata"], body["spec"]
    runtime().events.publish(
        PipelineEvent(
            topic=topic,
            run_id=metadata["name"],
            upload_id=spec["uploadId"],
            data=data,
            time=dt.datetime.now(dt.UTC),
        )
    )


def _workflow_row(body: dict[str, Any], phase: Phase, message: str, **fields: Any) -> WorkflowRow:
    spec, metadata = body["spec"], body["metadata"]
    status = IngestionRunStatus.from_body(body.get("status"))
    engines = status.engines or EngineChoice()
    values: dict[str, Any] = {
        "run_id": metadata["name"],
        "namespace": metadata["namespace"],
        "dataset": spec["dataset"],
        "upload_id": spec["uploadId"],
        "source_uri": spec["source"]["uri"],
        "source_format": spec["source"]["format"],
        "phase": phase.value,
        "ingest_engine": engines.ingest,
        "transform_engine": engines.transform,
        "attempts": status.attempts or 0,
        "message": message,
        "started_at": parse_time(status.start_time) if status.start_time else None,
    }
    values.update(fields)
    return WorkflowRow(**values)


# Kopf's own clock for liveness probes.
@kopf.on.probe(id="now")
def probe_time(**_: Any) -> float:
    return time.time()
