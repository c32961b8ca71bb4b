"""What an API key scoped to datasets may touch: its datasets' uploads, runs, contracts and bronze tables.

A key with no datasets (an admin key) may touch everything. A refusal is a 403 that names the key's
datasets and what was refused, so the caller knows which key to use instead.
"""

from __future__ import annotations

from lakehouse.contracts.registry import ContractRegistry
from lakehouse_api.auth import Caller
from lakehouse_api.problems import ProblemError


def require_dataset(caller: Caller, dataset: str, action: str) -> None:
    """403 unless the caller may use `dataset`; `action` says what was refused ("upload to", ...)."""
    if not caller.may_use(dataset):
        raise _forbidden(caller, f"may not {action} dataset {dataset!r}")


def table_dataset(contracts: ContractRegistry, identifier: str) -> str | None:
    """The dataset whose contract writes the table `namespace.table`, if any."""
    return next((c.name for c in contracts if c.bronze.identifier == identifier), None)


def allowed_tables(caller: Caller, contracts: ContractRegistry) -> frozenset[str] | None:
    """The table identifiers the caller may read; None: every table of the catalog."""
    if caller.datasets is None:
        return None
    return frozenset(c.bronze.identifier for c in contracts if c.name in caller.datasets)


def require_table(caller: Caller, contracts: ContractRegistry, identifier: str) -> None:
    if caller.datasets is None:
        return
    dataset = table_dataset(contracts, identifier)
    if dataset is None:
        raise _forbidden(caller, f"may not read table {identifier}, which is the bronze table of no dataset")
    require_dataset(caller, dataset, f"read table {identifier} of")


def _forbidden(caller: Caller, refused: str) -> ProblemError:
    datasets = sorted(caller.datasets or ())
    return ProblemError(
        403,
        f"this API key is limited to dataset{'s' if len(datasets) > 1 else ''} {', '.join(datasets)}; it {refused}",
        kind="dataset-forbidden",
        datasets=datasets,
    )
