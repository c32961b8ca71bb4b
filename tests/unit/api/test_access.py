"""What a key scoped to datasets may touch, and the 403 and 429 problems the app answers, without servers."""

from __future__ import annotations

import hashlib

import pytest
from lakehouse_api.access import allowed_tables, require_dataset, require_table, table_dataset
from lakehouse_api.auth import Caller
from lakehouse_api.main import create_app
from lakehouse_api.problems import ProblemError
from lakehouse_api.settings import ApiSettings

from lakehouse.contracts.registry import ContractRegistry
from tests.utils.asgi_client import AsgiClient

CONTRACTS = ContractRegistry.default()
ORDERS_ONLY = Caller("d" * 64, frozenset({"orders"}))
ADMIN = Caller("a" * 64)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_a_scoped_key_may_use_its_datasets_only() -> None:
    require_dataset(ORDERS_ONLY, "orders", "upload to")
    require_dataset(ADMIN, "customers", "upload to")

    with pytest.raises(ProblemError) as refused:
        require_dataset(ORDERS_ONLY, "customers", "upload to")

    assert refused.value.status == 403 and refused.value.type.endswith("/dataset-forbidden")
    assert refused.value.detail == "this API key is limited to dataset orders; it may not upload to dataset 'customers'"
    assert refused.value.extensions == {"datasets": ["orders"]}


def test_tables_belong_to_the_dataset_whose_contract_writes_them() -> None:
    assert table_dataset(CONTRACTS, "bronze.orders") == "orders"
    assert table_dataset(CONTRACTS, "bronze.elsewhere") is None
    assert allowed_tables(ORDERS_ONLY, CONTRACTS) == {"bronze.orders"}
    assert allowed_tables(ADMIN, CONTRACTS) is None

    require_table(ORDERS_ONLY, CONTRACTS, "bronze.orders")
    require_table(ADMIN, CONTRACTS, "bronze.elsewhere")
    refusals = [("bronze.customers", "read table bronze.customers of dataset"), ("x.y", "of no dataset")]
    for identifier, fragment in refusals:
        with pytest.raises(ProblemError, match=fragment):
            require_table(ORDERS_ONLY, CONTRACTS, identifier)


def test_the_app_filters_and_refuses_datasets_for_a_scoped_key() -> None:
    settings = ApiSettings(LAKEHOUSE_API_KEYS_SHA256=f"{digest('admin')} {digest('orders-team')}:orders")
    app = create_app(settings, CONTRACTS)
    scoped, admin = AsgiClient(app, {"X-API-Key": "orders-team"}), AsgiClient(app, {"X-API-Key": "admin"})

    assert [d["name"] for d in scoped.get("/api/v1/datasets").json()["data"]] == ["orders"]
    assert {"orders", "customers"} <= {d["name"] for d in admin.get("/api/v1/datasets").json()["data"]}
    refused = scoped.get("/api/v1/datasets/customers")
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["datasets"] == ["orders"]
    # Refused before the catalog is asked (no catalog here): the table belongs to another dataset.
    assert scoped.get("/api/v1/tables/bronze/customers/rows").status_code == 403


def test_a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not() -> None:
    settings = ApiSettings(
        LAKEHOUSE_API_KEYS_SHA256=f"{digest('busy')} {digest('calm')}",
        LAKEHOUSE_API_RATE_LIMIT_PER_MINUTE="6",
        LAKEHOUSE_API_RATE_LIMIT_BURST="2",
    )
    app = create_app(settings, CONTRACTS)
    busy, calm = AsgiClient(app, {"X-API-Key": "busy"}), AsgiClient(app, {"X-API-Key": "calm"})

    answers = [busy.get("/api/v1/datasets") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[2]
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["type"].endswith("/rate-limited") and int(limited.headers["retry-after"]) in (9, 10)
    assert calm.get("/api/v1/datasets").status_code == 200
    assert AsgiClient(app).get("/healthz").status_code == 200  # open endpoints are not counted


def test_no_rate_limit_when_it_is_turned_off() -> None:
    settings = ApiSettings(LAKEHOUSE_API_KEYS_SHA256=digest("k"), LAKEHOUSE_API_RATE_LIMIT_PER_MINUTE="0")
    app = create_app(settings, CONTRACTS)

    assert app.state.rate_limit is None
