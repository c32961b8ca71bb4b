"""What a finished run produced, as a DAG publishes it: counts, table, snapshot and how long each stage took."""

from __future__ import annotations

from typing import Any

from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.status import parse_time


def run_summary(name: str, status: dict[str, Any]) -> dict[str, Any]:
    """The summary of a Succeeded run's status. Durations are whole seconds, from the status's timestamps:
    ingest from Validated to Ingested, transform from Ingested to Transformed, total from start to completion."""
    stage_times = {
        c["type"]: c.get("lastTransitionTime") for c in status.get("conditions", []) if c.get("status") == "True"
    }

    def seconds(start: str | None, end: str | None) -> float | None:
        if not start or not end:
            return None
        return (parse_time(end) - parse_time(start)).total_seconds()

    return {
        "run": name,
        "table": status.get("table"),
        "snapshotId": status.get("snapshotId"),
        "counts": status.get("counts"),
        "rawPath": status.get("rawPath"),
        "quarantinePath": status.get("quarantinePath"),
        "engines": status.get("engines"),
        "durationsSeconds": {
            "ingest": seconds(stage_times.get(ConditionType.VALIDATED), stage_times.get(ConditionType.INGESTED)),
            "transform": seconds(stage_times.get(ConditionType.INGESTED), stage_times.get(ConditionType.TRANSFORMED)),
            "total": seconds(status.get("startTime"), status.get("completionTime")),
        },
    }
