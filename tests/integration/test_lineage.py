"""OpenLineage events of real runs (a real operator with the file transport) and the table lineage of the API and CLI.

Each test has a platform database of its own (`migrated_database_url`), so its operator's lineage outbox holds only
its runs' events; the events are checked against the OpenLineage spec (as openlineage-python's generated classes
define it) and against what S3, the Iceberg catalog and PostgreSQL really hold.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.bronze.writer import RUN_ID_PROPERTY
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.events import PipelineEvent
from lakehouse.k8s.ingestionrun.lineage import PARENT_ANNOTATION, ParentRun
from lakehouse.lineage import events as lineage_events
from lakehouse.lineage.naming import lineage_run_id
from lakehouse.lineage.publisher import LineagePublisher
from lakehouse.lineage.settings import LineageSettings
from lakehouse.storage.s3 import S3Location, head_object
from tests.faults.test_replays import replay_from
from tests.utils.api_process import running_api
from tests.utils.openlineage_spec import spec_errors
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import Upload, create_run, run_body, upload, wait_for_phase, watch_for_phase
from tests.utils.stack import stack_env
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_lineage", "table": "orders"}
TABLE = "bronze_lineage.orders"
PARENT = ParentRun("airflow", "lakehouse_ingest.create_run", "01936f3e-7c1a-7d2b-9f00-0123456789ab")
CLI = str(Path(sys.executable).parent / "lakehouse")
SOURCE = "s3://uploads/orders/2026-12-01/up-kafka/orders.csv"


def lineage_operator(namespace: str, database_url: str, tmp_path: Path) -> tuple[OperatorProcess, Path]:
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        "DATABASE_URL": database_url,
        "LAKEHOUSE_LINEAGE_TRANSPORT": "file",
        "LAKEHOUSE_LINEAGE_FILE": str(events_file),
        "LAKEHOUSE_LINEAGE_NAMESPACE": "lakehouse-test",
    }
    return OperatorProcess(namespace, tmp_path / "operator.log", env).start(), events_file


def sent_events(events_file: Path, database_url: str, run_id: str, count: int) -> list[dict[str, Any]]:
    """The run's events in the file, once its lineage outbox holds `count` events and all of them were sent."""

    def all_sent() -> bool:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*), count(sent_at) FROM lineage_outbox WHERE run_id = %s", (run_id,)
            ).fetchone()
        return row == (count, count)

    wait_until(all_sent, f"{count} lineage events of {run_id} sent", timeout=30)
    lines = events_file.read_text().splitlines()
    return [event for event in map(json.loads, lines) if event["run"]["runId"] == run_id]


def assert_valid(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert spec_errors(event) == [], event["eventType"]


def test_a_run_emits_start_running_complete_naming_its_real_objects_and_table(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    sample = orders(120, invalid_every=10, seed=15)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    body = run_body(up, "orders", target=TARGET)
    body["metadata"]["annotations"] = {PARENT_ANNOTATION: PARENT.annotation}
    operator, events_file = lineage_operator(run_namespace, migrated_database_url, tmp_path)
    try:
        created = create_run(custom_objects, run_namespace, body)
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"})
        status = run["status"]
        assert status["phase"] == "Succeeded", status
        run_id = lineage_run_id(created["metadata"]["uid"])
        events = sent_events(events_file, migrated_database_url, run_id, 3)
        assert [e["eventType"] for e in events] == ["START", "RUNNING", "COMPLETE"]
        assert_valid(events)

        # A replay of every handler (a retried run) keeps its one lineage run: no event is added or sent again.
        since = replay_from(custom_objects, run_namespace, up.upload_id, "Pending")
        again = watch_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, since)
        assert again["status"]["phase"] == "Succeeded", again["status"]
        assert sent_events(events_file, migrated_database_url, run_id, 3) == events
    finally:
        operator.stop()

    start, running, complete = events
    assert {e["job"]["namespace"] for e in events} == {"lakehouse-test"}
    assert {e["job"]["name"] for e in events} == {"ingest.orders"}
    for event in events:
        parent = event["run"]["facets"]["parent"]
        assert (parent["job"]["namespace"], parent["job"]["name"], parent["run"]["runId"]) == (
            PARENT.job_namespace,
            PARENT.job_name,
            PARENT.run_id,
        )
        # The input is the uploaded object itself.
        source = S3Location.parse(up.uri)
        assert [(i["namespace"], i["name"]) for i in event["inputs"]] == [(f"s3://{source.bucket}", source.key)]
    assert head_object(s3, S3Location.parse(up.uri)) is not None
    assert start["outputs"] == []

    assert_outputs_are_the_real_objects(complete, running, status, s3, catalog, up.upload_id)
    assert_quality_as_recorded(complete, migrated_database_url, up.upload_id)
    assert_table_lineage_listed(run_namespace, migrated_database_url, tmp_path, status, up)


def assert_outputs_are_the_real_objects(
    complete: dict[str, Any], running: dict[str, Any], status: dict[str, Any], s3: Any, catalog: Catalog, run: str
) -> None:
    # raw/ and quarantine/: the objects the run wrote, with their row counts.
    raw, quarantine, table = complete["outputs"]
    for dataset, uri, rows in ((raw, status["rawPath"], 108), (quarantine, status["quarantinePath"], 12)):
        location = S3Location.parse(uri)
        assert (dataset["namespace"], dataset["name"]) == (f"s3://{location.bucket}", location.key)
        assert head_object(s3, location) is not None, uri
        assert dataset["outputFacets"]["outputStatistics"]["rowCount"] == rows
    assert running["outputs"] == [raw, quarantine]

    # The bronze table: the catalog's name for it, at the snapshot that carries this run's id.
    assert (table["namespace"], table["name"]) == (stack_env("ICEBERG_CATALOG_URI")["ICEBERG_CATALOG_URI"], TABLE)
    snapshot = catalog.load_table(TABLE).snapshot_by_id(int(table["facets"]["version"]["datasetVersion"]))
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.additional_properties[RUN_ID_PROPERTY] == run
    assert int(table["facets"]["version"]["datasetVersion"]) == status["snapshotId"]
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == 108
    assert [f["name"] for f in table["facets"]["schema"]["fields"]] == [
        f.name for f in catalog.load_table(TABLE).schema().fields
    ]


def assert_quality_as_recorded(complete: dict[str, Any], database_url: str, run: str) -> None:
    """Data quality: each check's counts, as the run recorded them in PostgreSQL."""
    with psycopg.connect(database_url) as conn:
        recorded = conn.execute(
            "SELECT check_name, column_name, passed_count, failed_count FROM data_quality_metrics WHERE run_id = %s",
            (run,),
        ).fetchall()
    assert recorded
    assertions = complete["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {
        (a["assertion"], a.get("column") or "", a["params"]["passed"], a["params"]["failed"]) for a in assertions
    } == {(name, column or "", passed, failed) for name, column, passed, failed in recorded}
    assert any(a["success"] is False for a in assertions)


def assert_table_lineage_listed(
    namespace: str, database_url: str, tmp_path: Path, status: dict[str, Any], up: Upload
) -> None:
    """The API and the CLI list the snapshot with its run and upload (table_lineage in the test's database)."""
    env = stack_env("KUBECONFIG", "S3_ENDPOINT_URL", "ICEBERG_CATALOG_URI")
    with running_api(namespace, tmp_path / "api.log", {"DATABASE_URL": database_url}) as api:
        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_API")} | env
        cli_env |= {"LAKEHOUSE_API_URL": api.url, "LAKEHOUSE_API_KEY": api.key, "LAKEHOUSE_CONFIG": "/nonexistent"}
        result = subprocess.run(
            [CLI, "--json", "lineage", TABLE], env=cli_env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        text = subprocess.run(
            [CLI, "lineage", TABLE], env=cli_env, capture_output=True, text=True, timeout=60, check=True
        ).stdout
    page = json.loads(result.stdout)
    ours = [s for s in page["data"] if s["runId"] == up.upload_id]
    assert [(s["snapshotId"], s["uploadId"], s["sourceUri"], s["rawUri"], s["rowsWritten"]) for s in ours] == [
        (status["snapshotId"], up.upload_id, up.uri, status["rawPath"], 108)
    ]
    assert ours[0]["sourceSha256"] == up.sha256
    assert str(status["snapshotId"]) in text and up.uri in text


def test_a_bad_file_fails_with_an_error_facet(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    up = upload(s3, b"order_id,amount\n1,2.00\n", "orders", "csv")
    operator, events_file = lineage_operator(run_namespace, migrated_database_url, tmp_path)
    try:
        created = create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
        run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"})
        assert run["status"]["phase"] == "Failed"
        assert "MissingColumns" in {c["reason"] for c in run["status"]["conditions"]}, run["status"]
        events = sent_events(events_file, migrated_database_url, lineage_run_id(created["metadata"]["uid"]), 2)
    finally:
        operator.stop()

    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert_valid(events)
    fail = events[1]
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"].startswith("MissingColumns: ") and error["programmingLanguage"] == "python"
    assert fail["outputs"] == []  # nothing was written
    assert "parent" not in fail["run"]["facets"]


def test_the_kafka_transport_puts_an_event_on_its_topic() -> None:
    """The Kafka transport as configured from LineageSettings (the platform's Kafka connection, acks=all) reaches
    the real broker: the event on the topic is the stored one."""
    bootstrap = stack_env("KAFKA_BOOTSTRAP_SERVERS")["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"openlineage-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    at = dt.datetime.now(dt.UTC)
    facts = lineage_events.RunFacts(
        lineage_run_id(str(uuid.uuid4())),
        "lakehouse",
        "orders",
        ContractRegistry.default().get("orders"),
        SOURCE,
        PARENT,
    )
    stored = lineage_events.to_json(lineage_events.start(facts, at))
    event = PipelineEvent("openlineage.START", facts.run_id, "up-kafka", stored, at)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"})
    try:
        settings = LineageSettings(LAKEHOUSE_LINEAGE_TRANSPORT="kafka", LAKEHOUSE_LINEAGE_KAFKA_TOPIC=topic)
        assert LineagePublisher(settings).publish_all([event]) == {}
        consumer.subscribe([topic])
        message = wait_until(lambda: consumer.poll(1.0), f"an event on {topic}", timeout=30, poll=0)
        assert message.error() is None, message.error()
        assert message.key() == f"run:{PARENT.job_namespace}/{PARENT.job_name}".encode()  # the parent's partition
        sent = json.loads(message.value())
        assert spec_errors(sent) == []
        sent["run"]["facets"].pop("tags")  # the client adds its version as a run tag
        assert sent == stored
    finally:
        consumer.close()
        admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
