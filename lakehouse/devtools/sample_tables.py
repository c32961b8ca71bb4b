"""Bronze tables filled with sample orders through the platform's own bronze writer (tests and benchmarks)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from pyiceberg.catalog import Catalog

from lakehouse.bronze.transform import RunStamp, to_bronze
from lakehouse.bronze.writer import append_exactly_once
from lakehouse.contracts.model import DatasetContract
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_bytes


def bronze_orders(contract: DatasetContract, run: str, count: int, seed: int, first_order_id: int = 1) -> pa.Table:
    """`count` orders (spread over the twelve months of 2025) as a run's bronze rows."""
    csv = orders(count, seed=seed, first_order_id=first_order_id).csv_bytes()
    raw = ingest_bytes(contract, csv, "csv", run, run).raw
    return to_bronze(contract, raw, RunStamp(run, dt.date(2026, 12, 1), dt.datetime(2026, 12, 1, 12, 0)))


def append_runs(catalog: Catalog, contract: DatasetContract, table: str, runs: int, rows: int, start: int = 0) -> None:
    """`runs` appends of `rows` orders each, as that many runs make them: each its own snapshot, with a file per
    partition it has rows in (the many small files a day of small uploads leaves)."""
    for number in range(start, start + runs):
        run = f"run-{number:03d}"
        rows_of_run = bronze_orders(contract, run, rows, seed=number, first_order_id=number * rows + 1)
        append_exactly_once(catalog, contract, rows_of_run, run, run, table)
