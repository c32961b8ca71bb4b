"""IngestionRunTrigger: waits in the triggerer, holding no worker slot, until a run reaches a stage or fails.

Everything it needs is in its kwargs (serialize), so a triggerer that was killed and started again, or another
triggerer that takes the trigger over, resumes the wait where it was: the run's status is the state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from lakehouse_airflow.connections import LAKEHOUSE_CONN_ID
from lakehouse_airflow.stages import RunStage, Verdict, stage_outcome


class IngestionRunTrigger(BaseTrigger):
    def __init__(
        self,
        namespace: str,
        name: str,
        stage: str,
        lakehouse_conn_id: str = LAKEHOUSE_CONN_ID,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.namespace = namespace
        self.name = name
        self.stage = RunStage(stage)
        self.lakehouse_conn_id = lakehouse_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "namespace": self.namespace,
                "name": self.name,
                "stage": str(self.stage),
                "lakehouse_conn_id": self.lakehouse_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import aiohttp
        from kubernetes_asyncio.client.exceptions import ApiException

        from lakehouse_airflow.hooks.lakehouse import LakehouseAsyncHook

        hook = LakehouseAsyncHook(lakehouse_conn_id=self.lakehouse_conn_id)
        async with hook.get_conn() as api:
            while True:
                try:
                    run = await hook.get_run(api, self.namespace, self.name)
                except (TimeoutError, ApiException, aiohttp.ClientError) as error:
                    # The API server restarting or refusing for a moment is no verdict on the run: ask again.
                    status = getattr(error, "status", None)
                    if status is not None and status < 500 and status != 429:
                        raise
                    self.log.warning(
                        "reading IngestionRun %s/%s failed, will retry: %s", self.namespace, self.name, error
                    )
                else:
                    outcome = stage_outcome(run, self.stage, self.namespace, self.name)
                    if outcome.verdict is not Verdict.WAITING:
                        yield TriggerEvent(outcome.to_event())
                        return
                    self.log.debug("%s", outcome.message)
                await asyncio.sleep(self.poll_interval)
