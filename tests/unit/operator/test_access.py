"""operator/lakehouse_operator/access.py: a run reads only its own upload in the install's uploads bucket and
writes only its contract's bronze table (or a sandbox namespace's table); anything else is refused at once."""

from __future__ import annotations

from typing import Any

import pytest
from lakehouse_operator.access import check_source, check_target
from lakehouse_operator.engines.base import RunRejectedError
from lakehouse_operator.settings import OperatorSettings

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.k8s.ingestionrun.reasons import FailureReason

ORDERS = ContractRegistry.default().get("orders")
OWN_UPLOAD = "s3://uploads/orders/2026-12-01/u-1/orders.csv"


def spec(uri: str = OWN_UPLOAD, target: dict[str, str] | None = None, dataset: str = "orders") -> dict[str, Any]:
    return {"uploadId": "u-1", "dataset": dataset, "source": {"uri": uri, "format": "csv"}, "target": target}


def settings(**env: str) -> OperatorSettings:
    return OperatorSettings.model_validate(env)


def refused(check: Any, *args: Any) -> RunRejectedError:
    with pytest.raises(RunRejectedError) as caught:
        check(*args)
    return caught.value


def test_the_runs_own_upload_in_the_uploads_bucket_is_allowed() -> None:
    check_source(spec(), settings())
    check_source(spec("s3://landing/orders/2026-12-01/u-1/orders.csv"), settings(LAKEHOUSE_UPLOADS_BUCKET="landing"))


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("s3://warehouse/orders/2026-12-01/u-1/orders.csv", "bucket warehouse"),  # another bucket
        ("s3://uploads/customers/2026-12-01/u-1/orders.csv", "not an upload of this run"),  # another dataset
        ("s3://uploads/orders/2026-12-01/u-2/orders.csv", "not an upload of this run"),  # another upload
        ("s3://uploads/orders/2026-12-01/u-1/../../u-2/orders.csv", "not an upload of this run"),
        ("s3://uploads/orders.csv", "not an upload of this run"),
    ],
)
def test_any_other_object_is_refused_with_the_reason(uri: str, names: str) -> None:
    error = refused(check_source, spec(uri), settings())
    assert error.reason == FailureReason.SOURCE_NOT_ALLOWED
    assert names in error.message and "s3://uploads/" in error.message


def test_the_uploads_bucket_is_the_installs() -> None:
    error = refused(check_source, spec(), settings(LAKEHOUSE_UPLOADS_BUCKET="landing"))
    assert (error.reason, "bucket uploads" in error.message) == (FailureReason.SOURCE_NOT_ALLOWED, True)


@pytest.mark.parametrize(
    "target", [None, {}, {"namespace": "bronze"}, {"table": "orders"}, {"namespace": "bronze", "table": "orders"}]
)
def test_the_contracts_bronze_table_is_allowed(target: dict[str, str] | None) -> None:
    check_target(spec(target=target), ORDERS, settings())


@pytest.mark.parametrize(
    "target",
    [
        {"table": "customers"},  # another dataset's table
        {"namespace": "bronze", "table": "customers"},
        {"namespace": "silver"},
        {"namespace": "bronze_it", "table": "orders_x"},  # a sandbox of another install
    ],
)
def test_any_other_table_is_refused_with_the_reason(target: dict[str, str]) -> None:
    error = refused(check_target, spec(target=target), ORDERS, settings())
    assert error.reason == FailureReason.TARGET_NOT_ALLOWED
    assert "writes only bronze.orders" in error.message


@pytest.mark.parametrize("sandboxes", [" bronze_it, bench", "bronze_*"])
def test_a_sandbox_namespace_takes_any_table(sandboxes: str) -> None:
    install = settings(LAKEHOUSE_SANDBOX_NAMESPACES=sandboxes)
    check_target(spec(target={"namespace": "bronze_it", "table": "orders_x"}), ORDERS, install)
    for namespace in ("bronze", "bronzeit", "silver"):  # the contract's own namespace is no sandbox
        error = refused(check_target, spec(target={"namespace": namespace, "table": "customers"}), ORDERS, install)
        assert error.reason == FailureReason.TARGET_NOT_ALLOWED
