"""IngestionRunSensor: waits until a run reaches a stage; deferred to IngestionRunTrigger by default."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Context
from airflow.sdk.bases.sensor import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from lakehouse_airflow.connections import LAKEHOUSE_CONN_ID
from lakehouse_airflow.stages import RunStage, StageOutcome, Verdict, stage_outcome
from lakehouse_airflow.triggers.ingestion_run import IngestionRunTrigger


class IngestionRunSensor(BaseSensorOperator):
    """Succeeds, with the run's status as its XCom, once `run_name` reaches `stage`; fails at once, without
    retries, with the run's reason when the run failed before it got there.

    :param run_name: the IngestionRun (its upload id); templated, so it can be the create task's output.
    :param stage: a RunStage: accepted, raw_ready, transform_started or succeeded.
    :param deferrable: wait in the triggerer (no worker slot held) instead of poking.
    """

    template_fields = ("run_name", "namespace")
    ui_color = "#c9e4f6"

    def __init__(
        self,
        *,
        run_name: str,
        stage: RunStage | str,
        namespace: str = "lakehouse",
        lakehouse_conn_id: str = LAKEHOUSE_CONN_ID,
        poll_interval: float = 5.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.run_name = run_name
        self.stage = RunStage(stage)
        self.namespace = namespace
        self.lakehouse_conn_id = lakehouse_conn_id
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    def _outcome(self) -> StageOutcome:
        from lakehouse_airflow.hooks.lakehouse import LakehouseHook  # the Kubernetes clients load at run time

        run = LakehouseHook(lakehouse_conn_id=self.lakehouse_conn_id).get_run(self.namespace, self.run_name)
        return stage_outcome(run, self.stage, self.namespace, self.run_name)

    def poke(self, context: Context) -> PokeReturnValue:
        outcome = self._outcome()
        self.log.info("%s", outcome.message)
        if outcome.verdict is Verdict.FAILED:
            raise AirflowFailException(outcome.message)
        return PokeReturnValue(is_done=outcome.verdict is Verdict.REACHED, xcom_value=outcome.status)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        outcome = self._outcome()  # a stage already reached (or failed) needs no trigger
        self.log.info("%s", outcome.message)
        if outcome.verdict is Verdict.WAITING:
            self.defer(
                trigger=IngestionRunTrigger(
                    self.namespace, self.run_name, str(self.stage), self.lakehouse_conn_id, self.poll_interval
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout),
            )
        return self._finish(outcome.to_event())

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        return self._finish(event)

    def _finish(self, event: dict[str, Any]) -> dict[str, Any]:
        if event["verdict"] != Verdict.REACHED:
            raise AirflowFailException(event["message"])
        self.log.info("%s", event["message"])
        return event["status"]
