"""Runs that need a person: in one phase past a threshold, or failed since the last check.

The check fails with the list, so Airflow's own alerting (on_failure_callback, email, Slack) applies.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException
from lakehouse_airflow.monitoring import findings

NAMESPACE = os.environ.get("LAKEHOUSE_NAMESPACE", "lakehouse")


@dag(
    dag_id="lakehouse_monitoring",
    schedule=dt.timedelta(minutes=15),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["lakehouse"],
    params={
        "namespace": Param(NAMESPACE, type="string"),
        # The operator's LakehouseRunStuck alert uses the same 30 minutes.
        "stuck_minutes": Param(30, type="integer", minimum=1),
        "lookback_minutes": Param(15, type="integer", minimum=1),
    },
    doc_md=__doc__,
)
def lakehouse_monitoring() -> None:
    @task
    def check_runs(*, params: Any = None, data_interval_start: Any = None, dag_run: Any = None) -> int:
        from lakehouse_airflow.hooks.lakehouse import LakehouseHook  # the Kubernetes clients load at run time

        runs = LakehouseHook().list_runs(params["namespace"])
        now = dt.datetime.now(dt.UTC)
        # A scheduled check looks back to the previous one (its data interval); one triggered by hand, lookback_minutes.
        scheduled = dag_run.run_type == "scheduled" and data_interval_start is not None
        since = data_interval_start if scheduled else now - dt.timedelta(minutes=params["lookback_minutes"])
        found = findings(runs, now, dt.timedelta(minutes=params["stuck_minutes"]), since)
        if found:
            raise AirflowFailException(f"{len(found)} IngestionRuns need attention:\n" + "\n".join(map(str, found)))
        print(f"{len(runs)} IngestionRuns in {params['namespace']}: none stuck, none failed since {since}")
        return len(runs)

    check_runs()


lakehouse_monitoring()
