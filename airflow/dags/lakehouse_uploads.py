"""Event-driven start: a `lakehouse_ingest` run per upload, from the file-uploaded topic.

The file-uploaded asset's watcher (the Kafka provider's message-queue trigger, in the triggerer) records an asset
event for each upload of this namespace; the scheduler may fold several into one run of this DAG, which starts one
`lakehouse_ingest` run per upload, named after it, so an event delivered twice starts nothing new.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task
from lakehouse_airflow.assets import FILE_UPLOADED_TOPIC, topic_asset

NAMESPACE = os.environ.get("LAKEHOUSE_NAMESPACE", "lakehouse")
FILE_UPLOADED = topic_asset(FILE_UPLOADED_TOPIC, NAMESPACE)


@dag(
    dag_id="lakehouse_uploads",
    schedule=[FILE_UPLOADED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakehouse"],
    doc_md=__doc__,
)
def lakehouse_uploads() -> None:
    @task
    def ingest_runs(*, triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        runs: dict[str, dict[str, Any]] = {}
        for event in triggering_asset_events[FILE_UPLOADED]:
            data = event.extra["payload"]
            runs[data["runId"]] = {
                "trigger_run_id": f"upload__{data['runId']}",
                "conf": {"upload_id": data["runId"], "namespace": data["namespace"]},
            }
        print(f"starting lakehouse_ingest for {sorted(runs)}")
        return list(runs.values())

    TriggerDagRunOperator.partial(
        task_id="start_ingest", trigger_dag_id="lakehouse_ingest", skip_when_already_exists=True
    ).expand_kwargs(ingest_runs())


lakehouse_uploads()
