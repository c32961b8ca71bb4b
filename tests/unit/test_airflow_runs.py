"""airflow/dags/lakehouse_runs.py: the IngestionRun the DAG creates, and what it refuses to create."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "airflow" / "dags"))
from lakehouse_runs import RunRequest


def test_the_run_is_named_after_the_upload_and_labels_it() -> None:
    uri = "s3://uploads/orders/2026-11-27/u-1/o.csv"
    run = RunRequest("ns", "u-1", "orders", uri, "csv", ingest_engine="nifi").run_body()
    assert run["metadata"] == {"name": "u-1", "labels": {"app.kubernetes.io/created-by": "airflow"}}
    assert run["spec"] == {
        "uploadId": "u-1",
        "dataset": "orders",
        "source": {"uri": uri, "format": "csv"},
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
