"""The memory settings of the long-lived processes, seen in a fresh interpreter (they act at start-up)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SETTINGS_THEN_ARROW = (
    "from lakehouse import memory\n"
    "memory.use_the_system_allocator_for_arrow()\n"
    "memory.return_large_blocks_to_the_system()\n"
    "import pyarrow as pa\n"
    "print(pa.default_memory_pool().backend_name)\n"
)


def _arrow_backend(environment: dict[str, str]) -> str:
    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"} | environment
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_THEN_ARROW], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_arrow_uses_the_system_allocator() -> None:
    assert _arrow_backend({}) == "system"


@pytest.mark.parametrize("chosen", ["mimalloc", "jemalloc"])
def test_an_allocator_chosen_in_the_environment_wins(chosen: str) -> None:
    import pyarrow as pa

    if chosen not in pa.supported_memory_backends():
        pytest.skip(f"this pyarrow has no {chosen}")
    assert _arrow_backend({"ARROW_DEFAULT_MEMORY_POOL": chosen}) == chosen


def test_the_glibc_settings_are_set_with_glibc_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from lakehouse import memory

    glibc = os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    assert memory.return_large_blocks_to_the_system() is glibc
    assert memory.share_malloc_arenas() is glibc

    def unknown_name(name: str) -> str:
        raise ValueError(f"unrecognized configuration name {name}")

    monkeypatch.setattr(os, "confstr", unknown_name)  # macOS
    assert memory.return_large_blocks_to_the_system() is False
    assert memory.share_malloc_arenas() is False
    monkeypatch.setattr(os, "confstr", lambda name: None)  # musl
    assert memory.return_large_blocks_to_the_system() is False


def test_the_operator_runs_pyarrow_and_pyiceberg_without_pandas() -> None:
    script = (
        "import sys\n"
        "from lakehouse import memory\n"
        "memory.leave_pandas_out()\n"
        "import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset\n"
        "import pyiceberg.io.pyarrow\n"
        "assert pc.is_in(pa.array(['a', 'b']), value_set=pa.array(['a'])).to_pylist() == [True, False]\n"
        "try:\n"
        "    import pandas\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name, 'pandas' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == ["pandas", "False"]
