"""Spark bronze transform: one run's raw Parquet -> contract checks -> quarantine + bronze Iceberg append.

The Spark twin of the operator's Arrow engine, for files too large for one process. Runs the same
contract checks (lakehouse.contracts.spark_rules), writes the same bronze columns
(lakehouse.bronze.spark_frame) to a table created by the same code (lakehouse.bronze.writer.ensure_table)
and commits at most once per run: the run id goes into the snapshot summary and a re-run that finds it
commits nothing. Metrics go to PostgreSQL from this driver process (lakehouse.db.metadata).

    spark-submit --jars "$SPARK_JARS" lakehouse/jobs/bronze_transform.py --run-id R --upload-id U --dataset D \
        --raw-uri s3://raw/... --processing-date 2025-06-01 --ingest-timestamp 2025-06-01T10:00:00 \
        --target-table bronze.orders --quarantine-uri s3://quarantine/... [--contracts-dir DIR] [--attempt N]

Endpoints and credentials come from the environment only (lakehouse.settings: S3_ENDPOINT_URL,
AWS_*, ICEBERG_CATALOG_URI, ICEBERG_WAREHOUSE, DATABASE_URL), never from argv. S3 keys are not even
put into the Spark conf: S3FileIO and S3A read them from the environment of each driver/executor
(lakehouse.catalog.spark).

The last stdout line is JSON: {"table", "snapshot_id", "rows_written", "already_committed", ...} on
success, {"error", "reason"} on failure (exit status 2: the data or contract is wrong, 1: anything else).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyiceberg.table import Table
from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf

from lakehouse.bronze.evolution import IncompatibleContractError
from lakehouse.bronze.spark_frame import to_bronze_frame
from lakehouse.bronze.transform import RunStamp
from lakehouse.bronze.writer import RUN_ID_PROPERTY, UPLOAD_ID_PROPERTY, ensure_table, find_run_snapshot
from lakehouse.catalog.connect import rest_catalog
from lakehouse.catalog.spark import SPARK_CATALOG, iceberg_spark_conf
from lakehouse.contracts.registry import ContractRegistry, UnknownDatasetError
from lakehouse.contracts.spark_rules import SESSION_CONF, SOURCE_ROW, check_frame
from lakehouse.db.metadata import JobRow, MetadataStore
from lakehouse.ingest.validation import CheckResult, MissingColumnsError
from lakehouse.settings import CatalogSettings, PlatformSettings, S3Settings

log = logging.getLogger("bronze_transform")
ENGINE = "spark"
# The ingest stage records its checks under their plain names; the transform's own re-check of raw/
# must not overwrite them (data_quality_metrics is unique per run, check and column).
CHECK_PREFIX = "transform."
EXIT_REJECTED = 2


@dataclass(frozen=True)
class JobArgs:
    run_id: str
    upload_id: str
    dataset: str
    raw_uri: str
    processing_date: dt.date
    ingest_timestamp: dt.datetime
    target_table: str
    contracts_dir: Path | None
    quarantine_uri: str
    attempt: int


def parse_args(argv: list[str]) -> JobArgs:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--upload-id", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--raw-uri", required=True)
    parser.add_argument("--processing-date", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--ingest-timestamp", required=True, type=_naive_utc, help="ISO 8601, UTC")
    parser.add_argument("--target-table", required=True, help="namespace.table")
    parser.add_argument("--contracts-dir", type=Path, help="default: LAKEHOUSE_CONTRACTS_DIR or the packaged ones")
    parser.add_argument("--quarantine-uri", required=True, help="folder (s3://) for the rejected rows")
    parser.add_argument("--attempt", type=int, default=1)
    ns = parser.parse_args(argv)
    return JobArgs(
        ns.run_id,
        ns.upload_id,
        ns.dataset,
        ns.raw_uri,
        ns.processing_date,
        ns.ingest_timestamp,
        ns.target_table,
        ns.contracts_dir,
        ns.quarantine_uri,
        ns.attempt,
    )


def _naive_utc(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def s3a(uri: str) -> str:
    """Hadoop reads plain files through S3A; the Iceberg tables use S3FileIO and keep s3:// URIs."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def spark_conf(catalog: CatalogSettings, s3: S3Settings) -> dict[str, str]:
    """Set here from the environment too, so the job runs the same under spark-submit or a SparkApplication."""
    conf = {**SESSION_CONF, **iceberg_spark_conf(catalog, s3)}
    if catalog.token:
        # The one secret in a conf: the REST catalog client has no other way to get it. Spark redacts
        # keys matching "token" in its UI and logs (spark.redaction.regex).
        conf[f"spark.sql.catalog.{SPARK_CATALOG}.token"] = catalog.token.get_secret_value()
    return conf


def spark_session(conf: dict[str, str]) -> SparkSession:
    builder = SparkSession.builder.appName("lakehouse-bronze-transform")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("LAKEHOUSE_SPARK_LOG_LEVEL", "WARN"))
    return spark


@dataclass(frozen=True)
class JobResult:
    table: str
    snapshot_id: int | None
    rows_written: int
    already_committed: bool
    rows_in: int
    rows_rejected: int
    quarantine_uri: str | None

    def as_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def run(args: JobArgs, platform: PlatformSettings, spark: SparkSession) -> tuple[JobResult, list[CheckResult]]:
    directory = args.contracts_dir
    contracts = ContractRegistry.from_directory(directory) if directory else ContractRegistry.default()
    contract = contracts.get(args.dataset)
    # The table is created by the same code as the Arrow engine's, so there is one definition of it.
    table = ensure_table(rest_catalog(platform.catalog, platform.s3), contract, args.target_table)
    name = ".".join(table.name())

    raw = spark.read.parquet(s3a(args.raw_uri))
    raw = raw.select("*", (sf.col("_metadata.row_index") + 1).alias(SOURCE_ROW))
    checked = check_frame(raw, contract)
    checked.frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        started = time.monotonic()
        checks = checked.check_results()
        rows_in, rejected = checks[0].passed + checks[0].failed, checks[0].failed
        log.info("checked %d rows (%d rejected) in %.1fs", rows_in, rejected, time.monotonic() - started)
        if rejected:  # overwrite: a re-run writes the same rows to the same folder
            started = time.monotonic()
            checked.rejected_rows(args.upload_id).coalesce(1).write.mode("overwrite").parquet(s3a(args.quarantine_uri))
            log.info("wrote %d rejected rows to %s in %.1fs", rejected, args.quarantine_uri, time.monotonic() - started)
        existing = find_run_snapshot(table, args.run_id)
        if existing is not None:
            log.warning("run %s already committed to %s as snapshot %s", args.run_id, name, existing)
            written, snapshot_id = _rows_added(table, existing), existing
        elif rows_in - rejected == 0:
            written, snapshot_id = 0, None
        else:
            started = time.monotonic()
            stamp = RunStamp(args.upload_id, args.processing_date, args.ingest_timestamp)
            (
                to_bronze_frame(contract, checked.valid_rows(), stamp)
                .writeTo(f"{SPARK_CATALOG}.{name}")
                .option(f"snapshot-property.{RUN_ID_PROPERTY}", args.run_id)
                .option(f"snapshot-property.{UPLOAD_ID_PROPERTY}", args.upload_id)
                .append()
            )
            table = table.refresh()
            snapshot_id = find_run_snapshot(table, args.run_id)
            written = _rows_added(table, snapshot_id) if snapshot_id is not None else 0
            log.info("appended %d rows to %s in %.1fs", written, name, time.monotonic() - started)
    finally:
        checked.frame.unpersist()
    result = JobResult(
        table=name,
        snapshot_id=snapshot_id,
        rows_written=written,
        already_committed=existing is not None,
        rows_in=rows_in,
        rows_rejected=rejected,
        quarantine_uri=args.quarantine_uri if rejected else None,
    )
    return result, checks


def _rows_added(table: Table, snapshot_id: int) -> int:
    snapshot = table.snapshot_by_id(snapshot_id)
    summary = snapshot.summary if snapshot else None
    return int(summary.additional_properties.get("added-records", 0)) if summary else 0


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    args = parse_args(argv)
    platform = PlatformSettings()
    metadata = MetadataStore(platform.database.url.get_secret_value())
    started = dt.datetime.now(dt.UTC)
    job = JobRow(
        run_id=args.run_id, stage="transform", engine=ENGINE, attempt=args.attempt, status="running", started_at=started
    )
    metadata.record_job(job)
    spark = spark_session(spark_conf(platform.catalog, platform.s3))
    log.info("Spark session ready %.1fs after start", (dt.datetime.now(dt.UTC) - started).total_seconds())
    try:
        result, checks = run(args, platform, spark)
    except (UnknownDatasetError, MissingColumnsError, IncompatibleContractError) as error:
        return _failed(metadata, job, EXIT_REJECTED, type(error).__name__.removesuffix("Error"), str(error))
    except Exception as error:
        log.exception("the bronze transform of run %s failed", args.run_id)
        return _failed(metadata, job, 1, type(error).__name__, f"{type(error).__name__}: {error}")
    finally:
        spark.stop()
    metadata.record_quality(
        args.run_id,
        args.dataset,
        [CheckResult(CHECK_PREFIX + c.check_name, c.column, c.passed, c.failed) for c in checks],
    )
    metadata.record_job(
        _finished(
            job, "succeeded", rows_in=result.rows_in, rows_out=result.rows_written, rows_rejected=result.rows_rejected
        )
    )
    print(result.as_json(), flush=True)
    return 0


def _finished(job: JobRow, status: str, **fields: Any) -> JobRow:
    return JobRow(**{**job.__dict__, "status": status, "finished_at": dt.datetime.now(dt.UTC), **fields})


def _failed(metadata: MetadataStore, job: JobRow, code: int, reason: str, message: str) -> int:
    metadata.record_job(_finished(job, "failed", error_message=message))
    print(json.dumps({"error": message, "reason": reason}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
