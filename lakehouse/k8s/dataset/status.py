"""A Dataset's status: is its contract valid, and which version, table and table schema are in force."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from lakehouse.k8s.ingestionrun.status import BaseStatus


class DatasetConditionType(StrEnum):
    READY = "Ready"  # valid, and its bronze table has the contract's shape
    INVALID = "Invalid"  # True with the precise validation error: runs of the dataset fail UnknownDataset


class DatasetReason(StrEnum):
    TABLE_READY = "TableReady"
    CONTRACT_INVALID = "ContractInvalid"
    INCOMPATIBLE_CONTRACT = "IncompatibleContract"  # the table cannot follow the change (bronze/evolution.py)
    CATALOG_UNAVAILABLE = "CatalogUnavailable"  # valid; the table is brought up to date by the next run
    VALID = "Valid"


class DatasetStatus(BaseStatus):
    dataset: str | None = None
    contract_version: int | None = Field(default=None, alias="contractVersion")
    table: str | None = None
    schema_id: int | None = Field(default=None, alias="schemaId")

    @classmethod
    def from_body(cls, status: dict[str, Any] | None) -> DatasetStatus:
        return cls.model_validate(dict(status or {}))
