"""The lakehouse-airflow provider's pure logic (no Airflow needed): the run it creates, when a wait is over,
the summary it publishes, what monitoring reports and which Kafka messages start a DAG run."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "airflow" / "provider" / "src"))
from lakehouse_airflow import get_provider_info
from lakehouse_airflow.messages import event_data
from lakehouse_airflow.monitoring import findings
from lakehouse_airflow.runs import RunRequest
from lakehouse_airflow.stages import RunStage, Verdict, stage_outcome
from lakehouse_airflow.summary import run_summary

from lakehouse.events import FILE_UPLOADED, PipelineEvent

URI = "s3://uploads/orders/2026-11-27/u-1/o.csv"


def test_the_run_is_named_after_the_upload_and_labels_it() -> None:
    request = RunRequest("ns", "u-1", "orders", URI, "csv", ingest_engine="nifi", annotations={"a/b": "c"})
    run = request.run_body()
    assert run["metadata"] == {
        "name": "u-1",
        "labels": {"app.kubernetes.io/created-by": "airflow"},
        "annotations": {"a/b": "c"},
    }
    assert run["spec"] == {
        "uploadId": "u-1",
        "dataset": "orders",
        "source": {"uri": URI, "format": "csv"},
        "engines": {"ingest": "nifi"},
    }


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RunRequest("ns", "u-1"), "dataset, source_uri, source_format not given"),
        (RunRequest("ns", "U_1", "orders", "s3://bucket/k", "csv"), "uploadId: String should match pattern"),
        (RunRequest("ns", "u-1", "orders", "s3://bucket/k", "xlsx"), "source.format: Input should be 'csv', 'json'"),
        (RunRequest("ns", "u-1", "orders", "/tmp/k.csv", "csv"), "source.uri: String should match pattern"),
        (RunRequest("ns", "u-1", "Orders", "s3://bucket/k", "csv"), "dataset: String should match pattern"),
        (
            RunRequest("ns", "u-1", "orders", "s3://uploads/customers/2026-11-27/u-1/o.csv", "csv"),
            "source.uri must be this run's upload",
        ),
    ],
)
def test_bad_requests_are_refused_with_the_reason(request_: RunRequest, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        request_.run_body()


def condition(type_: str, status: str, reason: str = "Done", at: str = "2026-12-01T10:00:00Z") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": "", "lastTransitionTime": at}


def run(phase: str | None, *conditions: dict[str, str], message: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": "u-1", "namespace": "ns"},
        "status": {"phase": phase, "message": message, "conditions": list(conditions)},
    }


VALIDATED = condition("Validated", "True")
INGESTED = condition("Ingested", "True")


@pytest.mark.parametrize(
    ("phase", "conditions", "stage", "verdict"),
    [
        (None, [], RunStage.ACCEPTED, Verdict.WAITING),
        ("Ingesting", [VALIDATED], RunStage.ACCEPTED, Verdict.REACHED),
        ("Ingesting", [VALIDATED], RunStage.RAW_READY, Verdict.WAITING),
        ("RawReady", [VALIDATED, INGESTED], RunStage.RAW_READY, Verdict.REACHED),
        ("RawReady", [VALIDATED, INGESTED], RunStage.TRANSFORM_STARTED, Verdict.WAITING),
        ("Transforming", [VALIDATED, INGESTED], RunStage.TRANSFORM_STARTED, Verdict.REACHED),
        ("Transforming", [VALIDATED, INGESTED], RunStage.SUCCEEDED, Verdict.WAITING),
        ("Succeeded", [VALIDATED, INGESTED], RunStage.SUCCEEDED, Verdict.REACHED),
        # Failed in ingest: the RawReady wait fails, not the one before it.
        ("Failed", [VALIDATED, condition("Ingested", "False", "MissingColumns")], RunStage.ACCEPTED, Verdict.REACHED),
        ("Failed", [VALIDATED, condition("Ingested", "False", "MissingColumns")], RunStage.RAW_READY, Verdict.FAILED),
        # Failed in the transform: the transform had started, the Succeeded wait fails.
        ("Failed", [VALIDATED, INGESTED], RunStage.TRANSFORM_STARTED, Verdict.REACHED),
        ("Failed", [VALIDATED, INGESTED], RunStage.SUCCEEDED, Verdict.FAILED),
    ],
)
def test_a_wait_ends_when_its_stage_is_reached_or_the_run_failed_before_it(
    phase: str | None, conditions: list[dict[str, str]], stage: RunStage, verdict: Verdict
) -> None:
    assert stage_outcome(run(phase, *conditions), stage, "ns", "u-1").verdict is verdict


def test_a_failed_wait_names_the_runs_reason() -> None:
    failed = run(
        "Failed",
        condition("Ready", "False", "MissingColumns"),
        condition("Failed", "True", "MissingColumns"),
        message="column amount missing",
    )
    outcome = stage_outcome(failed, RunStage.RAW_READY, "ns", "u-1")
    assert outcome.message == "IngestionRun ns/u-1 failed (MissingColumns): column amount missing"
    assert stage_outcome(None, RunStage.RAW_READY, "ns", "u-1").message.endswith("does not exist (deleted?)")


def test_the_summary_has_counts_table_snapshot_and_durations() -> None:
    status = {
        "phase": "Succeeded",
        "table": "bronze.orders",
        "snapshotId": 42,
        "counts": {"input": 3, "valid": 2, "rejected": 1, "written": 2},
        "startTime": "2026-12-01T10:00:00Z",
        "completionTime": "2026-12-01T10:00:09Z",
        "conditions": [
            condition("Validated", "True", at="2026-12-01T10:00:01Z"),
            condition("Ingested", "True", at="2026-12-01T10:00:04Z"),
            condition("Transformed", "True", at="2026-12-01T10:00:08Z"),
        ],
    }
    summary = run_summary("u-1", status)
    assert summary["durationsSeconds"] == {"ingest": 3.0, "transform": 4.0, "total": 9.0}
    assert (summary["table"], summary["snapshotId"], summary["counts"]["written"]) == ("bronze.orders", 42, 2)


def test_monitoring_reports_stuck_runs_and_runs_failed_since_the_last_check() -> None:
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)

    def at(phase: str, minutes_ago: int, name: str) -> dict[str, Any]:
        time = (now - dt.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {"phase": phase, "phaseStartTime": time, "conditions": [condition("Failed", "True", "NiFiTimedOut")]}
        if phase in ("Failed", "Succeeded"):
            status["completionTime"] = time
        return {"metadata": {"name": name, "namespace": "ns"}, "status": status}

    runs = [
        at("Ingesting", 45, "stuck"),
        at("Transforming", 5, "busy"),
        at("Failed", 10, "failed-now"),
        at("Failed", 60, "failed-before"),
        at("Succeeded", 90, "done"),
    ]
    found = findings(runs, now, dt.timedelta(minutes=30), since=now - dt.timedelta(minutes=15))
    assert [(f.run, f.problem) for f in found] == [("ns/stuck", "stuck"), ("ns/failed-now", "failed")]
    assert "NiFiTimedOut" in found[1].detail


class FakeMessage:
    def __init__(self, value: bytes | None) -> None:
        self._value = value

    def value(self) -> bytes | None:
        return self._value


def test_only_events_of_the_installs_namespace_start_dag_runs() -> None:
    event = PipelineEvent(
        FILE_UPLOADED, "u-1", "u-1", {"namespace": "ns", "dataset": "orders"}, dt.datetime.now(dt.UTC)
    )
    message = FakeMessage(json.dumps(event.to_cloudevent()).encode())
    assert event_data(message, "ns") == {"runId": "u-1", "uploadId": "u-1", "namespace": "ns", "dataset": "orders"}
    assert event_data(message, "other") is None
    assert event_data(FakeMessage(None), "ns") is None
    assert event_data(FakeMessage(b"not json"), "ns") is None


def test_the_provider_names_its_modules() -> None:
    info = get_provider_info()
    assert info["package-name"] == "lakehouse-airflow"
    modules = [
        m
        for kind in ("hooks", "operators", "sensors", "triggers")
        for entry in info[kind]
        for m in entry["python-modules"]
    ]
    root = Path(__file__).resolve().parents[2] / "airflow" / "provider" / "src"
    assert all((root / (module.replace(".", "/") + ".py")).is_file() for module in modules)
