"""Upload bodies for API tests: multipart forms of in-memory files, and valid CSV of any size made on the fly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from lakehouse_cli.multipart import MultipartUpload

ORDERS_HEADER = b"order_id,customer_id,amount,date\n"


def form(
    data: bytes, *, dataset: str | None = "orders", filename: str = "orders.csv", **fields: str
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of an upload form holding `data`; None leaves the dataset field out."""
    values = {"dataset": dataset, **fields} if dataset is not None else dict(fields)
    upload = MultipartUpload(fields=values, filename=filename, file_size=len(data))
    return upload.headers(), b"".join(upload.body([data]))


def raw_form(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> tuple[dict[str, str], bytes]:
    """A form with parts in exactly this order: (field name, file name or None, value)."""
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body + f"--{boundary}--\r\n".encode()


@dataclass(frozen=True)
class GeneratedCsv:
    """A valid orders CSV of `blocks` repetitions of one block of rows, never held whole in memory."""

    blocks: int
    block: bytes

    @classmethod
    def of_size(cls, approx_bytes: int, block_bytes: int = 1024 * 1024) -> GeneratedCsv:
        lines, size, order_id = [], 0, 1
        start = dt.date(2025, 1, 1)
        while size < block_bytes:
            amount = f"{10 + order_id % 900}.{order_id % 100:02d}"
            line = f"{order_id},{1000 + order_id % 500},{amount},{start + dt.timedelta(days=order_id % 300)}\n"
            lines.append(line)
            size += len(line)
            order_id += 1
        block = "".join(lines).encode()
        return cls(blocks=max(1, (approx_bytes - len(ORDERS_HEADER)) // len(block)), block=block)

    @property
    def size(self) -> int:
        return len(ORDERS_HEADER) + self.blocks * len(self.block)

    def chunks(self) -> Iterator[bytes]:
        yield ORDERS_HEADER
        for _ in range(self.blocks):
            yield self.block
