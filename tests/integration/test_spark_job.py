"""The Spark bronze job (lakehouse/jobs/bronze_transform.py) in local mode against the real stack.

The Arrow engine is the reference: for the same raw/ file the Spark job must give the same bronze
table (schema, partitioning, rows), a re-run of the same run must commit nothing, and a file that is
not raw/ must be refused by both. Neither engine checks raw/'s rows again (lakehouse.bronze.transform):
the ingest stage's quarantine and data-quality counts are the only ones. Each spark-submit takes
about a minute here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from lakehouse_operator.engines.arrow import ArrowTransformEngine
from lakehouse_operator.engines.base import RunContext, RunRejectedError, TransformOutcome
from lakehouse_operator.engines.spark import SparkSettings
from lakehouse_operator.engines.spark_submit import SparkSubmitEngine
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

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
from tests.utils.spark import spark_jars as jars_of_the_stack

pytestmark = pytest.mark.integration
ORDERS: DatasetContract = ContractRegistry.default().get("orders")
PROCESSING_DATE = dt.date(2025, 7, 1)
INGEST_TIMESTAMP = dt.datetime(2025, 7, 1, 9, 30, 15, 250000)
JOB_SECONDS = 480


@pytest.fixture(scope="module")
def spark_jars() -> str:
    return jars_of_the_stack()


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


def quarantine_keys(s3: Any, up: Upload) -> list[str]:
    """Every quarantine object of the upload, whichever stage wrote it."""
    prefix = f"orders/{PROCESSING_DATE.isoformat()}/{up.upload_id}"
    listing = s3.list_objects_v2(Bucket="quarantine", Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def table_exists(catalog: Catalog, table: str) -> bool:
    try:
        catalog.load_table(table)
    except NoSuchTableError:
        return False
    return True


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
    print(f"spark-submit of {report.valid_rows} raw rows: {time.monotonic() - started:.1f}s")

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

    # raw/'s rows are trusted: the ingest stage's quarantine object is the run's only one, and the job
    # records no data-quality counts of its own.
    assert transform_job(db, up.upload_id) == ("spark", "succeeded", 360, 360, 0, True)
    assert quarantine_keys(s3, up) == [paths.quarantine.key]
    assert read_parquet(s3, paths.quarantine).num_rows == len(sample.rejected) == 40
    assert quality(db, up.upload_id) == {}

    # The same run again (a retry after a crash): nothing is appended.
    again = transform_until_done(spark_engine, run_context(up, spark_table), paths.raw.uri, JOB_SECONDS)
    assert again.snapshot_id == outcome.snapshot_id
    assert again.rows_written == 360
    reloaded = catalog.load_table(spark_table)
    assert len(reloaded.snapshots()) == 1
    assert len(table_rows(catalog, spark_table)) == 360


def test_both_engines_refuse_a_file_that_is_not_raw(
    spark_engine: SparkSubmitEngine, s3: Any, catalog: Catalog, database_url: str, db: psycopg.Connection,
    scratch_tables: list[str],
) -> None:  # fmt: skip
    """The upload itself (text columns, source names, rows nobody validated) passed as the run's raw/ file."""
    sample = orders(400, invalid_every=7)
    up = upload(s3, sample.parquet_bytes(), "orders", "parquet")
    MetadataStore(database_url).upsert_workflow(
        WorkflowRow(run_id=up.upload_id, namespace="spark-it", dataset="orders", upload_id=up.upload_id,
                    source_uri=up.uri, source_format="parquet", phase="Transforming", transform_engine="spark")
    )  # fmt: skip
    arrow_table, spark_table = scratch(scratch_tables, "arrow_upload"), scratch(scratch_tables, "spark_upload")

    with pytest.raises(RunRejectedError) as arrow:
        ArrowTransformEngine(s3, lambda: catalog).transform(run_context(up, arrow_table), up.uri)
    with pytest.raises(RunRejectedError) as spark_error:
        transform_until_done(spark_engine, run_context(up, spark_table), up.uri, JOB_SECONDS)

    assert arrow.value.reason == spark_error.value.reason == "RawSchemaMismatch"
    assert spark_error.value.message == arrow.value.message
    assert "order_id is string, not int64" in arrow.value.message and "order_date is missing" in arrow.value.message
    # Nothing written anywhere: no table, no quarantine, and the job's row says why.
    assert not table_exists(catalog, arrow_table) and not table_exists(catalog, spark_table)
    assert quarantine_keys(s3, up) == []
    assert transform_job(db, up.upload_id)[:2] == ("spark", "failed")


def test_spark_commits_nothing_when_the_ingest_stage_rejected_every_row(
    spark_engine: SparkSubmitEngine, s3: Any, catalog: Catalog, database_url: str, db: psycopg.Connection,
    scratch_tables: list[str],
) -> None:  # fmt: skip
    sample = orders(12, invalid_every=1)
    up = upload(s3, sample.csv_bytes(), "orders", "csv")
    report, paths = ingest(s3, database_url, up)
    assert report.valid_rows == 0 and read_parquet(s3, paths.raw).num_rows == 0
    spark_table = scratch(scratch_tables, "spark_empty")

    outcome = transform_until_done(spark_engine, run_context(up, spark_table), paths.raw.uri, JOB_SECONDS)

    assert outcome == TransformOutcome(spark_table, None, 0)
    assert catalog.load_table(spark_table).snapshots() == []
    assert quarantine_keys(s3, up) == [paths.quarantine.key]
    assert transform_job(db, up.upload_id) == ("spark", "succeeded", 0, 0, 0, True)
