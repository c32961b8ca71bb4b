"""Crash points for fault-injection tests: SIGKILL the operator at an exact step, once.

A random kill rarely lands in the windows that matter (after an Iceberg commit, before the
status write), so tests name the point instead: LAKEHOUSE_CRASH_POINTS=transform.after-commit
kills the process there the first time it is reached. A marker file in
LAKEHOUSE_CRASH_STATE_DIR makes each point fire once, so the restarted operator runs through.
Unset (always, outside tests), a crash point is a no-op.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

CRASH_POINTS = (
    "validate.after-event",
    "ingest.after-raw",
    "ingest.after-event",
    "raw-ready.before-transition",
    "transform.after-commit",
    "transform.after-event",
)
# Right after the operator handed a run's work to a job that outlives it: NiFi's flow, a local spark-submit.
ENGINE_CRASH_POINTS = ("nifi.handed-over", "spark-submit.started")


def crash_point(name: str, run: str) -> None:
    armed = os.environ.get("LAKEHOUSE_CRASH_POINTS", "")
    if not armed or name not in armed.split(","):
        return
    state_dir = Path(os.environ.get("LAKEHOUSE_CRASH_STATE_DIR", "/tmp"))
    marker = state_dir / f"crashed-{name}-{run}"
    if marker.exists():
        return
    marker.touch()
    os.kill(os.getpid(), signal.SIGKILL)
