"""Airflow owns the workflow, the operator does the work: one DAG run = one IngestionRun, in the platform's steps.

1. submit_run: create the run from the conf, or adopt the run that exists for the upload (the API made it);
2. wait_raw_ready: ingest done (NiFi or built-in), raw and quarantine written;
3. wait_transform_started: the transform began (a SparkApplication, or the fast path);
4. wait_succeeded: the bronze rows are committed;
5. publish_summary: counts, table, snapshot and durations, returned and recorded as the bronze table's asset event.

Each wait is deferred to the triggerer. A failed run fails the task waiting on the stage it failed in, with the
run's reason, without retries. Trigger with {"upload_id": "u-123"} to adopt the API's run, or with dataset,
source_uri and format as well to create it; lakehouse_uploads starts one per file-uploaded event.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from lakehouse_airflow.assets import BRONZE_TABLES, bronze_table
from lakehouse_airflow.operators.ingestion_run import CreateIngestionRunOperator
from lakehouse_airflow.sensors.ingestion_run import IngestionRunSensor
from lakehouse_airflow.stages import RunStage
from lakehouse_airflow.summary import run_summary

from lakehouse.formats import SourceFormat
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName

NAMESPACE = os.environ.get("LAKEHOUSE_NAMESPACE", "lakehouse")
POLL_SECONDS = float(os.environ.get("LAKEHOUSE_AIRFLOW_POLL_SECONDS", "5"))
# Without a triggerer, the waits poke from a worker in reschedule mode instead (no slot held between pokes).
DEFERRABLE = os.environ.get("LAKEHOUSE_AIRFLOW_DEFERRABLE", "true").lower() != "false"


@dag(
    dag_id="lakehouse_ingest",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=64,
    tags=["lakehouse"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    render_template_as_native_obj=True,  # an absent conf value stays None, not "None"
    params={
        "upload_id": Param(type="string", description="the run's name; an existing run is adopted"),
        "dataset": Param(None, type=["null", "string"]),
        "source_uri": Param(
            None, type=["null", "string"], description="the upload: s3://<uploads bucket>/<dataset>/<date>/<id>/<file>"
        ),
        "format": Param(None, type=["null", "string"], enum=[None, *SourceFormat]),
        "ingest_engine": Param(None, type=["null", "string"], enum=[None, *IngestEngineName]),
        "transform_engine": Param(None, type=["null", "string"], enum=[None, *TransformEngineName]),
        "namespace": Param(NAMESPACE, type="string"),
    },
    doc_md=__doc__,
)
def lakehouse_ingest() -> None:
    submit_run = CreateIngestionRunOperator(
        task_id="submit_run",
        upload_id="{{ params.upload_id }}",
        dataset="{{ params.dataset }}",
        source_uri="{{ params.source_uri }}",
        source_format="{{ params.format }}",
        ingest_engine="{{ params.ingest_engine }}",
        transform_engine="{{ params.transform_engine }}",
        namespace="{{ params.namespace }}",
    )
    waits = [
        IngestionRunSensor(
            task_id=f"wait_{stage}",
            run_name=submit_run.output,
            stage=stage,
            namespace="{{ params.namespace }}",
            poll_interval=POLL_SECONDS,
            timeout=6 * 3600,
            deferrable=DEFERRABLE,
            mode="poke" if DEFERRABLE else "reschedule",
        )
        for stage in (RunStage.RAW_READY, RunStage.TRANSFORM_STARTED, RunStage.SUCCEEDED)
    ]

    @task(outlets=[BRONZE_TABLES])
    def publish_summary(name: str, status: dict[str, Any]) -> dict[str, Any]:
        summary = run_summary(name, status)
        print(f"bronze rows committed: {summary}")
        get_current_context()["outlet_events"][BRONZE_TABLES].add(bronze_table(summary["table"]), extra=summary)
        return summary

    submit_run >> waits[0] >> waits[1] >> waits[2]
    publish_summary(submit_run.output, waits[2].output)


lakehouse_ingest()
