"""Prometheus metrics of the operator."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUNS_BY_PHASE = Counter("lakehouse_runs_total", "IngestionRun transitions into each phase", ["phase", "dataset"])
STAGE_SECONDS = Histogram(
    "lakehouse_stage_duration_seconds",
    "Time spent in each stage attempt",
    ["stage", "engine"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
ROWS = Counter("lakehouse_rows_total", "Rows seen by the pipeline", ["dataset", "kind"])  # input|valid|rejected|written
STAGE_FAILURES = Counter("lakehouse_stage_failures_total", "Failed stage attempts", ["stage", "reason"])
# The outbox relay (outbox_relay.py): events that wait for Kafka, and what became of each attempt to send one.
OUTBOX_DEPTH = Gauge("lakehouse_outbox_depth", "Pipeline events in the outbox not yet acknowledged by Kafka")
EVENTS_PUBLISHED = Counter("lakehouse_events_published_total", "Pipeline events Kafka acknowledged", ["topic"])
EVENT_PUBLISH_FAILURES = Counter(
    "lakehouse_event_publish_failures_total",
    "Attempts to publish a pipeline event that Kafka did not acknowledge",
    ["topic"],
)
