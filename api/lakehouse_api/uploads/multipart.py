"""A multipart/form-data body as a stream of events, parsed while it arrives.

Starlette's `request.form()` spools files to disk or memory before the endpoint sees them; this
reader hands over each piece of a part as soon as python-multipart's streaming parser finds it,
so a file can go to S3 while it is still being received, holding only one network chunk at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_PARTS = 16
MAX_PART_HEADERS = 8
MAX_HEADER_BYTES = 4096


class MalformedBodyError(ValueError):
    pass


@dataclass(frozen=True)
class PartStart:
    name: str
    filename: str | None
    content_type: str | None


@dataclass(frozen=True)
class PartEnd:
    name: str


def multipart_boundary(content_type: str | None) -> bytes | None:
    """The boundary of a multipart/form-data Content-Type, or None when it is another type."""
    media_type, options = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        return None
    return options.get(b"boundary") or None


def _header_text(value: bytes) -> str:
    # Header values arrive as bytes; browsers send UTF-8 file names, old clients Latin-1.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class _Events:
    """The parser's callbacks, turned into a queue of PartStart / bytes / PartEnd."""

    def __init__(self) -> None:
        self.queue: deque[PartStart | bytes | PartEnd] = deque()
        self.finished = False
        self.parts = 0
        self._headers: dict[str, bytes] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._current = ""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda data, start, end: self.queue.append(bytes(data[start:end])),
            "on_part_end": lambda: self.queue.append(PartEnd(self._current)),
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise MalformedBodyError(f"more than {MAX_PARTS} parts in the form")
        self._headers = {}

    def _header_end(self) -> None:
        if len(self._field) + len(self._value) > MAX_HEADER_BYTES:
            raise MalformedBodyError("a part header is too long")
        self._headers[bytes(self._field).decode("latin-1").lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition", b"").decode("latin-1"))
        if disposition != b"form-data" or b"name" not in options:
            raise MalformedBodyError("every part needs a Content-Disposition: form-data header with a name")
        self._current = _header_text(options[b"name"])
        filename = options.get(b"filename")
        content_type = self._headers.get("content-type")
        self.queue.append(
            PartStart(
                name=self._current,
                filename=_header_text(filename) if filename is not None else None,
                content_type=content_type.decode("latin-1") if content_type else None,
            )
        )

    def _end(self) -> None:
        self.finished = True


async def multipart_events(chunks: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[PartStart | bytes | PartEnd]:
    """PartStart, then the part's data as bytes pieces, then PartEnd, for each part in order.

    Ends only after the closing boundary: a body cut short raises MalformedBodyError, so a
    client that dies mid-upload never produces a complete-looking file.
    """
    events = _Events()
    parser = MultipartParser(boundary, events.callbacks(), max_header_count=MAX_PART_HEADERS)  # type: ignore[arg-type]
    async for chunk in chunks:
        if events.finished:
            continue  # an epilogue after the closing boundary carries nothing
        try:
            parser.write(chunk)
        except MultipartParseError as error:
            raise MalformedBodyError(f"malformed multipart body: {error}") from None
        while events.queue:
            yield events.queue.popleft()
    if not events.finished:
        raise MalformedBodyError("the body ended before the closing multipart boundary")
