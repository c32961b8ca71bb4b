"""LineageRecorder through RunRecords: which OpenLineage event each phase change adds, in its transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lakehouse_operator.engines.base import IngestOutcome
from lakehouse_operator.lineage_records import LineageRecorder
from lakehouse_operator.records import Accepted, IngestSucceeded, RunFailed, RunRecords, TransformStarted
from lakehouse_operator.status_writer import PhaseChange

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.ingest.validation import CheckResult
from lakehouse.k8s.ingestionrun.lineage import PARENT_ANNOTATION
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import IngestEngineName
from lakehouse.lineage.events import CatalogFacts
from lakehouse.lineage.naming import lineage_run_id
from tests.unit.operator.test_records import FakeMetadata, FakeRelay, body

CHECKS = [CheckResult("row_count", "", 9, 1), CheckResult("not_null", "order_id", 9, 1)]


class LineageMetadata(FakeMetadata):
    def __init__(self) -> None:
        super().__init__()
        self.lineage: list[Any] = []

    def add_lineage(self, event: Any) -> None:
        self.lineage.append(event)

    def quality_checks(self, run_id: str) -> list[CheckResult]:
        return CHECKS


def recorded(run: dict[str, Any], change: PhaseChange, record: Any) -> list[Any]:
    metadata = LineageMetadata()
    recorder = LineageRecorder(
        "lakehouse", lambda: CatalogFacts("http://rest", "lakehouse", "http://rest", "wh"), ContractRegistry.default
    )
    RunRecords(metadata, FakeRelay(), 0.0, recorder).write(run, change, record)  # type: ignore[arg-type]
    return metadata.lineage


def with_uid(run: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    run["metadata"] |= {"uid": "0b7d6c1e-uid", "annotations": annotations or {}}
    return run


def test_each_phase_change_adds_its_event_under_a_stable_id() -> None:
    run = with_uid(body("Pending"))
    [start] = recorded(run, PhaseChange(Phase.PENDING, "Accepted", "m"), Accepted())
    assert (start.topic, start.run_id, start.upload_id) == ("openlineage.START", lineage_run_id("0b7d6c1e-uid"), "up-1")
    assert start.data["run"]["runId"] == start.run_id and start.data["eventType"] == "START"
    [again] = recorded(run, PhaseChange(Phase.PENDING, "Accepted", "m"), Accepted())
    assert again.id == start.id  # a repeated change adds the same outbox row, which the outbox holds once
    assert recorded(run, PhaseChange(Phase.TRANSFORMING, "TransformStarted", "m"), TransformStarted("arrow")) == []  # type: ignore[arg-type]


def test_ingest_and_failure_carry_outputs_quality_and_the_error() -> None:
    outcome = IngestOutcome(10, 9, 1, "s3://raw/orders/d/up-1.parquet", "s3://quarantine/orders/d/up-1.parquet", 99)
    outcome = IngestOutcome(**{**vars(outcome), "checks": CHECKS})
    now = dt.datetime.now(dt.UTC)
    record = IngestSucceeded(IngestEngineName.BUILTIN, 1, now, outcome, "orders")
    [running] = recorded(with_uid(body("Ingesting")), PhaseChange(Phase.RAW_READY, "RawWritten", "m"), record)
    assert running.topic == "openlineage.RUNNING"
    assert [o["name"] for o in running.data["outputs"]] == ["orders/d/up-1.parquet"] * 2
    assert running.data["inputs"][0]["inputFacets"]["dataQualityMetrics"]["bytes"] == 99

    failed_run = with_uid(body("Transforming"))
    failed_run["status"] |= {"rawPath": outcome.raw_uri, "counts": {"input": 10, "valid": 9, "rejected": 1}}
    failure = RunFailed(Phase.TRANSFORMING, "transform", 5, "RetriesExhausted", "the catalog was down")
    [fail] = recorded(failed_run, PhaseChange(Phase.FAILED, "RetriesExhausted", "m"), failure)
    assert fail.data["run"]["facets"]["errorMessage"]["message"] == "RetriesExhausted: the catalog was down"
    assertions = fail.data["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [a["assertion"] for a in assertions] == ["row_count", "not_null"]


@pytest.mark.parametrize(
    ("annotation", "parent"),
    [("airflow/dag.task/01936f3e-7c1a-7d2b-9f00-0123456789ab", "01936f3e-7c1a-7d2b-9f00-0123456789ab"), ("x", None)],
)
def test_the_parent_comes_from_the_annotation_and_a_bad_one_is_left_out(annotation: str, parent: str | None) -> None:
    run = with_uid(body("Pending"), {PARENT_ANNOTATION: annotation})
    [start] = recorded(run, PhaseChange(Phase.PENDING, "Accepted", "m"), Accepted())
    assert start.data["run"]["facets"].get("parent", {}).get("run", {}).get("runId") == parent


def test_a_dataset_without_a_contract_still_has_its_events() -> None:
    run = with_uid(body("Pending"))
    run["spec"]["dataset"] = "nosuch"
    failure = RunFailed(Phase.PENDING, "validate", 1, "UnknownDataset", "no contract")
    [fail] = recorded(run, PhaseChange(Phase.FAILED, "UnknownDataset", "m"), failure)
    assert fail.data["job"]["name"] == "ingest.nosuch" and "schema" not in fail.data["inputs"][0]["facets"]
