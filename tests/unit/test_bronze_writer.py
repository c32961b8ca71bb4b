"""How the writer splits bronze rows into partition files without copying them, and writes them with the
platform's Parquet settings (lakehouse.bronze.writer). Files on local disk: no catalog is involved."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.metadata import new_table_metadata

from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.bronze.writer import _partition_slices, write_data_files
from lakehouse.contracts.arrow_schema import (
    bronze_iceberg_schema,
    bronze_partition_spec,
    bronze_sort_order,
    raw_schema,
)
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.readers import read_source
from lakehouse.ingest.validation import validate
from tests.utils.parquet_pages import dictionary_page_bytes

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


UNIQUE_ROWS = 100_000
WHOLE_DICTIONARY_BYTES = UNIQUE_ROWS * 8  # of their unique order ids


def local_table(tmp_path: Path, properties: dict[str, str]) -> Table:
    """A bronze orders table whose data files go to tmp_path, with the table properties given (none: a table
    created before the platform set its own)."""
    metadata = new_table_metadata(
        SCHEMA, SPEC, bronze_sort_order(ORDERS, SCHEMA), f"file://{tmp_path}", properties=properties
    )
    return Table(("bronze", "orders"), metadata, f"file://{tmp_path}/metadata.json", PyArrowFileIO(), None)  # type: ignore[arg-type]


def one_month_of_unique_orders() -> pa.Table:
    ids = np.random.default_rng(7).integers(1, 2**62, UNIQUE_ROWS)  # random 62-bit ids: zstd hardly shrinks a page
    raw = pa.table(
        [ids, ids % 500 + 1, pa.array([Decimal("9.99")] * UNIQUE_ROWS), pa.repeat(dt.date(2026, 3, 1), UNIQUE_ROWS)],
        schema=raw_schema(ORDERS),
    )
    return to_bronze(ORDERS, raw, STAMP)


def order_id_dictionary_bytes(table: Table) -> int:
    (data_file,) = write_data_files(table, one_month_of_unique_orders())  # one partition: one file
    metadata = pq.ParquetFile(data_file.file_path.removeprefix("file://")).metadata
    return dictionary_page_bytes(metadata.row_group(0).column(metadata.schema.names.index("order_id")))


def test_data_files_of_a_table_created_before_the_platform_settings_give_up_the_dictionary_early(
    tmp_path: Path,
) -> None:
    assert order_id_dictionary_bytes(local_table(tmp_path, {})) < WHOLE_DICTIONARY_BYTES / 4


def test_a_dictionary_size_the_table_sets_wins(tmp_path: Path) -> None:
    table = local_table(tmp_path, {TableProperties.PARQUET_DICT_SIZE_BYTES: str(2 * WHOLE_DICTIONARY_BYTES)})

    assert order_id_dictionary_bytes(table) > WHOLE_DICTIONARY_BYTES / 2  # every id in the dictionary
