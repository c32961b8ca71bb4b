"""Loading contracts: the ones shipped in the package (`lakehouse/contracts/datasets/`), a folder such as a
mounted ConfigMap (LAKEHOUSE_CONTRACTS_DIR), or a ConfigMap's data read from the API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml
from pydantic import ValidationError

from lakehouse.contracts.model import DatasetContract

# Package data: `lakehouse.contracts` is a namespace package, so the anchor is `lakehouse`.
DEFAULT_CONTRACTS_DIR: Traversable = resources.files("lakehouse") / "contracts" / "datasets"


def contracts_dir() -> Path | Traversable:
    """Where this process reads contracts: LAKEHOUSE_CONTRACTS_DIR, else the packaged ones."""
    directory = os.environ.get("LAKEHOUSE_CONTRACTS_DIR")
    return Path(directory) if directory else DEFAULT_CONTRACTS_DIR


class UnknownDatasetError(LookupError):
    def __init__(self, dataset: str, known: list[str]) -> None:
        super().__init__(f"unknown dataset {dataset!r}; known datasets: {', '.join(known) or 'none'}")
        self.dataset = dataset
        self.known = known


class ContractError(ValueError):
    pass


def parse_contract(text: str, origin: str) -> DatasetContract:
    try:
        return DatasetContract.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as error:
        raise ContractError(f"invalid contract {origin}: {error}") from error


class ContractRegistry:
    def __init__(self, contracts: Mapping[str, DatasetContract]) -> None:
        self._contracts = dict(contracts)

    @classmethod
    def from_texts(cls, texts: Mapping[str, str]) -> ContractRegistry:
        """From file name -> YAML text, which is also the shape of a ConfigMap's `data`."""
        contracts: dict[str, DatasetContract] = {}
        for origin, text in sorted(texts.items()):
            if not origin.endswith((".yaml", ".yml")):
                continue
            contract = parse_contract(text, origin)
            if contract.name in contracts:
                raise ContractError(f"dataset {contract.name!r} is defined twice ({origin})")
            contracts[contract.name] = contract
        return cls(contracts)

    @classmethod
    def from_directory(cls, directory: Traversable) -> ContractRegistry:
        # A mounted ConfigMap is a directory too (its keys are files, behind ..data symlinks).
        files = [p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")]
        return cls.from_texts({p.name: p.read_text(encoding="utf-8") for p in files})

    @classmethod
    def default(cls) -> ContractRegistry:
        return cls.from_directory(contracts_dir())

    def get(self, dataset: str) -> DatasetContract:
        try:
            return self._contracts[dataset]
        except KeyError:
            raise UnknownDatasetError(dataset, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._contracts)

    def __iter__(self):
        return iter(self._contracts.values())
