"""A downstream DAG of the bronze-layer-complete asset: it runs when a bronze table of this namespace has new rows.

Copy it as the start of a silver job: each triggering event's payload names the table, snapshot and rows.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import dag, task
from lakehouse_airflow.assets import BRONZE_LAYER_COMPLETE_TOPIC, topic_asset

NAMESPACE = os.environ.get("LAKEHOUSE_NAMESPACE", "lakehouse")
BRONZE_LAYER_COMPLETE = topic_asset(BRONZE_LAYER_COMPLETE_TOPIC, NAMESPACE)


@dag(
    dag_id="lakehouse_bronze_updates",
    schedule=[BRONZE_LAYER_COMPLETE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakehouse"],
    doc_md=__doc__,
)
def lakehouse_bronze_updates() -> None:
    @task
    def new_snapshots(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        snapshots = [
            {key: event.extra["payload"].get(key) for key in ("runId", "table", "snapshotId", "rowsWritten")}
            for event in triggering_asset_events[BRONZE_LAYER_COMPLETE]
        ]
        print(f"new bronze snapshots: {snapshots}")
        return snapshots

    new_snapshots()


lakehouse_bronze_updates()
