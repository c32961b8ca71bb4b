"""CreateIngestionRunOperator: creates the IngestionRun for an upload, or adopts the one that exists."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from lakehouse_airflow.connections import LAKEHOUSE_CONN_ID
from lakehouse_airflow.lineage import parent_annotations
from lakehouse_airflow.runs import RunRequest
from lakehouse_airflow.stages import RunStage, StageOutcome, Verdict, stage_outcome
from lakehouse_airflow.triggers.ingestion_run import IngestionRunTrigger

if TYPE_CHECKING:
    from lakehouse_airflow.hooks.lakehouse import LakehouseHook


class CreateIngestionRunOperator(BaseOperator):
    """Creates the run named after `upload_id` (dataset, source_uri and source_format given), or adopts the run
    that already exists for it (the upload API creates one per upload; a retry of this task finds its own).
    Returns the run's name. A conf that cannot make a run, or names another upload's run, fails at once.

    :param wait_for: a RunStage to wait for before returning (None: return once the run exists). The wait is
        deferred to IngestionRunTrigger when `deferrable` (the default), otherwise polled in the worker.
    """

    template_fields = (
        "upload_id",
        "dataset",
        "source_uri",
        "source_format",
        "ingest_engine",
        "transform_engine",
        "namespace",
    )
    ui_color = "#e8f0c9"

    def __init__(
        self,
        *,
        upload_id: str,
        dataset: str | None = None,
        source_uri: str | None = None,
        source_format: str | None = None,
        ingest_engine: str | None = None,
        transform_engine: str | None = None,
        namespace: str = "lakehouse",
        lakehouse_conn_id: str = LAKEHOUSE_CONN_ID,
        wait_for: RunStage | str | None = None,
        poll_interval: float = 5.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.upload_id = upload_id
        self.dataset = dataset
        self.source_uri = source_uri
        self.source_format = source_format
        self.ingest_engine = ingest_engine
        self.transform_engine = transform_engine
        self.namespace = namespace
        self.lakehouse_conn_id = lakehouse_conn_id
        self.wait_for = RunStage(wait_for) if wait_for else None
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    def execute(self, context: Context) -> str:
        from kubernetes.client.exceptions import ApiException  # the Kubernetes clients load at run time, not parse time

        from lakehouse_airflow.hooks.lakehouse import LakehouseHook

        hook = LakehouseHook(lakehouse_conn_id=self.lakehouse_conn_id)
        annotations = parent_annotations(context["ti"])
        request = RunRequest(
            namespace=self.namespace,
            upload_id=self.upload_id,
            dataset=self.dataset,
            source_uri=self.source_uri,
            source_format=self.source_format,
            ingest_engine=self.ingest_engine,
            transform_engine=self.transform_engine,
            annotations=annotations,
        )
        try:
            name, adopted = hook.create_or_adopt(request)
        except ValueError as error:  # a wrong conf: retrying cannot help
            raise AirflowFailException(str(error)) from error
        self.log.info("%s IngestionRun %s/%s", "adopted" if adopted else "created", self.namespace, name)
        if adopted and annotations:
            try:
                hook.annotate_run(self.namespace, name, annotations)
            except ApiException as error:  # lineage is a courtesy: a Role without `patch` does not fail the run
                self.log.warning(
                    "could not annotate IngestionRun %s/%s with its lineage parent: %s",
                    self.namespace,
                    name,
                    error.reason,
                )
        if self.wait_for is None:
            return name
        outcome = self._outcome(hook, name)
        if outcome.verdict is Verdict.WAITING and self.deferrable:
            self.defer(
                trigger=IngestionRunTrigger(
                    self.namespace, name, str(self.wait_for), self.lakehouse_conn_id, self.poll_interval
                ),
                method_name="execute_complete",
                kwargs={"name": name},
                timeout=self.execution_timeout or timedelta(days=1),
            )
        while outcome.verdict is Verdict.WAITING:  # not deferrable: the execution_timeout bounds it
            time.sleep(self.poll_interval)
            outcome = self._outcome(hook, name)
        return self.execute_complete(context, outcome.to_event(), name)

    def execute_complete(self, context: Context, event: dict[str, Any], name: str) -> str:
        if event["verdict"] != Verdict.REACHED:
            raise AirflowFailException(event["message"])
        return name

    def _outcome(self, hook: LakehouseHook, name: str) -> StageOutcome:
        assert self.wait_for is not None
        return stage_outcome(hook.get_run(self.namespace, name), self.wait_for, self.namespace, name)
