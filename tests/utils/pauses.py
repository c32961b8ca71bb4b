"""Holding a run at one of the operator's pause points (lakehouse_operator.faults) while a test stops a server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from lakehouse_operator.faults import paused_marker, release_marker

from tests.utils.runs import retrying
from tests.utils.servers import stopped
from tests.utils.waiting import wait_until


def pause_env(state_dir: Path, *points: str) -> dict[str, str]:
    """The operator's environment that arms `points`, with its markers in `state_dir`."""
    return {"LAKEHOUSE_PAUSE_POINTS": ",".join(points), "LAKEHOUSE_CRASH_STATE_DIR": str(state_dir)}


def wait_until_held(state_dir: Path, point: str, runs: list[str], timeout: float = 120) -> None:
    """Waits until every one of `runs` is held at `point`."""
    wait_until(
        lambda: all(paused_marker(state_dir, point, run).exists() for run in runs),
        f"{len(runs)} run(s) held at {point}",
        timeout,
        poll=0.1,
    )


def release(state_dir: Path, point: str) -> None:
    release_marker(state_dir, point).touch()


@dataclass
class Outage:
    failed_attempt: dict[str, Any]  # the run's status once the attempt that met the outage had failed
    timings: dict[str, float]  # servers.stopped's, filled in when the server is started again


@contextmanager
def down_at_pause_point(
    server: str, state_dir: Path, point: str, api: client.CustomObjectsApi, namespace: str, run: str
) -> Iterator[Outage]:
    """Once `run` is held at `point`: stops `server`, lets the run go on and waits until the attempt failed. The
    block runs with the server still down; it is started again when the block ends."""
    wait_until_held(state_dir, point, [run])
    with stopped(server) as timings:
        release(state_dir, point)
        failed = wait_until(
            lambda: retrying(api, namespace, run), f"an attempt that failed while {server} was down", timeout=120
        )
        yield Outage(failed, timings)
