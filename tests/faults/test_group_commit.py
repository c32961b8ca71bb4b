"""Group commit through the operator: a burst of runs to one table lands in fewer Iceberg commits than runs, each
run's rows exactly once, and an operator SIGKILLed right after a group commit loses and doubles nothing.

The operator holds every run at `transform.rows-ready` (lakehouse_operator.faults), its bronze rows prepared,
until all are there, then lets them go together: the first commits alone, the others queue behind that commit and
go as one group (operator/lakehouse_operator/group_commit.py).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import In

from lakehouse.bronze.writer import snapshot_run_ids
from lakehouse.devtools.sample_data import orders
from lakehouse.events import BRONZE_LAYER_COMPLETE, FILE_UPLOADED, RAW_DATA_READY
from tests.utils.exactly_once import assert_metadata_once
from tests.utils.kafka_events import events_for_uploads
from tests.utils.operator_process import OperatorProcess
from tests.utils.outbox import outbox_rows, wait_until_drained
from tests.utils.pauses import pause_env, release, wait_until_held
from tests.utils.runs import create_run, get_run, run_body, upload, wait_for_phase
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration
TARGET = {"namespace": "bronze_faults", "table": "orders"}
IDENTIFIER = f"{TARGET['namespace']}.{TARGET['table']}"
HOLD = "transform.rows-ready"
CRASH = "transform.after-group-commit"
EVENTS = [FILE_UPLOADED, RAW_DATA_READY, BRONZE_LAYER_COMPLETE]


def start_burst(
    runs: int, namespace: str, api: client.CustomObjectsApi, s3: Any, database_url: str, tmp_path: Path, **env: str
) -> tuple[OperatorProcess, dict[str, tuple[int, int]]]:
    """`runs` runs of orders held at HOLD, then released together; answers the operator and each run's
    (valid, rejected) rows by run name (the upload id)."""
    samples = [orders(30 + i, invalid_every=7, seed=i, first_order_id=10_000 * (i + 1)) for i in range(runs)]
    uploads = [upload(s3, sample.csv_bytes(), "orders", "csv") for sample in samples]
    counts = {up.upload_id: (len(s.valid), len(s.rejected)) for up, s in zip(uploads, samples, strict=True)}
    operator_env = {
        "DATABASE_URL": database_url,
        "LAKEHOUSE_OPERATOR_WORKERS": str(runs + 4),  # every run held at once, and room for the others' steps
        **pause_env(tmp_path, HOLD),
        **env,
    }
    operator = OperatorProcess(namespace, tmp_path / "operator.log", operator_env).start()
    for up in uploads:
        create_run(api, namespace, run_body(up, "orders", target=TARGET))
    wait_until_held(tmp_path, HOLD, list(counts), timeout=300)
    release(tmp_path, HOLD)
    return operator, counts


def groups_of(catalog: Catalog, runs: set[str]) -> list[list[str]]:
    """The run ids of each snapshot of the table that holds one of `runs`."""
    snapshots = catalog.load_table(IDENTIFIER).snapshots()
    named = [snapshot_run_ids(s.summary.additional_properties) for s in snapshots if s.summary]
    return [ids for ids in named if runs & set(ids)]


def assert_burst_landed_once(
    runs: dict[str, dict[str, Any]], counts: dict[str, tuple[int, int]], catalog: Catalog, database_url: str
) -> None:
    """Each run Succeeded with its rows once, in the one snapshot its status names, with its own PostgreSQL rows
    and events; and the runs took fewer commits than runs."""
    valid = {run_id: count[0] for run_id, count in counts.items()}
    assert {run_id: run["status"]["phase"] for run_id, run in runs.items()} == dict.fromkeys(counts, "Succeeded")
    assert {run_id: run["status"]["counts"]["written"] for run_id, run in runs.items()} == valid
    table = catalog.load_table(IDENTIFIER)
    upload_ids = table.scan(row_filter=In("upload_id", set(counts)), selected_fields=("upload_id",)).to_arrow()
    assert {r["values"]: r["counts"] for r in pc.value_counts(upload_ids["upload_id"]).to_pylist()} == valid

    groups = groups_of(catalog, set(counts))
    assert Counter(run_id for ids in groups for run_id in ids) == dict.fromkeys(counts, 1)  # each in one snapshot
    assert len(groups) < len(counts), groups
    by_snapshot = {
        s.snapshot_id: set(snapshot_run_ids(s.summary.additional_properties)) for s in table.snapshots() if s.summary
    }
    for run_id, run in runs.items():
        assert run_id in by_snapshot[run["status"]["snapshotId"]]
        assert_metadata_once(database_url, run_id, run["status"], *counts[run_id])
    wait_until_drained(database_url, timeout=120)
    outbox = {run_id: outbox_rows(database_url, run_id) for run_id in counts}
    assert {run_id: [r["topic"] for r in rows] for run_id, rows in outbox.items()} == dict.fromkeys(counts, EVENTS)
    bootstrap = stack_env("KAFKA_BOOTSTRAP_SERVERS")["KAFKA_BOOTSTRAP_SERVERS"]
    events = events_for_uploads(bootstrap, set(counts), EVENTS)
    sent = {(row["topic"], row["event_id"]) for rows in outbox.values() for row in rows}
    assert {(e["topic"], e["id"]) for e in events} == sent


def finish(
    api: client.CustomObjectsApi, namespace: str, counts: dict[str, tuple[int, int]]
) -> dict[str, dict[str, Any]]:
    return {run_id: wait_for_phase(api, namespace, run_id, {"Succeeded", "Failed"}, timeout=300) for run_id in counts}


def test_a_burst_of_runs_to_one_table_lands_once_in_fewer_commits_than_runs(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    operator, counts = start_burst(12, run_namespace, custom_objects, s3, migrated_database_url, tmp_path)
    try:
        runs = finish(custom_objects, run_namespace, counts)
    finally:
        operator.stop()
    assert_burst_landed_once(runs, counts, catalog, migrated_database_url)
    print(f"{len(counts)} runs in {len(groups_of(catalog, set(counts)))} commits")


def test_an_operator_killed_right_after_a_group_commit_loses_and_doubles_nothing(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    catalog: Catalog,
    migrated_database_url: str,
    tmp_path: Path,
) -> None:
    crash = {"LAKEHOUSE_CRASH_POINTS": CRASH}
    first, counts = start_burst(8, run_namespace, custom_objects, s3, migrated_database_url, tmp_path, **crash)
    assert first.wait_exit(timeout=120) == -9, f"the operator should have been killed at {CRASH}"
    # The group's commit landed, and its runs had not moved on: their statuses say nothing of it yet.
    (group,) = [ids for ids in groups_of(catalog, set(counts)) if len(ids) > 1]
    phases = {run_id: get_run(custom_objects, run_namespace, run_id)["status"]["phase"] for run_id in group}
    assert phases == dict.fromkeys(group, "Transforming")

    second = OperatorProcess(run_namespace, tmp_path / "operator.log", first.extra_env).start()
    try:
        runs = finish(custom_objects, run_namespace, counts)
    finally:
        second.stop()
    assert_burst_landed_once(runs, counts, catalog, migrated_database_url)
