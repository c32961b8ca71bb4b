"""The maintenance schedule: a thread of the operator that maintains each dataset's bronze table when it is due.

Every `check_seconds` it goes through the contracts; a table is due when its last maintenance run (the
maintenance log in PostgreSQL) started at least the contract's `maintenance.interval_minutes` ago, so the
schedule survives restarts and operator replicas share it, and the table's lock keeps two of them from working
on one table at once (lakehouse/maintenance/runner.py). Tables are maintained one after another, in this one
thread, so maintenance takes at most one of the operator's cores.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable

from lakehouse.contracts.model import DatasetContract
from lakehouse.maintenance.runner import MaintenanceReport
from lakehouse_operator import metrics

log = logging.getLogger(__name__)

MaintainOne = Callable[[DatasetContract, dt.timedelta], MaintenanceReport]


class MaintenanceScheduler:
    def __init__(
        self,
        contracts: Callable[[], Iterable[DatasetContract]],
        maintain_one: MaintainOne,
        check_seconds: float,
        interval_override: dt.timedelta | None = None,
    ) -> None:
        self._contracts = contracts
        self._maintain_one = maintain_one
        self._check_seconds = check_seconds
        self._interval_override = interval_override
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def interval(self, contract: DatasetContract) -> dt.timedelta:
        return self._interval_override or dt.timedelta(minutes=contract.maintenance.interval_minutes)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="table-maintenance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        """Asks the thread to stop after the table it works on; a run cut short by the process's exit leaves no
        harm (its commit landed whole or not at all, and its lock goes with the connection)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_due(self) -> list[MaintenanceReport]:
        """One pass over the contracts: maintains every table that is due; the reports of those not skipped."""
        reports = []
        for contract in self._contracts():
            if self._stopping.is_set():
                break
            if not contract.maintenance.enabled:
                continue
            try:
                report = self._maintain_one(contract, self.interval(contract))
            except Exception as error:  # PostgreSQL or the catalog away: the next pass tries again
                log.warning("maintenance of dataset %s failed: %s", contract.name, error)
                continue
            metrics.observe_maintenance(report)
            if not report.skipped:
                reports.append(report)
        return reports

    def _run(self) -> None:
        while not self._stopping.wait(self._check_seconds):
            try:
                self.run_due()
            except Exception as error:  # the contracts cannot be loaded: an invalid one fails its runs, not this
                log.warning("table maintenance pass failed: %s", error)
