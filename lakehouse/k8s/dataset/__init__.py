"""The Dataset API (lakehouse.dev/v1alpha1): a dataset contract as a Kubernetes resource.

Its spec is the contract (lakehouse/contracts/model.py); the CRD's spec schema is generated from that model
by `python -m lakehouse.devtools.dataset_crd`, and tests/unit/test_dataset_types.py holds the two equal.
"""

from __future__ import annotations

from typing import Any

from lakehouse.k8s.ingestionrun import API_VERSION, GROUP, VERSION

__all__ = ["API_VERSION", "GROUP", "KIND", "PLURAL", "VERSION", "dataset_name"]

PLURAL = "datasets"
KIND = "Dataset"
SINGULAR = "dataset"


def dataset_name(body: dict[str, Any]) -> str:
    """The dataset a Dataset object defines: spec.name, else its object name with `-` for `_` (object names
    cannot hold `_`; the CRD holds spec.name to the object name the same way)."""
    return body.get("spec", {}).get("name") or body["metadata"]["name"].replace("-", "_")
