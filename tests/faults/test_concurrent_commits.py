"""20 runs of one dataset commit to the same bronze table at the same moment.

Iceberg commits are optimistic: a commit based on metadata that another writer has since replaced is refused
(CommitFailedException). The operator holds every run at `transform.before-commit` (lakehouse_operator.faults),
after its table was loaded, until all 20 are there, then lets them go: all 20 commit on the same metadata, so
one wins and each of the other 19 conflicts at least once. Each conflict is retried on fresh metadata after a
search for the run id (lakehouse/bronze/writer.py), and counted on the operator's /metrics. Group commit is off
(LAKEHOUSE_GROUP_COMMIT_MAX_RUNS=1): one operator's runs of a table would otherwise wait for each other instead of
conflicting (tests/faults/test_group_commit.py), and this is what concurrent writers of one table meet.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.compute as pc
import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import In

from lakehouse.bronze.writer import RUN_ID_PROPERTY
from lakehouse.devtools.sample_data import orders
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY
from tests.utils.kafka_events import events_for_uploads
from tests.utils.operator_process import OperatorProcess
from tests.utils.outbox import outbox_rows, wait_until_drained
from tests.utils.pauses import pause_env, release, wait_until_held
from tests.utils.runs import create_run, run_body, upload, wait_for_phase
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}
RUNS = 20
POINT = "transform.before-commit"
EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]


def test_twenty_runs_appending_to_one_table_at_once_lose_and_double_no_row(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    samples = [orders(40 + i, invalid_every=9, seed=i, first_order_id=1000 * i) for i in range(RUNS)]
    uploads = [upload(s3, sample.csv_bytes(), "orders", "csv") for sample in samples]
    valid = {up.upload_id: len(sample.valid) for up, sample in zip(uploads, samples, strict=True)}
    # A worker thread per run, so all 20 can be held at once.
    env = {
        "DATABASE_URL": migrated_database_url,
        "LAKEHOUSE_OPERATOR_WORKERS": str(RUNS + 4),
        "LAKEHOUSE_GROUP_COMMIT_MAX_RUNS": "1",
        **pause_env(tmp_path, POINT),
    }
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", env, metrics=True).start()
    try:
        for up in uploads:
            create_run(custom_objects, run_namespace, run_body(up, "orders", target=TARGET))
        wait_until_held(tmp_path, POINT, list(valid), timeout=300)
        release(tmp_path, POINT)
        runs = {
            run_id: wait_for_phase(custom_objects, run_namespace, run_id, {"Succeeded", "Failed"}, timeout=300)
            for run_id in valid
        }
        conflicts = operator.metric(
            "lakehouse_iceberg_commit_retries_total", {"dataset": "orders", "cause": "conflict"}
        )
        stage_retries = operator.metric(
            "lakehouse_stage_failures_total", {"stage": "transform", "reason": "CommitFailedException"}
        )
        wait_until_drained(migrated_database_url, timeout=120)
    finally:
        release(tmp_path, POINT)
        operator.stop()

    assert {run_id: run["status"]["phase"] for run_id, run in runs.items()} == dict.fromkeys(valid, "Succeeded")
    assert {run_id: run["status"]["counts"]["written"] for run_id, run in runs.items()} == valid
    assert conflicts >= RUNS - 1, f"only {conflicts} conflicts: the runs did not commit on the same metadata"

    table = catalog.load_table(f"{TARGET['namespace']}.{TARGET['table']}")
    # Every row of every run once: counted per upload id over the whole table.
    upload_ids = table.scan(row_filter=In("upload_id", set(valid)), selected_fields=("upload_id",)).to_arrow()[
        "upload_id"
    ]
    counted = {row["values"]: row["counts"] for row in pc.value_counts(upload_ids).to_pylist()}
    assert counted == valid
    # One snapshot per run, carrying its run id, the one on the run's status, with the run's rows.
    snapshots = [
        s for s in table.snapshots() if s.summary and s.summary.additional_properties.get(RUN_ID_PROPERTY) in valid
    ]
    by_run = Counter(s.summary.additional_properties[RUN_ID_PROPERTY] for s in snapshots if s.summary)
    assert by_run == dict.fromkeys(valid, 1)
    for snapshot in snapshots:
        assert snapshot.summary is not None
        run_id = snapshot.summary.additional_properties[RUN_ID_PROPERTY]
        assert runs[run_id]["status"]["snapshotId"] == snapshot.snapshot_id
        assert int(snapshot.summary["added-records"]) == valid[run_id]

    with psycopg.connect(migrated_database_url) as conn:
        lineage = conn.execute("SELECT run_id, snapshot_id, rows_written FROM table_lineage").fetchall()
    assert sorted(lineage) == sorted((r, runs[r]["status"]["snapshotId"], n) for r, n in valid.items())
    outbox = {run_id: outbox_rows(migrated_database_url, run_id) for run_id in valid}
    assert {run_id: [r["topic"] for r in rows] for run_id, rows in outbox.items()} == dict.fromkeys(valid, EVENTS)
    bootstrap = stack_env("KAFKA_BOOTSTRAP_SERVERS")["KAFKA_BOOTSTRAP_SERVERS"]
    events = events_for_uploads(bootstrap, set(valid), EVENTS)
    sent = {(r["topic"], r["event_id"]) for rows in outbox.values() for r in rows}
    assert {(e["topic"], e["id"]) for e in events} == sent
    print(
        f"{RUNS} runs on one table: {conflicts:.0f} conflicts retried by the writer, {stage_retries:.0f} by the stage"
    )
