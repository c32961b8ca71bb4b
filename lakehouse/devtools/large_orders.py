"""Orders CSV files of gigabytes for tests and benchmarks, made fast and never held in memory.

One block of rows is rendered once; each further block is the same bytes with another order-id prefix
(one `bytes.replace`), so the ids stay unique and the file costs little more than its writing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lakehouse.storage.s3 import S3Location
from lakehouse.storage.streams import MultipartObjectWriter

ORDERS_HEADER = b"order_id,customer_id,amount,date,note\n"
_BLOCK_MARK = b"~~~~~~~"  # the order id's first 7 digits: the block's number


@dataclass(frozen=True)
class OrdersCsv:
    """Blocks of `rows_per_block` orders; every `invalid_every`-th has amount -1.00 (rule amount_positive).
    `note` (a column the contract does not know, so dropped) pads each row to about 200 bytes."""

    rows_per_block: int = 100_000
    invalid_every: int = 1000
    header: bytes = ORDERS_HEADER

    def block(self) -> bytes:
        assert self.rows_per_block <= 10**6
        note = "n" * 150
        rows = []
        for i in range(self.rows_per_block):
            amount = "-1.00" if i % self.invalid_every == self.invalid_every - 1 else f"{1 + i % 9000}.{i % 100:02d}"
            date = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
            rows.append(f"{_BLOCK_MARK.decode()}{i:06d},{1 + i % 5000},{amount},{date},{note}\n")
        return "".join(rows).encode()

    def blocks(self, count: int) -> Iterator[bytes]:
        template = self.block()
        for number in range(count):
            block = template.replace(_BLOCK_MARK, b"%07d" % (number + 1))
            yield self.header + block if number == 0 else block

    def order_id(self, block: int, row: int) -> int:
        return (block + 1) * 10**6 + row

    def invalid_rows(self, blocks: int) -> int:
        return blocks * (self.rows_per_block // self.invalid_every)

    def valid_rows(self, blocks: int) -> int:
        return blocks * self.rows_per_block - self.invalid_rows(blocks)

    def blocks_for(self, size_bytes: int) -> int:
        """How many blocks make a file of at least `size_bytes`."""
        return -(-size_bytes // len(self.block()))


@dataclass(frozen=True)
class PutObject:
    location: S3Location
    size: int
    sha256: str


def put_chunks(s3: Any, location: S3Location, chunks: Iterable[bytes]) -> PutObject:
    """Puts the chunks' bytes into one object, a part at a time (the ingest's own multipart writer)."""
    digest, size = hashlib.sha256(), 0
    writer = MultipartObjectWriter(s3, location, "text/csv", {})
    try:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return PutObject(location, size, digest.hexdigest())
