"""A run's OpenLineage events, built from what the run knows at each phase change (pure functions).

    Pending (accepted)        START     input: the upload
    RawReady (ingested)       RUNNING   + outputs raw/ and quarantine/, data quality of the upload
    Succeeded                 COMPLETE  + output the bronze table at its new snapshot
    Failed                    FAIL      with the reason and message (errorMessage facet)

Each event carries everything known so far, so a backend that keeps only the last event of a run still has the
whole picture. Facets: schema (from the dataset contract), dataQualityAssertions with each check's passed and failed
counts and dataQualityMetrics on the upload, outputStatistics on every output, catalog and datasetVersion (the
Iceberg snapshot id) on the table, parent when a scheduler named one (lakehouse.k8s.ingestionrun.lineage), and
errorMessage on failure.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState, set_producer
from openlineage.client.facet_v2 import (
    catalog_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

from lakehouse.contracts.arrow_schema import bronze_arrow_schema, raw_schema
from lakehouse.contracts.model import DatasetContract
from lakehouse.ingest.validation import CheckResult
from lakehouse.k8s.ingestionrun.lineage import ParentRun
from lakehouse.lineage.naming import job_name, s3_dataset, table_dataset

PRODUCER = "https://github.com/lakehouse-ingest/lakehouse-ingest/tree/main/operator"
# Facets take the producer from the client's module default; the operator is the only producer in its process.
set_producer(PRODUCER)


@dataclass(frozen=True)
class CatalogFacts:
    """The Iceberg catalog the bronze tables are in, and the namespace their lineage datasets use."""

    table_namespace: str
    catalog_name: str
    catalog_uri: str
    warehouse: str


@dataclass(frozen=True)
class RunFacts:
    """What every event of one IngestionRun says about it."""

    run_id: str  # the lineage run id (naming.lineage_run_id)
    job_namespace: str
    dataset: str
    contract: DatasetContract | None  # None for a dataset without a contract (its run fails): no schema facets
    source_uri: str
    parent: ParentRun | None = None


@dataclass(frozen=True)
class IngestFacts:
    raw_uri: str
    quarantine_uri: str | None
    valid_rows: int | None = None
    rejected_rows: int | None = None
    input_rows: int | None = None
    bytes_in: int | None = None
    checks: list[CheckResult] = field(default_factory=list)


@dataclass(frozen=True)
class TableFacts:
    identifier: str
    snapshot_id: int | None
    rows_written: int
    catalog: CatalogFacts


def start(run: RunFacts, at: dt.datetime) -> RunEvent:
    return _event(RunState.START, run, at)


def running(run: RunFacts, at: dt.datetime, ingest: IngestFacts) -> RunEvent:
    return _event(RunState.RUNNING, run, at, ingest=ingest)


def complete(run: RunFacts, at: dt.datetime, ingest: IngestFacts | None, table: TableFacts) -> RunEvent:
    return _event(RunState.COMPLETE, run, at, ingest=ingest, table=table)


def fail(run: RunFacts, at: dt.datetime, ingest: IngestFacts | None, reason: str, message: str) -> RunEvent:
    error = error_message_run.ErrorMessageRunFacet(message=f"{reason}: {message}", programmingLanguage="python")
    return _event(RunState.FAIL, run, at, ingest=ingest, run_facets={"errorMessage": error})


def _event(
    state: RunState,
    run: RunFacts,
    at: dt.datetime,
    *,
    ingest: IngestFacts | None = None,
    table: TableFacts | None = None,
    run_facets: dict[str, Any] | None = None,
) -> RunEvent:
    facets: dict[str, Any] = dict(run_facets or {})
    if run.parent is not None:
        facets["parent"] = parent_facet(run.parent)
    outputs = _ingest_outputs(run.contract, ingest) if ingest else []
    if table is not None:
        outputs.append(_table_output(run.contract, table))
    return RunEvent(
        eventType=state,
        eventTime=at.astimezone(dt.UTC).isoformat(),
        run=Run(runId=run.run_id, facets=facets),
        job=Job(
            namespace=run.job_namespace,
            name=job_name(run.dataset),
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="LAKEHOUSE", jobType="INGESTION_RUN"
                )
            },
        ),
        inputs=[_upload_input(run, ingest)],
        outputs=outputs,
        producer=PRODUCER,
    )


def parent_facet(parent: ParentRun) -> parent_run.ParentRunFacet:
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent.run_id),
        job=parent_run.Job(namespace=parent.job_namespace, name=parent.job_name),
    )


def _upload_input(run: RunFacts, ingest: IngestFacts | None) -> InputDataset:
    namespace, name = s3_dataset(run.source_uri)
    facets: dict[str, Any] = {}
    if run.contract is not None:  # the columns the contract declares for the file
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type, description=c.description or None)
                for c in run.contract.columns
            ]
        )
    input_facets: dict[str, Any] = {}
    if ingest is not None and ingest.checks:
        input_facets = quality_facets(ingest)
    return InputDataset(namespace=namespace, name=name, facets=facets, inputFacets=input_facets)


def quality_facets(ingest: IngestFacts) -> dict[str, Any]:
    """The contract's checks on the upload: one assertion per check and column, its failed rows as `actual` (0
    expected) and both counts in `params`; row and byte counts and each column's nulls as metrics."""
    assertions = [
        data_quality_assertions_dataset.Assertion(
            assertion=check.check_name,
            success=check.failed == 0,
            column=check.column or None,
            expected="0",
            actual=str(check.failed),
            params={"passed": check.passed, "failed": check.failed},
        )
        for check in ingest.checks
    ]
    nulls = {
        check.column: data_quality_metrics_input_dataset.ColumnMetrics(nullCount=check.failed)
        for check in ingest.checks
        if check.check_name == "not_null" and check.column
    }
    return {
        "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=assertions
        ),
        "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            columnMetrics=nulls, rowCount=ingest.input_rows, bytes=ingest.bytes_in
        ),
    }


def _ingest_outputs(contract: DatasetContract | None, ingest: IngestFacts) -> list[OutputDataset]:
    namespace, name = s3_dataset(ingest.raw_uri)
    outputs = [
        OutputDataset(
            namespace=namespace,
            name=name,
            facets={"schema": schema_facet(raw_schema(contract))} if contract else {},
            outputFacets=_statistics(ingest.valid_rows),
        )
    ]
    if ingest.quarantine_uri:
        namespace, name = s3_dataset(ingest.quarantine_uri)
        outputs.append(OutputDataset(namespace=namespace, name=name, outputFacets=_statistics(ingest.rejected_rows)))
    return outputs


def _table_output(contract: DatasetContract | None, table: TableFacts) -> OutputDataset:
    namespace, name = table_dataset(table.catalog.table_namespace, table.identifier)
    facets: dict[str, Any] = {
        "catalog": catalog_dataset.CatalogDatasetFacet(
            framework="iceberg",
            type="rest",
            name=table.catalog.catalog_name,
            metadataUri=table.catalog.catalog_uri,
            warehouseUri=table.catalog.warehouse,
            source="lakehouse",
        ),
    }
    if contract is not None:
        facets["schema"] = schema_facet(bronze_arrow_schema(contract))
    if table.snapshot_id is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(table.snapshot_id))
    return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=_statistics(table.rows_written))


def _statistics(rows: int | None) -> dict[str, Any]:
    if rows is None:
        return {}
    return {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)}


def schema_facet(schema: pa.Schema) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=f.name, type=str(f.type)) for f in schema]
    )


def to_json(event: RunEvent) -> dict[str, Any]:
    """The event as the OpenLineage JSON the backends receive, as stored in the outbox."""
    return Serde.to_dict(event)


def from_json(data: dict[str, Any]) -> RunEvent:
    """The client's event type around a stored event, for the client to send; facets stay the stored JSON, so what
    is sent is what was stored (plus the `tags` run facet in which the client names its version). A copy: the client
    adds that facet to the event's facets in place."""
    data = copy.deepcopy(data)

    def datasets(kind: type[InputDataset] | type[OutputDataset], items: list[dict[str, Any]]) -> list[Any]:
        extra = "inputFacets" if kind is InputDataset else "outputFacets"
        return [kind(d["namespace"], d["name"], facets=d.get("facets", {}), **{extra: d.get(extra, {})}) for d in items]

    return RunEvent(
        eventType=RunState(data["eventType"]),
        eventTime=data["eventTime"],
        run=Run(runId=data["run"]["runId"], facets=data["run"].get("facets", {})),
        job=Job(namespace=data["job"]["namespace"], name=data["job"]["name"], facets=data["job"].get("facets", {})),
        inputs=datasets(InputDataset, data.get("inputs", [])),
        outputs=datasets(OutputDataset, data.get("outputs", [])),
        producer=data["producer"],
    )
