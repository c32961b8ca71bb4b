"""A dependency that stays down: the run retries with backoff, then fails with the reason on the resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lakehouse.devtools.sample_data import orders
from tests.utils.operator_process import OperatorProcess, free_port
from tests.utils.runs import create_run, run_body, upload, wait_for_phase
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration


def retry_warnings(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return sorted(e.message for e in events if (e.type, e.reason) == ("Warning", "Retrying"))


def test_unreachable_catalog_exhausts_retries_and_fails_the_run(
    run_namespace: str, custom_objects: client.CustomObjectsApi, kube_api: client.ApiClient, s3: Any, tmp_path: Path
) -> None:
    closed_port = free_port()  # nothing listens there
    env = {
        "ICEBERG_CATALOG_URI": f"http://127.0.0.1:{closed_port}",
        "LAKEHOUSE_MAX_ATTEMPTS": "3",
        "LAKEHOUSE_RETRY_MAX_DELAY": "2",
    }
    process = OperatorProcess(run_namespace, tmp_path / "operator.log", env).start()
    try:
        up = upload(s3, orders(10).csv_bytes(), "orders", "csv")
        create_run(custom_objects, run_namespace, run_body(up, "orders"))
        retrying = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Failed"}, timeout=90)
    finally:
        process.stop()

    status = retrying["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Failed"]["reason"] == "RetriesExhausted"
    assert "transform failed 3 times" in conditions["Failed"]["message"]
    # The failing stage says so too, and each failed attempt was a Warning Event (Kopf posts them meanwhile).
    assert (conditions["Transformed"]["status"], conditions["Transformed"]["reason"]) == ("False", "RetriesExhausted")
    assert conditions["Ingested"]["status"] == "True"
    core = client.CoreV1Api(kube_api)

    def both_warnings() -> list[str] | None:
        found = retry_warnings(core, run_namespace, up.upload_id)
        return found if len(found) >= 2 else None

    warnings = wait_until(both_warnings, "a Retrying Warning Event per failed attempt but the last", timeout=30)
    assert [w.split(" failed")[0] for w in warnings] == ["transform attempt 1 of 3", "transform attempt 2 of 3"]
    assert status["attempts"] == 3
    # The work before the broken step is kept: the raw data is there for a new run to pick up.
    assert status["counts"]["valid"] == 10 and status["rawPath"].startswith("s3://raw/orders/")
