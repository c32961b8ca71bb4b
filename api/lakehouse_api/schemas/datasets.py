from __future__ import annotations

from typing import Any

from lakehouse.contracts.model import DatasetContract
from lakehouse_api.schemas.base import CamelModel


class ColumnPublic(CamelModel):
    name: str
    type: str
    required: bool
    rename: str | None = None
    description: str = ""


class RulePublic(CamelModel):
    name: str
    column: str
    op: str
    value: Any
    description: str


class BronzeTargetPublic(CamelModel):
    table: str
    partitioning: list[str]
    sort_by: list[str]
    date_column: str | None = None


class DatasetPublic(CamelModel):
    name: str
    version: int
    description: str
    source_system: str
    columns: list[ColumnPublic]
    rules: list[RulePublic]
    bronze: BronzeTargetPublic

    @classmethod
    def from_contract(cls, contract: DatasetContract) -> DatasetPublic:
        bronze = contract.bronze
        return cls(
            name=contract.name,
            version=contract.version,
            description=contract.description,
            source_system=contract.source_system,
            columns=[ColumnPublic.model_validate(c.model_dump()) for c in contract.columns],
            rules=[RulePublic(**r.model_dump(), description=r.describe()) for r in contract.rules],
            bronze=BronzeTargetPublic(
                table=bronze.identifier,
                partitioning=[f"{p.transform}({p.column})" for p in bronze.partitioning],
                sort_by=list(bronze.sort_by),
                date_column=bronze.date_column,
            ),
        )


class DatasetsPublic(CamelModel):
    data: list[DatasetPublic]
    count: int
