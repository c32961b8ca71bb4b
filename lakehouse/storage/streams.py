"""S3 objects as streams, so a file of gigabytes passes through a bounded amount of memory.

`ObjectSource` reads an object three ways: its first bytes (one ranged GET), front to back (one GET
whose body is read as it arrives) and at random (ranged GETs, for Parquet's footer and row groups).
`MultipartObjectWriter` is a writable file whose bytes go to S3 in parts as they fill.
A fault of S3 while reading is remembered (`failure`), so the caller can tell it from a bad file even
when a library (Arrow) reports it in its own words.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from lakehouse.storage.s3 import PARQUET_WRITE_OPTIONS, ObjectNotFoundError, S3Location, is_not_found

# S3's smallest part but the last is 5 MiB; larger parts mean fewer requests for the same bounded buffer.
PART_BYTES = 8 * 2**20
_READ_BUFFER_BYTES = 2**20
# A Parquet object up to this size is read whole, in one GET; a larger one by ranges (footer, then row groups).
WHOLE_PARQUET_BYTES = 16 * 2**20


class ObjectSource:
    """An upload in S3, read without holding it: the `UploadSource` the ingest reads."""

    def __init__(self, client: Any, location: S3Location) -> None:
        self._client = client
        self.location = location
        self.failure: BaseException | None = None  # the first S3 fault met while reading
        self._read_sha256: str | None = None  # of the last read that went front to back to the end
        try:
            self.size: int = client.head_object(Bucket=location.bucket, Key=location.key)["ContentLength"]
        except ClientError as error:
            if is_not_found(error):
                raise ObjectNotFoundError(f"{location.uri} does not exist") from error
            raise

    def head(self, length: int) -> bytes:
        if self.size == 0:
            return b""
        return self._get(Range=f"bytes=0-{min(length, self.size) - 1}").read()

    def open(self) -> HashingReader:
        body = self._get()
        return HashingReader(body, self)

    def sha256(self) -> str:
        """The object's sha256, from a read that went through it all, or from one made now."""
        if self._read_sha256 is None:
            with self.open() as stream:
                while stream.read(_READ_BUFFER_BYTES):
                    pass
        assert self._read_sha256 is not None
        return self._read_sha256

    def read_to_end(self, sha256: str) -> None:
        self._read_sha256 = sha256

    def open_random(self) -> io.BufferedReader:
        return io.BufferedReader(_RangeReader(self), _READ_BUFFER_BYTES)

    def _get(self, **extra: str) -> Any:
        try:
            return self._client.get_object(Bucket=self.location.bucket, Key=self.location.key, **extra)["Body"]
        except ClientError as error:
            failure: Exception = error
            if is_not_found(error):
                failure = ObjectNotFoundError(f"{self.location.uri} does not exist")
            self.failure = self.failure or failure
            raise failure from error

    def range(self, start: int, length: int) -> bytes:
        try:
            return self._get(Range=f"bytes={start}-{start + length - 1}").read()
        except Exception as error:
            self.failure = self.failure or error
            raise


def open_parquet(client: Any, location: S3Location, whole_bytes: int = WHOLE_PARQUET_BYTES) -> pq.ParquetFile:
    """A Parquet object to read, held in memory when small (one request), else read row group by row group
    (each one ranged GET: pre_buffer joins its column chunks), so memory stays a row group's."""
    try:
        response = client.get_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        if is_not_found(error):
            raise ObjectNotFoundError(f"{location.uri} does not exist") from error
        raise
    if response["ContentLength"] <= whole_bytes:
        return pq.ParquetFile(io.BytesIO(response["Body"].read()))
    response["Body"].close()
    return pq.ParquetFile(ObjectSource(client, location).open_random(), pre_buffer=True)


class HashingReader(io.RawIOBase):
    """A body read front to back, counting its bytes and their sha256 on the way."""

    def __init__(self, body: Any, source: ObjectSource | None = None) -> None:
        self._body = body
        self._source = source
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except Exception as error:
            if self._source is not None:
                self._source.failure = self._source.failure or error
            raise
        buffer[: len(data)] = data
        self.sha256.update(data)
        self.bytes_read += len(data)
        if not data and len(buffer) and self._source is not None:
            self._source.read_to_end(self.sha256.hexdigest())
        return len(data)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
        super().close()


class _RangeReader(io.RawIOBase):
    """Seekable reads of an object, each a ranged GET (Parquet reads its footer, then each row group)."""

    def __init__(self, source: ObjectSource) -> None:
        self._source = source
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._source.size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self._source.size - self._position)
        if length <= 0:
            return 0
        data = self._source.range(self._position, length)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


class MultipartObjectWriter(io.RawIOBase):
    """A file written to one S3 object: parts go up as they fill, so at most one part is held.

    Nothing is visible at the key until `commit`; `abort` (or a failure) leaves no part behind. An object
    smaller than one part is written with one PUT. Rewriting the same key on a retry replaces the object.
    """

    def __init__(self, client: Any, location: S3Location, content_type: str, metadata: dict[str, str]) -> None:
        self._client = client
        self._location = location
        self._content_type = content_type
        self._metadata = metadata
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self._written += len(view)
        while len(self._buffer) >= PART_BYTES:
            self._upload_part(bytes(self._buffer[:PART_BYTES]))
            del self._buffer[:PART_BYTES]
        return len(view)

    def close(self) -> None:
        """Arrow's writer closes its sink when it finishes; committing is the caller's decision."""

    def _upload_part(self, body: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                Bucket=self._location.bucket,
                Key=self._location.key,
                ContentType=self._content_type,
                Metadata=self._metadata,
            )["UploadId"]
        number = len(self._parts) + 1
        response = self._client.upload_part(
            Bucket=self._location.bucket, Key=self._location.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def commit(self) -> None:
        if self._upload_id is None:
            self._client.put_object(
                Bucket=self._location.bucket,
                Key=self._location.key,
                Body=bytes(self._buffer),
                ContentType=self._content_type,
                Metadata=self._metadata,
            )
        else:
            if self._buffer:
                self._upload_part(bytes(self._buffer))
            self._client.complete_multipart_upload(
                Bucket=self._location.bucket,
                Key=self._location.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._buffer.clear()

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._client.abort_multipart_upload(
                Bucket=self._location.bucket, Key=self._location.key, UploadId=upload_id
            )


class ParquetObjectWriter:
    """A Parquet file written to S3 a table at a time (one row group each), its schema the first table's."""

    def __init__(self, client: Any, location: S3Location, metadata: dict[str, str]) -> None:
        self._client = client
        self._location = location
        self._metadata = metadata
        self._object: MultipartObjectWriter | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._object = MultipartObjectWriter(
                self._client, self._location, "application/vnd.apache.parquet", self._metadata
            )
            self._writer = pq.ParquetWriter(self._object, table.schema, **PARQUET_WRITE_OPTIONS)
        self._writer.write_table(table)

    def commit(self) -> None:
        """Makes the object visible at its key; nothing written, nothing made."""
        if self._writer is not None and self._object is not None:
            self._writer.close()
            self._object.commit()

    def abort(self) -> None:
        if self._object is not None:
            self._object.abort()


def abort_unfinished_uploads(client: Any, location: S3Location) -> int:
    """Aborts multipart uploads left at `location` by an attempt that died (a SIGKILLed operator); their
    parts would otherwise stay in the bucket, unseen. Returns how many it aborted."""
    unfinished: list[str] = []
    markers: dict[str, str] = {}
    while True:  # a listing holds at most 1,000 uploads: page through them
        response = client.list_multipart_uploads(Bucket=location.bucket, Prefix=location.key, **markers)
        unfinished += [u["UploadId"] for u in response.get("Uploads", []) if u["Key"] == location.key]
        if not response.get("IsTruncated"):
            break
        markers = {"KeyMarker": response["NextKeyMarker"], "UploadIdMarker": response["NextUploadIdMarker"]}
    for upload_id in unfinished:
        client.abort_multipart_upload(Bucket=location.bucket, Key=location.key, UploadId=upload_id)
    return len(unfinished)
