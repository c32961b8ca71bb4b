"""S3 object access in the S3 API's common subset, so AWS, MinIO and SeaweedFS all work."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:  # Arrow is imported by the functions that need it: the upload API never does (issue #13)
    import pyarrow as pa


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        if not uri.startswith("s3://"):
            raise ValueError(f"not an S3 URI: {uri!r}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket or not key:
            raise ValueError(f"S3 URI needs a bucket and a key: {uri!r}")
        return cls(bucket, key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


# The one Parquet encoding of the platform's files, whoever writes them.
PARQUET_COMPRESSION = "zstd"
# A column chunk's dictionary grows to this size before its values are written plain instead. pyarrow's default
# (1 MiB) hashes hundreds of thousands of unique values (ids, amounts) before it gives up: with 64 KiB a raw
# orders file of 1.5 M rows is written in 0.13 s instead of 0.6, and is 40 % smaller; a column of up to
# ~8,000 distinct 8-byte values (dates, codes, the run's own columns) keeps its dictionary.
PARQUET_DICTIONARY_PAGE_BYTES = 64 * 1024
# What every pyarrow Parquet writer of the platform is given.
PARQUET_WRITE_OPTIONS = {"compression": PARQUET_COMPRESSION, "dictionary_pagesize_limit": PARQUET_DICTIONARY_PAGE_BYTES}


class ObjectNotFoundError(FileNotFoundError):
    pass


def is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


def read_object(client: Any, location: S3Location) -> bytes:
    try:
        return client.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    except ClientError as error:
        if is_not_found(error):
            raise ObjectNotFoundError(f"{location.uri} does not exist") from error
        raise


def head_object(client: Any, location: S3Location) -> dict[str, Any] | None:
    try:
        return client.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def write_parquet(client: Any, location: S3Location, table: pa.Table, metadata: dict[str, str]) -> None:
    """One PUT, so readers see the whole file or nothing; rewriting the same key is idempotent."""
    client.put_object(
        Bucket=location.bucket,
        Key=location.key,
        Body=parquet_bytes(table),
        ContentType="application/vnd.apache.parquet",
        Metadata=metadata,
    )


def parquet_bytes(table: pa.Table) -> bytes:
    """The platform's Parquet encoding of a table held in memory."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, **PARQUET_WRITE_OPTIONS)
    return buffer.getvalue()


def read_parquet(client: Any, location: S3Location) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(read_object(client, location)))


def delete_object(client: Any, location: S3Location) -> None:
    client.delete_object(Bucket=location.bucket, Key=location.key)
