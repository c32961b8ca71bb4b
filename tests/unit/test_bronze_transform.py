import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.bronze.transform import RawSchemaMismatchError, RunStamp, to_bronze, to_bronze_chunks
from lakehouse.contracts.arrow_schema import bronze_arrow_schema, bronze_iceberg_schema, raw_schema
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.readers import read_source
from lakehouse.ingest.validation import validate

ORDERS = ContractRegistry.default().get("orders")
STAMP = RunStamp("up-1", dt.date(2026, 3, 4), dt.datetime(2026, 3, 4, 5, 6, 7))


def test_bronze_rows_carry_lineage_and_date_parts() -> None:
    raw = validate(ORDERS, read_source(orders(20).csv_bytes(), "csv")).valid
    bronze = to_bronze(ORDERS, raw, STAMP)

    assert bronze.schema == bronze_arrow_schema(ORDERS)
    assert bronze.num_rows == 20
    for row in bronze.to_pylist():
        assert (row["year"], row["month"], row["day"]) == (
            row["order_date"].year,
            row["order_date"].month,
            row["order_date"].day,
        )
        assert row["upload_id"] == "up-1" and row["processing_date"] == dt.date(2026, 3, 4)
        assert row["data_version"] == "orders-v1" and row["ingest_timestamp"] == STAMP.ingest_timestamp
    keys = [(r["order_date"], r["order_id"]) for r in bronze.to_pylist()]
    assert keys == sorted(keys)  # the contract's sort order


def test_bronze_schema_matches_the_design() -> None:
    schema = bronze_iceberg_schema(ORDERS)
    assert [(f.name, str(f.field_type)) for f in schema.fields] == [
        ("order_id", "long"),
        ("customer_id", "long"),
        ("amount", "decimal(10, 2)"),
        ("order_date", "date"),
        ("processing_date", "date"),
        ("ingest_timestamp", "timestamp"),
        ("data_version", "string"),
        ("source_system", "string"),
        ("year", "int"),
        ("month", "int"),
        ("day", "int"),
        ("updated_at", "timestamp"),
        ("upload_id", "string"),
    ]


def test_a_raw_file_streams_in_sorted_chunks_of_the_same_rows(tmp_path: Path) -> None:
    raw = validate(ORDERS, read_source(orders(1000, seed=3).csv_bytes(), "csv")).valid
    pq.write_table(raw, tmp_path / "raw.parquet", row_group_size=150)  # several row groups, as the ingest writes
    raw_file = pq.ParquetFile(tmp_path / "raw.parquet")
    assert raw_file.num_row_groups > 1

    chunks = list(to_bronze_chunks(ORDERS, raw_file, STAMP, chunk_rows=400))

    assert len(chunks) == 3 and all(chunk.num_rows >= 400 for chunk in chunks[:-1])  # memory: about a chunk's
    for chunk in chunks:
        assert chunk.schema == bronze_arrow_schema(ORDERS)
        keys = list(zip(chunk["order_date"].to_pylist(), chunk["order_id"].to_pylist(), strict=True))
        assert keys == sorted(keys)  # each chunk in the contract's sort order
    streamed = pa.concat_tables(chunks).sort_by([("order_id", "ascending")])
    assert streamed.equals(to_bronze(ORDERS, raw, STAMP).sort_by([("order_id", "ascending")]))


def test_a_streamed_raw_file_without_a_contract_column_is_refused_before_any_row(tmp_path: Path) -> None:
    raw = validate(ORDERS, read_source(orders(3).csv_bytes(), "csv")).valid.drop_columns(["customer_id"])
    pq.write_table(raw, tmp_path / "raw.parquet")
    with pytest.raises(RawSchemaMismatchError, match=r"customer_id is missing"):
        next(to_bronze_chunks(ORDERS, pq.ParquetFile(tmp_path / "raw.parquet"), STAMP))


def test_empty_raw_gives_empty_bronze() -> None:
    raw = validate(ORDERS, read_source(b"order_id,customer_id,amount,date\n", "csv")).valid
    assert to_bronze(ORDERS, raw, STAMP).num_rows == 0


def test_raw_rows_are_trusted_and_only_the_schema_is_checked() -> None:
    """A row raw/ should never hold (its amount breaks a rule) is written as it is: raw/ is the validator's."""
    raw = validate(ORDERS, read_source(orders(3).csv_bytes(), "csv")).valid
    raw = raw.set_column(2, "amount", pa.array([Decimal("-1.00")] * 3, pa.decimal128(10, 2)))
    # Parquet read back by other tools may mark columns nullable and add columns: both are accepted.
    relaxed = pa.schema([f.with_nullable(True) for f in raw.schema])
    raw = raw.cast(relaxed).append_column("_source_row", pa.array([1, 2, 3], pa.int64()))

    bronze = to_bronze(ORDERS, raw, STAMP)

    assert bronze.column("amount").to_pylist() == [Decimal("-1.00")] * 3


def test_a_raw_file_without_a_contract_column_is_refused() -> None:
    raw = validate(ORDERS, read_source(orders(3).csv_bytes(), "csv")).valid.drop_columns(["customer_id"])
    with pytest.raises(RawSchemaMismatchError, match=r"raw schema \(customer_id is missing\)"):
        to_bronze(ORDERS, raw, STAMP)


def test_the_spark_jobs_lines_carry_the_run() -> None:
    """The driver logs JSON with the run, its upload and phase, as the operator does, so one query over both
    finds a run's lines. (The job's work is replaced: only its logging set-up is under test.)"""
    import json
    import subprocess
    import sys

    script = (
        "import sys; from lakehouse.jobs import bronze_transform as job\n"
        "job._transform = lambda args: job.log.info('transforming %s', args.raw_uri) or 0\n"
        "sys.exit(job.main(sys.argv[1:]))\n"
    )
    args = ["--run-id", "orders-run-1", "--upload-id", "up-1", "--dataset", "orders",
            "--raw-uri", "s3://raw/x.parquet", "--processing-date", "2026-12-01",
            "--ingest-timestamp", "2026-12-01T10:00:00", "--target-table", "b.o"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, *args], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert line["message"] == "transforming s3://raw/x.parquet"
    assert (line["run"], line["uploadId"], line["phase"], line["logger"]) == (
        "orders-run-1",
        "up-1",
        "Transforming",
        "bronze_transform",
    )


def test_a_sort_key_that_is_an_audit_column_sorts_the_bronze_rows() -> None:
    """Raw rows are sorted before the audit columns exist; a key among them (here `day`) sorts the bronze rows."""
    contract = ORDERS.model_copy(update={"bronze": ORDERS.bronze.model_copy(update={"sort_by": ["day", "order_id"]})})
    raw = validate(ORDERS, read_source(orders(200, seed=5).csv_bytes(), "csv")).valid
    bronze = to_bronze(contract, raw, STAMP)

    keys = [(r["day"], r["order_id"]) for r in bronze.to_pylist()]
    assert keys == sorted(keys) and bronze.num_rows == raw.num_rows


def test_nulls_sort_first_as_the_table_sort_order_declares() -> None:
    """Data files carry the table's sort order id, whose fields are ASC NULLS FIRST: the rows must be so too."""
    columns = [c.model_copy(update={"required": False}) if c.name == "customer_id" else c for c in ORDERS.columns]
    contract = ORDERS.model_copy(
        update={"columns": columns, "bronze": ORDERS.bronze.model_copy(update={"sort_by": ["customer_id"]})}
    )
    raw = validate(ORDERS, read_source(orders(50, seed=6).csv_bytes(), "csv")).valid
    raw = raw.set_column(
        1,
        "customer_id",
        pa.array([None if i % 7 == 0 else v for i, v in enumerate(raw.column("customer_id").to_pylist())], pa.int64()),
    )
    customer_ids = to_bronze(contract, raw.cast(raw_schema(contract)), STAMP).column("customer_id").to_pylist()

    nulls = customer_ids.count(None)
    assert nulls > 0 and customer_ids[:nulls] == [None] * nulls
    assert customer_ids[nulls:] == sorted(customer_ids[nulls:])
