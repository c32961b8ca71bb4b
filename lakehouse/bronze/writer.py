"""Appending runs' bronze rows to their Iceberg table exactly once, one run or a group of runs per commit.

The run id is written into the snapshot summary. Before appending, the table's history is
searched for it: a retry after a commit that succeeded (but whose result was never recorded,
because the process died) finds its snapshot and appends nothing.

A group commit (`append_group_exactly_once`) appends several runs of one table in one snapshot: its summary
lists their run ids, upload ids and row counts, comma-separated in the same order (a single run's commit writes
one of each, as it always did). A run id is a Kubernetes name, so it holds no comma. A retried group looks for
each of its runs and appends only those not found.

A run's rows come as a table in memory, written as data files when it is committed, or (a large file, streamed by
the Arrow engine) as data files written already by `write_data_files`, chunk by chunk (`BronzeFiles`); either way
the commit is one fast append of the run's (or the group's) files.

Iceberg commits are optimistic: when another writer committed to the table first (many runs of one
dataset at once), the catalog refuses ours (CommitFailedException). Such a conflict is retried here, after
a short random pause and up to COMMIT_CONFLICT_RETRIES times: the table is reloaded, searched for the run id
again (an earlier attempt, or another process working on the same run, may have landed), and the same data files
are appended on the fresh metadata (only the manifests are written again, and PyIceberg deletes the refused ones).
PyIceberg's own conflict retries are turned off for it, so that every retry goes through that search and is
counted (`on_conflict`). Any other error (the catalog or S3 unavailable) is
left to the caller, whose retried attempt starts again from the search.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.io.pyarrow import (
    _check_pyarrow_schema_compatible,
    _dataframe_to_data_files,
    pyarrow_to_schema,
    write_file,
)
from pyiceberg.manifest import DATA_FILE_TYPE, DEFAULT_READ_VERSION, DataFile
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, TableProperties, Transaction, WriteTask
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import TableUpdate, update_table_metadata

from lakehouse.bronze.evolution import evolve_to_contract
from lakehouse.contracts.arrow_schema import bronze_iceberg_schema, bronze_partition_spec, bronze_sort_order
from lakehouse.contracts.model import DatasetContract
from lakehouse.storage.s3 import PARQUET_COMPRESSION, PARQUET_DICTIONARY_PAGE_BYTES

log = logging.getLogger(__name__)

RUN_ID_PROPERTY = "lakehouse.run-id"
UPLOAD_ID_PROPERTY = "lakehouse.upload-id"
RUN_RECORDS_PROPERTY = "lakehouse.run-records"  # each run's rows in a snapshot, in the order of its run ids
SEPARATOR = ","
# How the platform writes a table's data files: a table created by ensure_table carries them, so the Spark job
# writes the same; PyIceberg here applies them to an older table too (with_data_file_properties). A column of
# more distinct values than the dictionary holds (customer ids, say) is written plain, so an engine cannot skip
# row groups by its dictionary (min/max still serve): a table that wants that sets its own
# write.parquet.dict-size-bytes, which wins.
DATA_FILE_PROPERTIES = {
    TableProperties.PARQUET_COMPRESSION: PARQUET_COMPRESSION,
    TableProperties.PARQUET_DICT_SIZE_BYTES: str(PARQUET_DICTIONARY_PAGE_BYTES),
}
TABLE_PROPERTIES = {
    "format-version": "2",
    **DATA_FILE_PROPERTIES,
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
# Conflicts retried here before the error goes to the caller (whose own retries come with a longer delay).
COMMIT_CONFLICT_RETRIES = 20
# Before the n-th retry (from 0) a pause drawn from [0, min(0.1 s * 2**n, 2 s)]: writers that lost together
# spread out instead of meeting again, so fewer of them have to write their files again (at most ~33 s in all).
CONFLICT_PAUSE_BASE_SECONDS = 0.1
CONFLICT_PAUSE_MAX_SECONDS = 2.0
# Where a DataFile (a PyIceberg Record) keeps its sort_order_id, which PyIceberg's writer leaves unset.
_SORT_ORDER_ID_POSITION = [field.name for field in DATA_FILE_TYPE[DEFAULT_READ_VERSION].fields].index("sort_order_id")


@dataclass(frozen=True)
class AppendResult:
    table: str
    snapshot_id: int | None  # None when the run had no valid rows to append
    rows_written: int


@dataclass(frozen=True)
class BronzeFiles:
    """A run's bronze rows already written as data files of its table (write_data_files), not committed yet:
    the large-file path writes them chunk by chunk, so no run's rows are ever all in memory."""

    files: tuple[DataFile, ...]
    num_rows: int
    spec_id: int | None = None  # the partition spec they were written for (PyIceberg's DataFile does not keep it)


@dataclass(frozen=True)
class RunRows:
    """One run's bronze rows (in memory, or written as data files), as a member of a (group) commit."""

    run_id: str
    upload_id: str
    rows: pa.Table | BronzeFiles


class StalePartitionSpecError(Exception):
    """Data files written under a partition spec the table no longer has: not committed; the transform stage
    retries the run, which writes them under the current spec."""


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
    written: dict[tuple[tuple[str, ...], int], list[DataFile]] = {}  # by pending runs and spec, across retries
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
            # Files are written for one partition spec: a spec changed since (a Dataset's new partitioning)
            # needs them written again, or their partition values would be read under the wrong fields.
            key = (tuple(member.run_id for member in pending), attempt.metadata.default_spec_id)
            files = written[key] = written.get(key) or _group_files(attempt, pending)
            _append_files(attempt, files, _summary(pending))
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


def write_data_files(table: Table, rows: pa.Table) -> list[DataFile]:
    """Writes bronze rows as data files of the table (one per partition), not committed. The rows are in the
    table's sort order (lakehouse.bronze.transform sorts them), and the files say so (their sort_order_id), so
    readers and compaction may rely on each file's order."""
    metadata = with_data_file_properties(table.metadata)
    _check_pyarrow_schema_compatible(
        metadata.schema(), provided_schema=rows.schema, format_version=metadata.format_version
    )
    if rows.num_rows == 0:
        return []
    slices = _partition_slices(metadata.spec(), metadata.schema(), rows)
    if slices is None:  # rows not grouped by partition: PyIceberg filters the table once per partition
        files = list(_dataframe_to_data_files(table_metadata=metadata, df=rows, io=table.io))
    else:
        write_uuid = uuid.uuid4()
        task_schema = pyarrow_to_schema(
            rows.schema, name_mapping=metadata.schema().name_mapping, format_version=metadata.format_version
        )
        tasks = (
            WriteTask(write_uuid, number, task_schema, rows.slice(start, length).to_batches(), partition_key=key)
            for number, (start, length, key) in enumerate(slices)
        )
        files = list(write_file(table.io, metadata, tasks))
    sort_order_id = table.sort_order().order_id
    if sort_order_id:  # 0: the table is unsorted
        for data_file in files:
            data_file[_SORT_ORDER_ID_POSITION] = sort_order_id
    return files


def with_data_file_properties(metadata: TableMetadata) -> TableMetadata:
    """The table's metadata as its data files are written: the platform's Parquet settings, for a table created
    before they were (a property set on the table wins)."""
    if DATA_FILE_PROPERTIES.keys() <= metadata.properties.keys():
        return metadata
    return metadata.model_copy(update={"properties": DATA_FILE_PROPERTIES | metadata.properties})


def _partition_slices(
    spec: PartitionSpec, schema: Schema, rows: pa.Table
) -> list[tuple[int, int, PartitionKey | None]] | None:
    """Each partition's rows as one slice (start, length, key), when the rows of each partition are next to each
    other, as they are when the table's sort order starts with the partition's source column (orders: month of
    order_date, sorted by order_date): no copy. None when they are not, or a partition value is null."""
    if spec.is_unpartitioned():
        return [(0, rows.num_rows, None)]
    keys = []
    for field in spec.fields:
        source = schema.find_field(field.source_id)
        if source.name not in rows.column_names:
            return None
        values = field.transform.pyarrow_transform(source.field_type)(rows.column(source.name)).combine_chunks()
        if values.null_count:
            return None
        keys.append(values)
    changed = np.zeros(rows.num_rows - 1, dtype=bool)
    for values in keys:
        changed |= pc.not_equal(values[1:], values[:-1]).to_numpy(zero_copy_only=False)
    starts = [0, *(np.flatnonzero(changed) + 1).tolist()]
    first_rows = [tuple(values[start].as_py() for values in keys) for start in starts]
    if len(set(first_rows)) != len(first_rows):  # a partition in two places
        return None
    ends = [*starts[1:], rows.num_rows]
    return [
        (
            start,
            end - start,
            PartitionKey([PartitionFieldValue(f, v) for f, v in zip(spec.fields, first, strict=True)], spec, schema),
        )
        for start, end, first in zip(starts, ends, first_rows, strict=True)
    ]


def _group_files(table: Table, members: list[RunRows]) -> list[DataFile]:
    """The members' data files: those written already, and the in-memory members' rows written now, one run after
    another. The group is not sorted again as a whole (1.7 s for 100 runs of 10,000 rows), so each of these files
    holds the sorted rows of one run and claims no sort order (write_data_files: only a file holds sorted rows)."""
    files = [file for member in members if isinstance(member.rows, BronzeFiles) for file in member.rows.files]
    spec_id = table.metadata.default_spec_id
    stale = [
        member.run_id
        for member in members
        if isinstance(member.rows, BronzeFiles) and member.rows.files and member.rows.spec_id != spec_id
    ]
    if stale:
        raise StalePartitionSpecError(
            f"the partition spec of {'.'.join(table.name())} changed while runs {', '.join(stale)} wrote their data "
            f"files; the transform writes them again"
        )
    tables = [member.rows for member in members if isinstance(member.rows, pa.Table) and member.rows.num_rows]
    if len(tables) == 1:
        files += write_data_files(table, tables[0])
    elif tables:
        for data_file in write_data_files(table, pa.concat_tables(tables)):
            data_file[_SORT_ORDER_ID_POSITION] = None
            files.append(data_file)
    return files


def _append_files(table: Table, files: list[DataFile], summary: dict[str, str]) -> None:
    """One snapshot adding the files (a fast append: the data files are written already, so a retry after a
    conflict only writes the manifests again)."""
    with (
        _MetadataOnceTransaction(table) as transaction,
        transaction.update_snapshot(snapshot_properties=summary).fast_append() as append,
    ):
        for data_file in files:
            append.append_data_file(data_file)


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
