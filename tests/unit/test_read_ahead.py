"""An upload's batches read one ahead in a thread of their own (lakehouse.ingest.read_ahead): the same items in the
same order, a reading error where it happened, never more than one item read ahead, and nothing left open or
running once the consumer stops, however it stops."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

import pytest

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.devtools.sample_data import orders
from lakehouse.ingest import builtin
from lakehouse.ingest.builtin import TablesInMemory, ingest_source
from lakehouse.ingest.errors import UnsupportedInputError
from lakehouse.ingest.read_ahead import read_ahead
from lakehouse.ingest.readers import BytesSource

RUN: contextvars.ContextVar[str] = contextvars.ContextVar("run", default="none")
READER = "reader-test"


class Source:
    """Items 0..count-1 from a generator, noting how many were read, by which thread, and whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.read = 0
        self.read_by: set[str] = set()
        self.runs_seen: set[str] = set()
        self.closed = threading.Event()

    def items(self) -> Iterator[int]:
        try:
            for item in range(self.count):
                if item == self.fail_at:
                    raise OSError(f"the stream broke at item {item}")
                self.read += 1
                self.read_by.add(threading.current_thread().name)
                self.runs_seen.add(RUN.get())
                yield item
        finally:
            self.closed.set()


def readers_alive(name: str = READER) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def test_items_come_in_their_order_read_by_a_thread_that_sees_the_run() -> None:
    source = Source(50)
    token = RUN.set("run-1")
    try:
        assert list(read_ahead(source.items(), READER)) == list(range(50))
    finally:
        RUN.reset(token)

    assert source.read_by == {READER}
    assert source.runs_seen == {"run-1"}
    assert source.closed.is_set()
    assert readers_alive() == []


def test_at_most_one_item_is_read_ahead_of_the_consumer() -> None:
    source = Source(20)
    with contextlib.closing(read_ahead(source.items(), READER)) as items:
        for taken, _ in enumerate(items, start=1):
            threading.Event().wait(0.01)  # the reader's time to run ahead, if it could
            assert source.read <= taken + 1


def test_a_reading_error_is_raised_after_the_items_before_it() -> None:
    source = Source(10, fail_at=3)
    got: list[int] = []

    with pytest.raises(OSError, match="broke at item 3"):
        for item in read_ahead(source.items(), READER):
            got.append(item)

    assert got == [0, 1, 2]
    assert source.closed.is_set()
    assert readers_alive() == []


def test_a_consumer_that_stops_early_leaves_no_reader_and_no_open_source() -> None:
    source = Source(1_000_000)
    items = read_ahead(source.items(), READER)

    assert next(items) == 0
    items.close()

    assert source.closed.is_set()
    assert readers_alive() == []


def test_an_ingest_whose_validation_fails_on_a_later_batch_stops_its_reader_before_the_error_is_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the error (and its traceback, holding the generators' frames) is still alive, the reader is gone."""
    real_validate = builtin.validate
    calls = 0

    def failing_on_the_second_batch(*args: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("a bug in the second batch's validation")
        return real_validate(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(builtin, "validate", failing_on_the_second_batch)
    data = orders(3000).csv_bytes()

    with pytest.raises(UnsupportedInputError, match="second batch") as raised:
        ingest_source(
            ContractRegistry.default().get("orders"), BytesSource(data), "csv", "u-1", "upload.csv", None,
            TablesInMemory(), TablesInMemory(), block_bytes=len(data) // 4,
        )  # fmt: skip

    assert raised.value.__traceback__ is not None
    assert readers_alive("upload-reader") == []
