"""Building an engine's RunContext from an IngestionRun body."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lakehouse.contracts.cluster import ClusterContracts, InvalidDatasetError
from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import ContractRegistry, UnknownDatasetError
from lakehouse.k8s.ingestionrun import GROUP, KIND, VERSION
from lakehouse.k8s.ingestionrun.reasons import FailureReason
from lakehouse.k8s.ingestionrun.status import IngestionRunStatus, parse_time
from lakehouse_operator.access import target_of
from lakehouse_operator.engines.base import RunContext, RunRejectedError


def run_context(body: dict[str, Any], contracts: ContractRegistry) -> RunContext:
    spec, metadata = body["spec"], body["metadata"]
    status = IngestionRunStatus.from_body(body.get("status"))
    # The contract fixed at validation; a run validated before contracts were pinned reads the current one.
    contract = (
        DatasetContract.model_validate(status.contract)
        if status.contract
        else load_contract(spec["dataset"], contracts)
    )
    started = parse_time(status.start_time) if status.start_time else dt.datetime.now(dt.UTC)
    return RunContext(
        name=metadata["name"],
        namespace=metadata["namespace"],
        upload_id=spec["uploadId"],
        dataset=spec["dataset"],
        contract=contract,
        source_uri=spec["source"]["uri"],
        source_format=spec["source"]["format"],
        source_sha256=spec["source"].get("sha256"),
        processing_date=dt.date.fromisoformat(status.processing_date) if status.processing_date else started.date(),
        ingest_timestamp=started.astimezone(dt.UTC).replace(tzinfo=None),
        target_table=".".join(target_of(spec, contract)),
        owner={
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": metadata["name"],
            "uid": metadata["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        },
    )


def load_contract(dataset: str, contracts: ContractRegistry) -> DatasetContract:
    return pin_contract(dataset, contracts)[0]


def pin_contract(dataset: str, contracts: ContractRegistry) -> tuple[DatasetContract, int | None]:
    """The contract a run uses from validation on, and its Dataset's generation (None for a contract file)."""
    try:
        if isinstance(contracts, ClusterContracts):
            return contracts.pinned(dataset)
        return contracts.get(dataset), None
    except UnknownDatasetError as error:
        hint = (
            "fix the Dataset, then upload again"
            if isinstance(error, InvalidDatasetError)
            else "create the run for one of those"
        )
        raise RunRejectedError(FailureReason.UNKNOWN_DATASET, f"{error}; {hint}") from error
