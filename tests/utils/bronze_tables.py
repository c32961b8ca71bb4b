"""Scratch bronze tables for tests, and contracts that point a dataset at one."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml
from pyiceberg.catalog import Catalog

from lakehouse.bronze.writer import ensure_table
from lakehouse.contracts.model import DatasetContract


def scratch_table(catalog: Catalog, contract: DatasetContract, prefix: str, namespace: str = "bronze_it") -> str:
    name = f"{namespace}.{prefix}_{uuid.uuid4().hex[:8]}"
    ensure_table(catalog, contract, name)
    return name


def contracts_dir_with(directory: Path, contract: DatasetContract, table: str) -> Path:
    """A contracts folder (LAKEHOUSE_CONTRACTS_DIR) holding `contract` with its bronze target moved to `table`."""
    namespace, name = table.split(".")
    body = contract.model_dump(mode="json") | {
        "bronze": contract.bronze.model_dump(mode="json") | {"namespace": namespace, "table": name}
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{contract.name}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return directory
