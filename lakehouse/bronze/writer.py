"""Appending a run's bronze rows to its Iceberg table exactly once.

The run id is written into the snapshot summary. Before appending, the table's history is
searched for it: a retry after a commit that succeeded (but whose result was never recorded,
because the process died) finds its snapshot and appends nothing.

Iceberg commits are optimistic: when another writer committed to the table first (many runs of one
dataset at once), the catalog refuses ours (CommitFailedException). Such a conflict is retried here, after
a short random pause and up to COMMIT_CONFLICT_RETRIES times: the table is reloaded, searched for the run id
again (an earlier attempt, or another process working on the same run, may have landed), and the rows are
appended on the fresh metadata (their data files written again; PyIceberg deletes those of the refused commit).
PyIceberg's own conflict retries are turned off for it, so that every retry goes through that search and is
counted (`on_conflict`). Any other error (the catalog or S3 unavailable) is
left to the caller, whose retried attempt starts again from the search.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.table import Table, TableProperties

from lakehouse.bronze.evolution import evolve_to_contract
from lakehouse.contracts.arrow_schema import bronze_iceberg_schema, bronze_partition_spec, bronze_sort_order
from lakehouse.contracts.model import DatasetContract

log = logging.getLogger(__name__)

RUN_ID_PROPERTY = "lakehouse.run-id"
UPLOAD_ID_PROPERTY = "lakehouse.upload-id"
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
# Conflicts retried here before the error goes to the caller (whose own retries come with a longer delay).
COMMIT_CONFLICT_RETRIES = 20
# Before the n-th retry (from 0) a pause drawn from [0, min(0.1 s * 2**n, 2 s)]: writers that lost together
# spread out instead of meeting again, so fewer of them have to write their files again (at most ~33 s in all).
CONFLICT_PAUSE_BASE_SECONDS = 0.1
CONFLICT_PAUSE_MAX_SECONDS = 2.0


@dataclass(frozen=True)
class AppendResult:
    table: str
    snapshot_id: int | None  # None when the run had no valid rows to append
    rows_written: int


def ensure_table(catalog: Catalog, contract: DatasetContract, identifier: str | None = None) -> Table:
    """The bronze table, creating its namespace and the table itself on first use, and evolving an
    existing table when the contract changed (lakehouse.bronze.evolution)."""
    identifier = identifier or contract.bronze.identifier
    namespace = identifier.rsplit(".", 1)[0]
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(namespace)
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    else:
        evolution = evolve_to_contract(table, contract)
        if evolution.changed:
            log.info("evolved %s to the %s contract: %s", identifier, contract.name, evolution)
        return table
    schema = bronze_iceberg_schema(contract)
    try:
        return catalog.create_table(
            identifier,
            schema=schema,
            partition_spec=bronze_partition_spec(contract, schema),
            sort_order=bronze_sort_order(contract, schema),
            properties=TABLE_PROPERTIES | {"lakehouse.dataset": contract.name},
        )
    except TableAlreadyExistsError:  # created concurrently by another run
        return catalog.load_table(identifier)


def find_run_snapshot(table: Table, run_id: str) -> int | None:
    for snapshot in table.snapshots():
        summary = snapshot.summary
        if summary is not None and summary.additional_properties.get(RUN_ID_PROPERTY) == run_id:
            return snapshot.snapshot_id
    return None


def append_exactly_once(
    catalog: Catalog,
    contract: DatasetContract,
    rows: pa.Table,
    run_id: str,
    upload_id: str,
    identifier: str | None = None,
    *,
    before_commit: Callable[[], None] = lambda: None,
    on_conflict: Callable[[], None] = lambda: None,
) -> AppendResult:
    """Appends `rows` unless the run's snapshot is already there. `before_commit` is called once the table
    is loaded (a fault-injection hook), `on_conflict` each time a conflict is retried."""
    table = ensure_table(catalog, contract, identifier)
    name = ".".join(table.name())
    before_commit()
    properties = {RUN_ID_PROPERTY: run_id, UPLOAD_ID_PROPERTY: upload_id}
    conflicts = 0
    while True:
        existing = find_run_snapshot(table, run_id)
        if existing is not None:
            log.info("run %s already committed to %s as snapshot %s", run_id, name, existing)
            return AppendResult(name, existing, _rows_added(table, existing))
        if rows.num_rows == 0:
            return AppendResult(name, None, 0)
        attempt = _without_library_retries(table)
        try:
            attempt.append(rows, snapshot_properties=properties)
        except CommitFailedException as error:
            if conflicts == COMMIT_CONFLICT_RETRIES:
                raise
            log.info("run %s: commit to %s conflicted (%s); retrying on fresh metadata", run_id, name, error)
            on_conflict()
            time.sleep(random.uniform(0, min(CONFLICT_PAUSE_BASE_SECONDS * 2**conflicts, CONFLICT_PAUSE_MAX_SECONDS)))
            table.refresh()
            conflicts += 1
            continue
        return AppendResult(name, find_run_snapshot(attempt, run_id), rows.num_rows)


def _without_library_retries(table: Table) -> Table:
    """The same table, seen with PyIceberg's commit retries at 0: PyIceberg would retry a conflict without
    looking for the run id (only for its own snapshot id). Only this view changes; the table's stored
    properties, which the Spark job's Iceberg reads too, stay as they are."""
    properties = table.metadata.properties | {TableProperties.COMMIT_NUM_RETRIES: "0"}
    metadata = table.metadata.model_copy(update={"properties": properties})
    return Table(table.name(), metadata, table.metadata_location, table.io, table.catalog, table.config)


def _rows_added(table: Table, snapshot_id: int) -> int:
    snapshot = table.snapshot_by_id(snapshot_id)
    added = snapshot.summary.additional_properties.get("added-records") if snapshot and snapshot.summary else None
    return int(added or 0)
