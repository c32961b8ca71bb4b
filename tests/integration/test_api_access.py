"""Least privilege in the API, as a real process against the stack: a key scoped to `orders` uploads,
lists and reads `orders` only, for every kind of route; an admin key keeps every dataset; a key over its
request rate gets 429 with Retry-After and is served again after waiting that long."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from lakehouse_api.uploads.stored_upload import idempotency_key_hash, idempotent_upload_id

from lakehouse.devtools.sample_data import customers_csv, orders
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from tests.utils.api_checks import UPLOADS, leftovers, post_upload, problem, wait_for_upload
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The API on the stack's namespace (whose operator runs the uploads), with an admin and an `orders` key."""
    namespace = stack_env("KUBECONFIG", "S3_ENDPOINT_URL", "ICEBERG_CATALOG_URI", "LAKEHOUSE_NAMESPACE")
    log = tmp_path_factory.mktemp("api") / "api.log"
    with running_api(namespace["LAKEHOUSE_NAMESPACE"], log, scoped_keys={"orders": "orders"}) as process:
        yield process


@pytest.fixture(scope="module")
def admin(api: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def orders_key(api: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, headers=api.headers_of("orders"), timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def uploads(admin: httpx.Client, orders_key: httpx.Client) -> dict[str, str]:
    """A finished upload of each dataset: `orders` sent with the scoped key, `customers` with the admin key."""
    data, _ = customers_csv(5)
    ids = {
        "orders": post_upload(orders_key, orders(5, seed=31).csv_bytes()).raise_for_status().json()["uploadId"],
        "customers": post_upload(admin, data, dataset="customers", filename="customers.csv")
        .raise_for_status()
        .json()["uploadId"],
    }
    for upload_id in ids.values():
        assert wait_for_upload(admin, upload_id)["phase"] == "Succeeded"
    return ids


def forbidden(response: httpx.Response, fragment: str) -> None:
    body = problem(response, 403)
    assert body["type"].endswith("/dataset-forbidden") and body["datasets"] == ["orders"]
    assert (
        body["detail"].startswith("this API key is limited to dataset orders; it may not ")
        and fragment in body["detail"]
    ), body["detail"]


def test_scoped_key_uploads_to_its_dataset_only_and_a_refused_upload_leaves_nothing(
    api: ApiProcess, orders_key: httpx.Client, uploads: dict[str, str], s3: Any, custom_objects: client.CustomObjectsApi
) -> None:
    data, _ = customers_csv(3)
    # With an Idempotency-Key the upload id is known in advance, so its objects and run can be looked for.
    key = f"scoped-{dt.datetime.now().timestamp()}"
    key_sha256 = hashlib.sha256(api.scoped_keys["orders"][0].encode()).hexdigest()
    upload_id = idempotent_upload_id(idempotency_key_hash(key_sha256, key))

    refused = post_upload(
        orders_key, data, dataset="customers", filename="customers.csv", headers={"Idempotency-Key": key}
    )

    forbidden(refused, "upload to dataset 'customers'")
    assert leftovers(s3, "customers", upload_id) == []
    with pytest.raises(ApiException) as no_run:
        custom_objects.get_namespaced_custom_object(GROUP, VERSION, api.namespace, PLURAL, upload_id)
    assert no_run.value.status == 404
    # Its own dataset's upload went through (the fixture), and became a run of `orders`.
    assert orders_key.get(f"{UPLOADS}/{uploads['orders']}").json()["dataset"] == "orders"


def test_scoped_key_lists_and_reads_its_dataset_s_uploads_only(
    admin: httpx.Client, orders_key: httpx.Client, uploads: dict[str, str]
) -> None:
    mine = orders_key.get(UPLOADS, params={"limit": 500}).json()
    everyone = admin.get(UPLOADS, params={"limit": 500}).json()

    assert {u["dataset"] for u in mine["data"]} == {"orders"} and uploads["orders"] in [
        u["uploadId"] for u in mine["data"]
    ]
    assert uploads["customers"] in [u["uploadId"] for u in everyone["data"]]
    assert mine["count"] < everyone["count"]
    forbidden(orders_key.get(UPLOADS, params={"dataset": "customers"}), "list the uploads of dataset 'customers'")
    forbidden(
        orders_key.get(f"{UPLOADS}/{uploads['customers']}"),
        f"read upload {uploads['customers']} of dataset 'customers'",
    )
    assert admin.get(f"{UPLOADS}/{uploads['customers']}").json()["phase"] == "Succeeded"


def test_scoped_key_reads_its_dataset_s_table_and_contract_only(
    admin: httpx.Client, orders_key: httpx.Client, uploads: dict[str, str]
) -> None:
    tables = [t["identifier"] for t in orders_key.get("/api/v1/tables").json()["data"]]
    rows = orders_key.get("/api/v1/tables/bronze/orders/rows", params={"uploadId": uploads["orders"]}).json()

    assert tables == ["bronze.orders"]
    assert rows["count"] == 5
    assert orders_key.get("/api/v1/tables/bronze/orders").json()["identifier"] == "bronze.orders"
    forbidden(orders_key.get("/api/v1/tables/bronze/customers"), "read table bronze.customers of dataset 'customers'")
    forbidden(orders_key.get("/api/v1/tables/bronze/customers/rows"), "read table bronze.customers of dataset")
    assert [d["name"] for d in orders_key.get("/api/v1/datasets").json()["data"]] == ["orders"]
    forbidden(orders_key.get("/api/v1/datasets/customers"), "read the contract of dataset 'customers'")

    # The admin key keeps every dataset.
    every_table = {t["identifier"] for t in admin.get("/api/v1/tables").json()["data"]}
    assert {"bronze.orders", "bronze.customers"} <= every_table
    customer_rows = admin.get("/api/v1/tables/bronze/customers/rows", params={"uploadId": uploads["customers"]})
    assert customer_rows.json()["count"] == 5


def test_a_key_over_its_rate_gets_429_and_is_served_again_after_retry_after(run_namespace: str, tmp_path: Path) -> None:
    """30 a minute (a token every 2 s) with a burst of 3: the 4th request at once is refused."""
    limits = {"LAKEHOUSE_API_RATE_LIMIT_PER_MINUTE": "30", "LAKEHOUSE_API_RATE_LIMIT_BURST": "3"}
    with (
        running_api(run_namespace, tmp_path / "api.log", limits, scoped_keys={"other": "orders"}) as api,
        httpx.Client(base_url=api.url, headers=api.headers, timeout=30) as http,
    ):
        answers = [http.get("/api/v1/datasets") for _ in range(4)]
        other_key = http.get("/api/v1/datasets", headers=api.headers_of("other"))
        health = http.get("/healthz")
        retry_after = int(answers[3].headers["retry-after"])
        time.sleep(retry_after)
        again = http.get("/api/v1/datasets")

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    limited = problem(answers[3], 429)
    assert limited["type"].endswith("/rate-limited") and f"retry after {retry_after} s" in limited["detail"]
    assert 1 <= retry_after <= 2
    assert other_key.status_code == 200 and health.status_code == 200  # other keys and open endpoints unaffected
    assert again.status_code == 200, again.text
