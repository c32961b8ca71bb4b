"""Appending a run's bronze rows to its Iceberg table exactly once.

The run id is written into the snapshot summary. Before appending, the table's history is
searched for it: a retry after a commit that succeeded (but whose result was never recorded,
because the process died) finds its snapshot and appends nothing.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table

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
) -> AppendResult:
    table = ensure_table(catalog, contract, identifier)
    name = ".".join(table.name())
    existing = find_run_snapshot(table, run_id)
    if existing is not None:
        log.info("run %s already committed to %s as snapshot %s", run_id, name, existing)
        return AppendResult(name, existing, _rows_added(table, existing))
    if rows.num_rows == 0:
        return AppendResult(name, None, 0)
    table.append(rows, snapshot_properties={RUN_ID_PROPERTY: run_id, UPLOAD_ID_PROPERTY: upload_id})
    return AppendResult(name, find_run_snapshot(table, run_id), rows.num_rows)


def _rows_added(table: Table, snapshot_id: int) -> int:
    snapshot = table.snapshot_by_id(snapshot_id)
    added = snapshot.summary.additional_properties.get("added-records") if snapshot and snapshot.summary else None
    return int(added or 0)
