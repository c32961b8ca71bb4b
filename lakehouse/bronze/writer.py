"""Appending runs' bronze rows to their Iceberg table exactly once, one run or a group of runs per commit.

The run id is written into the snapshot summary. Before appending, the table's history is
searched for it: a retry after a commit that succeeded (but whose result was never recorded,
because the process died) finds its snapshot and appends nothing.

A group commit (`append_group_exactly_once`) appends several runs of one table in one snapshot: its summary
lists their run ids, upload ids and row counts, comma-separated in the same order (a single run's commit writes
one of each, as it always did). A run id is a Kubernetes name, so it holds no comma. A retried group looks for
each of its runs and appends only those not found.

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
from pyiceberg.table import Table, TableProperties, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import TableUpdate, update_table_metadata

from lakehouse.bronze.evolution import evolve_to_contract
from lakehouse.contracts.arrow_schema import bronze_iceberg_schema, bronze_partition_spec, bronze_sort_order
from lakehouse.contracts.model import DatasetContract

log = logging.getLogger(__name__)

RUN_ID_PROPERTY = "lakehouse.run-id"
UPLOAD_ID_PROPERTY = "lakehouse.upload-id"
RUN_RECORDS_PROPERTY = "lakehouse.run-records"  # each run's rows in a snapshot, in the order of its run ids
SEPARATOR = ","
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


@dataclass(frozen=True)
class RunRows:
    """One run's bronze rows, as a member of a (group) commit."""

    run_id: str
    upload_id: str
    rows: pa.Table


def ensure_table(catalog: Catalog, contract: DatasetContract, identifier: str | None = None) -> Table:
    """The bronze table, creating its namespace and the table itself on first use, and evolving an
    existing table when the contract changed (lakehouse.bronze.evolution)."""
    identifier = identifier or contract.bronze.identifier
    try:
        table = catalog.load_table(identifier)  # first: every commit comes here, the table is new only once
    except NoSuchTableError:
        pass
    else:
        evolution = evolve_to_contract(table, contract)
        if evolution.changed:
            log.info("evolved %s to the %s contract: %s", identifier, contract.name, evolution)
        return table
    with contextlib.suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace(identifier.rsplit(".", 1)[0])
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


def snapshot_run_ids(properties: dict[str, str]) -> list[str]:
    """The run ids a snapshot's summary properties name: one, several for a group commit, or none."""
    value = properties.get(RUN_ID_PROPERTY)
    return value.split(SEPARATOR) if value else []


def snapshot_upload_ids(properties: dict[str, str]) -> list[str]:
    value = properties.get(UPLOAD_ID_PROPERTY)
    return value.split(SEPARATOR) if value else []


def find_run_snapshot(table: Table, run_id: str) -> int | None:
    return _committed_runs(table).get(run_id)


def _committed_runs(table: Table) -> dict[str, int]:
    """Every run id in the table's snapshots, with its snapshot."""
    committed: dict[str, int] = {}
    for snapshot in table.snapshots():
        if snapshot.summary is not None:
            for run_id in snapshot_run_ids(snapshot.summary.additional_properties):
                committed.setdefault(run_id, snapshot.snapshot_id)
    return committed


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
    results = append_group_exactly_once(
        catalog,
        contract,
        [RunRows(run_id, upload_id, rows)],
        identifier,
        before_commit=lambda _: before_commit(),
        on_conflict=on_conflict,
    )
    return results[run_id]


def append_group_exactly_once(
    catalog: Catalog,
    contract: DatasetContract,
    members: list[RunRows],
    identifier: str | None = None,
    *,
    before_commit: Callable[[str], None] = lambda _: None,
    on_conflict: Callable[[], None] = lambda: None,
) -> dict[str, AppendResult]:
    """Appends the rows of every member whose run is not in the table yet, in one snapshot, and answers each
    member's result by run id. All members share the contract (their rows one schema). `before_commit` is
    called with each member's run id once the table is loaded, `on_conflict` each time a conflict is retried."""
    table = ensure_table(catalog, contract, identifier)
    name = ".".join(table.name())
    for member in members:
        before_commit(member.run_id)
    results: dict[str, AppendResult] = {}
    conflicts = 0
    while True:
        committed = _committed_runs(table)
        for member in members:
            if member.run_id in committed and member.run_id not in results:
                existing = committed[member.run_id]
                log.info("run %s already committed to %s as snapshot %s", member.run_id, name, existing)
                results[member.run_id] = AppendResult(name, existing, _rows_added(table, existing, member.run_id))
            elif member.rows.num_rows == 0:
                results[member.run_id] = AppendResult(name, None, 0)
        pending = [member for member in members if member.run_id not in results]
        if not pending:
            return results
        attempt = _without_library_retries(table)
        try:
            with _MetadataOnceTransaction(attempt) as transaction:
                transaction.append(_group_rows(pending), snapshot_properties=_summary(pending))
        except CommitFailedException as error:
            if conflicts == COMMIT_CONFLICT_RETRIES:
                raise
            runs = SEPARATOR.join(member.run_id for member in pending)
            log.info("runs %s: commit to %s conflicted (%s); retrying on fresh metadata", runs, name, error)
            on_conflict()
            time.sleep(random.uniform(0, min(CONFLICT_PAUSE_BASE_SECONDS * 2**conflicts, CONFLICT_PAUSE_MAX_SECONDS)))
            table.refresh()
            conflicts += 1
            continue
        snapshot_id = find_run_snapshot(attempt, pending[0].run_id)
        for member in pending:
            results[member.run_id] = AppendResult(name, snapshot_id, member.rows.num_rows)
        return results


def _summary(members: list[RunRows]) -> dict[str, str]:
    return {
        RUN_ID_PROPERTY: SEPARATOR.join(member.run_id for member in members),
        UPLOAD_ID_PROPERTY: SEPARATOR.join(member.upload_id for member in members),
        RUN_RECORDS_PROPERTY: SEPARATOR.join(str(member.rows.num_rows) for member in members),
    }


def _group_rows(members: list[RunRows]) -> pa.Table:
    """The members' rows one run after another, each run's sorted as lakehouse.bronze.transform sorts them. The
    group is not sorted again as a whole (1.7 s for 100 runs of 10,000 rows): PyIceberg's data files claim no
    sort order (their sort_order_id is unset), so readers rely on none."""
    return members[0].rows if len(members) == 1 else pa.concat_tables([member.rows for member in members])


def _without_library_retries(table: Table) -> Table:
    """The same table, seen with PyIceberg's commit retries at 0: PyIceberg would retry a conflict without
    looking for the run id (only for its own snapshot id). Only this view changes; the table's stored
    properties, which the Spark job's Iceberg reads too, stay as they are."""
    properties = table.metadata.properties | {TableProperties.COMMIT_NUM_RETRIES: "0"}
    metadata = table.metadata.model_copy(update={"properties": properties})
    return Table(table.name(), metadata, table.metadata_location, table.io, table.catalog, table.config)


class _MetadataOnceTransaction(Transaction):
    """A PyIceberg transaction that builds its view of the metadata (the table's, with the staged updates applied)
    once for each change of either, instead of on every access. PyIceberg rebuilds it, deep copy included, each
    time it is read, about 18 times in one append, and the metadata lists every snapshot: on a table of 150
    snapshots that was half of a 1,000-row append (0.9 of 1.8 s, bench/results/small_run_steps.json). The
    metadata is immutable (frozen models), so one view serves every reader until the table or the updates change."""

    def __init__(self, table: Table) -> None:
        super().__init__(table)
        self._view: tuple[TableMetadata, tuple[TableUpdate, ...], TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        base, updates = self._table.metadata, self._updates
        if self._view is None or self._view[0] is not base or self._view[1] is not updates:
            # With nothing staged the view is the table's own metadata (PyIceberg would copy it all the same).
            self._view = (base, updates, update_table_metadata(base, updates) if updates else base)
        return self._view[2]


def _rows_added(table: Table, snapshot_id: int, run_id: str) -> int:
    """The run's rows in its snapshot: its entry in a group's row counts, or all the snapshot added."""
    snapshot = table.snapshot_by_id(snapshot_id)
    if snapshot is None or snapshot.summary is None:
        return 0
    properties = snapshot.summary.additional_properties
    runs, records = snapshot_run_ids(properties), properties.get(RUN_RECORDS_PROPERTY)
    if records and run_id in runs:
        return int(records.split(SEPARATOR)[runs.index(run_id)])
    return int(properties.get("added-records") or 0)
