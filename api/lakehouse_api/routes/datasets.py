from __future__ import annotations

from fastapi import APIRouter

from lakehouse.contracts.registry import UnknownDatasetError
from lakehouse_api.access import require_dataset
from lakehouse_api.deps import ContractsDep, CurrentKey
from lakehouse_api.problems import ProblemError
from lakehouse_api.routes import API_PREFIX
from lakehouse_api.schemas.datasets import DatasetPublic, DatasetsPublic

router = APIRouter(prefix=f"{API_PREFIX}/datasets", tags=["datasets"])


@router.get("", response_model=DatasetsPublic, summary="Dataset contracts an upload can name")
def read_datasets(contracts: ContractsDep, caller: CurrentKey) -> DatasetsPublic:
    mine = [c for c in contracts if caller.may_use(c.name)]
    data = [DatasetPublic.from_contract(c) for c in sorted(mine, key=lambda c: c.name)]
    return DatasetsPublic(data=data, count=len(data))


@router.get("/{name}", response_model=DatasetPublic, summary="One dataset contract")
def read_dataset(name: str, contracts: ContractsDep, caller: CurrentKey) -> DatasetPublic:
    require_dataset(caller, name, "read the contract of")
    try:
        return DatasetPublic.from_contract(contracts.get(name))
    except UnknownDatasetError as error:
        raise ProblemError(404, str(error), kind="unknown-dataset", datasets=error.known) from None
