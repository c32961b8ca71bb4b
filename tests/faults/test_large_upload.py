"""Uploads of gigabytes through the operator's built-in ingest, in bounded memory.

- A 2 GiB orders CSV goes through ingest: raw/ and quarantine/ hold every row, and the operator's peak RSS
  (VmHWM, since the process started) stays far below the file's size. The whole file was read into memory
  before (3.2 GB resident for a 1 GiB file).
- A 1 GiB CSV whose header does not match its dataset fails with MissingColumns from its first bytes, the
  rest never read (before: about 40 s and 3.2 GB resident).

The transform is not what these runs measure: they ask for the Spark transform of an operator without
Spark, so each stops right after RawReady (Failed, EngineUnavailable) instead of writing 9 M bronze rows.
The bounds asserted are generous functional guarantees; the real figures are printed, and measured by
bench/large_upload.py (bench/results/large_upload.json). Makes 3 GiB of S3 objects, deleted afterwards.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from kubernetes import client

from lakehouse.devtools.large_orders import OrdersCsv, PutObject, put_chunks
from lakehouse.storage.layout import upload_location
from lakehouse.storage.s3 import S3Location
from lakehouse.storage.streams import ObjectSource
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import Upload, create_run, new_upload_id, run_body, wait_for_phase

pytestmark = pytest.mark.integration
GiB = 2**30
# Generous: the operator's own baseline is about 200 MiB; reading a file whole needed more than its size.
PEAK_RSS_BOUND = GiB // 2
NO_TRANSFORM = {"transform": "spark"}  # this operator has no Spark: the run ends after RawReady


@pytest.fixture
def operator(run_namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """An operator of the test's own, so its peak RSS is this test's."""
    process = OperatorProcess(run_namespace, tmp_path / "operator.log", {"LAKEHOUSE_SPARK_ENABLED": "false"}).start()
    yield process
    process.stop()


@pytest.fixture
def cleanup(s3: Any) -> Iterator[list[S3Location]]:
    locations: list[S3Location] = []
    yield locations
    for location in locations:
        s3.delete_object(Bucket=location.bucket, Key=location.key)


def put_large_csv(s3: Any, orders: OrdersCsv, size: int, cleanup: list[S3Location]) -> tuple[Upload, int]:
    """The CSV in S3 as the upload API leaves it; returns its upload and its number of blocks."""
    upload_id = new_upload_id("large")
    location = upload_location("uploads", "orders", upload_id, "orders.csv", dt.date.today())
    cleanup.append(location)
    blocks = orders.blocks_for(size)
    put: PutObject = put_chunks(s3, location, orders.blocks(blocks))
    return Upload(upload_id, location.uri, put.size, put.sha256, "csv"), blocks


def failed_condition(run: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in run["status"]["conditions"] if c["type"] == "Failed")


def test_a_2_gib_upload_goes_through_ingest_in_bounded_memory(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    operator: OperatorProcess,
    cleanup: list[S3Location],
) -> None:
    orders = OrdersCsv()
    up, blocks = put_large_csv(s3, orders, 2 * GiB, cleanup)
    baseline = operator.peak_rss_bytes()
    started = time.monotonic()

    create_run(custom_objects, run_namespace, run_body(up, "orders", engines=NO_TRANSFORM))
    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=1200, poll=1)

    seconds, peak = time.monotonic() - started, operator.peak_rss_bytes()
    status = run["status"]
    cleanup += [S3Location.parse(status["rawPath"]), S3Location.parse(status["quarantinePath"])]
    assert failed_condition(run)["reason"] == "EngineUnavailable", status  # after ingest, at the transform
    expected = (blocks * orders.rows_per_block, orders.valid_rows(blocks), orders.invalid_rows(blocks))
    assert (status["counts"]["input"], status["counts"]["valid"], status["counts"]["rejected"]) == expected
    raw = pq.ParquetFile(ObjectSource(s3, S3Location.parse(status["rawPath"])).open_random())
    assert raw.metadata.num_rows == orders.valid_rows(blocks)
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB for a {up.size / GiB:.2f} GiB upload"
    print(
        f"{up.size / GiB:.2f} GiB, {expected[0]:,} rows through ingest in {seconds:.0f}s; operator peak RSS "
        f"{peak / 2**20:.0f} MiB (at start {baseline / 2**20:.0f} MiB)"
    )


def test_a_1_gib_upload_whose_header_does_not_match_fails_at_once_in_little_memory(
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    s3: Any,
    operator: OperatorProcess,
    cleanup: list[S3Location],
) -> None:
    orders = OrdersCsv(header=b"id,customer,total,day,note\n")
    up, _ = put_large_csv(s3, orders, GiB, cleanup)
    baseline = operator.peak_rss_bytes()
    started = time.monotonic()

    create_run(custom_objects, run_namespace, run_body(up, "orders", engines=NO_TRANSFORM))
    run = wait_for_phase(custom_objects, run_namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=120, poll=0.2)

    seconds, peak = time.monotonic() - started, operator.peak_rss_bytes()
    failed = failed_condition(run)
    assert failed["reason"] == "MissingColumns", run["status"]
    assert "lacks required column(s) order_id, customer_id, amount, date" in failed["message"]
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
    print(
        f"{up.size / GiB:.2f} GiB with a wrong header: Failed in {seconds:.1f}s; operator peak RSS "
        f"{peak / 2**20:.0f} MiB (at start {baseline / 2**20:.0f} MiB)"
    )
