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
from lakehouse_operator.records import IngestSucceeded, Record, TransformSucceeded
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

    def read(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.body)

    def set_phase(
        self, namespace: str, name: str, change: PhaseChange, read: dict[str, Any] | None = None
    ) -> WriteOutcome:
        current = IngestionRunStatus.from_body(self.body.get("status"))
        desired = apply_change(current, change, self.body["metadata"]["generation"])
        self.body["status"] = desired.to_k8s()
        return WriteOutcome(desired, changed=True, transitioned=desired.phase != current.phase)

    @property
    def status(self) -> dict[str, Any]:
        return self.body["status"]


class Engine:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def ingest(self, run: Any) -> Any:
        return self.outcome

    def transform(self, run: Any, raw_uri: str) -> Any:
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
