"""The Dataset CRD is generated from the contract model; these hold the committed file to the generator and
check what the generator, the Dataset names and the cluster's contract registry promise."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from lakehouse.contracts.cluster import (
    CACHE_SECONDS,
    MISS_REFRESH_SECONDS,
    ClusterContracts,
    InvalidDatasetError,
    contract_from_dataset,
    datasets_lister,
)
from lakehouse.contracts.model import AUDIT_COLUMNS
from lakehouse.contracts.registry import ContractError, ContractRegistry, UnknownDatasetError
from lakehouse.devtools import dataset_crd
from lakehouse.devtools.dataset_manifest import dataset_manifest
from lakehouse.k8s.dataset import API_VERSION, GROUP, KIND, PLURAL, VERSION, dataset_name
from lakehouse.k8s.dataset.status import DatasetConditionType
from tests.utils.crd_schema import undescribed

CRD = yaml.safe_load(dataset_crd.CRD_FILE.read_text())
(CRD_VERSION,) = CRD["spec"]["versions"]
SPEC = CRD_VERSION["schema"]["openAPIV3Schema"]["properties"]["spec"]
PACKAGED = ContractRegistry.default()


def dataset(name: str, spec: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "generation": generation}, "spec": spec}


def packaged_spec(name: str, **changes: Any) -> dict[str, Any]:
    spec = PACKAGED.get(name).model_dump(mode="json", exclude={"name"})
    return {**spec, **changes}


def test_the_committed_crd_is_the_generated_one() -> None:
    """After a change to lakehouse/contracts/model.py, run `python -m lakehouse.devtools.dataset_crd`."""
    assert dataset_crd.CRD_FILE.read_text() == dataset_crd.render()


def test_names() -> None:
    assert CRD["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert (CRD["spec"]["group"], CRD_VERSION["name"], CRD["spec"]["names"]["kind"]) == (GROUP, VERSION, KIND)


def test_the_spec_has_every_field_of_the_contract() -> None:
    assert set(SPEC["properties"]) == set(dataset_crd.DatasetContract.model_fields)
    assert "name" not in SPEC["required"]  # the object's name stands for it
    column = SPEC["properties"]["columns"]["items"]
    assert (
        column["properties"]["rename"]["pattern"]
        == dataset_crd.DatasetContract.model_json_schema()["$defs"]["Column"]["properties"]["rename"]["anyOf"][0][
            "pattern"
        ]
    )


def test_every_field_is_described_for_kubectl_explain() -> None:
    assert undescribed(CRD_VERSION["schema"]["openAPIV3Schema"], "dataset") == []


def test_the_cel_rules_know_every_audit_column() -> None:
    rules = " ".join(rule["rule"] for rule in SPEC["x-kubernetes-validations"])
    assert all(f"'{name}'" in rules for name in AUDIT_COLUMNS)


def test_kubectl_get_shows_readiness_version_table_and_schema() -> None:
    columns = {c["name"]: c for c in CRD_VERSION["additionalPrinterColumns"]}
    assert columns["Ready"]["jsonPath"] == f'.status.conditions[?(@.type=="{DatasetConditionType.READY}")].status'
    assert {"Version", "Table", "Schema"} <= set(columns)


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (dataset("orders", {}), "orders"),
        (dataset("line-items", {}), "line_items"),
        (dataset("line-items", {"name": "line_items"}), "line_items"),
    ],
)
def test_the_dataset_name(body: dict[str, Any], name: str) -> None:
    assert dataset_name(body) == name


def test_a_packaged_contract_as_a_dataset_is_the_same_contract() -> None:
    for contract in PACKAGED:
        assert contract_from_dataset(dataset(contract.name, packaged_spec(contract.name))) == contract


def test_an_invalid_dataset_names_every_field_at_fault() -> None:
    spec = packaged_spec("orders", version=0, rules=[{"name": "r", "column": "amount", "op": "gt", "value": "x"}])
    with pytest.raises(ContractError) as error:
        contract_from_dataset(dataset("orders", spec))
    assert "version: Input should be greater than or equal to 1" in str(error.value)
    spec = packaged_spec("orders", rules=[{"name": "r", "column": "amount", "op": "gt", "value": "x"}])
    with pytest.raises(ContractError, match="rule 'r': 'x' is not a decimal"):
        contract_from_dataset(dataset("orders", spec))


class Listing:
    """The API server's answer to a list of Datasets, changed by the test."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.calls = 0
        self.down = False

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.down:
            raise ConnectionError("the API server is down")
        return list(self.items)


def test_datasets_replace_the_files_and_an_invalid_one_hides_only_itself() -> None:
    changed = packaged_spec("orders", version=2)
    listing = Listing([dataset("orders", changed, generation=3), dataset("broken", {"version": 1})])
    contracts = ClusterContracts(listing, PACKAGED)
    assert contracts.pinned("orders") == (contract_from_dataset(dataset("orders", changed)), 3)
    assert contracts.pinned("customers") == (PACKAGED.get("customers"), None)  # the file, as a fallback
    assert contracts.names() == PACKAGED.names()  # "broken" is not listed; "orders" is the Dataset's
    with pytest.raises(InvalidDatasetError, match=r"the Dataset 'broken' is invalid: .*source_system"):
        contracts.get("broken")
    with pytest.raises(UnknownDatasetError, match=f"known datasets: {', '.join(PACKAGED.names())}$"):
        contracts.get("nothing")


def test_a_new_dataset_is_seen_at_once_and_an_outage_keeps_the_last_listing() -> None:
    listing = Listing([])
    contracts = ClusterContracts(listing, ContractRegistry({}))
    assert contracts.names() == []
    listing.items = [dataset("orders", packaged_spec("orders"))]
    # A miss lists again (a Dataset applied a moment ago), at most every MISS_REFRESH_SECONDS.
    contracts._listed_at -= 1
    assert contracts.get("orders").name == "orders"
    listing.down = True
    contracts._listed_at -= 10
    assert contracts.names() == ["orders"]
    assert listing.calls == 3


def test_a_name_with_a_contract_file_is_not_listed_again_on_each_lookup() -> None:
    listing = Listing([])
    contracts = ClusterContracts(listing, PACKAGED)
    assert contracts.get("orders") == PACKAGED.get("orders")
    # Listed longer ago than a miss's refresh, not as long as the cache lasts.
    contracts._listed_at = time.monotonic() - (MISS_REFRESH_SECONDS + CACHE_SECONDS) / 2
    assert contracts.get("orders") == PACKAGED.get("orders")
    assert listing.calls == 1
    listing.items = [dataset("orders", packaged_spec("orders", version=2), generation=2)]
    contracts._listed_at = time.monotonic() - 2 * CACHE_SECONDS  # the cache expired: the Dataset takes effect
    assert contracts.pinned("orders")[1] == 2
    assert listing.calls == 2


def test_a_contract_file_becomes_a_dataset_manifest_of_the_same_contract() -> None:
    for contract in PACKAGED:
        manifest = dataset_manifest(contract, "lakehouse")
        assert manifest["metadata"] == {"name": contract.name, "namespace": "lakehouse"}
        assert contract_from_dataset(manifest) == contract


def test_the_lister_makes_one_client_for_all_its_listings() -> None:
    made: list[object] = []

    class Api:
        def __init__(self) -> None:
            made.append(self)

        def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return {"items": [dataset("orders", packaged_spec("orders"))]}

    list_datasets = datasets_lister(Api, "lakehouse")
    assert list_datasets() == list_datasets()
    assert len(made) == 1
