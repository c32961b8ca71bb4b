"""How the writer splits bronze rows into partition files without copying them (lakehouse.bronze.writer)."""

import datetime as dt

import pyarrow as pa

from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.bronze.writer import _partition_slices
from lakehouse.contracts.arrow_schema import bronze_iceberg_schema, bronze_partition_spec
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.readers import read_source
from lakehouse.ingest.validation import validate

ORDERS = ContractRegistry.default().get("orders")
SCHEMA = bronze_iceberg_schema(ORDERS)
SPEC = bronze_partition_spec(ORDERS, SCHEMA)
STAMP = RunStamp("up-1", dt.date(2026, 3, 4), dt.datetime(2026, 3, 4, 5, 6, 7))


def bronze_rows(count: int) -> pa.Table:
    return to_bronze(ORDERS, validate(ORDERS, read_source(orders(count, seed=2).csv_bytes(), "csv")).valid, STAMP)


def test_sorted_rows_are_one_slice_per_partition() -> None:
    rows = bronze_rows(500)

    slices = _partition_slices(SPEC, SCHEMA, rows)

    assert slices is not None
    assert sum(length for _, length, _ in slices) == rows.num_rows
    assert [start for start, _, _ in slices] == sorted(start for start, _, _ in slices)
    for start, length, key in slices:
        dates = rows.column("order_date").slice(start, length).to_pylist()
        assert key is not None and len({(d.year, d.month) for d in dates}) == 1  # one month each
    assert len(slices) == len({(d.year, d.month) for d in rows.column("order_date").to_pylist()})


def test_rows_whose_partitions_are_not_together_are_left_to_pyiceberg() -> None:
    rows = bronze_rows(500)
    shuffled = rows.take(list(range(0, rows.num_rows, 2)) + list(range(1, rows.num_rows, 2)))

    assert _partition_slices(SPEC, SCHEMA, shuffled) is None
