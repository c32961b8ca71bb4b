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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from kubernetes import client

from lakehouse.devtools.large_orders import OrdersCsv, put_chunks
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


@dataclass
class Measured:
    run: dict[str, Any]
    seconds: float  # from the run's creation to its end
    peak_rss: int  # the operator's, since it started
    rss_at_start: int

    def failed(self) -> dict[str, Any]:
        return next(c for c in self.run["status"]["conditions"] if c["type"] == "Failed")

    def line(self) -> str:
        peak, at_start = self.peak_rss / 2**20, self.rss_at_start / 2**20
        return f"in {self.seconds:.1f}s; operator peak RSS {peak:.0f} MiB (at start {at_start:.0f} MiB)"


@dataclass
class LargeRuns:
    """Large CSV uploads put into S3 and run by an operator of the test's own, so its peak RSS is the test's."""

    namespace: str
    custom_objects: client.CustomObjectsApi
    s3: Any
    operator: OperatorProcess
    made: list[S3Location] = field(default_factory=list)  # deleted after the test

    def put(self, orders: OrdersCsv, size: int) -> tuple[Upload, int]:
        """The CSV in S3 as the upload API leaves it; returns its upload and its number of blocks."""
        upload_id = new_upload_id("large")
        location = upload_location("uploads", "orders", upload_id, "orders.csv", dt.date.today())
        self.made.append(location)
        blocks = orders.blocks_for(size)
        put = put_chunks(self.s3, location, orders.blocks(blocks))
        return Upload(upload_id, location.uri, put.size, put.sha256, "csv"), blocks

    def run(self, up: Upload, timeout: float) -> Measured:
        rss_at_start, started = self.operator.peak_rss_bytes(), time.monotonic()
        create_run(self.custom_objects, self.namespace, run_body(up, "orders", engines=NO_TRANSFORM))
        run = wait_for_phase(
            self.custom_objects, self.namespace, up.upload_id, {"Succeeded", "Failed"}, timeout=timeout, poll=0.2
        )
        return Measured(run, time.monotonic() - started, self.operator.peak_rss_bytes(), rss_at_start)


@pytest.fixture
def large_runs(
    run_namespace: str, custom_objects: client.CustomObjectsApi, s3: Any, tmp_path: Path
) -> Iterator[LargeRuns]:
    operator = OperatorProcess(run_namespace, tmp_path / "operator.log", {"LAKEHOUSE_SPARK_ENABLED": "false"})
    runs = LargeRuns(run_namespace, custom_objects, s3, operator.start())
    try:
        yield runs
    finally:
        operator.stop()
        for location in runs.made:
            s3.delete_object(Bucket=location.bucket, Key=location.key)


def test_a_2_gib_upload_goes_through_ingest_in_bounded_memory(large_runs: LargeRuns) -> None:
    orders = OrdersCsv()
    up, blocks = large_runs.put(orders, 2 * GiB)

    measured = large_runs.run(up, timeout=1200)

    status = measured.run["status"]
    large_runs.made += [S3Location.parse(status["rawPath"]), S3Location.parse(status["quarantinePath"])]
    assert measured.failed()["reason"] == "EngineUnavailable", status  # after ingest, at the transform
    expected = (blocks * orders.rows_per_block, orders.valid_rows(blocks), orders.invalid_rows(blocks))
    assert (status["counts"]["input"], status["counts"]["valid"], status["counts"]["rejected"]) == expected
    raw = pq.ParquetFile(ObjectSource(large_runs.s3, S3Location.parse(status["rawPath"])).open_random())
    assert raw.metadata.num_rows == orders.valid_rows(blocks)
    assert measured.peak_rss < PEAK_RSS_BOUND, measured.line()
    print(f"{up.size / GiB:.2f} GiB, {expected[0]:,} rows through ingest {measured.line()}")


def test_a_1_gib_upload_whose_header_does_not_match_fails_at_once_in_little_memory(large_runs: LargeRuns) -> None:
    up, _ = large_runs.put(OrdersCsv(header=b"id,customer,total,day,note\n"), GiB)

    measured = large_runs.run(up, timeout=120)

    assert measured.failed()["reason"] == "MissingColumns", measured.run["status"]
    assert "lacks required column(s) order_id, customer_id, amount, date" in measured.failed()["message"]
    assert measured.peak_rss < PEAK_RSS_BOUND, measured.line()
    print(f"{up.size / GiB:.2f} GiB with a wrong header: Failed {measured.line()}")
