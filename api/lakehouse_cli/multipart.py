"""A multipart/form-data body built as a stream, so a file of any size is sent without reading it whole.

httpx can stream files too, but it cannot report progress; building the body here also lets
tests send a generated gigabyte that never exists on disk.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


def _quoted(value: str) -> str:
    # Line breaks would end the header early; quotes and backslashes would end the value.
    cleaned = value.replace("\r", " ").replace("\n", " ")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class MultipartUpload:
    """Form fields first, then one file part of `file_size` bytes (the API reads fields before the file)."""

    fields: dict[str, str]
    filename: str
    file_size: int
    file_field: str = "file"
    file_content_type: str = "application/octet-stream"
    boundary: str = field(default_factory=lambda: f"lakehouse-{uuid.uuid4().hex}")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _preamble(self) -> bytes:
        parts = [
            f"--{self.boundary}\r\nContent-Disposition: form-data; name={_quoted(name)}\r\n\r\n{value}\r\n"
            for name, value in self.fields.items()
        ]
        parts.append(
            f"--{self.boundary}\r\nContent-Disposition: form-data; name={_quoted(self.file_field)}; "
            f"filename={_quoted(self.filename)}\r\nContent-Type: {self.file_content_type}\r\n\r\n"
        )
        return "".join(parts).encode()

    def _epilogue(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_length(self) -> int:
        return len(self._preamble()) + self.file_size + len(self._epilogue())

    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "Content-Length": str(self.content_length)}

    def body(self, file_chunks: Iterable[bytes]) -> Iterator[bytes]:
        yield self._preamble()
        yield from file_chunks
        yield self._epilogue()


def file_chunks(path: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            yield chunk
