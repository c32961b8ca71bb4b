"""Pause points hold a run once, until the test's release file or their timeout, and do nothing unarmed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lakehouse_operator.faults import pause_point, paused_marker, release_marker

from tests.utils.waiting import wait_until


def test_an_unarmed_pause_point_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_CRASH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_PAUSE_POINTS", "ingest.before-engine")
    pause_point("transform.before-commit", "run-1")
    assert list(tmp_path.iterdir()) == []


def test_an_armed_pause_point_holds_until_released_then_lets_retries_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_CRASH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_PAUSE_POINTS", "ingest.before-engine,transform.before-commit")
    held = threading.Thread(target=pause_point, args=("transform.before-commit", "run-1"))
    held.start()
    wait_until(lambda: paused_marker(tmp_path, "transform.before-commit", "run-1").exists(), "held", timeout=10)
    assert held.is_alive()

    release_marker(tmp_path, "transform.before-commit").touch()
    held.join(timeout=10)
    assert not held.is_alive()
    release_marker(tmp_path, "transform.before-commit").unlink()
    pause_point("transform.before-commit", "run-1")  # a retry of the same run is not held again


def test_a_pause_nobody_releases_ends_at_its_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_CRASH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_PAUSE_POINTS", "ingest.before-engine")
    monkeypatch.setenv("LAKEHOUSE_PAUSE_SECONDS", "0.2")
    pause_point("ingest.before-engine", "run-2")
    assert paused_marker(tmp_path, "ingest.before-engine", "run-2").exists()
