"""A Dataset's status from its spec, without servers (the table's side is in tests/integration/test_datasets.py)."""

from __future__ import annotations

from typing import Any

from lakehouse_operator.datasets import is_settled, reconcile, write_status

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.k8s.dataset.status import DatasetReason, DatasetStatus


def body(spec: dict[str, Any], generation: int = 2, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "orders", "generation": generation}, "spec": spec, "status": status or {}}


ORDERS = ContractRegistry.default().get("orders").model_dump(mode="json", exclude={"name"})


def no_catalog() -> Any:
    raise AssertionError("an invalid contract must not reach the catalog")


def conditions(status: DatasetStatus) -> dict[str, tuple[str, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in status.conditions}


def test_an_invalid_dataset_is_invalid_with_the_error() -> None:
    status = reconcile(body({**ORDERS, "max_reject_ratio": 2}), no_catalog)
    found = conditions(status)
    assert found["Invalid"][:2] == ("True", DatasetReason.CONTRACT_INVALID)
    assert "max_reject_ratio: Input should be less than or equal to 1" in found["Invalid"][2]
    assert found["Ready"] == ("False", *found["Invalid"][1:])
    assert (status.observed_generation, status.dataset, status.contract_version) == (2, "orders", None)
    assert is_settled(body({}, status=status.to_k8s()))


def test_a_catalog_down_leaves_it_valid_and_to_be_tried_again() -> None:
    def down() -> Any:
        raise ConnectionError("connection refused")

    status = reconcile(body(ORDERS), down)
    found = conditions(status)
    assert found["Invalid"][:2] == ("False", DatasetReason.VALID)
    assert found["Ready"][:2] == ("False", DatasetReason.CATALOG_UNAVAILABLE)
    assert (status.contract_version, status.table) == (1, "bronze.orders")
    assert not is_settled(body(ORDERS, status=status.to_k8s()))


def test_a_new_generation_is_not_settled() -> None:
    status = reconcile(body({**ORDERS, "version": 0}), no_catalog)
    assert not is_settled(body({}, generation=3, status=status.to_k8s()))


class RecordingApi:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_namespaced_custom_object_status(self, *args: Any) -> None:
        self.patches.append(args[-1])


def test_a_status_that_lost_fields_removes_them_and_an_unchanged_one_is_not_written() -> None:
    valid = {"dataset": "orders", "contractVersion": 1, "table": "bronze.orders", "schemaId": 0}
    invalid = reconcile(body({**ORDERS, "version": 0}, status=valid), no_catalog)
    api = RecordingApi()
    stored = {**body({}, status=valid), "metadata": {"name": "orders", "namespace": "ns", "generation": 2}}
    assert write_status(api, stored, invalid)  # type: ignore[arg-type]
    (patch,) = api.patches
    assert {k: patch["status"][k] for k in ("contractVersion", "table", "schemaId")} == dict.fromkeys(
        ("contractVersion", "table", "schemaId")
    )
    assert not write_status(api, {**stored, "status": invalid.to_k8s()}, invalid)  # type: ignore[arg-type]
