"""The Arrow engine's large-file path against the real stack: a raw file of several row groups, streamed in chunks
of fewer rows than it holds, lands in one snapshot exactly once, in data files that each hold their rows in the
table's sort order and say so; a retry finds the run's snapshot before it writes a single data file."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from lakehouse_operator.engines.arrow import ArrowTransformEngine
from lakehouse_operator.engines.base import RunContext
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from lakehouse.bronze.transform import RunStamp
from lakehouse.bronze.writer import (
    RUN_ID_PROPERTY,
    RUN_RECORDS_PROPERTY,
    RunRows,
    StalePartitionSpecError,
    append_group_exactly_once,
)
from lakehouse.contracts.model import PartitionField
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_bytes
from lakehouse.storage.s3 import S3Location

pytestmark = pytest.mark.integration
ORDERS = ContractRegistry.default().get("orders")
ROWS, ROW_GROUP_ROWS, CHUNK_ROWS = 3000, 500, 1200


@pytest.fixture
def table_name(catalog: Catalog) -> Iterator[str]:
    name = f"bronze_it.stream_{uuid.uuid4().hex[:8]}"
    yield name
    with contextlib.suppress(NoSuchTableError):
        catalog.purge_table(name)


def run_context(run: str, target_table: str) -> RunContext:
    return RunContext(
        name=run, namespace="stream-it", upload_id=f"{run}-upload", dataset="orders", contract=ORDERS,
        source_uri="s3://uploads/unused", source_format="csv", source_sha256=None,
        processing_date=dt.date(2026, 12, 2), ingest_timestamp=dt.datetime(2026, 12, 2, 0, 30),
        target_table=target_table,
        owner={"apiVersion": "lakehouse.dev/v1alpha1", "kind": "IngestionRun", "name": run, "uid": str(uuid.uuid4())},
    )  # fmt: skip


def put_raw(s3: Any, run: str) -> tuple[str, set[int]]:
    """The run's raw/ file in row groups of ROW_GROUP_ROWS, as the built-in ingest writes it a batch at a time."""
    raw = ingest_bytes(ORDERS, orders(ROWS, seed=5, first_order_id=1).csv_bytes(), "csv", run, "s3://uploads/x").raw
    buffer = io.BytesIO()
    pq.write_table(raw, buffer, row_group_size=ROW_GROUP_ROWS, compression="zstd")
    location = S3Location("raw", f"orders/stream-it/{run}.parquet")
    s3.put_object(Bucket=location.bucket, Key=location.key, Body=buffer.getvalue())
    return location.uri, set(raw.column("order_id").to_pylist())


def data_file_keys(s3: Any, catalog: Catalog, table_name: str) -> set[str]:
    location = S3Location.parse(catalog.load_table(table_name).location() + "/data/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_a_raw_file_of_many_row_groups_streams_into_one_snapshot_of_sorted_files(
    s3: Any, catalog: Catalog, table_name: str
) -> None:
    run = f"stream-{uuid.uuid4().hex[:8]}"
    raw_uri, order_ids = put_raw(s3, run)
    engine = ArrowTransformEngine(s3, lambda: catalog, chunk_rows=CHUNK_ROWS)

    outcome = engine.transform(run_context(run, table_name), raw_uri)

    table = catalog.load_table(table_name)
    assert outcome.rows_written == len(order_ids) and len(table.snapshots()) == 1
    summary = table.current_snapshot().summary.additional_properties  # type: ignore[union-attr]
    assert (summary[RUN_ID_PROPERTY], summary[RUN_RECORDS_PROPERTY]) == (run, str(len(order_ids)))
    bronze = table.scan().to_arrow()
    assert sorted(bronze.column("order_id").to_pylist()) == sorted(order_ids)  # every row once
    assert set(bronze.column("upload_id").to_pylist()) == {f"{run}-upload"}

    tasks = list(table.scan().plan_files())
    months = {task.file.partition[0] for task in tasks}
    assert len(tasks) > len(months)  # a partition's rows in more than one chunk: one file per chunk and partition
    for task in tasks:
        assert task.file.sort_order_id == table.sort_order().order_id != 0
        with table.io.new_input(task.file.file_path).open() as stream:
            rows = pq.read_table(stream, columns=["order_date", "order_id"])
        keys = list(zip(rows["order_date"].to_pylist(), rows["order_id"].to_pylist(), strict=True))
        assert keys == sorted(keys)  # each file in the table's sort order

    # A retry (the operator died before it recorded the outcome): the run's snapshot is found, nothing written.
    files_before = data_file_keys(s3, catalog, table_name)
    again = engine.transform(run_context(run, table_name), raw_uri)
    assert (again.snapshot_id, again.rows_written) == (outcome.snapshot_id, len(order_ids))
    assert len(catalog.load_table(table_name).snapshots()) == 1
    assert data_file_keys(s3, catalog, table_name) == files_before


def test_files_written_under_a_partition_spec_changed_since_are_not_committed(
    s3: Any, catalog: Catalog, table_name: str
) -> None:
    """A Dataset's new partitioning lands while a large run writes its files: they are refused at the commit (their
    partition values belong to the old fields), and the run's retry writes them again under the new spec."""
    run = f"stream-{uuid.uuid4().hex[:8]}"
    raw_uri, order_ids = put_raw(s3, run)
    engine = ArrowTransformEngine(s3, lambda: catalog, chunk_rows=CHUNK_ROWS)
    context = run_context(run, table_name)
    written = engine._write_chunks(context, pq.ParquetFile(io.BytesIO(s3_bytes(s3, raw_uri))), stamp_of(context))
    by_day = PartitionField(column="day", transform="identity")
    changed = ORDERS.model_copy(
        update={"bronze": ORDERS.bronze.model_copy(update={"partitioning": [*ORDERS.bronze.partitioning, by_day]})}
    )

    with pytest.raises(StalePartitionSpecError, match="partition spec"):  # the commit evolves the table first
        append_group_exactly_once(catalog, changed, [RunRows(run, context.upload_id, written)], table_name)
    assert catalog.load_table(table_name).snapshots() == []

    outcome = engine.transform(dataclasses.replace(context, contract=changed), raw_uri)  # the stage's retry
    table = catalog.load_table(table_name)
    assert outcome.rows_written == len(order_ids)
    assert {task.file.spec_id for task in table.scan().plan_files()} == {table.metadata.default_spec_id}
    assert sorted(table.scan().to_arrow().column("order_id").to_pylist()) == sorted(order_ids)


def s3_bytes(s3: Any, uri: str) -> bytes:
    location = S3Location.parse(uri)
    return s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()


def stamp_of(context: RunContext) -> RunStamp:
    return RunStamp(context.upload_id, context.processing_date, context.ingest_timestamp)
