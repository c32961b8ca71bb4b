"""Orders files of the end-to-end benchmark, and the physical reference it is compared with.

The large files are orders-shaped (the `orders` contract's columns, about 35 bytes a row, as the issue's
1.5 M-row file of 52 MB), written by Arrow a million rows at a time, so 15 M rows cost seconds and little memory.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lakehouse.contracts.arrow_schema import arrow_type
from lakehouse.contracts.registry import ContractRegistry

ROWS_PER_BATCH = 1_000_000
DAY_2025 = np.datetime64("2025-01-01")


def orders_csv(path: Path, rows: int) -> Path:
    """An orders CSV of `rows` valid rows (ids 1..rows), written once and reused."""
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with partial.open("wb") as sink:
        sink.write(",".join(_csv_schema().names).encode() + b"\n")  # unquoted, as exports write it
        with pacsv.CSVWriter(sink, _csv_schema(), write_options=options) as writer:
            for start in range(0, rows, ROWS_PER_BATCH):
                writer.write_table(_orders_batch(start, min(ROWS_PER_BATCH, rows - start)))
    partial.rename(path)
    return path


def _csv_schema() -> pa.Schema:
    return pa.schema(
        [("order_id", pa.int64()), ("customer_id", pa.int64()), ("amount", pa.string()), ("date", pa.date32())]
    )


def _orders_batch(start: int, count: int) -> pa.Table:
    ids = np.arange(start + 1, start + count + 1, dtype=np.int64)
    cents = 100 + (ids * 7919) % 900_000  # 1.00 .. 9000.99
    amounts = [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]
    dates = DAY_2025 + (ids % 365).astype("timedelta64[D]")
    return pa.table(
        [pa.array(ids), pa.array(1 + ids % 50_000), pa.array(amounts), pa.array(dates, pa.date32())],
        schema=_csv_schema(),
    )


def pyarrow_reference_seconds(csv_path: Path, parquet_path: Path) -> float:
    """What the hardware does with the file in one process: read the CSV with the contract's types, then write
    zstd Parquet (the issue's reference). Seconds, files on local disk."""
    contract = ContractRegistry.default().get("orders")
    types = {column.name: arrow_type(column) for column in contract.columns}
    started = time.perf_counter()
    table = pacsv.read_csv(str(csv_path), convert_options=pacsv.ConvertOptions(column_types=types))
    pq.write_table(table, str(parquet_path), compression="zstd")
    seconds = time.perf_counter() - started
    parquet_path.unlink()
    return seconds
