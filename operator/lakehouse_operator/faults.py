"""Fault points for fault-injection tests: SIGKILL the operator at an exact step, or hold a run there.

A random kill rarely lands in the windows that matter (after an Iceberg commit, before the
status write), so tests name the point instead: LAKEHOUSE_CRASH_POINTS=transform.after-commit
kills the process there the first time it is reached. A marker file in
LAKEHOUSE_CRASH_STATE_DIR makes each point fire once, so the restarted operator runs through.

A server stopped "during the commit" has the same problem, so a test can also hold a run at a point
(LAKEHOUSE_PAUSE_POINTS) while it stops the server: the run leaves a marker in LAKEHOUSE_CRASH_STATE_DIR
and waits, at most LAKEHOUSE_PAUSE_SECONDS, for the test's release file. It holds there once; retries
run through. Unset (always, outside tests), a crash or pause point is a no-op.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

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
# Right after a group commit of several runs landed, before any of them moved on (fires once per state dir).
GROUP_CRASH_POINTS = ("transform.after-group-commit",)

PAUSE_POINTS = (
    "ingest.before-engine",  # the run is Ingesting; its engine has not read the upload yet
    "transform.rows-ready",  # the run's bronze rows are ready; it is about to join its table's (group) commit
    "transform.before-commit",  # the bronze table is loaded; the rows are about to be written and committed
)


def _state_dir() -> Path:
    return Path(os.environ.get("LAKEHOUSE_CRASH_STATE_DIR", "/tmp"))


def _armed(variable: str, name: str) -> bool:
    return name in os.environ.get(variable, "").split(",")


def crash_point(name: str, run: str) -> None:
    if not _armed("LAKEHOUSE_CRASH_POINTS", name):
        return
    marker = _state_dir() / f"crashed-{name}-{run}"
    if marker.exists():
        return
    marker.touch()
    os.kill(os.getpid(), signal.SIGKILL)


def paused_marker(state_dir: Path, name: str, run: str) -> Path:
    """Left by a run that reached pause point `name`."""
    return state_dir / f"paused-{name}-{run}"


def release_marker(state_dir: Path, name: str) -> Path:
    """Created by the test to let every run held at pause point `name` go on."""
    return state_dir / f"release-{name}"


def pause_point(name: str, run: str) -> None:
    if not _armed("LAKEHOUSE_PAUSE_POINTS", name):
        return
    state_dir = _state_dir()
    marker = paused_marker(state_dir, name, run)
    if marker.exists():
        return
    marker.touch()
    release = release_marker(state_dir, name)
    deadline = time.monotonic() + float(os.environ.get("LAKEHOUSE_PAUSE_SECONDS", "300"))
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    log.warning("%s: held at %s, released %s", run, name, "by the test" if release.exists() else "by the timeout")
