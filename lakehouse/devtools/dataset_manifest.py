"""A contract file as a Dataset manifest, to `kubectl apply` it instead of shipping the file.

python -m lakehouse.devtools.dataset_manifest lakehouse/contracts/datasets/orders.yaml [--namespace lakehouse]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from lakehouse.contracts.model import DatasetContract
from lakehouse.contracts.registry import parse_contract
from lakehouse.k8s.dataset import API_VERSION, KIND


def dataset_manifest(contract: DatasetContract, namespace: str | None = None) -> dict[str, Any]:
    """The Dataset that declares this contract (its object name is the dataset's, `_` as `-`)."""
    metadata: dict[str, Any] = {"name": contract.name.replace("_", "-")}
    if namespace:
        metadata["namespace"] = namespace
    spec = contract.model_dump(mode="json", exclude_defaults=True)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse.devtools.dataset_manifest", description=__doc__)
    parser.add_argument("contracts", nargs="+", type=Path, help="contract YAML files")
    parser.add_argument("--namespace", help="the runs' namespace (default: kubectl's)")
    args = parser.parse_args(argv)
    manifests = [
        dataset_manifest(parse_contract(path.read_text(), str(path)), args.namespace) for path in args.contracts
    ]
    yaml.safe_dump_all(manifests, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
