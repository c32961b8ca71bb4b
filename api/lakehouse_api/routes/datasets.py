from __future__ import annotations

from fastapi import APIRouter

from lakehouse.contracts.registry import UnknownDatasetError
from lakehouse_api.deps import ContractsDep, CurrentKey
from lakehouse_api.problems import ProblemError
from lakehouse_api.routes import API_PREFIX
from lakehouse_api.schemas.datasets import DatasetPublic, DatasetsPublic

router = APIRouter(prefix=f"{API_PREFIX}/datasets", tags=["datasets"])


@router.get("", response_model=DatasetsPublic, summary="Dataset contracts an upload can name")
def read_datasets(contracts: ContractsDep, _: CurrentKey) -> DatasetsPublic:
    data = [DatasetPublic.from_contract(c) for c in sorted(contracts, key=lambda c: c.name)]
    return DatasetsPublic(data=data, count=len(data))


@router.get("/{name}", response_model=DatasetPublic, summary="One dataset contract")
def read_dataset(name: str, contracts: ContractsDep, _: CurrentKey) -> DatasetPublic:
    try:
        return DatasetPublic.from_contract(contracts.get(name))
    except UnknownDatasetError as error:
        raise ProblemError(404, str(error), kind="unknown-dataset", datasets=error.known) from None
