"""A group commit through the real Iceberg REST catalog: several runs' rows in one snapshot that names each run,
and a retried group that appends only the runs not committed yet."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator

import pyarrow.compute as pc
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.bronze.writer import (
    RunRows,
    append_exactly_once,
    append_group_exactly_once,
    ensure_table,
    find_run_snapshot,
    snapshot_run_ids,
    snapshot_upload_ids,
)
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_bytes

pytestmark = pytest.mark.integration
CONTRACT = ContractRegistry.default().get("orders")


def member(run: str, count: int) -> RunRows:
    sample = orders(count, seed=count, first_order_id=1000 * count)
    raw = ingest_bytes(CONTRACT, sample.csv_bytes(), "csv", run, run).raw
    stamp = RunStamp(f"{run}-upload", dt.date(2026, 12, 1), dt.datetime(2026, 12, 1, 12, 0))
    return RunRows(run, f"{run}-upload", to_bronze(CONTRACT, raw, stamp))


@pytest.fixture
def table_name(catalog: Catalog) -> Iterator[str]:
    name = f"bronze_it.group_{uuid.uuid4().hex[:8]}"
    ensure_table(catalog, CONTRACT, name)
    yield name
    with contextlib.suppress(NoSuchTableError):
        catalog.purge_table(name)


def rows_by_upload(catalog: Catalog, table_name: str) -> dict[str, int]:
    uploads = catalog.load_table(table_name).scan(selected_fields=("upload_id",)).to_arrow()["upload_id"]
    return {row["values"]: row["counts"] for row in pc.value_counts(uploads).to_pylist()}


def test_a_group_lands_in_one_snapshot_that_names_each_run(catalog: Catalog, table_name: str) -> None:
    members = [member("run-a", 5), member("run-b", 7), member("run-c", 11)]

    results = append_group_exactly_once(catalog, CONTRACT, members, table_name)

    table = catalog.load_table(table_name)
    (snapshot,) = table.snapshots()
    assert snapshot.summary is not None
    properties = snapshot.summary.additional_properties
    assert snapshot_run_ids(properties) == ["run-a", "run-b", "run-c"]
    assert snapshot_upload_ids(properties) == ["run-a-upload", "run-b-upload", "run-c-upload"]
    assert int(snapshot.summary["added-records"]) == 23
    assert {run: (r.snapshot_id, r.rows_written) for run, r in results.items()} == {
        "run-a": (snapshot.snapshot_id, 5),
        "run-b": (snapshot.snapshot_id, 7),
        "run-c": (snapshot.snapshot_id, 11),
    }
    assert rows_by_upload(catalog, table_name) == {"run-a-upload": 5, "run-b-upload": 7, "run-c-upload": 11}
    # A run of the group retried on its own finds its snapshot and its own row count, and appends nothing.
    again = append_exactly_once(catalog, CONTRACT, members[1].rows, "run-b", "run-b-upload", table_name)
    assert (again.snapshot_id, again.rows_written) == (snapshot.snapshot_id, 7)
    assert len(catalog.load_table(table_name).snapshots()) == 1


def test_a_retried_group_appends_only_the_runs_not_committed_yet(catalog: Catalog, table_name: str) -> None:
    first = append_exactly_once(catalog, CONTRACT, member("run-a", 5).rows, "run-a", "run-a-upload", table_name)
    members = [member("run-a", 5), member("run-b", 7)]

    results = append_group_exactly_once(catalog, CONTRACT, members, table_name)

    table = catalog.load_table(table_name)
    assert [snapshot_run_ids(s.summary.additional_properties) for s in table.snapshots() if s.summary] == [
        ["run-a"],
        ["run-b"],
    ]
    assert results["run-a"].snapshot_id == first.snapshot_id and results["run-a"].rows_written == 5
    assert results["run-b"].snapshot_id == find_run_snapshot(table, "run-b") and results["run-b"].rows_written == 7
    assert rows_by_upload(catalog, table_name) == {"run-a-upload": 5, "run-b-upload": 7}
