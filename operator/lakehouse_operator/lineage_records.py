"""A phase change's OpenLineage event, added to the `lineage_outbox` in the transaction of its rows.

RunRecords calls `LineageRecorder.add` for every Record; the change that accepts a run adds START, the one to
RawReady RUNNING, Succeeded COMPLETE and Failed FAIL (lakehouse/lineage/events.py). The event's outbox id is stable
per lineage run and event type, so a step retried after its records were written adds nothing, and the lineage relay
(an OutboxRelay over that table) sends each event at least once, in the order of the run's phases.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from openlineage.client.event_v2 import RunEvent

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractError, ContractRegistry, UnknownDatasetError
from lakehouse.db.metadata import MetadataTransaction
from lakehouse.events import PipelineEvent
from lakehouse.ingest.validation import CheckResult
from lakehouse.k8s.ingestionrun.lineage import PARENT_ANNOTATION, ParentRun, parse_parent
from lakehouse.k8s.ingestionrun.status import IngestionRunStatus
from lakehouse.lineage import events
from lakehouse.lineage.naming import lineage_run_id
from lakehouse_operator.records import Accepted, IngestSucceeded, Record, RunFailed, TransformSucceeded

log = logging.getLogger(__name__)


class LineageRecorder:
    def __init__(
        self, job_namespace: str, catalog: Callable[[], events.CatalogFacts], contracts: Callable[[], ContractRegistry]
    ) -> None:
        self._job_namespace = job_namespace
        self._catalog = catalog  # read when a run first commits: the operator may run without a catalog until then
        self._contracts = contracts

    def add(self, writes: MetadataTransaction, body: dict[str, Any], record: Record, at: dt.datetime) -> None:
        event = self.event(body, record, at, writes)
        if event is None or event.eventType is None:
            return
        writes.add_lineage(
            PipelineEvent(
                topic=f"openlineage.{event.eventType.value}",
                run_id=event.run.runId,  # the outbox keeps one run's events in order, and a re-created run apart
                upload_id=body["spec"]["uploadId"],
                data=events.to_json(event),
                time=at,
            )
        )

    def event(
        self, body: dict[str, Any], record: Record, at: dt.datetime, writes: MetadataTransaction
    ) -> RunEvent | None:
        """The event `record` announces, or None for the changes that announce none. `writes` reads the quality
        counts the run's ingest recorded, so COMPLETE and FAIL carry them as RUNNING did."""
        status = IngestionRunStatus.from_body(body.get("status"))
        name = body["metadata"]["name"]
        match record:
            case Accepted():
                return events.start(self._run(body), at)
            case IngestSucceeded():
                outcome = record.outcome
                ingest = events.IngestFacts(
                    raw_uri=outcome.raw_uri,
                    quarantine_uri=outcome.quarantine_uri,
                    valid_rows=outcome.valid_rows,
                    rejected_rows=outcome.rejected_rows,
                    input_rows=outcome.input_rows,
                    bytes_in=outcome.bytes_in,
                    checks=list(outcome.checks),
                )
                return events.running(self._run(body), at, ingest)
            case TransformSucceeded():
                outcome = record.outcome
                table = events.TableFacts(outcome.table, outcome.snapshot_id, outcome.rows_written, self._catalog())
                ingested = _ingested(status, writes.quality_checks(name))
                return events.complete(self._run(body, record.run.contract), at, ingested, table)
            case RunFailed():
                ingested = _ingested(status, writes.quality_checks(name))
                return events.fail(self._run(body), at, ingested, record.reason, record.message)
            case _:
                return None

    def _run(self, body: dict[str, Any], contract: DatasetContract | None = None) -> events.RunFacts:
        spec = body["spec"]
        pinned = IngestionRunStatus.from_body(body.get("status")).contract
        if contract is None and pinned:
            contract = DatasetContract.model_validate(pinned)  # the run's own, fixed at validation
        if contract is None:
            try:
                contract = self._contracts().get(spec["dataset"])
            except (UnknownDatasetError, ContractError):
                contract = None  # an unknown dataset: its run fails, and its events name no schema
        return events.RunFacts(
            run_id=lineage_run_id(body["metadata"]["uid"]),
            job_namespace=self._job_namespace,
            dataset=spec["dataset"],
            contract=contract,
            source_uri=spec["source"]["uri"],
            parent=_parent(body),
        )


def _ingested(status: IngestionRunStatus, checks: list[CheckResult]) -> events.IngestFacts | None:
    """raw/ and quarantine/ as the status has them once ingest is done (None before), with the ingest's checks."""
    if not status.raw_path:
        return None
    counts = status.counts
    return events.IngestFacts(
        raw_uri=status.raw_path,
        quarantine_uri=status.quarantine_path,
        valid_rows=counts.valid if counts else None,
        rejected_rows=counts.rejected if counts else None,
        input_rows=counts.input if counts else None,
        checks=checks,
    )


def _parent(body: dict[str, Any]) -> ParentRun | None:
    value = (body["metadata"].get("annotations") or {}).get(PARENT_ANNOTATION)
    if not value:
        return None
    try:
        return parse_parent(value)
    except ValueError as error:  # a scheduler's mistake costs the run its parent link, never its data
        log.warning("no parent in the run's lineage: %s", error)
        return None
