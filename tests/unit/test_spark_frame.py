"""The Spark job's raw -> bronze step against the Arrow engine's, on raw/ files as the ingest stage writes them.

Both engines trust raw/'s rows and check only its schema (lakehouse.bronze.transform): for the same raw
file they must give the same bronze rows, and refuse the same wrong files with the same message. Runs a
real local SparkSession (pyspark's own jars; no servers) that reads real Parquet files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from lakehouse.bronze.spark_frame import SESSION_CONF, to_bronze_frame
from lakehouse.bronze.transform import RawSchemaMismatchError, RunStamp, to_bronze
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_bytes
from lakehouse.storage.s3 import parquet_bytes

ORDERS = ContractRegistry.default().get("orders")
STAMP = RunStamp("u-1", dt.date(2025, 7, 1), dt.datetime(2025, 7, 1, 8, 30, 15, 123456))
EVERY_TYPE = DatasetContract.model_validate(
    {
        "name": "every_type",
        "version": 2,
        "source_system": "tests",
        "columns": [
            {"name": "Key Id", "rename": "key_id", "type": "long", "required": True},
            {"name": "label", "type": "string", "required": True},
            {"name": "small", "type": "int"},
            {"name": "ratio", "type": "double"},
            {"name": "flag", "type": "boolean"},
            {"name": "seen_at", "type": "timestamp"},
            {"name": "day", "rename": "event_day", "type": "date"},
            {"name": "price", "type": "decimal(5,2)"},
            {"name": "absent_optional", "type": "string"},
        ],
        "rules": [{"name": "price_positive", "column": "price", "op": "gt", "value": 0}],
        "bronze": {"namespace": "bronze", "table": "every_type", "sort_by": ["key_id"]},
    }
)
# The same columns, with the bronze date column a timestamp: year, month and day of its UTC date.
EVENT_TIME = DatasetContract.model_validate(
    {
        **EVERY_TYPE.model_dump(exclude_defaults=True),
        "name": "event_time",
        "bronze": {"namespace": "bronze", "table": "event_time", "date_column": "seen_at"},
    }
)
EVERY_TYPE_CSV = "\n".join(
    [
        "Key Id,label,small,ratio,flag,seen_at,day,price",
        "1,a,1,0.5,true,2025-03-01T10:00:00,2025-03-01,1.50",
        " 2 , b ,  , .25 ,YES,2025-03-01T10:00:00+02:00,2025-02-28,999.99",
        "3,it's,2147483647,1e-3,1,2025-12-31 23:59:59.123456,2024-02-29,0.01",
        '4,"q""uote",-2147483648,1.,True,2025-06-01,,-0.00',
        "5,x,2147483648,abc,maybe,not a time,2025-02-30,12.345",
        '7,"back\\slash",1,1,no,2024-12-31T22:59:59-02:00,,1',
        ",Z,,,,,,",
    ]
).encode()


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    builder = SparkSession.builder.master("local[1]").appName("test-spark-frame")
    conf = {**SESSION_CONF, "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1"}
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()


def write_file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def raw_file(directory: Path, contract: DatasetContract, source: bytes) -> Path:
    """raw/ as the ingest stage writes it: the validator's valid rows, in the same Parquet bytes."""
    files = ingest_bytes(contract, source, "csv", "u-1", "upload u-1")
    assert files.quarantine is not None and files.raw.num_rows > 0  # the validator did reject rows
    return write_file(directory, "raw.parquet", parquet_bytes(files.raw))


def by_key(rows: list[dict], key: str) -> list[dict]:
    return sorted(rows, key=lambda r: r[key])


@pytest.mark.parametrize("contract", [ORDERS, EVERY_TYPE, EVENT_TIME], ids=lambda c: c.name)
def test_a_raw_file_gives_the_arrow_engines_bronze_rows(
    spark: SparkSession, tmp_path: Path, contract: DatasetContract
) -> None:
    source = orders(300, invalid_every=7).csv_bytes() if contract is ORDERS else EVERY_TYPE_CSV
    path = raw_file(tmp_path, contract, source)
    expected = to_bronze(contract, pq.read_table(path), STAMP)
    if contract is EVENT_TIME:  # 2024-12-31T22:59:59-02:00 is 2025-01-01T00:59:59 UTC: the UTC date counts
        row = expected.filter(pa.compute.equal(expected["key_id"], 7)).to_pylist()[0]
        assert (row["year"], row["month"], row["day"]) == (2025, 1, 1)

    bronze = to_bronze_frame(contract, spark.read.parquet(str(path)), STAMP)

    assert bronze.columns == expected.column_names
    actual = [row.asDict() for row in bronze.collect()]
    key = contract.columns[0].target_name
    assert by_key(actual, key) == by_key(expected.to_pylist(), key)
    assert len(actual) == expected.num_rows


def upload_parquet() -> bytes:
    """The upload itself: text columns under their source names, rows nobody validated."""
    return orders(20, invalid_every=5).parquet_bytes()


def raw_of_an_older_contract() -> bytes:
    """raw/ written before the contract changed a type: its values were never checked as the new type."""
    raw = ingest_bytes(ORDERS, orders(10).csv_bytes(), "csv", "u-1", "upload u-1").raw
    return parquet_bytes(raw.set_column(2, "amount", raw.column("amount").cast(pa.decimal128(12, 2))))


@pytest.mark.parametrize(
    ("make_file", "problems"),
    [
        (upload_parquet, "(order_id is string, not int64; customer_id is string, not int64; "
                         "amount is string, not decimal128(10, 2); order_date is missing)"),
        (raw_of_an_older_contract, "(amount is decimal128(12, 2), not decimal128(10, 2))"),
    ],
    ids=["upload", "older-contract"],
)  # fmt: skip
def test_a_file_that_is_not_raw_is_refused_by_both_engines(
    spark: SparkSession, tmp_path: Path, make_file: Callable[[], bytes], problems: str
) -> None:
    path = write_file(tmp_path, "not-raw.parquet", make_file())

    with pytest.raises(RawSchemaMismatchError) as arrow:
        to_bronze(ORDERS, pq.read_table(path), STAMP)
    with pytest.raises(RawSchemaMismatchError) as spark_error:
        to_bronze_frame(ORDERS, spark.read.parquet(str(path)), STAMP)

    assert str(spark_error.value) == str(arrow.value)
    assert f"the raw file does not have the orders contract's raw schema {problems}" in str(arrow.value)
