"""Finished runs are deleted once they are older than a TTL, as Jobs are by `ttlSecondsAfterFinished`.

A namespace that takes thousands of uploads a day would otherwise fill etcd with IngestionRuns nobody
reads again. Only the resource goes (and, through Kubernetes' garbage collection, what it owns, such as a
SparkApplication): the run's rows in PostgreSQL, its objects in S3 and its bronze rows stay. Deleting is
idempotent, so two operator replicas sweeping the same namespace do no harm.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes.client.exceptions import ApiException

from lakehouse.k8s.ingestionrun.status import IngestionRunStatus, parse_time

log = logging.getLogger(__name__)
_LONGEST_PAUSE_SECONDS = 300.0  # between sweeps, whatever the TTL: a run outlives it by at most this


def expired(runs: Iterable[dict[str, Any]], now: dt.datetime, ttl: dt.timedelta) -> list[str]:
    """Names of the runs that finished (Succeeded or Failed) more than `ttl` before `now`."""
    names = []
    for run in runs:
        status = IngestionRunStatus.from_body(run.get("status"))
        if status.is_done and status.completion_time and now - parse_time(status.completion_time) >= ttl:
            names.append(run["metadata"]["name"])
    return names


class FinishedRunCleanup:
    """A thread that deletes the namespace's expired runs every `pause` seconds."""

    def __init__(
        self,
        list_runs: Callable[[], list[dict[str, Any]]],
        delete_run: Callable[[str], None],
        ttl: dt.timedelta,
    ) -> None:
        self._list_runs = list_runs
        self._delete_run = delete_run
        self._ttl = ttl
        self._pause = min(max(ttl.total_seconds() / 4, 1.0), _LONGEST_PAUSE_SECONDS)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="finished-run-cleanup", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def sweep(self, now: dt.datetime | None = None) -> list[str]:
        """Deletes the expired runs; returns their names."""
        deleted = []
        for name in expired(self._list_runs(), now or dt.datetime.now(dt.UTC), self._ttl):
            try:
                self._delete_run(name)
            except ApiException as error:
                if error.status != 404:  # 404: another replica was first
                    raise
            deleted.append(name)
        if deleted:
            log.info("deleted %d finished run(s) older than %s: %s", len(deleted), self._ttl, ", ".join(deleted))
        return deleted

    def _run(self) -> None:
        while not self._stopping.wait(self._pause):
            try:
                self.sweep()
            except Exception as error:  # the API server may be away: the next sweep tries again
                log.warning("cleanup of finished runs failed: %s", error)
