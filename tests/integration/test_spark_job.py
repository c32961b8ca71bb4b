"""The Spark bronze job (lakehouse/jobs/bronze_transform.py) in local mode against the real stack.

The Arrow engine is the reference: for the same input the Spark job must give the same bronze
table (schema, partitioning, rows), the same quarantine and the same data-quality counts, and a
re-run of the same run must commit nothing. Each spark-submit takes about a minute here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lakehouse_operator.engines.arrow import ArrowTransformEngine
from lakehouse_operator.engines.base import RunContext, RunRejectedError, TransformOutcome
from lakehouse_operator.engines.spark import SparkSettings
from lakehouse_operator.engines.spark_submit import SparkSubmitEngine
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.bronze.writer import RUN_ID_PROPERTY
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.db.metadata import MetadataStore, WorkflowRow
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import IngestReport, ingest_upload
from lakehouse.storage.layout import IngestPaths
from lakehouse.storage.s3 import S3Location, read_parquet
from tests.utils.engines import transform_until_done
from tests.utils.runs import Upload, upload

pytestmark = pytest.mark.integration
ORDERS: DatasetContract = ContractRegistry.default().get("orders")
REPOSITORY = Path(__file__).resolve().parents[2]
PROCESSING_DATE = dt.date(2025, 7, 1)
INGEST_TIMESTAMP = dt.datetime(2025, 7, 1, 9, 30, 15, 250000)
JOB_SECONDS = 480


@pytest.fixture(scope="module")
def spark_jars() -> str:
    done = subprocess.run(
        [str(REPOSITORY / "devstack" / "spark.sh"), "env"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"Spark jars missing: run `devstack/spark.sh install` ({done.stderr.strip()})", pytrace=False)
    return done.stdout.strip().removeprefix("export SPARK_JARS=")


@pytest.fixture(scope="module")
def spark_engine(spark_jars: str, tmp_path_factory: pytest.TempPathFactory) -> SparkSubmitEngine:
    settings = SparkSettings(LAKEHOUSE_SPARK_MODE="local", SPARK_JARS=spark_jars, LAKEHOUSE_SPARK_MASTER="local[2]",
                             LAKEHOUSE_SPARK_TIMEOUT_SECONDS=JOB_SECONDS,
                             LAKEHOUSE_SPARK_WORK_DIR=tmp_path_factory.mktemp("spark-submit"))  # fmt: skip
    return SparkSubmitEngine(settings)


@pytest.fixture
def scratch_tables(catalog: Catalog) -> Iterator[list[str]]:
    tables: list[str] = []
    yield tables
    for table in tables:
        with contextlib.suppress(NoSuchTableError):
            catalog.drop_table(table)


def scratch(tables: list[str], prefix: str) -> str:
    tables.append(f"bronze_it.{prefix}_{uuid.uuid4().hex[:8]}")
    return tables[-1]


def run_context(up: Upload, target_table: str) -> RunContext:
    return RunContext(
        name=up.upload_id, namespace="spark-it", upload_id=up.upload_id, dataset="orders", contract=ORDERS,
        source_uri=up.uri, source_format=up.fmt, source_sha256=up.sha256, processing_date=PROCESSING_DATE,
        ingest_timestamp=INGEST_TIMESTAMP, target_table=target_table,
        owner={"apiVersion": "lakehouse.dev/v1alpha1", "kind": "IngestionRun", "name": up.upload_id,
               "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, up.upload_id))},
    )  # fmt: skip


def ingest(s3: Any, database_url: str, up: Upload) -> tuple[IngestReport, IngestPaths]:
    """The built-in ingest stage (Arrow validation -> raw/ + quarantine/), plus the run's workflow row."""
    paths = IngestPaths.for_run("orders", PROCESSING_DATE, up.upload_id, "raw", "quarantine")
    report = ingest_upload(s3, ORDERS, S3Location.parse(up.uri), up.fmt, up.upload_id, paths)  # type: ignore[arg-type]
    MetadataStore(database_url).upsert_workflow(
        WorkflowRow(run_id=up.upload_id, namespace="spark-it", dataset="orders", upload_id=up.upload_id,
                    source_uri=up.uri, source_format=up.fmt, phase="Transforming", transform_engine="spark")
    )  # fmt: skip
    return report, paths


def table_rows(catalog: Catalog, table: str) -> list[dict[str, Any]]:
    return sorted(catalog.load_table(table).scan().to_arrow().to_pylist(), key=lambda r: r["order_id"])


def read_folder(s3: Any, uri: str) -> pa.Table:
    """Every Parquet part Spark wrote under a folder, as one table."""
    location = S3Location.parse(uri)
    listing = s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key.rstrip("/") + "/")
    keys = sorted(o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".parquet"))
    assert keys, f"no Parquet files under {uri}"
    parts = [read_parquet(s3, S3Location(location.bucket, key)) for key in keys]
    return pa.concat_tables(parts).sort_by("_source_row")


def quality(db: psycopg.Connection, run_id: str) -> dict[tuple[str, str], tuple[int, int]]:
    rows = db.execute(
        "SELECT check_name, column_name, passed_count, failed_count FROM data_quality_metrics WHERE run_id = %s",
        (run_id,),
    ).fetchall()
    return {(name, column): (passed, failed) for name, column, passed, failed in rows}


def transform_job(db: psycopg.Connection, run_id: str) -> tuple[Any, ...]:
    return db.execute(
        "SELECT engine, status, rows_in, rows_out, rows_rejected, finished_at IS NOT NULL FROM job_metrics"
        " WHERE run_id = %s AND stage = 'transform'",
        (run_id,),
    ).fetchone()


def test_spark_writes_the_arrow_engines_bronze_table_exactly_once(
    spark_engine: SparkSubmitEngine, s3: Any, catalog: Catalog, database_url: str, db: psycopg.Connection,
    scratch_tables: list[str],
) -> None:  # fmt: skip
    sample = orders(400, invalid_every=10)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    report, paths = ingest(s3, database_url, up)
    arrow_table, spark_table = scratch(scratch_tables, "arrow"), scratch(scratch_tables, "spark")
    arrow = ArrowTransformEngine(s3, lambda: catalog).transform(run_context(up, arrow_table), paths.raw.uri)

    started = time.monotonic()
    outcome = transform_until_done(spark_engine, run_context(up, spark_table), paths.raw.uri, JOB_SECONDS)
    print(f"spark-submit of {report.result.valid.num_rows} raw rows: {time.monotonic() - started:.1f}s")

    assert isinstance(outcome, TransformOutcome)
    assert (outcome.table, outcome.rows_written) == (spark_table, 360)
    assert arrow.rows_written == 360
    spark_iceberg, arrow_iceberg = catalog.load_table(spark_table), catalog.load_table(arrow_table)
    assert spark_iceberg.schema().fields == arrow_iceberg.schema().fields
    assert spark_iceberg.spec().fields == arrow_iceberg.spec().fields
    assert spark_iceberg.sort_order().fields == arrow_iceberg.sort_order().fields
    assert table_rows(catalog, spark_table) == table_rows(catalog, arrow_table)
    snapshot = spark_iceberg.snapshot_by_id(outcome.snapshot_id)  # type: ignore[arg-type]
    assert snapshot is not None and snapshot.summary.additional_properties[RUN_ID_PROPERTY] == up.upload_id

    # Metrics, keyed by the run id; the transform's checks beside (not over) the ingest stage's.
    assert transform_job(db, up.upload_id) == ("spark", "succeeded", 360, 360, 0, True)
    checks = quality(db, up.upload_id)
    assert checks[("transform.row_count", "")] == (360, 0)
    assert checks[("transform.amount_positive", "amount")] == (360, 0)
    assert checks[("transform.not_null", "customer_id")] == (360, 0)

    # The same run again (a retry after a crash): nothing is appended.
    again = transform_until_done(spark_engine, run_context(up, spark_table), paths.raw.uri, JOB_SECONDS)
    assert again.snapshot_id == outcome.snapshot_id
    assert again.rows_written == 360
    reloaded = catalog.load_table(spark_table)
    assert len(reloaded.snapshots()) == 1
    assert len(table_rows(catalog, spark_table)) == 360


def test_spark_checks_an_unvalidated_file_like_the_arrow_engine(
    spark_engine: SparkSubmitEngine, s3: Any, catalog: Catalog, database_url: str, db: psycopg.Connection,
    scratch_tables: list[str],
) -> None:  # fmt: skip
    """A raw file nobody validated (all text, source column names): Spark's checks alone decide."""
    sample = orders(400, invalid_every=7)
    up = upload(s3, sample.parquet_bytes(), "orders", "parquet")
    report, paths = ingest(s3, database_url, up)  # the Arrow engine's verdict on the same file
    spark_table = scratch(scratch_tables, "spark_text")
    run = run_context(up, spark_table)

    outcome = transform_until_done(spark_engine, run, up.uri, JOB_SECONDS)  # the upload itself as the job's input

    expected = report.result
    assert outcome.rows_written == expected.valid.num_rows
    stamp = RunStamp(up.upload_id, PROCESSING_DATE, INGEST_TIMESTAMP)
    arrow_bronze = sorted(to_bronze(ORDERS, expected.valid, stamp).to_pylist(), key=lambda r: r["order_id"])
    assert table_rows(catalog, spark_table) == arrow_bronze

    # The quarantine: same rows, columns and reasons as the built-in engine's object.
    spark_quarantine = read_folder(s3, spark_engine.quarantine_uri(run))
    arrow_quarantine = read_parquet(s3, paths.quarantine)
    assert spark_quarantine.column_names == arrow_quarantine.column_names
    assert spark_quarantine.to_pylist() == arrow_quarantine.to_pylist()
    assert spark_quarantine.num_rows == len(sample.rejected) > 0

    # The same data-quality counts as the Arrow validator's.
    checks = quality(db, up.upload_id)
    assert {(f"transform.{c.check_name}", c.column): (c.passed, c.failed) for c in expected.checks} == checks
    assert transform_job(db, up.upload_id) == ("spark", "succeeded", 400, expected.valid.num_rows,
                                               len(sample.rejected), True)  # fmt: skip


def test_a_file_without_a_required_column_is_rejected(
    spark_engine: SparkSubmitEngine, s3: Any, database_url: str, scratch_tables: list[str],
) -> None:  # fmt: skip
    buffer = io.BytesIO()
    pq.write_table(pa.table({"order_id": ["1"], "amount": ["2.00"]}), buffer)
    up = upload(s3, buffer.getvalue(), "orders", "parquet")
    MetadataStore(database_url).upsert_workflow(
        WorkflowRow(run_id=up.upload_id, namespace="spark-it", dataset="orders", upload_id=up.upload_id,
                    source_uri=up.uri, source_format="parquet", phase="Transforming")
    )  # fmt: skip
    with pytest.raises(RunRejectedError, match="lacks required column") as error:
        transform_until_done(
            spark_engine, run_context(up, scratch(scratch_tables, "spark_missing")), up.uri, JOB_SECONDS
        )
    assert error.value.reason == "SparkJobRejected"
