"""Stopping one server of the running local stack for a fault test, and always starting it again.

The stack's own scripts do it (devstack/services/<name>.sh stop|start), on the state folder of the
running stack: `LAKEHOUSE_STATE_DIR` from `make -s env`, so a test in any checkout stops the servers
that really run. Keep every outage short and bounded: the stack may be shared.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.utils.stack import stack_env

REPO_ROOT = Path(__file__).resolve().parents[2]


def service(name: str, action: str) -> None:
    stack_env("LAKEHOUSE_STATE_DIR")  # without it the script would look at this checkout's .state
    script = REPO_ROOT / "devstack" / "services" / f"{name}.sh"
    done = subprocess.run([script, action], check=False, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{name}.sh {action} exited with {done.returncode}: {done.stderr[-2000:]}")


@contextmanager
def stopped(name: str) -> Iterator[dict[str, float]]:
    """The server `name` is down inside the block and started again when it ends, however it ends. The
    dict gets `down_seconds` (stop returned to start called) and `start_seconds` (start to healthy)."""
    timings: dict[str, float] = {}
    stopped_at = time.monotonic()
    try:
        service(name, "stop")  # inside: a stop that fails half-way is still followed by a start
        stopped_at = time.monotonic()
        yield timings
    finally:
        timings["down_seconds"] = time.monotonic() - stopped_at
        service(name, "start")  # it returns once the server answers
        timings["start_seconds"] = time.monotonic() - stopped_at - timings["down_seconds"]
