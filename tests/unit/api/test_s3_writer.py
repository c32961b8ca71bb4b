from __future__ import annotations

import asyncio
import hashlib

import pytest
from lakehouse_api.uploads.s3_writer import S3StreamWriter

from lakehouse.storage.s3 import S3Location
from tests.utils.fake_s3 import FakeS3

PART = 5 * 1024 * 1024
LOCATION = S3Location("uploads", "orders/2025-01-01/up-1/o.csv")


def write_all(s3: FakeS3, chunks: list[bytes], max_in_flight: int = 2) -> S3StreamWriter:
    async def run() -> S3StreamWriter:
        writer = S3StreamWriter(s3, LOCATION, PART, max_in_flight=max_in_flight)
        try:
            for chunk in chunks:
                await writer.write(chunk)
            await writer.complete()
        except BaseException:
            await writer.abort()
            raise
        return writer

    return asyncio.run(run())


def test_a_small_file_is_one_put() -> None:
    s3 = FakeS3()

    writer = write_all(s3, [b"a,b\n", b"1,2\n"])

    assert s3.calls == ["put_object"] and s3.objects[LOCATION.key] == b"a,b\n1,2\n"
    assert (writer.size, writer.sha256) == (8, hashlib.sha256(b"a,b\n1,2\n").hexdigest())


def test_a_large_file_goes_in_parts_with_bounded_parallelism() -> None:
    chunks = [bytes([i % 251]) * 65536 for i in range(400)]  # 25 MiB in 64 KiB pieces
    s3 = FakeS3()

    writer = write_all(s3, chunks, max_in_flight=2)

    data = b"".join(chunks)
    assert s3.objects[LOCATION.key] == data
    assert writer.sha256 == hashlib.sha256(data).hexdigest() and writer.size == len(data)
    assert s3.calls == ["create_multipart_upload", "complete_multipart_upload"]
    assert len(s3.parts) == 5 and all(len(s3.parts[n]) == PART for n in range(1, 5))
    assert s3.max_in_flight <= 2


def test_a_failed_part_aborts_the_whole_upload() -> None:
    s3 = FakeS3(fail_part=2)

    with pytest.raises(ConnectionError):
        write_all(s3, [b"x" * 65536] * 400)

    assert "abort_multipart_upload" in s3.calls and "complete_multipart_upload" not in s3.calls
    assert LOCATION.key not in s3.objects
