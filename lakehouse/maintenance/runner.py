"""One maintenance run of a dataset's bronze table: compaction, then snapshot expiry, then orphan file removal.

The run holds the table's lock (lakehouse/db/maintenance_log.py) from start to end, so it never overlaps another
run of the same table, and writes a row of the maintenance log. A task that fails (the catalog or S3 away) is
reported and the next tasks still run; every task is safe to repeat, so the next run simply does it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.table import Table

from lakehouse.contracts.model import DatasetContract
from lakehouse.db.maintenance_log import MaintenanceCounts, MaintenanceLog
from lakehouse.maintenance.compaction import CompactionResult, compact, plan
from lakehouse.maintenance.expiry import expire_snapshots
from lakehouse.maintenance.orphans import remove_orphan_files
from lakehouse.maintenance.spark_compaction import SparkCompactionSettings, choose_engine, spark_compact

log = logging.getLogger(__name__)

Task = Literal["compaction", "snapshot-expiry", "orphan-removal"]
TASKS: tuple[Task, ...] = ("compaction", "snapshot-expiry", "orphan-removal")
_MIB = 1024 * 1024
LOCKED = "another maintenance run of the table holds its lock"


@dataclass
class MaintenanceReport:
    dataset: str
    table: str
    skipped: str | None = None  # why nothing ran: locked, not due, no table yet, disabled
    compaction: CompactionResult = field(default_factory=CompactionResult)
    snapshots_expired: int = 0
    orphan_files_removed: int = 0
    task_seconds: dict[Task, float] = field(default_factory=dict)  # the tasks that ran
    failures: dict[Task, str] = field(default_factory=dict)

    @property
    def counts(self) -> MaintenanceCounts:
        return MaintenanceCounts(
            self.compaction.files_rewritten,
            self.compaction.files_written,
            self.compaction.snapshot_id,
            self.snapshots_expired,
            self.orphan_files_removed,
        )

    def summary(self) -> str:
        if self.skipped:
            return f"{self.table}: skipped ({self.skipped})"
        parts = [
            f"compaction rewrote {self.compaction.files_rewritten} files as {self.compaction.files_written}"
            + (f" (snapshot {self.compaction.snapshot_id})" if self.compaction.snapshot_id else "")
            + (f" with {self.compaction.engine}" if self.compaction.engine else ""),
            f"{self.snapshots_expired} snapshots expired",
            f"{self.orphan_files_removed} orphan files removed",
        ]
        if self.compaction.abandoned:
            parts.append(f"compaction abandoned: {self.compaction.abandoned}")
        parts += [f"{task} failed: {error}" for task, error in self.failures.items()]
        return f"{self.table}: " + "; ".join(parts)


def maintain(
    catalog: Catalog,
    s3: Any,
    maintenance_log: MaintenanceLog,
    contract: DatasetContract,
    trigger: Literal["schedule", "cli"],
    *,
    due_after: dt.timedelta | None = None,
    identifier: str | None = None,
    spark: SparkCompactionSettings | None = None,
) -> MaintenanceReport:
    """Maintains the contract's bronze table (or `identifier`). With `due_after` (the scheduler's interval) it
    does nothing when the table's last run started less than that long ago. `spark`: where the Spark compaction
    runs and from what size (default: from the environment)."""
    identifier = identifier or contract.bronze.identifier
    report = MaintenanceReport(contract.name, identifier)
    with maintenance_log.locked(contract.name, identifier) as locked:
        if locked is None:
            report.skipped = LOCKED
            return report
        last = locked.last_started()
        if due_after is not None and last is not None and dt.datetime.now(dt.UTC) - last < due_after:
            report.skipped = f"not due: the last run started at {last.isoformat()}"
            return report
        try:
            table = catalog.load_table(identifier)
        except (NoSuchTableError, NoSuchNamespaceError):
            report.skipped = "the table does not exist yet"
            return report
        row_id = locked.start(trigger)
        config = contract.maintenance
        if config.compaction.enabled:
            with _task(report, "compaction"):
                report.compaction = _compact(table, contract, spark or SparkCompactionSettings())
        if config.snapshot_expiry.enabled:
            with _task(report, "snapshot-expiry"):
                max_age = dt.timedelta(hours=config.snapshot_expiry.max_age_hours)
                report.snapshots_expired = expire_snapshots(
                    catalog.load_table(identifier), max_age, config.snapshot_expiry.keep_last
                )
        if config.orphan_files.enabled:
            with _task(report, "orphan-removal"):
                min_age = dt.timedelta(hours=config.orphan_files.older_than_hours)
                report.orphan_files_removed = remove_orphan_files(catalog, s3, identifier, min_age)
        locked.finish(row_id, "failed" if report.failures else "succeeded", report.counts, report.summary())
    log.info("maintenance (%s): %s", trigger, report.summary())
    return report


def _compact(table: Table, contract: DatasetContract, spark: SparkCompactionSettings) -> CompactionResult:
    """PyIceberg for a little to rewrite, a Spark job for much (spark_compaction.choose_engine); both under the
    lock this run holds."""
    settings = contract.maintenance.compaction
    target_bytes, min_input_files = settings.target_file_size_mb * _MIB, settings.min_input_files
    planned = plan(table, target_bytes, min_input_files)
    if choose_engine(planned, settings.spark_threshold_mb, spark) == "spark":
        return spark_compact(table, target_bytes, min_input_files, spark)
    return compact(table, target_bytes, min_input_files, planned=planned)


@contextmanager
def _task(report: MaintenanceReport, task: Task) -> Iterator[None]:
    """Times the task; an error (a server fault) is reported, and the next run does the task again."""
    started = time.monotonic()
    try:
        yield
    except Exception as error:
        log.warning("%s of %s failed: %s", task, report.table, error, exc_info=True)
        report.failures[task] = f"{type(error).__name__}: {error}"
    finally:
        report.task_seconds[task] = time.monotonic() - started
