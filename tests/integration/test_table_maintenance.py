"""Table maintenance (lakehouse/maintenance/) on real bronze tables: the Iceberg REST catalog, S3 and PostgreSQL of
the stack. Each test fills a scratch table of its own through the platform's bronze writer (every append a run's
commit, as the operator makes it), and keeps its maintenance log in a fresh database of its own."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from lakehouse.bronze.writer import RUN_ID_PROPERTY, append_exactly_once, find_run_snapshot
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.db.maintenance_log import MaintenanceLog
from lakehouse.devtools.sample_tables import append_runs, bronze_orders
from lakehouse.maintenance.compaction import COMPACTION, OPERATION_PROPERTY, compact
from lakehouse.maintenance.expiry import expire_snapshots
from lakehouse.maintenance.orphans import list_objects, referenced_files, remove_orphan_files
from lakehouse.maintenance.runner import LOCKED, maintain
from tests.utils.bronze_tables import contracts_dir_with, files_out_of_order, scratch_table
from tests.utils.operator_process import OperatorProcess
from tests.utils.runbooks import Runbook
from tests.utils.stack import stack_env
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
ORDERS = ContractRegistry.default().get("orders")
TARGET = 128 * 1024 * 1024
KEY = ["upload_id", "order_id"]


def rows(table: Table, snapshot_id: int | None = None) -> pa.Table:
    """Every row, in one order whatever the files, without the timestamps a test does not set."""
    return table.scan(snapshot_id=snapshot_id).to_arrow().sort_by([(k, "ascending") for k in KEY])


def data_files(table: Table, snapshot_id: int | None = None) -> list[str]:
    return [task.file.file_path for task in table.scan(snapshot_id=snapshot_id).plan_files()]


def partitions(table: Table) -> int:
    """How many partitions the table's rows are in: the most files a full compaction leaves."""
    return len({(t.file.spec_id, str(t.file.partition)) for t in table.scan().plan_files()})


@pytest.fixture
def maintenance_log(migrated_database_url: str) -> MaintenanceLog:
    return MaintenanceLog(migrated_database_url)


def test_fifty_small_appends_compacted_keep_their_rows_and_history_with_far_fewer_files(
    catalog: Catalog, s3: Any, maintenance_log: MaintenanceLog, migrated_database_url: str
) -> None:
    name = scratch_table(catalog, ORDERS, "compact")
    append_runs(catalog, ORDERS, name, runs=50, rows=20)
    before = catalog.load_table(name)
    latest_before = before.current_snapshot().snapshot_id  # type: ignore[union-attr]
    rows_before, files_before = rows(before), data_files(before)
    assert rows_before.num_rows == 1000 and partitions(before) == 12  # monthly partitions of 2025
    assert len(files_before) > 400  # a file per run and month the run has orders of (about 5 in 6)

    report = maintain(catalog, s3, maintenance_log, ORDERS, "cli", identifier=name)

    after = catalog.load_table(name)
    assert not report.skipped and not report.failures and report.compaction.abandoned is None
    assert report.compaction.files_rewritten == len(files_before) and report.compaction.files_written == 12
    assert len(data_files(after)) == 12
    assert rows(after).equals(rows_before)
    assert rows(after, latest_before).equals(rows_before)  # time travel to the last snapshot before it
    compaction = after.current_snapshot()
    assert compaction is not None and compaction.parent_snapshot_id == latest_before
    assert compaction.summary.additional_properties[OPERATION_PROPERTY] == COMPACTION  # type: ignore[union-attr]
    assert RUN_ID_PROPERTY not in compaction.summary.additional_properties  # type: ignore[union-attr]
    assert find_run_snapshot(after, "run-000") is not None  # every run's snapshot is still found by its id
    assert files_out_of_order(after, ["order_date", "order_id"]) == []  # each new file in the table's sort order
    with psycopg.connect(migrated_database_url) as conn:
        logged = conn.execute(
            "SELECT trigger, status, files_rewritten, files_written, compaction_snapshot FROM table_maintenance "
            "WHERE table_name = %s",
            (name,),
        ).fetchall()
    assert logged == [("cli", "succeeded", len(files_before), 12, compaction.snapshot_id)]

    again = maintain(catalog, s3, maintenance_log, ORDERS, "cli", identifier=name)
    assert again.compaction.files_rewritten == 0  # nothing small enough in numbers is left
    assert catalog.load_table(name).current_snapshot().snapshot_id == compaction.snapshot_id  # type: ignore[union-attr]


def test_an_append_committed_while_compaction_writes_is_kept(catalog: Catalog) -> None:
    name = scratch_table(catalog, ORDERS, "race")
    append_runs(catalog, ORDERS, name, runs=6, rows=60)
    rows_before = rows(catalog.load_table(name))
    racer = bronze_orders(ORDERS, "racer", 30, seed=99, first_order_id=10_001)
    conflicts: list[str] = []

    result = compact(
        catalog.load_table(name),
        TARGET,
        5,
        before_commit=lambda: append_exactly_once(catalog, ORDERS, racer, "racer", "racer", name),
        on_conflict=lambda: conflicts.append("conflict"),
    )

    after = catalog.load_table(name)
    assert conflicts == ["conflict"] and result.conflicts == 1 and result.abandoned is None
    assert result.snapshot_id == after.current_snapshot().snapshot_id  # type: ignore[union-attr]
    assert rows(after).num_rows == rows_before.num_rows + 30
    assert rows(after).filter(pc.equal(rows(after)["upload_id"], "racer")).num_rows == 30
    assert rows(after).select(KEY).group_by(KEY).aggregate([]).num_rows == rows(after).num_rows  # none doubled
    # the racer's files stay as they are beside the compacted ones (one per partition)
    racer_commit = after.snapshot_by_id(find_run_snapshot(after, "racer"))  # type: ignore[arg-type]
    racer_files = int(racer_commit.summary.additional_properties["added-data-files"])  # type: ignore[union-attr]
    assert len(data_files(after)) == result.files_written + racer_files
    assert result.files_written == 12


def test_an_append_that_loses_to_a_compaction_retries_on_top_of_it(catalog: Catalog) -> None:
    name = scratch_table(catalog, ORDERS, "race_append")
    append_runs(catalog, ORDERS, name, runs=6, rows=60)
    rows_before = rows(catalog.load_table(name))
    compactions = []

    result = append_exactly_once(
        catalog,
        ORDERS,
        bronze_orders(ORDERS, "late", 25, seed=98, first_order_id=20_001),
        "late",
        "late",
        name,
        before_commit=lambda: compactions.append(compact(catalog.load_table(name), TARGET, 5)),
    )

    after = catalog.load_table(name)
    assert compactions[0].files_written == 12 and compactions[0].snapshot_id is not None
    assert result.rows_written == 25 and after.current_snapshot().snapshot_id == result.snapshot_id  # type: ignore[union-attr]
    assert after.current_snapshot().parent_snapshot_id == compactions[0].snapshot_id  # type: ignore[union-attr]
    assert rows(after).num_rows == rows_before.num_rows + 25


def test_a_compaction_whose_files_were_compacted_meanwhile_is_abandoned_and_leaves_nothing(
    catalog: Catalog, s3: Any
) -> None:
    name = scratch_table(catalog, ORDERS, "abandon")
    append_runs(catalog, ORDERS, name, runs=6, rows=60)
    rows_before = rows(catalog.load_table(name))
    first: list[Any] = []

    other_compaction = lambda: first.append(compact(catalog.load_table(name), TARGET, 5))  # noqa: E731

    second = compact(catalog.load_table(name), TARGET, 5, before_commit=other_compaction)

    after = catalog.load_table(name)
    assert first[0].snapshot_id == after.current_snapshot().snapshot_id  # type: ignore[union-attr]
    assert second.snapshot_id is None and second.abandoned and "changed meanwhile" in second.abandoned
    assert rows(after).equals(rows_before)
    # the abandoned compaction deleted the files it had written: every data file stored is referenced
    referenced = referenced_files(after)
    stored = [o.uri for o in list_objects(s3, after.location()) if "/data/" in o.uri]
    assert set(stored) <= referenced


def test_a_second_maintenance_run_of_a_table_waits_for_the_lock(
    catalog: Catalog, s3: Any, maintenance_log: MaintenanceLog
) -> None:
    name = scratch_table(catalog, ORDERS, "locked")
    append_runs(catalog, ORDERS, name, runs=6, rows=60)
    snapshot = catalog.load_table(name).current_snapshot().snapshot_id  # type: ignore[union-attr]

    with maintenance_log.locked("orders", name) as held:
        assert held is not None
        report = maintain(catalog, s3, maintenance_log, ORDERS, "cli", identifier=name)

    assert report.skipped == LOCKED and report.task_seconds == {}
    assert catalog.load_table(name).current_snapshot().snapshot_id == snapshot  # type: ignore[union-attr]
    assert maintain(catalog, s3, maintenance_log, ORDERS, "cli", identifier=name).compaction.files_written == 12


def test_expiry_keeps_the_newest_snapshots_and_orphan_removal_deletes_only_unreferenced_files(
    catalog: Catalog, s3: Any
) -> None:
    name = scratch_table(catalog, ORDERS, "expire")
    append_runs(catalog, ORDERS, name, runs=6, rows=60)
    compact(catalog.load_table(name), TARGET, 5)
    table = catalog.load_table(name)
    rows_now = rows(table)
    history = [s.snapshot_id for s in sorted(table.snapshots(), key=lambda s: s.timestamp_ms)]  # 6 appends, compaction
    small_files = set(data_files(table, history[-2]))
    stray = f"{table.location()}/data/stray-from-a-killed-writer.parquet"
    bucket, key = stray.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=b"not referenced by any snapshot")

    # Young files are never orphans: with a safety age of an hour nothing goes.
    assert remove_orphan_files(catalog, s3, name, dt.timedelta(hours=1)) == 0
    assert expire_snapshots(table, dt.timedelta(0), keep_last=3) == 4
    table = catalog.load_table(name)
    assert sorted(s.snapshot_id for s in table.snapshots()) == sorted(history[-3:])
    assert find_run_snapshot(table, "run-005") is not None and find_run_snapshot(table, "run-000") is None

    remove_orphan_files(catalog, s3, name, dt.timedelta(0))

    stored = {o.uri for o in list_objects(s3, table.location())}
    assert stray not in stored
    assert referenced_files(catalog.load_table(name)) <= stored  # nothing a kept snapshot needs was deleted
    for snapshot_id in history[-3:]:  # so time travel to each still reads
        assert rows(table, snapshot_id).num_rows > 0
    assert rows(table, history[-2]).equals(rows_now)

    # With only the compaction's snapshot kept, the small files it replaced are orphans.
    assert expire_snapshots(catalog.load_table(name), dt.timedelta(0), keep_last=1) == 2
    assert remove_orphan_files(catalog, s3, name, dt.timedelta(0)) >= len(small_files)
    table = catalog.load_table(name)
    stored = {o.uri for o in list_objects(s3, table.location())}
    assert not small_files & stored and set(data_files(table)) <= stored
    assert rows(table).equals(rows_now)


def test_the_operator_maintains_a_dataset_on_its_schedule(
    catalog: Catalog, migrated_database_url: str, own_namespace: str, tmp_path: Path
) -> None:
    stack_env("KUBECONFIG", "DATABASE_URL", "ICEBERG_CATALOG_URI")
    name = scratch_table(catalog, ORDERS, "scheduled")
    append_runs(catalog, ORDERS, name, runs=6, rows=60)
    files = len(data_files(catalog.load_table(name)))
    env = {
        "LAKEHOUSE_MAINTENANCE_ENABLED": "true",
        "LAKEHOUSE_MAINTENANCE_CHECK_SECONDS": "1",
        "LAKEHOUSE_MAINTENANCE_INTERVAL_SECONDS": "3",
        "LAKEHOUSE_CONTRACTS_DIR": str(contracts_dir_with(tmp_path / "contracts", ORDERS, name)),
        "DATABASE_URL": migrated_database_url,
    }
    operator = OperatorProcess(own_namespace, tmp_path / "operator.log", env, metrics=True).start()
    try:

        def runs() -> list[tuple[str, str]]:
            with psycopg.connect(migrated_database_url) as conn:
                return conn.execute(
                    "SELECT trigger, status FROM table_maintenance WHERE table_name = %s AND status <> 'running' "
                    "ORDER BY id",
                    (name,),
                ).fetchall()

        logged = wait_until(lambda: len(runs()) >= 2 and runs(), "two scheduled maintenance runs", timeout=60)
        assert logged[:2] == [("schedule", "succeeded")] * 2
        assert len(data_files(catalog.load_table(name))) == 12
        labels = {"dataset": "orders", "task": "compaction", "outcome": "succeeded"}
        assert operator.metric("lakehouse_maintenance_tasks_total", labels) >= 2
        assert operator.metric("lakehouse_compaction_files_total", {"dataset": "orders", "kind": "rewritten"}) == files
    finally:
        operator.stop()


def test_the_maintenance_runbook(catalog: Catalog, migrated_database_url: str, tmp_path: Path) -> None:
    name = scratch_table(catalog, ORDERS, "runbook")
    append_runs(catalog, ORDERS, name, runs=6, rows=60)
    files = len(data_files(catalog.load_table(name)))
    runbook = Runbook(
        "table-maintenance.md",
        {
            "DATASET": "orders",
            "TABLE": name,
            "DATABASE_URL": migrated_database_url,
            "LAKEHOUSE_CONTRACTS_DIR": str(contracts_dir_with(tmp_path / "contracts", ORDERS, name)),
        },
    )

    ran = runbook.run("run-now")
    assert f"{name}: compaction rewrote {files} files as 12" in ran
    assert "succeeded" in runbook.run("last-runs")
    newest = runbook.run("snapshots").strip().splitlines()[-1].split()
    assert newest[3] == "overwrite" and len(newest) == 6  # the compaction: no run, no upload columns
    assert runbook.unrun() == []
    assert len(data_files(catalog.load_table(name))) == 12


def test_a_scheduled_run_and_a_run_by_hand_never_overlap(
    catalog: Catalog, s3: Any, maintenance_log: MaintenanceLog
) -> None:
    name = scratch_table(catalog, ORDERS, "overlap")
    append_runs(catalog, ORDERS, name, runs=6, rows=60)
    reports: list[Any] = []
    start = threading.Barrier(2)

    def run(trigger: Any) -> None:
        start.wait()
        reports.append(maintain(catalog, s3, maintenance_log, ORDERS, trigger, identifier=name))

    threads = [threading.Thread(target=run, args=(t,)) for t in ("schedule", "cli")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    compacted = [r for r in reports if r.compaction.snapshot_id is not None]
    assert len(compacted) == 1  # the other was skipped (the lock) or found nothing left to do
    assert all(r.skipped == LOCKED or r.compaction.files_rewritten == 0 for r in reports if r not in compacted)
    assert len(data_files(catalog.load_table(name))) == 12
