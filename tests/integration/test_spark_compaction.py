"""Compaction by the Spark job (lakehouse/jobs/compact_table.py, spark-submit in local mode with the stack's Iceberg
jars) on a real bronze table: the Iceberg REST catalog and S3 of the stack, chosen by the maintenance runner because
the Dataset's Spark threshold is 0, under the table's maintenance lock in a fresh PostgreSQL database."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from lakehouse.bronze.writer import RUN_ID_PROPERTY, find_run_snapshot
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.db.maintenance_log import MaintenanceLog
from lakehouse.devtools.sample_tables import append_runs
from lakehouse.maintenance.compaction import COMPACTION, ENGINE_PROPERTY, OPERATION_PROPERTY
from lakehouse.maintenance.runner import LOCKED, MaintenanceReport, maintain
from lakehouse.maintenance.spark_compaction import SparkCompactionSettings
from tests.utils.bronze_tables import files_out_of_order, scratch_table
from tests.utils.spark import spark_jars
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.integration
KEY = ["upload_id", "order_id"]


def orders_compacted_by_spark() -> DatasetContract:
    """The orders contract with a Spark threshold of 0 MiB: any table with files to rewrite goes to Spark."""
    orders = ContractRegistry.default().get("orders")
    body = orders.model_dump(mode="json")
    body["maintenance"]["compaction"]["spark_threshold_mb"] = 0
    return DatasetContract.model_validate(body)


@pytest.fixture(scope="module")
def spark() -> SparkCompactionSettings:
    return SparkCompactionSettings(SPARK_JARS=spark_jars(), LAKEHOUSE_SPARK_MASTER="local[2]")


def rows(table: Table, snapshot_id: int | None = None) -> pa.Table:
    return table.scan(snapshot_id=snapshot_id).to_arrow().sort_by([(k, "ascending") for k in KEY])


def data_files(table: Table) -> list[str]:
    return [task.file.file_path for task in table.scan().plan_files()]


def test_a_spark_compaction_keeps_rows_and_history_with_fewer_files_under_the_tables_lock(
    catalog: Catalog, s3: Any, spark: SparkCompactionSettings, migrated_database_url: str
) -> None:
    contract = orders_compacted_by_spark()
    maintenance_log = MaintenanceLog(migrated_database_url)
    name = scratch_table(catalog, contract, "spark_compact")
    append_runs(catalog, contract, name, runs=8, rows=30)
    before = catalog.load_table(name)
    latest_before = before.current_snapshot().snapshot_id  # type: ignore[union-attr]
    rows_before, files_before = rows(before), data_files(before)
    partitions = len({(t.file.spec_id, str(t.file.partition)) for t in before.scan().plan_files()})
    assert len(files_before) > 2 * partitions

    reports: list[MaintenanceReport] = []
    spark_run = threading.Thread(
        target=lambda: reports.append(
            maintain(catalog, s3, maintenance_log, contract, "cli", identifier=name, spark=spark)
        )
    )
    spark_run.start()
    try:

        def running() -> bool:
            with psycopg.connect(migrated_database_url) as conn:
                return bool(
                    conn.execute(
                        "SELECT 1 FROM table_maintenance WHERE table_name = %s AND status = 'running'", (name,)
                    ).fetchall()
                )

        wait_until(running, "the Spark compaction's maintenance run to start", timeout=60)
        # While the job runs, the lock is held: a second run of the table is refused and touches nothing.
        meanwhile = maintain(catalog, s3, maintenance_log, contract, "schedule", identifier=name, spark=spark)
        assert meanwhile.skipped == LOCKED
    finally:
        spark_run.join(240)
    assert not spark_run.is_alive(), "the Spark compaction did not finish in 240 s"

    (report,) = reports
    assert not report.failures, report.failures
    assert report.compaction.engine == "spark" and report.compaction.snapshot_id is not None
    after = catalog.load_table(name)
    assert report.compaction.files_rewritten == len(files_before)
    assert len(data_files(after)) == report.compaction.files_written == partitions
    assert rows(after).equals(rows_before)
    assert rows(after, latest_before).equals(rows_before)  # time travel to the last snapshot before it
    compaction = after.current_snapshot()
    assert compaction is not None and compaction.snapshot_id == report.compaction.snapshot_id
    assert compaction.parent_snapshot_id == latest_before
    summary = compaction.summary.additional_properties  # type: ignore[union-attr]
    assert summary[OPERATION_PROPERTY] == COMPACTION and summary[ENGINE_PROPERTY] == "spark"
    assert RUN_ID_PROPERTY not in summary
    assert find_run_snapshot(after, "run-000") is not None
    assert files_out_of_order(after, ["order_date", "order_id"]) == []  # each new file in the table's sort order
    with psycopg.connect(migrated_database_url) as conn:
        logged = conn.execute(
            "SELECT trigger, status, files_rewritten, compaction_snapshot FROM table_maintenance "
            "WHERE table_name = %s ORDER BY id",
            (name,),
        ).fetchall()
    assert logged == [("cli", "succeeded", len(files_before), compaction.snapshot_id)]
