"""Driving an engine the way the operator's handlers do: call again until it has an outcome."""

from __future__ import annotations

import time

from lakehouse_operator.engines.base import RunContext, StillRunning, TransformEngine, TransformOutcome


def transform_until_done(
    engine: TransformEngine, run: RunContext, raw_uri: str, timeout: float, poll: float | None = None
) -> TransformOutcome:
    """The outcome (or the engine's exception); asks again after the engine's delay, or `poll` if shorter."""
    deadline = time.monotonic() + timeout
    while isinstance(answer := engine.transform(run, raw_uri), StillRunning):
        assert time.monotonic() < deadline, f"no outcome after {timeout:.0f}s: {answer.message}"
        time.sleep(min(answer.delay, poll) if poll else answer.delay)
    return answer
