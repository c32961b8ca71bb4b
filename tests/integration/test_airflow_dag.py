"""airflow/dags/lakehouse_ingest.py run by Airflow itself (`airflow dags test`, its own virtualenv)
against the real control plane and a real operator: the DAG run's state follows the IngestionRun's."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.devtools.sample_data import orders
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import GROUP, PLURAL, VERSION, Upload, create_run, get_run, run_body, upload

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "lakehouse_ingest"


def dag_test(conf: dict[str, Any]) -> tuple[str, str]:
    """(DAG run state, log) of one in-process DAG run."""
    done = subprocess.run(
        [REPO_ROOT / "devstack" / "airflow.sh", "dags", "test", DAG_ID, "-c", json.dumps(conf)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = done.stdout + done.stderr
    finished = re.search(r"DagRun Finished: dag_id=lakehouse_ingest.*? state=(\w+)", log)
    assert finished, f"no DAG run result (exit {done.returncode}):\n{log[-4000:]}"
    return finished.group(1), log


def creating_conf(up: Upload, namespace: str) -> dict[str, str]:
    """A conf that has the DAG create the run for an upload."""
    return {
        "upload_id": up.upload_id,
        "dataset": "orders",
        "source_uri": up.uri,
        "format": up.fmt,
        "namespace": namespace,
    }


def test_dag_creates_the_run_and_succeeds_with_it(
    operator: OperatorProcess, run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any, catalog: Catalog
) -> None:
    sample = orders(80, invalid_every=8)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")

    state, log = dag_test(creating_conf(up, run_namespace))

    assert state == "success", log[-4000:]
    assert f"created IngestionRun {run_namespace}/{up.upload_id}" in log
    run = get_run(custom_objects, run_namespace, up.upload_id)
    assert run["metadata"]["labels"]["app.kubernetes.io/created-by"] == "airflow"
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["counts"] == {"input": 80, "valid": 70, "rejected": 10, "written": 70}
    rows = catalog.load_table("bronze.orders").scan(row_filter=EqualTo("upload_id", up.upload_id)).to_arrow()
    assert rows.num_rows == 70


def test_dag_adopts_the_run_the_api_created(
    operator: OperatorProcess, run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any
) -> None:
    up = upload(s3, orders(30).csv_bytes(), "orders", "csv")
    create_run(custom_objects, run_namespace, run_body(up, "orders"))

    state, log = dag_test({"upload_id": up.upload_id, "namespace": run_namespace})

    assert state == "success", log[-4000:]
    assert f"adopted IngestionRun {run_namespace}/{up.upload_id}" in log
    runs = custom_objects.list_namespaced_custom_object(GROUP, VERSION, run_namespace, PLURAL)["items"]
    assert [r["spec"]["uploadId"] for r in runs].count(up.upload_id) == 1  # adopted, not a second run
    assert "labels" not in get_run(custom_objects, run_namespace, up.upload_id)["metadata"]


def test_a_failed_run_fails_the_dag_with_its_reason(operator: OperatorProcess, run_namespace: str, s3: Any) -> None:
    up = upload(s3, b"order_id,amount\n1,2.50\n", "orders", "csv")

    state, log = dag_test(creating_conf(up, run_namespace))

    assert state == "failed"
    assert f"IngestionRun {run_namespace}/{up.upload_id} failed (MissingColumns)" in log


def test_a_conf_that_names_no_run_fails_without_retrying(operator: OperatorProcess, run_namespace: str) -> None:
    state, log = dag_test({"upload_id": "no-such-upload", "namespace": run_namespace})

    assert state == "failed"
    assert "not given to create one" in log
    # Straight to failed: a conf error is not retried (the DAG's default is 2 retries).
    assert "new_state=failed" in log and "new_state=up_for_retry" not in log
