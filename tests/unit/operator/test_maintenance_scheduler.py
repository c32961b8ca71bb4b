"""The operator's maintenance schedule: which datasets it asks to maintain, with which interval."""

from __future__ import annotations

import datetime as dt

from lakehouse_operator import metrics
from lakehouse_operator.maintenance_scheduler import MaintenanceScheduler
from prometheus_client import REGISTRY

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry
from lakehouse.maintenance.runner import MaintenanceReport

ORDERS = ContractRegistry.default().get("orders")
CUSTOMERS = ContractRegistry.default().get("customers")


def with_maintenance(contract: DatasetContract, **changes: object) -> DatasetContract:
    return contract.model_copy(update={"maintenance": contract.maintenance.model_copy(update=changes)})


def test_each_enabled_dataset_is_asked_with_its_own_interval() -> None:
    asked: list[tuple[str, dt.timedelta]] = []

    def maintain(contract: DatasetContract, interval: dt.timedelta) -> MaintenanceReport:
        asked.append((contract.name, interval))
        return MaintenanceReport(contract.name, contract.bronze.identifier)

    contracts = [with_maintenance(ORDERS, interval_minutes=15), with_maintenance(CUSTOMERS, enabled=False)]
    reports = MaintenanceScheduler(lambda: contracts, maintain, 60).run_due()

    assert asked == [("orders", dt.timedelta(minutes=15))]
    assert [r.dataset for r in reports] == ["orders"]


def test_the_stack_interval_replaces_the_contracts_and_a_failing_dataset_does_not_stop_the_others() -> None:
    asked: list[tuple[str, dt.timedelta]] = []

    def maintain(contract: DatasetContract, interval: dt.timedelta) -> MaintenanceReport:
        asked.append((contract.name, interval))
        if contract.name == "orders":
            raise ConnectionError("PostgreSQL is away")
        return MaintenanceReport(contract.name, contract.bronze.identifier, skipped="not due")

    scheduler = MaintenanceScheduler(lambda: [ORDERS, CUSTOMERS], maintain, 60, dt.timedelta(seconds=30))

    assert scheduler.run_due() == []  # orders failed, customers was not due
    assert asked == [("orders", dt.timedelta(seconds=30)), ("customers", dt.timedelta(seconds=30))]


def test_a_run_is_counted_per_task_and_outcome() -> None:
    report = MaintenanceReport("metrics_ds", "bronze.metrics_ds", snapshots_expired=3)
    report.task_seconds = {"compaction": 0.5, "snapshot-expiry": 0.1}
    report.failures = {"compaction": "CommitFailedException: ..."}

    metrics.observe_maintenance(report)

    def tasks(task: str, outcome: str) -> float | None:
        labels = {"dataset": "metrics_ds", "task": task, "outcome": outcome}
        return REGISTRY.get_sample_value("lakehouse_maintenance_tasks_total", labels)

    assert tasks("compaction", "failed") == 1 and tasks("snapshot-expiry", "succeeded") == 1
    assert tasks("compaction", "succeeded") is None
    assert REGISTRY.get_sample_value("lakehouse_snapshots_expired_total", {"dataset": "metrics_ds"}) == 3
