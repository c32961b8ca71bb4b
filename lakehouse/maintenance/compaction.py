"""Compaction: a partition's small data files bin-packed into files of about a target size, in the table's sort
order, swapped for them in one Iceberg commit.

The commit removes exactly the files it rewrote and adds the new ones, in one snapshot whose summary carries
`lakehouse.operation=compaction` (PyIceberg 0.12 writes such a swap as an `overwrite`; it has no `replace`).
No row changes: a scan reads the same rows, and time travel to an earlier snapshot reads its old files, which
stay until that snapshot is expired and orphan removal deletes them.

Iceberg commits are optimistic. An append that commits while the new files are written makes our commit
conflict: the table is reloaded and the same new files are committed again on the fresh metadata, which still
holds the append's files (only the rewritten files are removed), up to COMMIT_CONFLICT_RETRIES times. When a
rewritten file is no longer live (another compaction, a rollback), PyIceberg refuses the swap
(ValidationException): the compaction is abandoned and its new files deleted, so nothing is lost or doubled.
An append that loses to the compaction retries on its snapshot (lakehouse/bronze/writer.py).

A table with more to rewrite than a threshold is compacted by a Spark job instead (spark_compaction.py), whose
commit carries the same marker; `plan` is what both decide on.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table, TableProperties
from pyiceberg.table.sorting import NullOrder, SortDirection
from pyiceberg.transforms import IdentityTransform

from lakehouse.bronze.writer import (
    CONFLICT_PAUSE_BASE_SECONDS,
    CONFLICT_PAUSE_MAX_SECONDS,
    _without_library_retries,
    with_data_file_properties,
)

log = logging.getLogger(__name__)

OPERATION_PROPERTY = "lakehouse.operation"
COMPACTION = "compaction"
ENGINE_PROPERTY = "lakehouse.compaction.engine"  # pyiceberg | spark
COMPACTION_ID_PROPERTY = "lakehouse.compaction.id"  # set by the Spark compaction's caller, to find its snapshot
# A file below this share of the target counts as small (Iceberg's rewrite_data_files uses the same 75 %).
SMALL_FILE_RATIO = 0.75
COMMIT_CONFLICT_RETRIES = 10


@dataclass(frozen=True)
class FileStats:
    path: str
    size_bytes: int
    partition: Hashable  # the partition spec id and the partition's values: files of one partition share it


@dataclass(frozen=True)
class CompactionResult:
    files_rewritten: int = 0
    files_written: int = 0
    snapshot_id: int | None = None  # None when nothing was committed
    conflicts: int = 0
    abandoned: str | None = None  # why the compaction committed nothing although it had files to rewrite
    engine: str | None = None  # which one rewrote the files: pyiceberg or spark


def compaction_properties(engine: str, compaction_id: str | None = None) -> dict[str, str]:
    """The snapshot summary entries that mark a compaction's commit, whichever engine made it."""
    properties = {OPERATION_PROPERTY: COMPACTION, ENGINE_PROPERTY: engine}
    return properties | ({COMPACTION_ID_PROPERTY: compaction_id} if compaction_id else {})


def plan_bins(files: Sequence[FileStats], target_bytes: int, min_input_files: int) -> list[list[FileStats]]:
    """Groups of small files, each of one partition and together at most `target_bytes`, that are worth
    rewriting as one file: only partitions with at least `min_input_files` small files, only groups of two or
    more. First fit, largest files first, so the groups come out few and full."""
    by_partition: dict[Hashable, list[FileStats]] = {}
    for file in files:
        if file.size_bytes < target_bytes * SMALL_FILE_RATIO:
            by_partition.setdefault(file.partition, []).append(file)
    bins: list[list[FileStats]] = []
    for small in by_partition.values():
        if len(small) < min_input_files:
            continue
        packed: list[list[FileStats]] = []
        for file in sorted(small, key=lambda f: (-f.size_bytes, f.path)):
            fitting = next((b for b in packed if sum(f.size_bytes for f in b) + file.size_bytes <= target_bytes), None)
            if fitting is None:
                packed.append([file])
            else:
                fitting.append(file)
        bins.extend(b for b in packed if len(b) > 1)
    return bins


def sort_keys(table: Table) -> list[tuple[str, str, str]]:
    """The table's sort order as pyarrow sort keys: (column, order, null placement)."""
    schema, keys = table.schema(), []
    for field in table.sort_order().fields:
        name = schema.find_column_name(field.source_id)
        if name is None or not isinstance(field.transform, IdentityTransform):
            log.warning("sort field %s of %s is not an identity column; compaction sorts by the others", field, table)
            continue
        order = "descending" if field.direction == SortDirection.DESC else "ascending"
        keys.append((name, order, "at_start" if field.null_order == NullOrder.NULLS_FIRST else "at_end"))
    return keys


@dataclass(frozen=True)
class CompactionPlan:
    """What a compaction of the current snapshot would rewrite: its live files by path, and the groups of them."""

    tasks: dict[str, FileScanTask] = dataclasses.field(default_factory=dict)
    bins: list[list[FileStats]] = dataclasses.field(default_factory=list)
    refused: str | None = None  # why the table cannot be compacted

    @property
    def bytes_to_rewrite(self) -> int:
        return sum(file.size_bytes for group in self.bins for file in group)


def plan(table: Table, target_bytes: int, min_input_files: int) -> CompactionPlan:
    if table.current_snapshot() is None:
        return CompactionPlan()
    tasks = {task.file.file_path: task for task in table.scan().plan_files()}
    if any(task.delete_files for task in tasks.values()):
        # Bronze tables only append; rows deleted by hand would have to be applied first, which this does not do.
        return CompactionPlan(refused="the table has delete files; compaction rewrites only plain data files")
    return CompactionPlan(tasks, plan_bins([_stats(task) for task in tasks.values()], target_bytes, min_input_files))


def compact(
    table: Table,
    target_bytes: int,
    min_input_files: int,
    *,
    planned: CompactionPlan | None = None,
    before_commit: Callable[[], None] = lambda: None,
    on_conflict: Callable[[], None] = lambda: None,
) -> CompactionResult:
    """Rewrites the current snapshot's small files (plan_bins, or `planned` when the caller planned already) and
    commits the swap. `before_commit` runs once the new files are written (a hook for tests), `on_conflict` each
    time a conflicting commit is retried."""
    planned = planned or plan(table, target_bytes, min_input_files)
    if planned.refused:
        return CompactionResult(abandoned=planned.refused)
    if not planned.bins:
        return CompactionResult()
    tasks, bins = planned.tasks, planned.bins
    removed = [tasks[file.path].file for group in bins for file in group]
    added = [file for group in bins for file in _rewrite(table, [tasks[f.path] for f in group])]
    before_commit()
    properties = compaction_properties("pyiceberg") | {"lakehouse.compaction.rewritten-files": str(len(removed))}
    conflicts = 0
    while True:
        try:
            snapshot_id = _swap(table, removed, added, properties)
        except CommitFailedException as error:
            if conflicts == COMMIT_CONFLICT_RETRIES:
                _delete(table, added)
                raise
            log.info("compaction of %s conflicted (%s); retrying on fresh metadata", ".".join(table.name()), error)
            on_conflict()
            time.sleep(random.uniform(0, min(CONFLICT_PAUSE_BASE_SECONDS * 2**conflicts, CONFLICT_PAUSE_MAX_SECONDS)))
            table.refresh()
            conflicts += 1
            continue
        except ValidationException as error:  # a rewritten file is gone: someone else changed those files
            _delete(table, added)
            return CompactionResult(conflicts=conflicts, abandoned=f"the files it rewrote changed meanwhile: {error}")
        return CompactionResult(len(removed), len(added), snapshot_id, conflicts, engine="pyiceberg")


def _stats(task: FileScanTask) -> FileStats:
    file = task.file
    partition = tuple(file.partition[i] for i in range(len(file.partition)))
    return FileStats(file.file_path, file.file_size_in_bytes, (file.spec_id, partition))


def _rewrite(table: Table, tasks: list[FileScanTask]) -> list[DataFile]:
    """The rows of `tasks`, sorted, written as new data files (one per partition of the current spec)."""
    rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(tasks)
    if keys := sort_keys(table):
        rows = rows.take(pc.sort_indices(rows, options=pc.SortOptions(sort_keys=keys)))
    # The group was sized in Parquet bytes already; written whole it becomes one file (PyIceberg would split it
    # by its in-memory size).
    metadata = with_data_file_properties(table.metadata)
    whole_group = {TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: str(rows.nbytes + 1)}
    metadata = metadata.model_copy(update={"properties": metadata.properties | whole_group})
    return list(_dataframe_to_data_files(metadata, rows, table.io, uuid.uuid4()))


def _swap(table: Table, removed: list[DataFile], added: list[DataFile], properties: dict[str, str]) -> int:
    """One commit that removes `removed` and adds `added`; its snapshot id. PyIceberg's own conflict retries are
    off for it (writer._without_library_retries), so each conflict comes here and is counted."""
    transaction = _without_library_retries(table).transaction()
    with transaction.update_snapshot(snapshot_properties=properties).overwrite() as swap:
        for file in removed:
            swap.delete_data_file(file)
        for file in added:
            swap.append_data_file(file)
    transaction.commit_transaction()
    return swap.snapshot_id


def _delete(table: Table, files: list[DataFile]) -> None:
    """The new files of a compaction that committed nothing: referenced by no snapshot, read by no one."""
    for file in files:
        try:
            table.io.delete(file.file_path)
        except OSError as error:  # left to orphan file removal
            log.warning("cannot delete %s of an abandoned compaction: %s", file.file_path, error)
