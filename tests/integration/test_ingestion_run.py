"""An IngestionRun end to end through a real operator process, against the real stack."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
import uuid
from typing import Any

import psycopg
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.bronze.writer import RUN_ID_PROPERTY
from lakehouse.devtools.sample_data import customers_csv, orders
from lakehouse.events import TOPICS
from lakehouse.storage.s3 import S3Location, read_parquet
from tests.utils.kafka_events import events_for
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import create_run, get_run, run_body, upload, wait_for_phase
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration


def scratch_table(prefix: str) -> dict[str, str]:
    return {"namespace": "bronze_it", "table": f"{prefix}_{uuid.uuid4().hex[:8]}"}


def bronze_rows(catalog: Catalog, table: str, upload_id: str) -> list[dict[str, Any]]:
    return catalog.load_table(table).scan(row_filter=EqualTo("upload_id", upload_id)).to_arrow().to_pylist()


def test_csv_with_good_and_bad_rows_becomes_bronze_with_full_trail(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    db: psycopg.Connection,
) -> None:
    sample = orders(200, invalid_every=10)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    target = scratch_table("orders")
    create_run(custom_objects, run_namespace, run_body(up, "orders", target=target))

    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"})

    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["counts"] == {"input": 200, "valid": 180, "rejected": 20, "written": 180}
    table_name = f"{target['namespace']}.{target['table']}"
    assert status["table"] == table_name
    assert status["observedGeneration"] == run["metadata"]["generation"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert {t: conditions[t]["status"] for t in ("Validated", "Ingested", "Transformed", "Ready")} == dict.fromkeys(
        ("Validated", "Ingested", "Transformed", "Ready"), "True"
    )
    assert status["engines"] == {"ingest": "builtin", "transform": "arrow"}
    processing_date = status["processingDate"]
    assert status["rawPath"] == f"s3://raw/orders/{processing_date}/{up.upload_id}.parquet"
    assert status["quarantinePath"] == f"s3://quarantine/orders/{processing_date}/{up.upload_id}.parquet"

    # Bronze rows: exactly the valid input rows, with lineage columns.
    rows = bronze_rows(catalog, table_name, up.upload_id)
    assert {r["order_id"]: (r["customer_id"], r["amount"], r["order_date"]) for r in rows} == sample.valid
    assert len(rows) == 180
    for row in rows[:20]:
        assert row["data_version"] == "orders-v1" and row["source_system"] == "order-service"
        assert (row["year"], row["month"], row["day"]) == (
            row["order_date"].year,
            row["order_date"].month,
            row["order_date"].day,
        )
        assert row["processing_date"] == dt.date.fromisoformat(processing_date)
    table = catalog.load_table(table_name)
    snapshot = table.snapshot_by_id(status["snapshotId"])
    assert snapshot is not None and snapshot.summary.additional_properties[RUN_ID_PROPERTY] == up.upload_id
    assert [f.transform.__class__.__name__ for f in table.spec().fields] == ["MonthTransform"]

    # Raw Parquet and quarantine with reasons.
    raw = read_parquet(s3, S3Location.parse(status["rawPath"]))
    assert raw.num_rows == 180
    quarantined = read_parquet(s3, S3Location.parse(status["quarantinePath"])).to_pylist()
    reasons = {r["_source_row"]: r["_reject_reason"] for r in quarantined}
    assert set(reasons) == set(sample.rejected)
    assert all(fragment in reasons[row] for row, fragment in sample.rejected.items())
    assert {r["_upload_id"] for r in quarantined} == {up.upload_id}

    # One event per stage on Kafka, keyed by the upload id, as CloudEvents.
    events = events_for(os.environ["KAFKA_BOOTSTRAP_SERVERS"], up.upload_id, list(TOPICS))
    by_topic = {e["topic"]: e for e in events}
    assert set(by_topic) == {"file-uploaded", "raw-data-ready", "bronze-layer-complete"}
    assert len({e["id"] for e in events}) == 3
    assert by_topic["raw-data-ready"]["data"]["counts"] == {"input": 200, "valid": 180, "rejected": 20}
    assert by_topic["bronze-layer-complete"]["data"]["snapshotId"] == status["snapshotId"]
    assert all(e["specversion"] == "1.0" and e["subject"] == up.upload_id for e in events)

    # PostgreSQL: workflow, jobs, data quality, lineage.
    assert db.execute(
        "SELECT phase, snapshot_id, target_table FROM workflow_execution WHERE run_id = %s", (up.upload_id,)
    ).fetchone() == ("Succeeded", status["snapshotId"], table_name)
    jobs = db.execute(
        "SELECT stage, status, rows_in, rows_out, rows_rejected FROM job_metrics WHERE run_id = %s ORDER BY stage",
        (up.upload_id,),
    ).fetchall()
    assert jobs == [("ingest", "succeeded", 200, 180, 20), ("transform", "succeeded", 180, 180, 0)]
    quality = {
        (name, column): (passed, failed)
        for name, column, passed, failed in db.execute(
            "SELECT check_name, column_name, passed_count, failed_count FROM data_quality_metrics WHERE run_id = %s",
            (up.upload_id,),
        )
    }
    assert quality[("row_count", "")] == (180, 20)
    assert quality[("amount_positive", "amount")][1] == sum(
        "amount_positive" in reason for reason in sample.rejected.values()
    )
    assert db.execute(
        "SELECT snapshot_id, rows_written, source_sha256 FROM table_lineage WHERE run_id = %s",
        (up.upload_id,),
    ).fetchone() == (status["snapshotId"], 180, up.sha256)


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_json_lines_and_parquet_uploads(
    fmt: str,
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    sample = orders(50, invalid_every=7, seed=3)
    data = sample.json_lines_bytes() if fmt == "json" else sample.parquet_bytes()
    up = upload(s3, data, "orders", fmt)
    target = scratch_table(f"orders_{fmt}")
    create_run(custom_objects, run_namespace, run_body(up, "orders", target=target))

    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"})

    assert run["status"]["phase"] == "Succeeded", run["status"]
    rows = bronze_rows(catalog, f"{target['namespace']}.{target['table']}", up.upload_id)
    assert {r["order_id"]: (r["customer_id"], r["amount"], r["order_date"]) for r in rows} == sample.valid
    assert run["status"]["counts"]["rejected"] == len(sample.rejected)


def test_customers_upload_uses_its_own_contract(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    data, valid = customers_csv(40, bad_emails=3)
    up = upload(s3, data, "customers", "csv")
    target = scratch_table("customers")
    create_run(custom_objects, run_namespace, run_body(up, "customers", target=target))

    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"})

    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["counts"] == {"input": 40, "valid": valid, "rejected": 3, "written": valid}
    table = catalog.load_table(f"{target['namespace']}.{target['table']}")
    assert [f.name for f in table.spec().fields] == ["country"]
    assert table.scan().to_arrow().num_rows == valid


def test_second_upload_to_the_same_table_adds_a_snapshot_and_time_travel_sees_the_first(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
) -> None:
    target = scratch_table("orders_tt")
    table_name = f"{target['namespace']}.{target['table']}"
    first, second = orders(30, first_order_id=1), orders(20, first_order_id=1001, seed=9)
    snapshots = []
    for sample in (first, second):
        up = upload(s3, sample.csv_bytes(), "orders", "csv")
        create_run(custom_objects, run_namespace, run_body(up, "orders", target=target))
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"})
        assert run["status"]["phase"] == "Succeeded", run["status"]
        snapshots.append(run["status"]["snapshotId"])

    table = catalog.load_table(table_name)
    assert [s.snapshot_id for s in table.snapshots()] == snapshots
    assert table.scan().to_arrow().num_rows == 50
    as_of_first = table.scan(snapshot_id=snapshots[0]).to_arrow()
    assert sorted(as_of_first.column("order_id").to_pylist()) == sorted(first.valid)


@pytest.mark.parametrize(
    ("case", "reason", "fragment"),
    [
        ("unknown-dataset", "UnknownDataset", "unknown dataset 'no_such_dataset'"),
        ("missing-object", "SourceNotFound", "does not exist; upload the file again"),
        ("missing-columns", "MissingColumns", "lacks required column(s) customer_id, date"),
    ],
    ids=["unknown-dataset", "missing-object", "missing-columns"],
)
def test_bad_runs_fail_with_a_precise_reason(
    case: str,
    reason: str,
    fragment: str,
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    db: psycopg.Connection,
) -> None:
    data = b"order_id,amount\n1,2.00\n" if case == "missing-columns" else orders(3).csv_bytes()
    # The CRD holds a run to its own upload, so the unknown dataset's file is stored under that dataset.
    dataset = "no_such_dataset" if case == "unknown-dataset" else "orders"
    up = upload(s3, data, dataset, "csv")
    manifest = run_body(up, dataset)
    if case == "missing-object":
        s3.delete_object(**{"Bucket": "uploads", "Key": S3Location.parse(up.uri).key})
    create_run(custom_objects, run_namespace, manifest)

    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"})

    status = run["status"]
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == reason and failed["status"] == "True"
    assert status["message"] == failed["message"] and fragment in failed["message"]
    assert status["attempts"] == 1  # failed at once: retrying cannot fix any of these
    events = events_for(os.environ["KAFKA_BOOTSTRAP_SERVERS"], up.upload_id, ["ingestion-failed"])
    assert [e["data"]["reason"] for e in events] == [reason]
    assert db.execute("SELECT phase FROM workflow_execution WHERE run_id = %s", (up.upload_id,)).fetchone() == (
        "Failed",
    )


def test_api_server_refuses_invalid_specs_and_spec_changes(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
) -> None:
    up = upload(s3, orders(3).csv_bytes(), "orders", "csv")
    bad = run_body(up, "orders")
    bad["spec"]["source"]["format"] = "xlsx"
    with pytest.raises(ApiException) as refused:
        create_run(custom_objects, run_namespace, bad)
    assert refused.value.status == 422
    assert "spec.source.format" in refused.value.body and "xlsx" in refused.value.body

    create_run(custom_objects, run_namespace, run_body(up, "orders"))
    with pytest.raises(ApiException) as immutable:
        custom_objects.patch_namespaced_custom_object(
            "lakehouse.dev",
            "v1alpha1",
            run_namespace,
            "ingestionruns",
            up.upload_id,
            {"spec": {"dataset": "customers"}},
        )
    assert immutable.value.status == 422
    assert "spec is immutable" in immutable.value.body
    assert get_run(custom_objects, run_namespace, up.upload_id)["spec"]["dataset"] == "orders"


def test_kubectl_get_shows_the_printer_columns(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
) -> None:
    up = upload(s3, orders(12, invalid_every=4).csv_bytes(), "orders", "csv")
    create_run(custom_objects, run_namespace, run_body(up, "orders", target=scratch_table("orders_cols")))
    wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"})

    output = subprocess.run(
        [os.environ["KUBECTL"], "get", "ir", up.upload_id, "-n", run_namespace],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert output[0].split() == ["NAME", "PHASE", "READY", "DATASET", "ROWS", "REJECTED", "TABLE", "AGE"]
    assert output[1].split()[:6] == [up.upload_id, "Succeeded", "True", "orders", "9", "3"]

    explained = subprocess.run(
        [os.environ["KUBECTL"], "explain", "ingestionrun.spec.source"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "sha256" in explained and "S3 URI of the uploaded object" in explained


def test_kubernetes_events_record_each_transition(
    operator: OperatorProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    kube_api: client.ApiClient,
) -> None:
    up = upload(s3, orders(5).csv_bytes(), "orders", "csv")
    target = scratch_table("orders_ev")
    table_name = f"{target['namespace']}.{target['table']}"
    create_run(custom_objects, run_namespace, run_body(up, "orders", target=target))
    wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded"})

    # Kopf posts events in the background, so the last one may appear a moment after the status it reports.
    core, messages = client.CoreV1Api(kube_api), {}
    deadline = time.monotonic() + 30
    while "BronzeCommitted" not in messages and time.monotonic() < deadline:
        time.sleep(0.2)
        events = core.list_namespaced_event(run_namespace, field_selector=f"involvedObject.name={up.upload_id}")
        messages = {e.reason: e.message for e in events.items}
    assert {"Accepted", "IngestStarted", "RawWritten", "TransformStarted", "BronzeCommitted"} <= set(messages)
    # Each says what happened in words, with the phase it led to.
    assert messages["Accepted"] == f"Pending: accepted {up.uri} for dataset orders"
    assert messages["RawWritten"] == "RawReady: 5 valid and 0 rejected of 5 rows"
    assert messages["BronzeCommitted"].startswith(f"Succeeded: 5 rows in {table_name} (snapshot ")


def test_operator_logs_are_json_lines_that_name_the_run(
    operator: OperatorProcess, run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any
) -> None:
    up = upload(s3, orders(5).csv_bytes(), "orders", "csv")
    create_run(custom_objects, run_namespace, run_body(up, "orders", target=scratch_table("orders_logs")))
    wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded"})

    def log_lines() -> list[dict[str, Any]]:
        # Whole lines only: the operator may be writing the last one while it is read.
        whole = operator.log_path.read_text().rpartition("\n")[0]
        return [json.loads(line) for line in whole.splitlines() if line.startswith("{")]

    def kopf_lines_of_the_run() -> bool:
        return any(line["logger"] == "kopf.objects" and line.get("run") == up.upload_id for line in log_lines())

    # Kopf logs the handler's outcome after the handler returns, which is after the run's Succeeded status.
    wait_until(kopf_lines_of_the_run, "a kopf.objects line naming the run", timeout=15)
    lines = log_lines()
    ours = [line for line in lines if line.get("run") == up.upload_id]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    # Within each step, every line carries the upload and the phase; Kopf's own lines at least the run.
    assert {line.get("phase") for line in ours} >= {"Pending", "Ingesting", "RawReady", "Transforming"}
    assert all(line["uploadId"] == up.upload_id for line in ours if "phase" in line)


def test_stack_operator_runs_uploads_in_its_namespace_and_counts_them(
    custom_objects: client.CustomObjectsApi, s3: Any
) -> None:
    """The operator `make up` started (not this module's) handles runs and exposes Prometheus metrics."""
    import re
    import urllib.request

    url = os.environ.get("LAKEHOUSE_OPERATOR_METRICS_URL")
    namespace = os.environ.get("LAKEHOUSE_NAMESPACE")
    assert url and namespace, 'run `eval "$(make -s env)"` first'

    def scrape() -> str:
        return urllib.request.urlopen(url, timeout=5).read().decode()

    def sample(text: str, pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)", text)
        return float(match.group(1)) if match else 0.0

    succeeded = r'lakehouse_runs_total\{dataset="orders",phase="Succeeded"\}'
    ingested = r'lakehouse_stage_duration_seconds_count\{engine="builtin",stage="ingest"\}'
    before = scrape()
    up = upload(s3, orders(10).csv_bytes(), "orders", "csv")
    create_run(custom_objects, namespace, run_body(up, "orders", target=scratch_table("orders_stack")))
    run = wait_for_phase(custom_objects, namespace, up.upload_id, {"Succeeded", "Failed"})
    after = scrape()

    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert sample(after, succeeded) == sample(before, succeeded) + 1
    # Each stage measured once per run, from the phase's start on the status to its end.
    assert sample(after, ingested) == sample(before, ingested) + 1
    assert re.search(r'lakehouse_runs_in_flight\{phase="Ingesting"\} [0-9.]+', after)
    assert re.search(r'lakehouse_build_info\{component="operator",version="[^"]+"\} 1.0', after)
