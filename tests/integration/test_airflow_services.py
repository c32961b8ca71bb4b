"""The lakehouse-airflow provider and the DAGs in a real Airflow 3 (api-server, scheduler, dag-processor, triggerer,
started here) against the real stack: Kafka's file-uploaded events start DAG runs that adopt the API's runs, the
waits are deferred to the triggerer and survive its SIGKILL, a failed run fails the wait on its stage."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.devtools.sample_data import orders
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED
from lakehouse.k8s.ingestionrun.lineage import PARENT_ANNOTATION, parse_parent
from tests.utils.airflow_services import AirflowServices
from tests.utils.operator_process import OperatorProcess
from tests.utils.pauses import pause_env, release, wait_until_held
from tests.utils.runs import GROUP, PLURAL, VERSION, Upload, create_run, get_run, run_body, upload
from tests.utils.stack import stack_env
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
INGEST = "lakehouse_ingest"
FIVE_STEPS = ["submit_run", "wait_raw_ready", "wait_transform_started", "wait_succeeded", "publish_summary"]
HELD = "transform.before-commit"


@pytest.fixture(scope="module")
def pause_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pauses")


@pytest.fixture(scope="module")
def operator(
    run_namespace: str, pause_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The module's operator; it holds each run before its bronze commit until the test releases HELD."""
    stack_env("KUBECONFIG", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "ICEBERG_CATALOG_URI")
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    # Held runs wait for the test (the default 300 s could run out while Airflow starts the DAG on this machine).
    env = {**pause_env(pause_dir, HELD), "LAKEHOUSE_PAUSE_SECONDS": "900"}
    process = OperatorProcess(run_namespace, log, env).start()
    yield process
    release(pause_dir, HELD)  # never leave a run held
    process.stop()


def start_at_the_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commits `group`'s offsets at the topics' ends, so the watchers see only this test's events, whatever
    the topics already hold and whenever their consumers join."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10)
        ends = []
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                ends.append(TopicPartition(topic, partition, high))
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def airflow(
    operator: OperatorProcess, run_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowServices]:
    env = stack_env("KUBECONFIG", "KAFKA_BOOTSTRAP_SERVERS")
    home = tmp_path_factory.mktemp("airflow")
    group = f"airflow-test-{uuid.uuid4().hex[:8]}"
    start_at_the_end(env["KAFKA_BOOTSTRAP_SERVERS"], group, [FILE_UPLOADED, BRONZE_LAYER_COMPLETE])
    kafka = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": group, "auto.offset.reset": "latest"}
    services = AirflowServices(
        home,
        {
            "LAKEHOUSE_NAMESPACE": run_namespace,
            "LAKEHOUSE_AIRFLOW_POLL_SECONDS": "1",
            # The cluster only through the connection: AirflowServices drops KUBECONFIG from the environment.
            "AIRFLOW_CONN_LAKEHOUSE_DEFAULT": json.dumps(
                {"conn_type": "kubernetes", "extra": {"kube_config_path": env["KUBECONFIG"]}}
            ),
            "AIRFLOW_CONN_LAKEHOUSE_KAFKA": json.dumps({"conn_type": "kafka", "extra": kafka}),
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(home / "openlineage.jsonl"), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "lakehouse-airflow-test",
        },
    )
    try:
        services.start()
        services.wait_for_dags(INGEST, "lakehouse_uploads", "lakehouse_bronze_updates", "lakehouse_monitoring")
        yield services
    finally:
        services.stop()


@dataclass(frozen=True)
class FailingRuns:
    """DAG runs started as soon as Airflow is up, so they go on while the event-driven test runs."""

    bad_file: Upload  # a header without the contract's columns: MissingColumns at ingest
    bad_file_run: str
    conf_error_run: str  # a conf that names no run and cannot create one


@pytest.fixture(scope="module")
def failing_runs(airflow: AirflowServices, run_namespace: str, s3: Any) -> FailingRuns:
    bad = upload(s3, b"order_id,amount\n1,2.50\n", "orders", "csv")
    runs = FailingRuns(bad, f"bad__{bad.upload_id}", f"conf__{bad.upload_id}")
    conf = {"upload_id": bad.upload_id, "dataset": "orders", "source_uri": bad.uri, "format": "csv"}
    airflow.trigger(INGEST, runs.bad_file_run, {**conf, "namespace": run_namespace})
    airflow.trigger(INGEST, runs.conf_error_run, {"upload_id": "no-such-upload", "namespace": run_namespace})
    return runs


def lineage_events(airflow: AirflowServices) -> list[dict[str, Any]]:
    path = airflow.home / "openlineage.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_the_provider_is_installed(airflow: AirflowServices, failing_runs: FailingRuns) -> None:
    assert "lakehouse-airflow" in airflow.cli("providers", "list")


def test_an_upload_event_runs_the_five_steps_on_the_apis_run_and_outlives_a_killed_triggerer(
    airflow: AirflowServices,
    failing_runs: FailingRuns,
    operator: OperatorProcess,
    run_namespace: str,
    pause_dir: Path,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    up = upload(s3, orders(40, invalid_every=8).csv_bytes(), "orders", "csv")
    create_run(custom_objects, run_namespace, run_body(up, "orders"))  # as the upload API does
    run_id = f"upload__{up.upload_id}"

    # The operator validates the run (file-uploaded), ingests it and holds it before its bronze commit; meanwhile
    # the watcher's event started lakehouse_ingest, whose wait for Succeeded is deferred to the triggerer.
    wait_until_held(pause_dir, HELD, [up.upload_id], timeout=180)
    wait_until(
        lambda: (
            airflow.dag_run(INGEST, run_id) and airflow.task_states(INGEST, run_id).get("wait_succeeded") == "deferred"
        ),
        "lakehouse_ingest started by the file-uploaded event, deferred on Succeeded",
        timeout=300,
        poll=2,
    )
    airflow.kill("triggerer")
    airflow.start_component("triggerer")
    release(pause_dir, HELD)

    assert airflow.wait_for_run(INGEST, run_id, timeout=300) == "success", airflow.task_states(INGEST, run_id)
    assert airflow.task_states(INGEST, run_id) == dict.fromkeys(FIVE_STEPS, "success")
    assert "adopted IngestionRun" in airflow.task_log(INGEST, run_id, "submit_run")
    # Adopted, not duplicated: one run for the upload (the API's, no Airflow label), its rows once.
    runs = custom_objects.list_namespaced_custom_object(GROUP, VERSION, run_namespace, PLURAL)["items"]
    assert [r["spec"]["uploadId"] for r in runs].count(up.upload_id) == 1
    run = get_run(custom_objects, run_namespace, up.upload_id)
    assert "labels" not in run["metadata"]
    rows = catalog.load_table("bronze.orders").scan(row_filter=EqualTo("upload_id", up.upload_id)).to_arrow()
    assert rows.num_rows == 35
    summary = airflow.xcom(INGEST, run_id, "publish_summary")
    assert summary["table"] == "bronze.orders" and summary["snapshotId"] == run["status"]["snapshotId"]
    assert summary["counts"] == {"input": 40, "valid": 35, "rejected": 5, "written": 35}
    assert summary["durationsSeconds"]["total"] >= 0
    # The IngestionRun names the Airflow task's OpenLineage run as its parent, and Airflow emitted that run.
    parent = parse_parent(run["metadata"]["annotations"][PARENT_ANNOTATION]).run_id
    emitted = {(e["job"]["name"], e["run"]["runId"]) for e in lineage_events(airflow)}
    assert (f"{INGEST}.submit_run", parent) in emitted
    # The bronze-layer-complete asset started its downstream DAG with this run's snapshot.
    downstream = wait_until(
        lambda: [r for r in airflow.dag_runs("lakehouse_bronze_updates") if r["state"] == "success"],
        "lakehouse_bronze_updates run by the bronze-layer-complete event",
        timeout=180,
        poll=2,
    )
    snapshots = [
        s for r in downstream for s in airflow.xcom("lakehouse_bronze_updates", r["dag_run_id"], "new_snapshots")
    ]
    assert {
        "runId": up.upload_id,
        "table": "bronze.orders",
        "snapshotId": run["status"]["snapshotId"],
        "rowsWritten": 35,
    } in snapshots


def test_a_bad_file_fails_the_raw_ready_wait_with_the_reason(
    airflow: AirflowServices, failing_runs: FailingRuns, run_namespace: str
) -> None:
    run_id, upload_id = failing_runs.bad_file_run, failing_runs.bad_file.upload_id

    assert airflow.wait_for_run(INGEST, run_id, timeout=300) == "failed"
    states = airflow.task_states(INGEST, run_id)
    assert states["submit_run"] == "success" and states["wait_raw_ready"] == "failed", states
    assert {states[t] for t in FIVE_STEPS[2:]} == {"upstream_failed"}
    log = airflow.task_log(INGEST, run_id, "wait_raw_ready")
    assert f"IngestionRun {run_namespace}/{upload_id} failed (MissingColumns)" in log
    assert "created IngestionRun" in airflow.task_log(INGEST, run_id, "submit_run")

    # lakehouse_monitoring reports it: failed since its last check.
    airflow.trigger("lakehouse_monitoring", f"check__{upload_id}", {"namespace": run_namespace})
    assert airflow.wait_for_run("lakehouse_monitoring", f"check__{upload_id}", timeout=300) == "failed"
    report = airflow.task_log("lakehouse_monitoring", f"check__{upload_id}", "check_runs")
    assert f"{run_namespace}/{upload_id}: failed - MissingColumns" in report


def test_a_conf_that_names_no_run_fails_without_retrying(airflow: AirflowServices, failing_runs: FailingRuns) -> None:
    run_id = failing_runs.conf_error_run

    assert airflow.wait_for_run(INGEST, run_id, timeout=300) == "failed"
    # Straight to failed, on the first try: a conf error is not retried (the DAG's default is 2 retries).
    instance = airflow.get(f"/api/v2/dags/{INGEST}/dagRuns/{run_id}/taskInstances/submit_run")
    assert (instance["state"], instance["try_number"]) == ("failed", 1)
    assert "not given to create one" in airflow.task_log(INGEST, run_id, "submit_run")
