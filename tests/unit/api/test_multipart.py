from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from lakehouse_api.uploads.multipart import (
    MAX_PARTS,
    MalformedBodyError,
    PartEnd,
    PartStart,
    multipart_boundary,
    multipart_events,
)
from lakehouse_cli.multipart import MultipartUpload


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def parse(body: bytes, boundary: str, chunk_size: int = 7) -> list[PartStart | bytes | PartEnd]:
    async def collect() -> list[PartStart | bytes | PartEnd]:
        return [e async for e in multipart_events(_chunks(body, chunk_size), boundary.encode())]

    return asyncio.run(collect())


def parts(events: list[PartStart | bytes | PartEnd]) -> list[tuple[PartStart, bytes]]:
    """Events folded back into (header, whole value) pairs."""
    folded: list[tuple[PartStart, bytes]] = []
    for event in events:
        if isinstance(event, PartStart):
            folded.append((event, b""))
        elif isinstance(event, bytes):
            folded[-1] = (folded[-1][0], folded[-1][1] + event)
    return folded


@pytest.mark.parametrize("chunk_size", [1, 3, 64, 65536])
def test_the_cli_body_parses_back_to_its_fields_and_file(chunk_size: int) -> None:
    data = b"order_id,amount\r\n1,2.00\r\n--not-a-boundary\r\n" * 50
    upload = MultipartUpload(
        fields={"dataset": "orders", "ingest_engine": "builtin"}, filename="o.csv", file_size=len(data)
    )

    events = parse(b"".join(upload.body([data])), upload.boundary, chunk_size)

    assert [(p.name, p.filename, value) for p, value in parts(events)] == [
        ("dataset", None, b"orders"),
        ("ingest_engine", None, b"builtin"),
        ("file", "o.csv", data),
    ]
    assert isinstance(events[-1], PartEnd)
    assert upload.content_length == len(b"".join(upload.body([data])))


def test_file_names_survive_quoting_and_utf8() -> None:
    upload = MultipartUpload(fields={}, filename='we"ird\\ café\r\n.csv', file_size=1)

    ((start, _),) = parts(parse(b"".join(upload.body([b"x"])), upload.boundary))

    assert start.filename == 'we"ird\\ café  .csv'  # line breaks cannot end the header early


def test_a_body_cut_short_is_malformed() -> None:
    upload = MultipartUpload(fields={"dataset": "orders"}, filename="o.csv", file_size=100)
    body = b"".join(upload.body([b"x" * 100]))

    with pytest.raises(MalformedBodyError, match="closing multipart boundary"):
        parse(body[:-10], upload.boundary)


def test_too_many_parts_are_refused() -> None:
    upload = MultipartUpload(fields={f"f{i}": "v" for i in range(MAX_PARTS + 1)}, filename="o.csv", file_size=1)

    with pytest.raises(MalformedBodyError, match="parts"):
        parse(b"".join(upload.body([b"x"])), upload.boundary)


def test_a_part_without_a_name_is_refused() -> None:
    body = b'--b\r\nContent-Disposition: form-data; filename="x"\r\n\r\nx\r\n--b--\r\n'

    with pytest.raises(MalformedBodyError, match="name"):
        parse(body, "b")


def test_garbage_instead_of_a_boundary_is_malformed() -> None:
    with pytest.raises(MalformedBodyError):
        parse(b"this is not multipart at all", "b")


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ('multipart/form-data; boundary="abc"', b"abc"),
        ("multipart/form-data; boundary=abc; charset=utf-8", b"abc"),
        ("multipart/form-data", None),
        ("application/json", None),
        (None, None),
    ],
)
def test_boundary_comes_from_the_content_type(content_type: str | None, boundary: bytes | None) -> None:
    assert multipart_boundary(content_type) == boundary
