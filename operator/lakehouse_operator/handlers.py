"""Kopf handlers: each moves an IngestionRun one phase on.

    create -> Pending -> Ingesting -> RawReady -> Transforming -> Succeeded
                 \\__________\\____________\\____________\\______-> Failed

Handlers are plain `def`s (Kopf runs them in worker threads) because every step makes
blocking calls. Each re-reads the run first and returns when the run has already moved on,
so a replayed event or an operator restart never repeats a finished step. Every phase change
goes through `_transition`: RunRecords writes what it leaves outside Kubernetes (rows, events,
metrics), then StatusWriter moves the status. A handler whose step moved the run goes straight on to the
next steps this process does itself (`_go_on`), so a built-in + Arrow run needs no hand-off through Kopf.
The Runtime lives in Kopf's memo.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import kopf
from kubernetes import client
from kubernetes import config as kube_config
from prometheus_client import REGISTRY, start_http_server

from lakehouse.contracts.registry import ContractError
from lakehouse.ingest.limits import file_too_large_message
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName
from lakehouse.k8s.ingestionrun.status import EngineChoice, IngestionRunStatus, RowCounts
from lakehouse.logs import run_fields
from lakehouse.storage.s3 import S3Location, head_object
from lakehouse_operator import log_filters, metrics
from lakehouse_operator.access import check_source, check_target
from lakehouse_operator.context import pin_contract, run_context
from lakehouse_operator.engine_selection import choose_ingest_engine, choose_transform_engine
from lakehouse_operator.engines.base import RunRejectedError, StillRunning
from lakehouse_operator.faults import crash_point, pause_point
from lakehouse_operator.peering import ensure_peering_object
from lakehouse_operator.records import (
    Accepted,
    IngestSucceeded,
    Record,
    RunFailed,
    TransformStarted,
    TransformSucceeded,
    Validated,
    count_rows,
)
from lakehouse_operator.runtime import Runtime
from lakehouse_operator.settings import OperatorSettings
from lakehouse_operator.status_writer import ConditionUpdate, PhaseChange

RESOURCE = (GROUP, VERSION, PLURAL)
log = logging.getLogger(__name__)
# Fault injection between a step's records and its status write (tests/faults), by record kind.
_AFTER_RECORDS_POINT: dict[type, str] = {
    Validated: "validate.after-event",
    IngestSucceeded: "ingest.after-event",
    TransformSucceeded: "transform.after-event",
}
# A step's work: the run after it moved the run on (the status write's answer), or None.
Moved = dict[str, Any] | None
Work = Callable[[Runtime, dict[str, Any], int], Moved]
Outcome = TypeVar("Outcome")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
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
    if operator_settings.peering_name:  # replicas: one active, the others paused (peering.py)
        settings.peering.lifetime = operator_settings.peering_lifetime
        ensure_peering_object(client.CustomObjectsApi(), operator_settings.namespace, operator_settings.peering_name)
    memo.runtime = runtime = Runtime(operator_settings)
    if operator_settings.metrics_port:
        REGISTRY.register(metrics.RunsInFlight(lambda: runtime.status.list_runs(operator_settings.namespace)))
        REGISTRY.register(metrics.DatasetLimits(lambda: runtime.contracts))
        try:
            metrics.count_from_zero(runtime.contracts.names())
        except ContractError as error:  # the runs of a broken contract fail with the reason; the operator runs on
            logger.warning("dataset series start at their first run: %s", error)
        start_http_server(operator_settings.metrics_port, addr=operator_settings.listen_host)
    # Events left in the outbox by an earlier process (or while Kafka was down) go out from here on.
    runtime.relay.start()
    if runtime.lineage_relay is not None:
        runtime.lineage_relay.start()
    if runtime.cleanup is not None:
        runtime.cleanup.start()
    if runtime.maintenance is not None:
        runtime.maintenance.start()
    logger.info(
        "watching IngestionRuns in namespace %s; a failed stage is tried %d times over %.0fs",
        operator_settings.namespace,
        operator_settings.max_attempts,
        operator_settings.retry_window(),
    )


@kopf.on.cleanup()
def stop_relay(memo: kopf.Memo, **_: Any) -> None:
    """Events still waiting stay in the outbox for the next operator process."""
    runtime: Runtime | None = getattr(memo, "runtime", None)  # None when the start-up failed
    if runtime is not None:
        runtime.relay.stop()
        if runtime.lineage_relay is not None:
            runtime.lineage_relay.stop()
        if runtime.cleanup is not None:
            runtime.cleanup.stop()
        if runtime.maintenance is not None:
            runtime.maintenance.stop()


@kopf.on.create(*RESOURCE, backoff=5)
def admit(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A new run: stamp its start and processing date (fixed for all retries), then Pending."""
    rt: Runtime = memo.runtime
    current = rt.status.read(namespace, name)
    if IngestionRunStatus.from_body(current.get("status")).phase is not None:
        return
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    spec = current["spec"]
    change = PhaseChange(
        Phase.PENDING,
        "Accepted",
        f"accepted {spec['source']['uri']} for dataset {spec['dataset']}",
        fields={
            "start_time": now.isoformat().replace("+00:00", "Z"),
            "processing_date": now.date().isoformat(),
            "attempts": 0,
        },
    )
    with run_fields(name, spec["uploadId"], None):
        accepted = _transition(rt, current, change, Accepted())
    _go_on(rt, accepted)


@kopf.on.field(*RESOURCE, field="status.phase", new=Phase.PENDING.value)
def validate(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    _stage(memo.runtime, Phase.PENDING, name, namespace)


@kopf.on.field(*RESOURCE, field="status.phase", new=Phase.INGESTING.value)
def ingest(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    _stage(memo.runtime, Phase.INGESTING, name, namespace)


@kopf.on.field(*RESOURCE, field="status.phase", new=Phase.RAW_READY.value)
def start_transform(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    _stage(memo.runtime, Phase.RAW_READY, name, namespace)


@kopf.on.field(*RESOURCE, field="status.phase", new=Phase.TRANSFORMING.value)
def transform(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    _stage(memo.runtime, Phase.TRANSFORMING, name, namespace)


def _validate(rt: Runtime, body: dict[str, Any], attempt: int) -> Moved:
    spec = body["spec"]
    contract, dataset_generation = pin_contract(spec["dataset"], rt.contracts)
    check_source(spec, rt.settings)  # before anything is read: SourceNotAllowed / TargetNotAllowed
    check_target(spec, contract, rt.settings)
    source = S3Location.parse(spec["source"]["uri"])
    found = head_object(rt.s3, source)
    if found is None:
        raise RunRejectedError(
            FailureReason.SOURCE_NOT_FOUND, f"{source.uri} does not exist; upload the file again to start a new run"
        )
    if too_large := file_too_large_message(contract, found["ContentLength"]):
        raise RunRejectedError(FailureReason.FILE_TOO_LARGE, too_large)
    engine = choose_ingest_engine(spec, rt.settings, rt.ingest_engines)
    change = PhaseChange(
        Phase.INGESTING,
        "IngestStarted",
        f"ingesting with the {engine} engine",
        fields={
            "engines": EngineChoice(ingest=engine),
            "attempts": 0,
            "dataset_generation": dataset_generation,
            "contract": contract.model_dump(mode="json"),
        },
        conditions=[ConditionUpdate(ConditionType.VALIDATED, "True", "SourceFound", "dataset and source checked")],
    )
    return _transition(rt, body, change, Validated(engine))


def _ingest(rt: Runtime, body: dict[str, Any], attempt: int) -> Moved:
    name = body["metadata"]["name"]
    context = run_context(body, rt.contracts)
    engine_name = _ingest_engine(body)
    started = dt.datetime.now(dt.UTC)
    pause_point("ingest.before-engine", name)
    outcome = _until_done(rt, body, rt.ingest_engines[engine_name].ingest(context))
    crash_point("ingest.after-raw", name)
    change = PhaseChange(
        Phase.RAW_READY,
        "RawWritten",
        f"{outcome.valid_rows} valid and {outcome.rejected_rows} rejected of {outcome.input_rows} rows",
        fields={
            "counts": RowCounts(input=outcome.input_rows, valid=outcome.valid_rows, rejected=outcome.rejected_rows),
            "raw_path": outcome.raw_uri,
            "quarantine_path": outcome.quarantine_uri,
            "attempts": 0,  # the next stage's own count; this one's stays on the job and workflow rows
        },
        conditions=[ConditionUpdate(ConditionType.INGESTED, "True", "RawWritten", f"raw rows in {outcome.raw_uri}")],
    )
    return _transition(rt, body, change, IngestSucceeded(engine_name, attempt, started, outcome, context.dataset))


def _start_transform(rt: Runtime, body: dict[str, Any], attempt: int) -> Moved:
    status = IngestionRunStatus.from_body(body.get("status"))
    engine = choose_transform_engine(body["spec"], rt.settings, rt.transform_engines)
    choice = EngineChoice(ingest=status.engines.ingest if status.engines else None, transform=engine)
    crash_point("raw-ready.before-transition", body["metadata"]["name"])
    change = PhaseChange(
        Phase.TRANSFORMING,
        "TransformStarted",
        f"writing bronze rows with the {engine} engine",
        fields={"engines": choice, "attempts": 0},
    )
    return _transition(rt, body, change, TransformStarted(engine))


def _transform(rt: Runtime, body: dict[str, Any], attempt: int) -> Moved:
    status = IngestionRunStatus.from_body(body.get("status"))
    context = run_context(body, rt.contracts)
    engine_name = _transform_engine(body)
    started = dt.datetime.now(dt.UTC)
    engine = rt.transform_engines[engine_name]
    outcome = _until_done(rt, body, engine.transform(context, status.raw_path or ""))
    crash_point("transform.after-commit", context.name)
    counts = status.counts or RowCounts()
    change = PhaseChange(
        Phase.SUCCEEDED,
        "BronzeCommitted",
        f"{outcome.rows_written} rows in {outcome.table}"
        + (f" (snapshot {outcome.snapshot_id})" if outcome.snapshot_id else ""),
        fields={
            "table": outcome.table,
            "snapshot_id": outcome.snapshot_id,
            "counts": counts.model_copy(update={"written": outcome.rows_written}),
            "attempts": 0,
        },
        conditions=[
            ConditionUpdate(ConditionType.TRANSFORMED, "True", "BronzeCommitted", f"committed to {outcome.table}")
        ],
    )
    return _transition(rt, body, change, TransformSucceeded(engine_name, attempt, started, outcome, context))


_STAGES: dict[Phase, Work] = {
    Phase.PENDING: _validate,
    Phase.INGESTING: _ingest,
    Phase.RAW_READY: _start_transform,
    Phase.TRANSFORMING: _transform,
}


def _ingest_engine(body: dict[str, Any]) -> IngestEngineName:
    engines = IngestionRunStatus.from_body(body.get("status")).engines
    return (engines.ingest if engines else None) or IngestEngineName.BUILTIN


def _transform_engine(body: dict[str, Any]) -> TransformEngineName:
    engines = IngestionRunStatus.from_body(body.get("status")).engines
    return (engines.transform if engines else None) or TransformEngineName.ARROW


def _stage(rt: Runtime, phase: Phase, name: str, namespace: str) -> None:
    """Runs one step with the run re-read first, turning errors into retries or a Failed run, then goes on
    to the run's next steps that this process does itself (`_go_on`).

    Attempts are counted on the status, not with Kopf's `retry`: an engine that is still
    running also comes back through a TemporaryError, and that is not a failed attempt.
    """
    body = rt.status.read(namespace, name)
    status = IngestionRunStatus.from_body(body.get("status"))
    if status.phase is not phase:
        return  # an old event: the run has moved on (or is done)
    with run_fields(name, body["spec"]["uploadId"], phase):
        moved = _attempt(rt, body, phase, (status.attempts or 0) + 1, _STAGES[phase])
    _go_on(rt, moved)


def _go_on(rt: Runtime, body: dict[str, Any] | None) -> None:
    """Runs the run's next stages in this handler call, one after another, while each is done in this process
    (validation, choosing the transform engine, an engine that `runs_in_process`). Each still writes its
    records and its status in order, through `_transition`; what it saves is the hand-off through Kopf between
    them (the status event, Kopf's own annotation patch and its event, the next handler's read), ~0.1 s each.

    A step run so that meets a server fault leaves the run in its phase, uncounted: the watch event of that
    phase calls the phase's own handler, which makes the first counted attempt and retries with backoff as
    always. A stale event of a phase gone through here finds the run moved on (`_stage`), so nothing runs twice.
    """
    while body is not None and (phase := _in_process_phase(rt, body)) is not None:
        status = IngestionRunStatus.from_body(body.get("status"))
        with run_fields(body["metadata"]["name"], body["spec"]["uploadId"], phase):
            body = _attempt(rt, body, phase, (status.attempts or 0) + 1, _STAGES[phase], go_on=True)


def _in_process_phase(rt: Runtime, body: dict[str, Any]) -> Phase | None:
    """The run's phase when this process does its step itself, else None (a job elsewhere, or done)."""
    phase = IngestionRunStatus.from_body(body.get("status")).phase
    if phase in (Phase.PENDING, Phase.RAW_READY):
        return phase
    if phase is Phase.INGESTING and rt.ingest_engines[_ingest_engine(body)].runs_in_process:
        return phase
    if phase is Phase.TRANSFORMING and rt.transform_engines[_transform_engine(body)].runs_in_process:
        return phase
    return None


def _attempt(
    rt: Runtime, body: dict[str, Any], phase: Phase, attempt: int, work: Work, *, go_on: bool = False
) -> Moved:
    """The run after the step moved it on, or None. `go_on`: the step runs straight after the one before it
    (`_go_on`); a server fault or an engine still at work then hands the step to its phase's handler."""
    stage = metrics.STAGE_OF_PHASE[phase]
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        return work(rt, body, attempt)
    except RunRejectedError as error:
        metrics.STAGE_FAILURES.labels(stage, error.reason).inc()
        _fail(rt, body, RunFailed(phase, stage, attempt, error.reason, error.message))
        return None
    except kopf.TemporaryError:
        if go_on:
            return None
        raise
    except Exception as error:
        metrics.STAGE_FAILURES.labels(stage, type(error).__name__).inc()
        if go_on:
            log.warning("%s failed (%s: %s); the %s handler tries again", stage, type(error).__name__, error, phase)
            return None
        if attempt >= rt.settings.max_attempts:
            message = (
                f"{stage} failed {attempt} times in the {rt.settings.retry_window():.0f}s retry window, last with "
                f"{type(error).__name__}: {error}; fix the cause and create a new run"
            )
            _fail(rt, body, RunFailed(phase, stage, attempt, FailureReason.RETRIES_EXHAUSTED, message))
            return None
        delay = rt.settings.retry_delay(attempt - 1)
        retrying = f"{stage} attempt {attempt} of {rt.settings.max_attempts} failed ({error}); retrying in {delay:.0f}s"
        rt.status.set_phase(namespace, name, PhaseChange(phase, "Retrying", retrying, fields={"attempts": attempt}))
        kopf.warn(body, reason="Retrying", message=retrying)  # `kubectl get events` shows a server in trouble
        raise kopf.TemporaryError(f"{stage} attempt {attempt} failed: {error}", delay=delay) from error


def _until_done(rt: Runtime, body: dict[str, Any], outcome: Outcome | StillRunning) -> Outcome:
    """The engine's outcome, or a TemporaryError that calls the handler again later."""
    if isinstance(outcome, StillRunning):
        _wait(rt, body, outcome)
    return outcome


def _wait(rt: Runtime, body: dict[str, Any], waiting: StillRunning) -> NoReturn:
    """Shows what the run waits for on its status (written only when that line changes), then asks Kopf
    to call the handler again later."""
    if waiting.status:
        metadata = body["metadata"]
        phase = IngestionRunStatus.from_body(body.get("status")).phase
        try:
            if phase is not None:
                rt.status.set_phase(
                    metadata["namespace"], metadata["name"], PhaseChange(phase, "Waiting", waiting.status)
                )
        except Exception as error:  # only a display: never let it count as a failed attempt
            log.warning("could not show %r on %s: %s", waiting.status, metadata["name"], error)
    raise kopf.TemporaryError(f"{log_filters.WAITING}{waiting.message}", delay=waiting.delay)


def _fail(rt: Runtime, body: dict[str, Any], failure: RunFailed) -> None:
    change = PhaseChange(Phase.FAILED, failure.reason, failure.message, fields={"attempts": failure.attempt})
    _transition(rt, body, change, failure)


def _transition(rt: Runtime, body: dict[str, Any], change: PhaseChange, record: Record) -> Moved:
    """The one way a run changes phase: its records first, then its status. The run as written when the
    phase moved, else None."""
    metadata = body["metadata"]
    rt.records.write(body, change, record)
    if point := _AFTER_RECORDS_POINT.get(type(record)):
        crash_point(point, metadata["name"])
    outcome = rt.status.set_phase(metadata["namespace"], metadata["name"], change, read=body)
    if not outcome.transitioned:
        return None
    log.info("%s: %s (%s)", change.phase.value, change.message, change.reason)
    metrics.observe_stage(IngestionRunStatus.from_body(body.get("status")), dt.datetime.now(dt.UTC))
    metrics.RUNS_BY_PHASE.labels(change.phase.value, body["spec"]["dataset"]).inc()
    count_rows(record)
    post = kopf.warn if change.phase is Phase.FAILED else kopf.info
    post(body, reason=change.reason, message=f"{change.phase.value}: {change.message}")
    return outcome.run


# Kopf's own clock for liveness probes.
@kopf.on.probe(id="now")
def probe_time(**_: Any) -> float:
    return time.time()


@kopf.on.probe(id="outbox-relay")
def probe_relay(memo: kopf.Memo, **_: Any) -> bool:
    """The liveness endpoint fails when the relay thread is gone: events would wait until a restart."""
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None and not runtime.relay.alive:
        raise RuntimeError("the outbox relay thread has stopped")
    return True
