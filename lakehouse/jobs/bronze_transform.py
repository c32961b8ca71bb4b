"""Spark bronze transform: one run's raw Parquet -> bronze Iceberg append.

The Spark twin of the operator's Arrow engine, for files too large for one process. Both trust raw/ as
the ingest stage's validator wrote it and check only its schema (the contract with raw/ is in
lakehouse.bronze.transform), write the same bronze columns (lakehouse.bronze.spark_frame) to a table
created by the same code (lakehouse.bronze.writer.ensure_table) and commit at most once per run: the
run id goes into the snapshot summary and a re-run that finds it commits nothing. The job's row in
job_metrics goes to PostgreSQL from this driver process (lakehouse.db.metadata).

    spark-submit --jars "$SPARK_JARS" lakehouse/jobs/bronze_transform.py --run-id R --upload-id U --dataset D \
        --raw-uri s3://raw/... --processing-date 2025-06-01 --ingest-timestamp 2025-06-01T10:00:00 \
        --target-table bronze.orders [--contracts-dir DIR] [--attempt N]

Endpoints and credentials come from the environment only (lakehouse.settings: S3_ENDPOINT_URL,
AWS_*, ICEBERG_CATALOG_URI, ICEBERG_WAREHOUSE, DATABASE_URL), never from argv. S3 keys are not even
put into the Spark conf: S3FileIO and S3A read them from the environment of each driver/executor
(lakehouse.catalog.spark).

The last stdout line is JSON: {"table", "snapshot_id", "rows_written", "already_committed"} on
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
from pyspark.sql import SparkSession

from lakehouse.bronze.evolution import IncompatibleContractError
from lakehouse.bronze.spark_frame import SESSION_CONF, to_bronze_frame
from lakehouse.bronze.transform import RawSchemaMismatchError, RunStamp
from lakehouse.bronze.writer import RUN_ID_PROPERTY, UPLOAD_ID_PROPERTY, ensure_table, find_run_snapshot
from lakehouse.catalog.connect import rest_catalog
from lakehouse.catalog.spark import SPARK_CATALOG, iceberg_spark_conf
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry, UnknownDatasetError
from lakehouse.db.metadata import JobRow, MetadataStore
from lakehouse.jobs import EXIT_REJECTED
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.k8s.ingestionrun.spec import TransformEngineName
from lakehouse.logs import log_json, run_fields
from lakehouse.settings import CatalogSettings, PlatformSettings, S3Settings

log = logging.getLogger("bronze_transform")
# The run's Failed reason when the data or the contract is wrong (exit status EXIT_REJECTED).
REJECTION_REASONS: dict[type[Exception], FailureReason] = {
    UnknownDatasetError: FailureReason.UNKNOWN_DATASET,
    RawSchemaMismatchError: FailureReason.RAW_SCHEMA_MISMATCH,
    IncompatibleContractError: FailureReason.INCOMPATIBLE_CONTRACT,
}
ENGINE = TransformEngineName.SPARK


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
    attempt: int
    contract_json: str | None = None


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
    parser.add_argument("--attempt", type=int, default=1)
    parser.add_argument("--contract", help="the run's contract as JSON (the operator's copy); else --contracts-dir")
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
        ns.attempt,
        ns.contract,
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


def spark_session(conf: dict[str, str], app_name: str = "lakehouse-bronze-transform") -> SparkSession:
    builder = SparkSession.builder.appName(app_name)
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

    def as_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def _contract(args: JobArgs) -> DatasetContract:
    """The run's contract: the operator's copy when given, so the job uses the version the run was validated with."""
    if args.contract_json:
        return DatasetContract.model_validate_json(args.contract_json)
    directory = args.contracts_dir
    contracts = ContractRegistry.from_directory(directory) if directory else ContractRegistry.default()
    return contracts.get(args.dataset)


def run(args: JobArgs, platform: PlatformSettings, spark: SparkSession) -> JobResult:
    contract = _contract(args)
    raw = spark.read.parquet(s3a(args.raw_uri))
    stamp = RunStamp(args.upload_id, args.processing_date, args.ingest_timestamp)
    # Checks raw/'s schema before any table is touched; its rows are trusted (lakehouse.bronze.transform).
    bronze = to_bronze_frame(contract, raw, stamp)
    # The table is created by the same code as the Arrow engine's, so there is one definition of it.
    table = ensure_table(rest_catalog(platform.catalog, platform.s3), contract, args.target_table)
    name = ".".join(table.name())
    existing = find_run_snapshot(table, args.run_id)
    if existing is not None:
        log.warning("run %s already committed to %s as snapshot %s", args.run_id, name, existing)
        written, snapshot_id = _rows_added(table, existing), existing
    elif raw.isEmpty():  # the ingest stage rejected every row
        written, snapshot_id = 0, None
    else:
        started = time.monotonic()
        (
            bronze.writeTo(f"{SPARK_CATALOG}.{name}")
            .option(f"snapshot-property.{RUN_ID_PROPERTY}", args.run_id)
            .option(f"snapshot-property.{UPLOAD_ID_PROPERTY}", args.upload_id)
            .append()
        )
        table = table.refresh()
        snapshot_id = find_run_snapshot(table, args.run_id)
        written = _rows_added(table, snapshot_id) if snapshot_id is not None else 0
        log.info("appended %d rows to %s in %.1fs", written, name, time.monotonic() - started)
    return JobResult(table=name, snapshot_id=snapshot_id, rows_written=written, already_committed=existing is not None)


def _rows_added(table: Table, snapshot_id: int) -> int:
    snapshot = table.snapshot_by_id(snapshot_id)
    summary = snapshot.summary if snapshot else None
    return int(summary.additional_properties.get("added-records", 0)) if summary else 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    log_json()  # the driver's lines carry the run, like the operator's, so one query finds both
    with run_fields(args.run_id, args.upload_id, Phase.TRANSFORMING.value):
        return _transform(args)


def _transform(args: JobArgs) -> int:
    platform = PlatformSettings()
    metadata = MetadataStore(platform.database.url.get_secret_value())
    started = dt.datetime.now(dt.UTC)
    job = JobRow(
        run_id=args.run_id, stage="transform", engine=ENGINE, attempt=args.attempt, status="running", started_at=started
    )
    metadata.record_job(job)
    spark = spark_session(spark_conf(platform.catalog, platform.s3), app_name=f"lakehouse-bronze-{args.run_id}")
    log.info("Spark session ready %.1fs after start", (dt.datetime.now(dt.UTC) - started).total_seconds())
    try:
        result = run(args, platform, spark)
    except (UnknownDatasetError, RawSchemaMismatchError, IncompatibleContractError) as error:
        return _failed(metadata, job, EXIT_REJECTED, REJECTION_REASONS[type(error)], str(error))
    except Exception as error:
        log.exception("the bronze transform of run %s failed", args.run_id)
        return _failed(metadata, job, 1, type(error).__name__, f"{type(error).__name__}: {error}")
    finally:
        spark.stop()
    # Every row of raw/ is written: none is rejected here (lakehouse.bronze.transform).
    written = result.rows_written
    metadata.record_job(_finished(job, "succeeded", rows_in=written, rows_out=written, rows_rejected=0))
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
