"""Stage durations measured from the status, runs in flight from a list of runs, and the series of each dataset."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lakehouse_operator import metrics
from lakehouse_operator.status_writer import PhaseChange, apply_change
from prometheus_client import REGISTRY, CollectorRegistry

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.status import IngestionRunStatus

NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)


def stage_sample(suffix: str, stage: str, engine: str) -> float:
    value = REGISTRY.get_sample_value(f"lakehouse_stage_duration_seconds_{suffix}", {"stage": stage, "engine": engine})
    return value or 0.0


def test_a_stage_lasts_from_entering_its_phase_to_leaving_it() -> None:
    left = IngestionRunStatus.model_validate(
        {"phase": "Ingesting", "phaseStartTime": "2026-12-01T11:58:30Z", "engines": {"ingest": "nifi"}}
    )
    count, total = stage_sample("count", "ingest", "nifi"), stage_sample("sum", "ingest", "nifi")

    metrics.observe_stage(left, NOW)

    assert stage_sample("count", "ingest", "nifi") == count + 1
    assert stage_sample("sum", "ingest", "nifi") == total + 90


def test_a_run_from_before_phase_times_is_not_measured() -> None:
    count = stage_sample("count", "validate", "none")
    metrics.observe_stage(IngestionRunStatus.model_validate({"phase": "Pending"}), NOW)
    assert stage_sample("count", "validate", "none") == count


def test_entering_a_phase_stamps_its_start_and_staying_keeps_it() -> None:
    pending = IngestionRunStatus.model_validate({"phase": "Pending", "phaseStartTime": "2020-01-01T00:00:00Z"})
    waiting = apply_change(pending, PhaseChange(Phase.PENDING, "Retrying", "again"), 1)
    moved = apply_change(pending, PhaseChange(Phase.INGESTING, "IngestStarted", "on"), 1)

    assert waiting.phase_start_time == "2020-01-01T00:00:00Z"
    assert moved.phase_start_time is not None and moved.phase_start_time > "2026"


def test_runs_in_flight_and_the_oldest_per_phase() -> None:
    def run(phase: str | None, since: str) -> dict[str, Any]:
        status = {"phase": phase, "phaseStartTime": since} if phase else None
        return {"metadata": {"creationTimestamp": since}, "status": status}

    now = dt.datetime.now(dt.UTC)
    ago = lambda seconds: (now - dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")  # noqa: E731
    runs = [run("Ingesting", ago(600)), run("Ingesting", ago(60)), run(None, ago(30)), run("Succeeded", ago(9999))]
    registry = CollectorRegistry()
    registry.register(metrics.RunsInFlight(lambda: runs))

    def sample(name: str, phase: str) -> float | None:
        return registry.get_sample_value(name, {"phase": phase})

    assert sample("lakehouse_runs_in_flight", "Ingesting") == 2
    assert sample("lakehouse_runs_in_flight", "Pending") == 1  # created, not yet admitted
    assert sample("lakehouse_runs_in_flight", "Transforming") == 0
    assert 600 <= sample("lakehouse_oldest_run_age_seconds", "Ingesting") < 700  # type: ignore[operator]


def test_a_scrape_survives_an_unreachable_api_server() -> None:
    def unreachable() -> list[dict[str, Any]]:
        raise ConnectionError("refused")

    registry = CollectorRegistry()
    registry.register(metrics.RunsInFlight(unreachable))
    assert registry.get_sample_value("lakehouse_runs_in_flight", {"phase": "Pending"}) is None


def test_every_dataset_counts_from_zero() -> None:
    metrics.count_from_zero(["zero_counted"])

    assert REGISTRY.get_sample_value("lakehouse_runs_total", {"phase": "Failed", "dataset": "zero_counted"}) == 0
    assert REGISTRY.get_sample_value("lakehouse_rows_total", {"dataset": "zero_counted", "kind": "rejected"}) == 0


def test_each_dataset_exports_its_contracts_reject_limit() -> None:
    contracts = ContractRegistry.default()
    registry = CollectorRegistry()
    registry.register(metrics.DatasetLimits(lambda: contracts))

    for contract in contracts:
        value = registry.get_sample_value("lakehouse_dataset_max_reject_ratio", {"dataset": contract.name})
        assert value == contract.max_reject_ratio


def test_a_scrape_survives_a_broken_contract() -> None:
    def broken() -> list[Any]:
        raise ValueError("invalid contract orders.yaml")

    registry = CollectorRegistry()
    registry.register(metrics.DatasetLimits(broken))
    assert registry.get_sample_value("lakehouse_dataset_max_reject_ratio", {"dataset": "orders"}) is None


def test_commit_retry_series_of_every_dataset_start_at_zero() -> None:
    metrics.count_from_zero(["commit_retry_dataset"])
    for cause in metrics.COMMIT_RETRY_CAUSES:
        labels = {"dataset": "commit_retry_dataset", "cause": cause}
        assert REGISTRY.get_sample_value("lakehouse_iceberg_commit_retries_total", labels) == 0
