"""airflow/dags/lakehouse_ingest.py run by `airflow dags test` (in-process, the deferred waits' triggers run inline),
Airflow's own virtualenv with the provider, against the real control plane and a real operator: the DAG creates
the run and follows it to Succeeded; a conf that names no run fails without retrying."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.devtools.sample_data import orders
from tests.utils.airflow_services import AirflowServices
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import get_run, upload
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
DAG_ID = "lakehouse_ingest"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> AirflowServices:
    """An AIRFLOW_HOME of the module's own; no server runs, `dags test` needs none."""
    env = stack_env("KUBECONFIG")
    connection = {"conn_type": "kubernetes", "extra": {"kube_config_path": env["KUBECONFIG"]}}
    services = AirflowServices(
        tmp_path_factory.mktemp("airflow"),
        {"AIRFLOW_CONN_LAKEHOUSE_DEFAULT": json.dumps(connection), "LAKEHOUSE_AIRFLOW_POLL_SECONDS": "1"},
    )
    services.prepare()
    return services


def dag_test(airflow: AirflowServices, conf: dict[str, Any]) -> tuple[str, str]:
    """(DAG run state, log) of one in-process DAG run."""
    log = airflow.cli("dags", "test", DAG_ID, "-c", json.dumps(conf), timeout=600, check=False)
    finished = re.search(r"DagRun Finished: dag_id=lakehouse_ingest.*? state=(\w+)", log)
    assert finished, f"no DAG run result:\n{log[-4000:]}"
    return finished.group(1), log


def test_dag_creates_the_run_and_succeeds_with_it(
    airflow: AirflowServices,
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    up = upload(s3, orders(80, invalid_every=8).csv_bytes(), "orders", "csv")
    conf = {"upload_id": up.upload_id, "dataset": "orders", "source_uri": up.uri, "format": up.fmt}

    state, log = dag_test(airflow, {**conf, "namespace": run_namespace})

    assert state == "success", log[-4000:]
    assert f"created IngestionRun {run_namespace}/{up.upload_id}" in log
    run = get_run(custom_objects, run_namespace, up.upload_id)
    assert run["metadata"]["labels"]["app.kubernetes.io/created-by"] == "airflow"
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["counts"] == {"input": 80, "valid": 70, "rejected": 10, "written": 70}
    rows = catalog.load_table("bronze.orders").scan(row_filter=EqualTo("upload_id", up.upload_id)).to_arrow()
    assert rows.num_rows == 70


def test_a_conf_that_names_no_run_fails_without_retrying(
    airflow: AirflowServices, operator: OperatorProcess, run_namespace: str
) -> None:
    state, log = dag_test(airflow, {"upload_id": "no-such-upload", "namespace": run_namespace})

    assert state == "failed"
    assert "not given to create one" in log
    # Straight to failed: a conf error is not retried (the DAG's default is 2 retries).
    assert "new_state=failed" in log and "new_state=up_for_retry" not in log
