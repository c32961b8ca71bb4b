"""Which finished runs the cleanup deletes, and that a run another replica deleted first is no error."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from lakehouse_operator.run_cleanup import FinishedRunCleanup, expired

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(hours=1)


def run(name: str, phase: str | None, completed_minutes_ago: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if completed_minutes_ago is not None:
        finished = NOW - dt.timedelta(minutes=completed_minutes_ago)
        status["completionTime"] = finished.isoformat().replace("+00:00", "Z")
    return {"metadata": {"name": name}, "status": status}


def test_only_runs_finished_longer_ago_than_the_ttl_expire() -> None:
    runs = [
        run("succeeded-old", "Succeeded", 61),
        run("failed-old", "Failed", 60),
        run("succeeded-recent", "Succeeded", 59),
        run("ingesting", "Ingesting"),
        run("new", None),
        run("finished-without-time", "Succeeded"),  # written by an older operator: kept, not guessed at
    ]
    assert expired(runs, NOW, TTL) == ["succeeded-old", "failed-old"]


def test_a_run_deleted_by_another_replica_is_not_an_error() -> None:
    deleted: list[str] = []

    def delete(name: str) -> None:
        if name == "gone":
            raise ApiException(status=404)
        deleted.append(name)

    cleanup = FinishedRunCleanup(lambda: [run("gone", "Failed", 120), run("old", "Succeeded", 120)], delete, TTL)
    assert cleanup.sweep(NOW) == ["gone", "old"]
    assert deleted == ["old"]


def test_other_api_errors_reach_the_caller() -> None:
    def delete(name: str) -> None:
        raise ApiException(status=403)

    cleanup = FinishedRunCleanup(lambda: [run("old", "Succeeded", 120)], delete, TTL)
    with pytest.raises(ApiException):
        cleanup.sweep(NOW)
