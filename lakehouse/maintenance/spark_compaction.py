"""Compaction by a Spark job (lakehouse/jobs/compact_table.py), for tables with more to rewrite than one Python
process should hold: spark-submit in local mode, the stack's Spark (pyspark's spark-submit) and Iceberg jars
(SPARK_JARS, `devstack/spark.sh env`), the same catalog through the same environment.

The caller runs it while it holds the table's maintenance lock (runner.py) and waits for it, so the lock covers
the job: the child gets SIGKILL when the process that holds the lock dies (PR_SET_PDEATHSIG), so a job never
outlives its lock. Credentials reach the job through its environment only, never its command line.

Which engine compacts a table: `choose_engine` (the data to rewrite against the Dataset's
`maintenance.compaction.spark_threshold_mb`, else LAKEHOUSE_COMPACTION_SPARK_THRESHOLD_BYTES). With no Spark
here (no SPARK_JARS, no pyspark: the operator's image) every table goes to PyIceberg.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import uuid
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyiceberg.table import Table

from lakehouse.jobs import last_json_line
from lakehouse.maintenance.compaction import COMPACTION_ID_PROPERTY, CompactionPlan, CompactionResult

log = logging.getLogger(__name__)

Engine = Literal["pyiceberg", "spark"]
JOB_FILE = Path(str(resources.files("lakehouse.jobs") / "compact_table.py"))
_MIB = 1024 * 1024
_PR_SET_PDEATHSIG = 1


class SparkCompactionError(RuntimeError):
    """The job failed; the maintenance run reports it and the next one compacts again."""


class SparkCompactionSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Above this much data to rewrite, a table is compacted by Spark (a Dataset may set its own).
    threshold_bytes: int = Field(default=1024 * _MIB, ge=0, alias="LAKEHOUSE_COMPACTION_SPARK_THRESHOLD_BYTES")
    timeout_seconds: float = Field(default=3600, gt=0, alias="LAKEHOUSE_COMPACTION_SPARK_TIMEOUT_SECONDS")
    # The same variables as the Spark transform's local mode (operator/lakehouse_operator/engines/spark.py).
    jars: str = Field(default="", alias="SPARK_JARS")
    spark_submit: str | None = Field(default=None, alias="LAKEHOUSE_SPARK_SUBMIT")
    master: str = Field(default="local[*]", alias="LAKEHOUSE_SPARK_MASTER")
    driver_memory: str = Field(default="1g", alias="LAKEHOUSE_SPARK_DRIVER_MEMORY")

    def spark_home(self) -> Path | None:
        """pyspark's package folder, a complete SPARK_HOME (found without importing pyspark); None: not installed."""
        spec = importlib.util.find_spec("pyspark")
        return Path(spec.origin).resolve().parent if spec and spec.origin else None

    @property
    def available(self) -> bool:
        return bool(self.jars) and (self.spark_submit is not None or self.spark_home() is not None)


def choose_engine(planned: CompactionPlan, threshold_mb: int | None, settings: SparkCompactionSettings) -> Engine:
    threshold = threshold_mb * _MIB if threshold_mb is not None else settings.threshold_bytes
    if not planned.bins or planned.bytes_to_rewrite <= threshold:
        return "pyiceberg"
    if not settings.available:
        log.warning(
            "%d bytes to compact are above the Spark threshold (%d), but Spark is not available here "
            "(SPARK_JARS, pyspark); compacting with PyIceberg",
            planned.bytes_to_rewrite,
            threshold,
        )
        return "pyiceberg"
    return "spark"


def spark_compact(
    table: Table, target_bytes: int, min_input_files: int, settings: SparkCompactionSettings
) -> CompactionResult:
    """Runs the job and waits for it; what it committed (the snapshot found by the compaction id)."""
    identifier = ".".join(table.name())
    compaction_id = str(uuid.uuid4())
    command = local_command(settings, identifier, target_bytes, min_input_files, compaction_id)
    log.info("Spark compaction of %s: %s", identifier, " ".join(command))
    try:
        ended = subprocess.run(
            command,
            env=_environment(settings),
            capture_output=True,
            text=True,
            timeout=settings.timeout_seconds,
            preexec_fn=_die_with_parent,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SparkCompactionError(f"the Spark compaction did not finish in {settings.timeout_seconds:.0f}s") from error
    outcome = last_json_line(ended.stdout)
    if ended.returncode != 0 or "files_written" not in outcome:
        message = outcome.get("error") or "\n".join(ended.stderr.strip().splitlines()[-15:])
        raise SparkCompactionError(f"the Spark compaction exited with status {ended.returncode}: {message}")
    snapshot_id = compaction_snapshot(table.refresh(), compaction_id)
    return CompactionResult(
        outcome["files_rewritten"] if snapshot_id else 0,
        outcome["files_written"] if snapshot_id else 0,
        snapshot_id,
        engine="spark",
    )


def local_command(
    settings: SparkCompactionSettings, identifier: str, target_bytes: int, min_input_files: int, compaction_id: str
) -> list[str]:
    jars = [jar for jar in settings.jars.split(",") if jar]
    spark_home = settings.spark_home()
    if not jars or (settings.spark_submit is None and spark_home is None):
        raise SparkCompactionError("Spark is not available: SPARK_JARS is not set or pyspark is not installed")
    return [
        settings.spark_submit or str(Path(str(spark_home)) / "bin" / "spark-submit"),
        "--master", settings.master,
        "--name", f"lakehouse-compact-{identifier}",
        "--driver-memory", settings.driver_memory,
        "--conf", "spark.ui.enabled=false",
        # One JVM in local mode: the class path is enough (as for the transform's local mode).
        "--conf", f"spark.driver.extraClassPath={':'.join(jars)}",
        str(JOB_FILE),
        "--table", identifier,
        "--target-file-size-bytes", str(target_bytes),
        "--min-input-files", str(min_input_files),
        "--compaction-id", compaction_id,
    ]  # fmt: skip


def compaction_snapshot(table: Table, compaction_id: str) -> int | None:
    """The snapshot the compaction with this id committed; None if it committed nothing."""
    for snapshot in reversed(table.metadata.snapshots):
        summary = snapshot.summary
        if summary is not None and summary.additional_properties.get(COMPACTION_ID_PROPERTY) == compaction_id:
            return snapshot.snapshot_id
    return None


def _environment(settings: SparkCompactionSettings) -> dict[str, str]:
    spark_home = settings.spark_home()
    return {
        **os.environ,
        **({"SPARK_HOME": str(spark_home)} if spark_home and "SPARK_HOME" not in os.environ else {}),
        # The driver uses this interpreter, so it imports this very project.
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def _die_with_parent() -> None:
    """In the child before exec: the kernel kills it when the process holding the table's lock dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
