"""Scratch bronze tables for tests, and contracts that point a dataset at one."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.table import Table

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


def files_out_of_order(table: Table, columns: list[str]) -> list[str]:
    """The live data files of the table whose rows are not sorted by `columns` (a compaction writes none)."""
    unsorted = []
    for task in table.scan().plan_files():
        rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table([task])
        keys = list(zip(*(rows[column].to_pylist() for column in columns), strict=True))
        if keys != sorted(keys):
            unsorted.append(task.file.file_path)
    return unsorted
