"""status.attempts counts the attempts of the current stage only: each phase starts again at 0, so
the retries one stage needed never use up the next stage's (the handlers, with fakes around them)."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import kopf
import pytest
from lakehouse_operator import handlers
from lakehouse_operator.engines.base import IngestOutcome, TransformOutcome
from lakehouse_operator.records import IngestSucceeded, Record, TransformStarted, TransformSucceeded
from lakehouse_operator.settings import OperatorSettings
from lakehouse_operator.status_writer import PhaseChange, WriteOutcome, apply_change

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName
from lakehouse.k8s.ingestionrun.status import IngestionRunStatus

MAX_ATTEMPTS = 5


class StatusStore:
    """One run's body; set_phase applies changes as StatusWriter does (its pure half), without an API server."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.answers_run = False  # True: answers the written run, as the API server does, so handlers go on

    def read(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.body)

    def set_phase(
        self, namespace: str, name: str, change: PhaseChange, read: dict[str, Any] | None = None
    ) -> WriteOutcome:
        current = IngestionRunStatus.from_body(self.body.get("status"))
        desired = apply_change(current, change, self.body["metadata"]["generation"])
        self.body["status"] = desired.to_k8s()
        written = copy.deepcopy(self.body) if self.answers_run else None
        return WriteOutcome(desired, changed=True, transitioned=desired.phase != current.phase, run=written)

    @property
    def status(self) -> dict[str, Any]:
        return self.body["status"]


class Engine:
    def __init__(self, outcome: Any, runs_in_process: bool = True) -> None:
        self.outcome = outcome
        self.runs_in_process = runs_in_process
        self.calls = 0

    def ingest(self, run: Any) -> Any:
        return self._answer()

    def transform(self, run: Any, raw_uri: str) -> Any:
        return self._answer()

    def _answer(self) -> Any:
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A run in Ingesting whose ingest has failed MAX_ATTEMPTS - 1 times, and the Runtime the handlers see."""
    monkeypatch.setattr(kopf, "info", lambda *_, **__: None)  # Kubernetes events need a running operator
    monkeypatch.setattr(kopf, "warn", lambda *_, **__: None)
    body = {
        "metadata": {"name": "up-1", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {"uploadId": "up-1", "dataset": "orders", "source": {"uri": "s3://uploads/o.csv", "format": "csv"}},
        "status": {
            "phase": "Ingesting",
            "attempts": MAX_ATTEMPTS - 1,
            "startTime": "2026-12-01T10:00:00Z",
            "processingDate": "2026-12-01",
            "engines": {"ingest": "builtin"},
        },
    }
    records: list[Record] = []
    runtime = SimpleNamespace(
        status=StatusStore(body),
        records=SimpleNamespace(write=lambda body, change, record: records.append(record)),
        contracts=ContractRegistry.default(),
        settings=OperatorSettings(LAKEHOUSE_MAX_ATTEMPTS=MAX_ATTEMPTS),
        ingest_engines={IngestEngineName.BUILTIN: Engine(IngestOutcome(10, 9, 1, "s3://raw/k", None, 100))},
        transform_engines={TransformEngineName.ARROW: Engine(TransformOutcome("bronze.orders", 7, 9))},
    )
    return SimpleNamespace(runtime=runtime, store=runtime.status, records=records)


def call(handler: Any, run: SimpleNamespace) -> None:
    handler(name="up-1", namespace="ns", memo=kopf.Memo(runtime=run.runtime))


def test_a_stage_that_needed_retries_leaves_the_next_stage_all_of_its_attempts(
    run: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    call(handlers.ingest, run)  # the last allowed ingest attempt succeeds

    assert (run.store.status["phase"], run.store.status["attempts"]) == ("RawReady", 0)
    (ingested,) = run.records
    assert isinstance(ingested, IngestSucceeded) and ingested.attempt == MAX_ATTEMPTS  # kept on the job row

    def catalog_down(*_: Any) -> None:
        raise ConnectionError("the catalog is unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(handlers, "choose_transform_engine", catalog_down)
        with pytest.raises(kopf.TemporaryError):
            call(handlers.start_transform, run)

    # One transient error is one attempt of this stage, not the sixth of the run.
    assert (run.store.status["phase"], run.store.status["attempts"]) == ("RawReady", 1)
    assert "start-transform attempt 1 of 5 failed" in run.store.status["message"]

    call(handlers.start_transform, run)
    assert (run.store.status["phase"], run.store.status["attempts"]) == ("Transforming", 0)

    run.store.status["attempts"] = 2  # two failed transform attempts
    call(handlers.transform, run)

    assert (run.store.status["phase"], run.store.status["attempts"]) == ("Succeeded", 0)
    transformed = run.records[-1]
    assert isinstance(transformed, TransformSucceeded) and transformed.attempt == 3
    assert run.store.status["counts"] == {"input": 10, "valid": 9, "rejected": 1, "written": 9}


def test_a_handler_runs_the_next_in_process_stages_on_each_with_its_records_and_status(run: SimpleNamespace) -> None:
    run.store.answers_run = True
    call(handlers.ingest, run)

    assert (run.store.status["phase"], run.store.status["attempts"]) == ("Succeeded", 0)
    assert [type(record) for record in run.records] == [IngestSucceeded, TransformStarted, TransformSucceeded]
    conditions = {c["type"]: c["status"] for c in run.store.status["conditions"]}
    assert conditions == {"Ingested": "True", "Transformed": "True", "Ready": "True"}


def test_a_stage_run_on_that_meets_a_fault_is_left_uncounted_to_its_own_handler(run: SimpleNamespace) -> None:
    run.store.answers_run = True
    transform_engine = Engine(ConnectionError("the catalog is unreachable"))
    run.runtime.transform_engines = {TransformEngineName.ARROW: transform_engine}

    call(handlers.ingest, run)  # no TemporaryError: Kopf must not retry the ingest handler for it

    assert (run.store.status["phase"], run.store.status["attempts"]) == ("Transforming", 0)
    assert transform_engine.calls == 1
    with pytest.raises(kopf.TemporaryError):  # the Transforming event's handler: attempt 1, with backoff
        call(handlers.transform, run)
    assert (run.store.status["phase"], run.store.status["attempts"]) == ("Transforming", 1)


def test_a_stage_whose_engine_works_elsewhere_is_left_to_its_handler(run: SimpleNamespace) -> None:
    run.store.answers_run = True
    transform_engine = Engine(TransformOutcome("bronze.orders", 7, 9), runs_in_process=False)
    run.runtime.transform_engines = {TransformEngineName.ARROW: transform_engine}

    call(handlers.ingest, run)

    assert run.store.status["phase"] == "Transforming" and transform_engine.calls == 0
    call(handlers.transform, run)
    assert run.store.status["phase"] == "Succeeded" and transform_engine.calls == 1
