"""The Spark checks against the Arrow engine's: same valid rows, same rejected rows and reasons, same counts.

Runs a real local SparkSession (pyspark's own jars; no servers). The Arrow validator is the reference.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as st

from lakehouse.bronze.spark_frame import to_bronze_frame
from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.contracts.arrow_schema import raw_schema
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.contracts.spark_rules import SESSION_CONF, SOURCE_ROW, check_frame
from lakehouse.contracts.spark_schema import spark_schema
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.readers import read_source
from lakehouse.ingest.validation import MissingColumnsError, ValidationResult, validate

CONTRACTS = ContractRegistry.default()
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
        "rules": [
            {"name": "label_known", "column": "label", "op": "in", "value": ["a", "b", "it's", 'q"uote']},
            {"name": "small_not_seven", "column": "small", "op": "ne", "value": 7},
            {"name": "ratio_at_most_one", "column": "ratio", "op": "le", "value": 1.0},
            {"name": "flag_set", "column": "flag", "op": "eq", "value": True},
            {"name": "seen_in_2025", "column": "seen_at", "op": "ge", "value": "2025-01-01T00:00:00"},
            {"name": "price_positive", "column": "price", "op": "gt", "value": 0},
            {"name": "label_lowercase", "column": "label", "op": "matches", "value": "^[a-z'\"]+$"},
        ],
        "bronze": {"namespace": "bronze", "table": "every_type", "sort_by": ["key_id"]},
    }
)
EVERY_TYPE_CSV = "\n".join(
    [
        "Key Id,label,small,ratio,flag,seen_at,day,price",
        "1,a,1,0.5,true,2025-03-01T10:00:00,2025-03-01,1.50",
        " 2 , b ,  , .25 ,YES,2025-03-01T10:00:00+02:00,2025-02-28,999.99",
        "3,it's,2147483647,1e-3,1,2025-12-31 23:59:59.123456,2024-02-29,0.01",
        '4,"q""uote",-2147483648,1.,True,2025-06-01,2025-06-01,-0.00',
        "x,a,2147483648,abc,maybe,not a time,2025-02-30,12.345",
        "6,,7,2.5,false,2024-12-31T23:00:00-02:00,2025-13-01,1000.00",
        '7,"back\\slash",1,1,no,2024-12-31T22:59:59-02:00,,-1',
        ",Z,,,,,,",
        '9,"tab\there",,1e400x,on,2025-01-01T00:00:00Z,20250101,0',
    ]
).encode()


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    builder = SparkSession.builder.master("local[1]").appName("test-spark-rules")
    # Python workers run this interpreter, so UDFs import the project from the same environment.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in {**SESSION_CONF, "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1"}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()


def text_frame(spark: SparkSession, table: pa.Table) -> DataFrame:
    """The source table as Spark sees a text Parquet file: string columns plus the row number."""
    fields = [
        st.StructField(name, st.LongType() if name == SOURCE_ROW else st.StringType()) for name in table.column_names
    ]
    return spark.createDataFrame([tuple(row.values()) for row in table.to_pylist()], st.StructType(fields))


def spark_result(spark: SparkSession, contract: DatasetContract, frame: DataFrame) -> dict[str, Any]:
    checked = check_frame(frame, contract)
    return {
        "valid": [row.asDict() for row in checked.valid_rows().collect()],
        "rejected": [row.asDict() for row in checked.rejected_rows("u-1").collect()],
        "checks": checked.check_results(),
    }


def arrow_rejected(result: ValidationResult) -> list[dict[str, Any]]:
    return [row | {"_upload_id": "u-1"} for row in result.rejected.to_pylist()]


@pytest.mark.parametrize("contract_name", ["orders", "every_type"])
def test_text_input_gives_the_arrow_engines_rows_reasons_and_counts(spark: SparkSession, contract_name: str) -> None:
    if contract_name == "orders":
        contract, data = CONTRACTS.get("orders"), orders(300, invalid_every=7).csv_bytes()
    else:
        contract, data = EVERY_TYPE, EVERY_TYPE_CSV
    source = read_source(data, "csv")
    expected = validate(contract, source)

    actual = spark_result(spark, contract, text_frame(spark, source.table))

    assert actual["valid"] == expected.valid.to_pylist()
    assert actual["rejected"] == arrow_rejected(expected)
    assert actual["checks"] == expected.checks
    assert expected.rejected.num_rows > 0 and expected.valid.num_rows > 0


def test_typed_raw_input_passes_unchanged(spark: SparkSession) -> None:
    """raw/ as the built-in engine writes it: renamed, typed columns, all valid."""
    contract = EVERY_TYPE
    valid = validate(contract, read_source(EVERY_TYPE_CSV, "csv")).valid
    frame = spark.createDataFrame(
        [(*row.values(), i + 1) for i, row in enumerate(valid.to_pylist())],
        st.StructType([*spark_schema(raw_schema(contract)).fields, st.StructField(SOURCE_ROW, st.LongType())]),
    )

    actual = spark_result(spark, contract, frame)

    assert actual["valid"] == valid.to_pylist()
    assert actual["rejected"] == []
    assert actual["checks"][0].passed == valid.num_rows and actual["checks"][0].failed == 0


def test_typed_raw_input_still_gets_the_rules(spark: SparkSession) -> None:
    """A raw file from a laxer ingest engine: typed, but rows break rules or miss required values."""
    contract = CONTRACTS.get("orders")
    schema = spark_schema(raw_schema(contract))
    schema = st.StructType([st.StructField(f.name, f.dataType, True) for f in schema.fields])
    rows = [(1, 2, dt.date(2025, 1, 2)), (2, None, dt.date(2024, 5, 1))]
    frame = spark.createDataFrame(
        [(order_id, customer, Decimal("-1.00"), day, i + 1)
         for i, (order_id, customer, day) in enumerate(rows)],
        st.StructType([*schema.fields, st.StructField(SOURCE_ROW, st.LongType())]),
    )  # fmt: skip

    rejected = spark_result(spark, contract, frame)["rejected"]

    assert [r["_reject_reason"] for r in rejected] == [
        "amount_positive: amount > 0 failed (value -1.00)",
        "customer_id: required value is missing; amount_positive: amount > 0 failed (value -1.00); "
        "order_date_not_before_2025: order_date >= 2025-01-01 failed (value 2024-05-01)",
    ]
    assert rejected[1]["order_date"] == "2024-05-01"


def test_missing_required_column_rejects_the_file(spark: SparkSession) -> None:
    frame = text_frame(spark, read_source(b"order_id,amount\n1,2.00\n", "csv").table)
    with pytest.raises(MissingColumnsError, match="lacks required column"):
        check_frame(frame, CONTRACTS.get("orders"))


@pytest.mark.parametrize("contract_name", ["orders", "every_type"])
def test_bronze_frame_equals_the_arrow_bronze_rows(spark: SparkSession, contract_name: str) -> None:
    contract = CONTRACTS.get("orders") if contract_name == "orders" else EVERY_TYPE
    data = orders(50, invalid_every=5).csv_bytes() if contract_name == "orders" else EVERY_TYPE_CSV
    valid = validate(contract, read_source(data, "csv")).valid
    stamp = RunStamp("u-1", dt.date(2025, 7, 1), dt.datetime(2025, 7, 1, 8, 30, 15, 123456))
    expected = to_bronze(contract, valid, stamp)
    raw = spark.createDataFrame([tuple(r.values()) for r in valid.to_pylist()], spark_schema(raw_schema(contract)))

    bronze = to_bronze_frame(contract, raw, stamp)

    assert bronze.columns == expected.column_names
    assert [f.dataType for f in bronze.schema.fields] == [f.dataType for f in spark_schema(expected.schema).fields]
    key = contract.columns[0].target_name
    assert sorted((r.asDict() for r in bronze.collect()), key=lambda r: r[key]) == sorted(
        expected.to_pylist(), key=lambda r: r[key]
    )
