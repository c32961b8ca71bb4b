"""The built-in engine's ingest against the real S3: an upload larger than a part streams to raw/ and
quarantine/ in multipart uploads, a file that fails part-way leaves no object and no part behind, and the
parts a killed attempt left are aborted by the retry. (A 2 GiB upload through the operator, with its
memory measured: tests/faults/test_large_upload.py.)"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.large_orders import OrdersCsv, PutObject, put_chunks
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest.builtin import ingest_upload
from lakehouse.ingest.errors import InvalidEncodingError
from lakehouse.storage.layout import IngestPaths
from lakehouse.storage.s3 import S3Location, head_object
from lakehouse.storage.streams import PART_BYTES, MultipartObjectWriter, ObjectSource
from tests.utils.parquet_pages import dictionary_page_bytes
from tests.utils.runs import new_upload_id

pytestmark = pytest.mark.integration
ORDERS = ContractRegistry.default().get("orders")


def unfinished_uploads(s3: Any, location: S3Location) -> list[str]:
    uploads = s3.list_multipart_uploads(Bucket=location.bucket, Prefix=location.key).get("Uploads", [])
    return [u["UploadId"] for u in uploads if u["Key"] == location.key]


@pytest.fixture
def paths(s3: Any) -> Iterator[IngestPaths]:
    upload_id = new_upload_id("stream")
    paths = IngestPaths.for_run("orders", dt.date.today(), upload_id, "raw", "quarantine")
    yield paths
    for location in (paths.raw, paths.quarantine):
        s3.delete_object(Bucket=location.bucket, Key=location.key)


def order_id_dictionary_bytes(file: pq.ParquetFile) -> int:
    return dictionary_page_bytes(file.metadata.row_group(0).column(file.schema_arrow.get_field_index("order_id")))


def rewritten_with_pyarrow_defaults(file: pq.ParquetFile) -> pq.ParquetFile:
    buffer = io.BytesIO()
    pq.write_table(file.read_row_group(0), buffer, compression="zstd")
    return pq.ParquetFile(buffer)


def put(s3: Any, chunks: Iterator[bytes], upload_id: str) -> PutObject:
    return put_chunks(s3, S3Location("uploads", f"orders/{dt.date.today().isoformat()}/{upload_id}/data.csv"), chunks)


def test_an_upload_larger_than_parts_streams_to_raw_and_quarantine(s3: Any, paths: IngestPaths) -> None:
    large = OrdersCsv(rows_per_block=100_000, invalid_every=1000)
    blocks = 4  # about 60 MiB of CSV: several batches and several parts of raw/
    put_object = put(s3, large.blocks(blocks), new_upload_id("stream"))
    source = put_object.location
    try:
        report = ingest_upload(s3, ORDERS, source, "csv", "u-stream", paths, put_object.sha256)

        assert (report.valid_rows, report.rejected_rows) == (large.valid_rows(blocks), large.invalid_rows(blocks))
        raw = pq.ParquetFile(ObjectSource(s3, paths.raw).open_random())
        quarantine = pq.ParquetFile(ObjectSource(s3, paths.quarantine).open_random())
        assert (raw.metadata.num_rows, quarantine.metadata.num_rows) == (report.valid_rows, report.rejected_rows)
        assert raw.metadata.num_row_groups > 1  # written batch by batch
        # Unique ids: plain soon after the first, against a dictionary of them all with pyarrow's defaults.
        assert order_id_dictionary_bytes(raw) < order_id_dictionary_bytes(rewritten_with_pyarrow_defaults(raw)) / 2
        first = raw.read_row_group(0, columns=["order_id"]).column("order_id")[0].as_py()
        assert first == large.order_id(0, 0)
        reasons = set(quarantine.read(columns=["_reject_reason"]).column(0).to_pylist())
        assert reasons == {"amount_positive: amount > 0 failed (value -1.00)"}
        assert head_object(s3, paths.raw)["Metadata"]["upload-id"] == "u-stream"  # type: ignore[index]
        assert unfinished_uploads(s3, paths.raw) == unfinished_uploads(s3, paths.quarantine) == []
    finally:
        s3.delete_object(Bucket=source.bucket, Key=source.key)


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_parquet_row_groups_and_json_lines_stream_from_s3(s3: Any, paths: IngestPaths, fmt: str) -> None:
    """Parquet is read by ranged GETs (its footer, then a row group at a time); JSON lines front to back."""
    sample = orders(30_000, invalid_every=100)
    if fmt == "parquet":
        buffer = io.BytesIO()
        pq.write_table(pq.read_table(io.BytesIO(sample.parquet_bytes())), buffer, row_group_size=4_000)
        data = buffer.getvalue()
    else:
        data = sample.json_lines_bytes()
    source = put(s3, iter([data]), new_upload_id("stream"))
    try:
        report = ingest_upload(s3, ORDERS, source.location, fmt, "u-stream", paths, source.sha256)  # type: ignore[arg-type]

        assert (report.valid_rows, report.rejected_rows) == (len(sample.valid), len(sample.rejected))
        raw = pq.read_table(ObjectSource(s3, paths.raw).open_random())
        assert sorted(raw.column("order_id").to_pylist()) == sorted(sample.valid)
        quarantine = pq.read_table(ObjectSource(s3, paths.quarantine).open_random())
        assert sorted(quarantine.column("_source_row").to_pylist()) == sorted(sample.rejected)
    finally:
        s3.delete_object(Bucket=source.location.bucket, Key=source.location.key)


class PartsSeen:
    """The S3 client, counting the parts uploaded through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.parts = 0

    def upload_part(self, **kwargs: Any) -> Any:
        self.parts += 1
        return self._client.upload_part(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_file_that_fails_part_way_leaves_no_object_and_no_part(
    s3: Any, paths: IngestPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small parts (S3 checks the 5 MiB minimum only when an upload completes), so raw/ has uploaded parts
    # when the bad line comes: they must be aborted, not left.
    large = OrdersCsv(rows_per_block=100_000, invalid_every=1000)
    line = 1 + 3 * 100_000 + 1
    chunks = [*large.blocks(3), b"1,2,\xe9,2025-01-01,latin-1\n"]  # past the first parts of raw/
    source = put(s3, iter(chunks), new_upload_id("stream")).location
    monkeypatch.setattr("lakehouse.storage.streams.PART_BYTES", 256 * 1024)  # for the ingest's writers only
    client = PartsSeen(s3)
    try:
        with pytest.raises(InvalidEncodingError, match=f"byte 0xe9 on line {line}"):
            ingest_upload(client, ORDERS, source, "csv", "u-stream", paths)

        assert client.parts >= 2, "the failure came before any part was uploaded: the test proves nothing"
        assert head_object(s3, paths.raw) is None and head_object(s3, paths.quarantine) is None
        assert unfinished_uploads(s3, paths.raw) == unfinished_uploads(s3, paths.quarantine) == []
    finally:
        s3.delete_object(Bucket=source.bucket, Key=source.key)


def test_the_parts_a_killed_attempt_left_are_aborted_by_the_retry(s3: Any, paths: IngestPaths) -> None:
    killed = MultipartObjectWriter(s3, paths.raw, "application/vnd.apache.parquet", {})
    killed.write(b"\0" * PART_BYTES)  # one part up, then the process died: nothing commits or aborts it
    assert len(unfinished_uploads(s3, paths.raw)) == 1
    source = put(
        s3, iter([b"order_id,customer_id,amount,date\n1,2,3.00,2025-01-01\n"]), new_upload_id("stream")
    ).location
    try:
        report = ingest_upload(s3, ORDERS, source, "csv", "u-stream", paths)

        assert report.valid_rows == 1
        assert unfinished_uploads(s3, paths.raw) == []
    finally:
        s3.delete_object(Bucket=source.bucket, Key=source.key)
