"""An upload's next batch read while the current one is validated and written.

Reading a batch (the GET, the checksum, Arrow's CSV parser, which runs on one thread to know the line of a
malformed row) and validating and writing it (Arrow's kernels, the Parquet encoder) each take one core; Arrow and
hashlib leave Python's lock while they work, so a thread of their own lets the reading use the other core. The
reader starts on a batch only once the one before is taken: one batch is read ahead at most, whatever the file's
size. The thread costs ~0.2 ms, nothing beside a run, so even a file of one batch goes through it.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Raised:
    error: BaseException


class _Finished:
    pass


class _HandOff(Generic[_T]):
    """One item at a time from the reading thread to its consumer, the next read only once the last is taken."""

    def __init__(self) -> None:
        self._items: queue.Queue[_T | _Raised | _Finished] = queue.Queue()
        self._may_read = threading.Semaphore(1)
        self._stopped = threading.Event()

    def wait_to_read(self) -> bool:
        """Until the consumer took the item before; False once it has stopped, and nobody will take another."""
        self._may_read.acquire()
        return not self._stopped.is_set()

    def put(self, item: _T | _Raised | _Finished) -> None:
        self._items.put(item)

    def take(self) -> _T | _Raised | _Finished:
        item = self._items.get()
        self._may_read.release()
        return item

    def stop(self) -> None:
        self._stopped.set()
        self._may_read.release()  # a reader waiting to read wakes, and ends


def read_ahead(items: Iterator[_T], thread_name: str) -> Generator[_T, None, None]:
    """`items` in their order, read by one thread of their own a step ahead of the consumer. An error while reading
    is raised here, at the item where it stopped. When this generator ends (done, failed or closed; close it
    explicitly on an error of the consumer's), the thread closes `items` (its open stream) and has ended."""
    hand_off: _HandOff[_T] = _HandOff()

    def read() -> None:
        try:
            while hand_off.wait_to_read():
                try:
                    item = next(items)
                except StopIteration:
                    hand_off.put(_Finished())
                    return
                hand_off.put(item)
        except BaseException as error:  # the consumer's to handle, with its traceback
            hand_off.put(_Raised(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    # The reader logs with the run's fields (lakehouse.logs keeps them in a context variable).
    reader = threading.Thread(target=contextvars.copy_context().run, args=(read,), name=thread_name, daemon=True)
    reader.start()
    try:
        while True:
            item = hand_off.take()
            if isinstance(item, _Finished):
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        hand_off.stop()
        reader.join()
