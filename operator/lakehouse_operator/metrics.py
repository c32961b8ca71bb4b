"""Prometheus metrics of the operator.

Stage durations are measured from the run's status (phaseStartTime, written when a phase is entered)
to the moment the run leaves that phase, so they span every poll, retry and operator restart in
between. Runs in flight are read from the Kubernetes API at scrape time, so they are right after a
restart too, and so is each dataset's reject limit, from the contracts the operator runs with.

The alert rules and dashboards that read these metrics: charts/lakehouse/files/prometheus-rules.yaml and
charts/lakehouse/files/dashboards/ (a test holds every name they use to the ones defined here).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lakehouse.contracts.model import DatasetContract
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.status import IngestionRunStatus, parse_time
from lakehouse.maintenance.runner import TASKS, MaintenanceReport

log = logging.getLogger(__name__)

RUNS_BY_PHASE = Counter("lakehouse_runs_total", "IngestionRun transitions into each phase", ["phase", "dataset"])
STAGE_SECONDS = Histogram(
    "lakehouse_stage_duration_seconds",
    "Time a run spent in a stage, from entering its phase to leaving it (across polls and restarts)",
    ["stage", "engine"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600),
)
ROWS = Counter("lakehouse_rows_total", "Rows seen by the pipeline", ["dataset", "kind"])
ROW_KINDS = ("input", "valid", "rejected", "written")
STAGE_FAILURES = Counter("lakehouse_stage_failures_total", "Failed stage attempts", ["stage", "reason"])
# Commits of bronze rows by the Arrow engine that failed and are tried again: `conflict` (another writer committed
# to the table first; retried after a short random pause on fresh metadata, lakehouse/bronze/writer.py),
# `catalog-unavailable` and `storage-unavailable` (retried by the transform stage with its backoff, the run's last
# attempt included).
ICEBERG_COMMIT_RETRIES = Counter(
    "lakehouse_iceberg_commit_retries_total",
    "Iceberg commits of bronze rows tried again, by cause",
    ["dataset", "cause"],
)
COMMIT_RETRY_CAUSES = ("conflict", "catalog-unavailable", "storage-unavailable")
BUILD = Info("lakehouse_build", "The operator's version")
BUILD.info({"version": importlib.metadata.version("lakehouse-ingest"), "component": "operator"})

# The work of each phase that is not final, as the metrics and the failure events name it.
STAGE_OF_PHASE: dict[Phase, str] = {
    Phase.PENDING: "validate",
    Phase.INGESTING: "ingest",
    Phase.RAW_READY: "start-transform",
    Phase.TRANSFORMING: "transform",
}


def count_from_zero(datasets: Iterable[str]) -> None:
    """Creates the runs, rows, commit-retry and maintenance series of every dataset at 0. A counter that appears
    with its first increment shows Prometheus no increase, so without this the first failed run after a start
    would raise no alert, and a dataset that never succeeded could not be told from one not yet seen."""
    for dataset in datasets:
        for phase in Phase:
            RUNS_BY_PHASE.labels(phase.value, dataset)
        for kind in ROW_KINDS:
            ROWS.labels(dataset, kind)
        for cause in COMMIT_RETRY_CAUSES:
            ICEBERG_COMMIT_RETRIES.labels(dataset, cause)
        for task in TASKS:
            for outcome in ("succeeded", "failed"):
                MAINTENANCE_TASKS.labels(dataset, task, outcome)


def observe_stage(left: IngestionRunStatus, now: dt.datetime) -> None:
    """Records how long the run spent in the phase it just left."""
    if left.phase is None or left.phase.is_terminal or not left.phase_start_time:
        return
    seconds = (now - parse_time(left.phase_start_time)).total_seconds()
    STAGE_SECONDS.labels(STAGE_OF_PHASE[left.phase], left.engine_in(left.phase) or "none").observe(max(0.0, seconds))


class RunsInFlight(Collector):
    """lakehouse_runs_in_flight and lakehouse_oldest_run_age_seconds per phase, from one list of the runs."""

    def __init__(self, list_runs: Callable[[], list[dict[str, Any]]]) -> None:
        self._list_runs = list_runs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily(
            "lakehouse_runs_in_flight", "IngestionRuns in each phase that is not final", labels=["phase"]
        )
        oldest = GaugeMetricFamily(
            "lakehouse_oldest_run_age_seconds", "How long the oldest run has been in each phase", labels=["phase"]
        )
        try:
            runs = self._list_runs()
        except Exception as error:  # a scrape must not fail because the API server is away
            log.warning("cannot list IngestionRuns for the in-flight metrics: %s", error)
            return
        now = dt.datetime.now(dt.UTC)
        counts = dict.fromkeys(STAGE_OF_PHASE, 0)
        ages = dict.fromkeys(STAGE_OF_PHASE, 0.0)
        for run in runs:
            status = IngestionRunStatus.from_body(run.get("status"))
            phase = status.phase or Phase.PENDING
            if phase.is_terminal:
                continue
            counts[phase] += 1
            since = status.phase_start_time or run["metadata"].get("creationTimestamp")
            if since:
                ages[phase] = max(ages[phase], (now - parse_time(since)).total_seconds())
        for phase in STAGE_OF_PHASE:
            in_flight.add_metric([phase.value], counts[phase])
            oldest.add_metric([phase.value], ages[phase])
        yield in_flight
        yield oldest


class DatasetLimits(Collector):
    """lakehouse_dataset_max_reject_ratio per dataset: the contract's limit the reject-ratio alert compares to."""

    def __init__(self, contracts: Callable[[], Iterable[DatasetContract]]) -> None:
        self._contracts = contracts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        limit = GaugeMetricFamily(
            "lakehouse_dataset_max_reject_ratio",
            "The share of a dataset's input rows that may be rejected (its contract's max_reject_ratio)",
            labels=["dataset"],
        )
        try:
            contracts = list(self._contracts())
        except Exception as error:  # an invalid contract fails its runs, not every scrape
            log.warning("cannot load the dataset contracts for their reject limits: %s", error)
            return
        for contract in contracts:
            limit.add_metric([contract.name], contract.max_reject_ratio)
        yield limit


# The outbox relay (outbox_relay.py): events that wait for Kafka, and what became of each attempt to send one.
OUTBOX_DEPTH = Gauge("lakehouse_outbox_depth", "Pipeline events in the outbox not yet acknowledged by Kafka")
LINEAGE_OUTBOX_DEPTH = Gauge(
    "lakehouse_lineage_outbox_depth", "OpenLineage events in the lineage outbox not yet taken by the lineage backend"
)
EVENTS_PUBLISHED = Counter("lakehouse_events_published_total", "Pipeline events Kafka acknowledged", ["topic"])
EVENT_PUBLISH_FAILURES = Counter(
    "lakehouse_event_publish_failures_total",
    "Attempts to publish a pipeline event that Kafka did not acknowledge",
    ["topic"],
)

# Table maintenance (maintenance_scheduler.py): each task of each scheduled run by outcome, its duration, and what
# it did. `lakehouse maintenance run` by hand is a process of its own: its runs are in the maintenance log only.
MAINTENANCE_TASKS = Counter(
    "lakehouse_maintenance_tasks_total",
    "Maintenance tasks run on bronze tables by the operator, by outcome (succeeded, failed)",
    ["dataset", "task", "outcome"],
)
MAINTENANCE_SECONDS = Histogram(
    "lakehouse_maintenance_task_duration_seconds",
    "Time a maintenance task took",
    ["task"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600),
)
COMPACTION_FILES = Counter(
    "lakehouse_compaction_files_total", "Data files compaction rewrote and wrote", ["dataset", "kind"]
)
COMPACTION_CONFLICTS = Counter(
    "lakehouse_compaction_conflicts_total",
    "Compaction commits refused because another writer committed first, then retried on fresh metadata",
    ["dataset"],
)
SNAPSHOTS_EXPIRED = Counter("lakehouse_snapshots_expired_total", "Snapshots expired from bronze tables", ["dataset"])
ORPHAN_FILES_REMOVED = Counter(
    "lakehouse_orphan_files_removed_total", "Files no snapshot referenced, deleted from bronze tables", ["dataset"]
)


def observe_maintenance(report: MaintenanceReport) -> None:
    """Counts what one maintenance run did (nothing for a skipped one)."""
    for task, seconds in report.task_seconds.items():
        MAINTENANCE_TASKS.labels(report.dataset, task, "failed" if task in report.failures else "succeeded").inc()
        MAINTENANCE_SECONDS.labels(task).observe(seconds)
    COMPACTION_FILES.labels(report.dataset, "rewritten").inc(report.compaction.files_rewritten)
    COMPACTION_FILES.labels(report.dataset, "written").inc(report.compaction.files_written)
    COMPACTION_CONFLICTS.labels(report.dataset).inc(report.compaction.conflicts)
    SNAPSHOTS_EXPIRED.labels(report.dataset).inc(report.snapshots_expired)
    ORPHAN_FILES_REMOVED.labels(report.dataset).inc(report.orphan_files_removed)
