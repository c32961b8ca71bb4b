"""Optimistic-commit conflicts of the bronze append, through the real Iceberg REST catalog.

A writer commits between the moment our append loaded the table and its commit (the `before_commit` hook), so
our first commit is refused with CommitFailedException. The append retries on fresh metadata, and first looks
for its run id: when the other writer was this same run (a second process working on it), it appends nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.bronze.writer import RUN_ID_PROPERTY, append_exactly_once, ensure_table
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_bytes

pytestmark = pytest.mark.integration
CONTRACT = ContractRegistry.default().get("orders")


def bronze(run: str, count: int) -> pa.Table:
    raw = ingest_bytes(CONTRACT, orders(count, seed=count).csv_bytes(), "csv", run, run).raw
    return to_bronze(CONTRACT, raw, RunStamp(run, dt.date(2026, 12, 1), dt.datetime(2026, 12, 1, 12, 0)))


@pytest.fixture
def table_name(catalog: Catalog) -> str:
    name = f"bronze_it.conflicts_{uuid.uuid4().hex[:8]}"
    ensure_table(catalog, CONTRACT, name)
    return name


def run_ids(catalog: Catalog, table_name: str) -> list[str]:
    snapshots = catalog.load_table(table_name).snapshots()
    return [s.summary.additional_properties[RUN_ID_PROPERTY] for s in snapshots if s.summary]


def test_a_commit_that_lost_to_another_run_is_retried_on_fresh_metadata(catalog: Catalog, table_name: str) -> None:
    conflicts: list[str] = []
    other = lambda: append_exactly_once(catalog, CONTRACT, bronze("other", 7), "other", "other", table_name)  # noqa: E731

    result = append_exactly_once(
        catalog,
        CONTRACT,
        bronze("ours", 11),
        "ours",
        "ours",
        table_name,
        before_commit=other,
        on_conflict=lambda: conflicts.append("conflict"),
    )

    assert conflicts == ["conflict"]
    assert result.rows_written == 11 and result.snapshot_id is not None
    assert run_ids(catalog, table_name) == ["other", "ours"]
    table = catalog.load_table(table_name)
    assert table.current_snapshot().snapshot_id == result.snapshot_id  # type: ignore[union-attr]
    assert table.scan(row_filter=EqualTo("upload_id", "ours")).to_arrow().num_rows == 11
    assert table.scan().to_arrow().num_rows == 18


def test_a_retried_commit_finds_the_same_run_already_committed_and_appends_nothing(
    catalog: Catalog, table_name: str
) -> None:
    rows = bronze("same-run", 9)
    conflicts: list[str] = []
    same_run_elsewhere = lambda: append_exactly_once(catalog, CONTRACT, rows, "same-run", "same-run", table_name)  # noqa: E731

    result = append_exactly_once(
        catalog,
        CONTRACT,
        rows,
        "same-run",
        "same-run",
        table_name,
        before_commit=same_run_elsewhere,
        on_conflict=lambda: conflicts.append("conflict"),
    )

    assert conflicts == ["conflict"]
    assert run_ids(catalog, table_name) == ["same-run"]
    assert result.rows_written == 9
    assert result.snapshot_id == catalog.load_table(table_name).current_snapshot().snapshot_id  # type: ignore[union-attr]
    assert catalog.load_table(table_name).scan().to_arrow().num_rows == 9
