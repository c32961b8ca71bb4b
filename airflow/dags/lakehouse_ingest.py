"""Airflow owns the workflow, the operator does the work: one DAG run = one IngestionRun.

Trigger with a conf, for example
    {"upload_id": "u-123", "dataset": "orders", "format": "csv",
     "source_uri": "s3://uploads/orders/2026-12-01/u-123/x.csv"}
to create the run, or just {"upload_id": "u-123"} to adopt the run the upload API already created.
The sensor waits in reschedule mode (no worker slot held) until the run is Succeeded, and fails the
DAG run with the run's reason when it is Failed. Retries are safe: the run is keyed by the upload id.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException
from lakehouse_runs import RunFailedError, RunRequest, create_or_adopt, custom_objects, run_status

from lakehouse.formats import SourceFormat
from lakehouse.k8s.ingestionrun.spec import IngestEngineName, TransformEngineName

NAMESPACE = os.environ.get("LAKEHOUSE_NAMESPACE", "lakehouse")


@dag(
    dag_id="lakehouse_ingest",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=16,
    tags=["lakehouse"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
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
    @task
    def submit_run() -> str:
        params = get_current_context()["params"]
        request = RunRequest(
            namespace=params["namespace"],
            upload_id=params["upload_id"],
            dataset=params.get("dataset"),
            source_uri=params.get("source_uri"),
            source_format=params.get("format"),
            ingest_engine=params.get("ingest_engine"),
            transform_engine=params.get("transform_engine"),
        )
        try:
            name, adopted = create_or_adopt(custom_objects(), request)
        except ValueError as error:  # wrong conf: retrying cannot help
            raise AirflowFailException(str(error)) from error
        print(f"{'adopted' if adopted else 'created'} IngestionRun {request.namespace}/{name}")
        return name

    @task.sensor(poke_interval=5, timeout=6 * 3600, mode="reschedule")
    def wait_for_run(name: str) -> PokeReturnValue:
        namespace = get_current_context()["params"]["namespace"]
        try:
            status = run_status(custom_objects(), namespace, name)
        except RunFailedError as error:
            raise AirflowFailException(str(error)) from error
        print(f"{name}: {status.get('phase')} - {status.get('message')}")
        return PokeReturnValue(is_done=status.get("phase") == "Succeeded", xcom_value=status)

    @task
    def report(status: dict[str, Any]) -> dict[str, Any]:
        summary = {key: status.get(key) for key in ("table", "snapshotId", "counts", "rawPath", "quarantinePath")}
        print(f"bronze rows committed: {summary}")
        return summary

    report(wait_for_run(submit_run()))


lakehouse_ingest()
