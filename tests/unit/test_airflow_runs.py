"""airflow/dags/lakehouse_runs.py: the IngestionRun the DAG creates, and what it refuses to create."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "airflow" / "dags"))
from lakehouse_runs import RunRequest


def test_manifest_names_the_run_after_the_upload_and_labels_it() -> None:
    manifest = RunRequest("ns", "u-1", "orders", "s3://uploads/o.csv", "csv", ingest_engine="nifi").manifest()
    assert manifest["metadata"] == {"name": "u-1", "labels": {"app.kubernetes.io/created-by": "airflow"}}
    assert manifest["spec"] == {
        "uploadId": "u-1",
        "dataset": "orders",
        "source": {"uri": "s3://uploads/o.csv", "format": "csv"},
        "engines": {"ingest": "nifi"},
    }


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RunRequest("ns", "u-1"), "dataset, source_uri, source_format not given"),
        (RunRequest("ns", "U_1", "orders", "s3://b/k", "csv"), "not a valid Kubernetes name"),
        (RunRequest("ns", "u-1", "orders", "s3://b/k", "xlsx"), "is not one of csv, json, parquet"),
        (RunRequest("ns", "u-1", "orders", "/tmp/k.csv", "csv"), "is not an s3:// URI"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(request_: RunRequest, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        request_.manifest()
