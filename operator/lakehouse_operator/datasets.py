"""Datasets: each is validated, its bronze table brought to its contract, and the outcome shown on its status.

The handler reacts to every watch event of a Dataset (Kopf's `on.event`: no annotations or finalizers on the
Dataset, so the operator needs only to read Datasets and patch their status) and acts once per generation. An
invalid Dataset gets Invalid=True with the validation error; it affects no other dataset, and start-up lists
it like the rest. Runs read contracts through ClusterContracts (lakehouse/contracts/cluster.py), not from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.bronze.evolution import IncompatibleContractError
from lakehouse.bronze.writer import ensure_table
from lakehouse.contracts.cluster import contract_from_dataset
from lakehouse.contracts.registry import ContractError
from lakehouse.k8s.dataset import GROUP, PLURAL, VERSION, dataset_name
from lakehouse.k8s.dataset.status import DatasetConditionType, DatasetReason, DatasetStatus
from lakehouse.k8s.ingestionrun.conditions import upsert_condition

log = logging.getLogger(__name__)


def reconcile(body: dict[str, Any], catalog: Callable[[], Catalog]) -> DatasetStatus:
    """The Dataset's status after validating its contract and evolving its table (bronze/evolution.py)."""
    generation = body["metadata"].get("generation")
    status = DatasetStatus.from_body(body.get("status")).model_copy(
        update={"dataset": dataset_name(body), "observed_generation": generation}
    )
    try:
        contract = contract_from_dataset(body)
    except ContractError as error:
        fields = {"contract_version": None, "table": None, "schema_id": None}
        return _judged(status.model_copy(update=fields), DatasetReason.CONTRACT_INVALID, str(error), generation)
    status = status.model_copy(update={"contract_version": contract.version, "table": contract.bronze.identifier})
    try:
        table = ensure_table(catalog(), contract)
    except IncompatibleContractError as error:
        message = f"{error}; undo the change, or write to a new table (bronze.table)"
        return _judged(status, DatasetReason.INCOMPATIBLE_CONTRACT, message, generation)
    except Exception as error:  # a server fault: the contract stands, and the next run evolves the table
        message = f"the table could not be checked ({type(error).__name__}: {error}); runs evolve it as they commit"
        status = _condition(status, DatasetConditionType.INVALID, "False", DatasetReason.VALID, "", generation)
        return _condition(
            status, DatasetConditionType.READY, "False", DatasetReason.CATALOG_UNAVAILABLE, message, generation
        )
    schema_id = table.refresh().schema().schema_id
    message = f"{contract.bronze.identifier} follows version {contract.version} (schema {schema_id})"
    status = status.model_copy(update={"schema_id": schema_id})
    status = _condition(status, DatasetConditionType.INVALID, "False", DatasetReason.VALID, "", generation)
    return _condition(status, DatasetConditionType.READY, "True", DatasetReason.TABLE_READY, message, generation)


def _judged(status: DatasetStatus, reason: DatasetReason, message: str, generation: int | None) -> DatasetStatus:
    """Invalid=True and Ready=False, both with the error: runs of the dataset fail until it is fixed."""
    status = _condition(status, DatasetConditionType.INVALID, "True", reason, message, generation)
    return _condition(status, DatasetConditionType.READY, "False", reason, message, generation)


def _condition(
    status: DatasetStatus, type_: DatasetConditionType, value: str, reason: str, message: str, generation: int | None
) -> DatasetStatus:
    conditions = upsert_condition(status.conditions, type_, value, reason, message, generation)
    return status.model_copy(update={"conditions": conditions})


def is_settled(body: dict[str, Any]) -> bool:
    """Whether this generation was handled already (a server fault left it to be tried again)."""
    status = DatasetStatus.from_body(body.get("status"))
    ready = next((c for c in status.conditions if c.type == DatasetConditionType.READY), None)
    return (
        status.observed_generation == body["metadata"].get("generation")
        and ready is not None
        and ready.reason != DatasetReason.CATALOG_UNAVAILABLE
    )


def write_status(api: client.CustomObjectsApi, body: dict[str, Any], status: DatasetStatus) -> bool:
    """Patches the status subresource when it changed; True when it wrote."""
    desired, current = status.to_k8s(), DatasetStatus.from_body(body.get("status")).to_k8s()
    if desired == current:
        return False
    # A merge patch: fields the new status lacks (the table of a now invalid contract) are removed with nulls.
    patch = {"status": {**dict.fromkeys(current.keys() - desired.keys()), **desired}}
    metadata = body["metadata"]
    api.patch_namespaced_custom_object_status(GROUP, VERSION, metadata["namespace"], PLURAL, metadata["name"], patch)
    return True


@kopf.on.event(GROUP, VERSION, PLURAL)
def dataset_changed(type: str, body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    if type == "DELETED" or is_settled(dict(body)):
        return  # a deleted Dataset's table stays: its rows are data
    runtime = memo.runtime
    status = reconcile(dict(body), lambda: runtime.catalog)
    if write_status(client.CustomObjectsApi(), dict(body), status):
        ready = next(c for c in status.conditions if c.type == DatasetConditionType.READY)
        (logger.info if ready.status == "True" else logger.warning)(
            "Dataset %s: %s (%s)", status.dataset, ready.message, ready.reason
        )
