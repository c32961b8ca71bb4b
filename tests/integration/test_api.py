"""The Datasource API as a real process against the local stack: uploads become bronze rows,
every error is problem+json, keys are checked and never logged, retries are idempotent."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from lakehouse_api.uploads.stored_upload import idempotency_key_hash, idempotent_upload_id
from prometheus_client.parser import text_string_to_metric_families

from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.storage.s3 import S3Location
from tests.utils.api_checks import UPLOADS, leftovers, post_upload, problem, wait_for_event, wait_for_upload
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.stack import stack_env
from tests.utils.upload_bodies import form, raw_form

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
MAX_UPLOAD = 12 * MIB


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The API on the stack's namespace, whose operator runs the uploads; small limits keep the 413 tests cheap."""
    namespace = stack_env("KUBECONFIG", "S3_ENDPOINT_URL", "ICEBERG_CATALOG_URI", "LAKEHOUSE_NAMESPACE")
    env = {"LAKEHOUSE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "LAKEHOUSE_UPLOAD_PART_BYTES": str(5 * MIB)}
    log = tmp_path_factory.mktemp("api") / "api.log"
    with running_api(namespace["LAKEHOUSE_NAMESPACE"], log, env) as process:
        yield process


@pytest.fixture
def http(api: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as session:
        yield session


# --- the main path -------------------------------------------------------------------------------


def test_upload_becomes_bronze_rows_readable_through_the_api(http: httpx.Client, api: ApiProcess, s3: Any) -> None:
    sample = orders(40, invalid_every=10, seed=21)
    data = sample.csv_bytes()

    response = post_upload(http, data, filename="orders-march.csv")

    assert response.status_code == 202, response.text
    accepted = response.json()
    upload_id = accepted["uploadId"]
    assert upload_id.startswith("up-") and accepted["runName"] == upload_id
    assert accepted["statusUrl"] == f"{api.url}{UPLOADS}/{upload_id}"
    assert (accepted["format"], accepted["sizeBytes"], accepted["sha256"]) == (
        "csv",
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    location = S3Location.parse(accepted["objectUri"])
    assert location.key == f"orders/{dt.datetime.now(dt.UTC).date()}/{upload_id}/orders-march.csv"
    assert s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read() == data

    upload = wait_for_upload(http, upload_id)

    assert upload["phase"] == "Succeeded", upload
    assert upload["counts"] == {"input": 40, "valid": 36, "rejected": 4, "written": 36}
    assert upload["table"] == "bronze.orders" and upload["snapshotId"]
    assert upload["source"]["sha256"] == accepted["sha256"]
    assert {c["type"]: c["status"] for c in upload["conditions"]}["Ready"] == "True"
    upload = wait_for_event(http, upload_id, "BronzeCommitted")
    assert {"Accepted", "BronzeCommitted"} <= {e["reason"] for e in upload["events"]}

    rows = http.get("/api/v1/tables/bronze/orders/rows", params={"uploadId": upload_id, "limit": 1000}).json()
    assert rows["count"] == 36 and rows["snapshotId"] == upload["snapshotId"]
    assert {r["order_id"]: (r["customer_id"], Decimal(r["amount"]), r["order_date"]) for r in rows["data"]} == {
        order_id: (customer, amount, day.isoformat()) for order_id, (customer, amount, day) in sample.valid.items()
    }

    table = http.get("/api/v1/tables/bronze/orders", params={"snapshots": True, "asOf": upload["snapshotId"]}).json()
    assert table["snapshotId"] == upload["snapshotId"] and table["rowCount"] >= 36
    assert "order_id" in [c["name"] for c in table["columns"]]
    assert table["partitioning"] == ["month(order_date)"]
    ours = next(s for s in table["snapshots"] if s["snapshotId"] == upload["snapshotId"])
    assert (ours["runId"], ours["uploadId"]) == (upload_id, upload_id)  # the API names the run after its upload
    assert (ours["addedRecords"], ours["totalRecords"]) == (36, table["rowCount"])


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_json_lines_and_parquet_are_sniffed_and_ingested(fmt: str, http: httpx.Client) -> None:
    sample = orders(12, seed=5)
    data = sample.json_lines_bytes() if fmt == "json" else sample.parquet_bytes()

    response = post_upload(http, data, filename=f"orders.{'jsonl' if fmt == 'json' else 'parquet'}")

    assert response.status_code == 202, response.text
    assert response.json()["format"] == fmt
    upload = wait_for_upload(http, response.json()["uploadId"])
    # The API's part ends at a run with the right format; row-level checks belong to the ingest tests.
    assert upload["phase"] == "Succeeded" and upload["counts"]["input"] == 12, upload
    assert upload["source"]["format"] == fmt


def test_alias_endpoint_accepts_uploads(http: httpx.Client) -> None:
    response = post_upload(http, orders(3).csv_bytes(), path="/api/upload")

    assert response.status_code == 202
    assert wait_for_upload(http, response.json()["uploadId"])["phase"] == "Succeeded"


def test_engine_choices_reach_the_run(http: httpx.Client, custom_objects: client.CustomObjectsApi) -> None:
    response = post_upload(http, orders(3).csv_bytes(), ingest_engine="builtin", transform_engine="arrow")

    assert response.status_code == 202
    upload = wait_for_upload(http, response.json()["uploadId"])
    assert upload["engines"] == {"ingest": "builtin", "transform": "arrow"}


def test_failed_run_shows_its_reason(http: httpx.Client) -> None:
    response = post_upload(http, b"order_id,amount\n1,2.00\n")

    upload = wait_for_upload(http, response.json()["uploadId"])

    assert upload["phase"] == "Failed"
    failed = next(c for c in upload["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "MissingColumns" and failed["status"] == "True"


def test_uploads_are_listed_newest_first_with_filters_and_pages(http: httpx.Client) -> None:
    first = post_upload(http, orders(2).csv_bytes()).json()["uploadId"]
    threading.Event().wait(1.1)  # creation times have whole seconds
    failing = post_upload(http, b"order_id,amount\n1,2.00\n").json()["uploadId"]
    wait_for_upload(http, first)
    wait_for_upload(http, failing)

    page = http.get(UPLOADS, params={"dataset": "orders", "limit": 50}).json()
    ids = [u["uploadId"] for u in page["data"]]
    assert ids.index(failing) < ids.index(first) and page["count"] >= len(ids) >= 2
    assert all(u["events"] is None and u["dataset"] == "orders" for u in page["data"])

    one = http.get(UPLOADS, params={"dataset": "orders", "limit": 1, "offset": ids.index(first)}).json()
    assert [u["uploadId"] for u in one["data"]] == [first] and one["count"] == page["count"]

    failed = http.get(UPLOADS, params={"phase": "Failed", "limit": 500}).json()
    assert failing in [u["uploadId"] for u in failed["data"]]
    assert {u["phase"] for u in failed["data"]} == {"Failed"}
    assert http.get(UPLOADS, params={"dataset": "no_such"}).json() == {"data": [], "count": 0}


def test_datasets_and_tables_are_listed(http: httpx.Client) -> None:
    datasets = http.get("/api/v1/datasets").json()
    orders_contract = next(d for d in datasets["data"] if d["name"] == "orders")
    assert datasets["count"] == len(datasets["data"]) >= 2
    assert orders_contract["bronze"]["table"] == "bronze.orders"
    assert "amount > 0" in [r["description"] for r in orders_contract["rules"]]
    assert http.get("/api/v1/datasets/customers").json()["name"] == "customers"

    tables = http.get("/api/v1/tables").json()
    assert "bronze.orders" in [t["identifier"] for t in tables["data"]]


# --- idempotency ---------------------------------------------------------------------------------


def test_retry_with_the_same_idempotency_key_returns_the_first_run(
    http: httpx.Client, custom_objects: client.CustomObjectsApi, api: ApiProcess
) -> None:
    data = orders(5, seed=8).csv_bytes()
    key = {"Idempotency-Key": f"retry-{dt.datetime.now().timestamp()}"}

    first = post_upload(http, data, headers=key)
    retried = post_upload(http, data, headers=key)

    assert first.status_code == retried.status_code == 202
    assert retried.json()["uploadId"] == first.json()["uploadId"]
    assert (first.json()["replayed"], retried.json()["replayed"]) == (False, True)
    runs = ("lakehouse.dev", "v1alpha1", api.namespace, "ingestionruns")
    run = custom_objects.get_namespaced_custom_object(*runs, first.json()["runName"])
    label = run["metadata"]["labels"]["lakehouse.dev/idempotency-key-hash"]
    same_key = custom_objects.list_namespaced_custom_object(
        *runs, label_selector=f"lakehouse.dev/idempotency-key-hash={label}"
    )
    assert [r["metadata"]["name"] for r in same_key["items"]] == [first.json()["runName"]]

    other_dataset = post_upload(http, data, headers=key, dataset="customers")
    assert problem(other_dataset, 422)["type"].endswith("/idempotency-key-reused")


def test_concurrent_retries_make_one_run_and_keep_its_file(http: httpx.Client, api: ApiProcess, s3: Any) -> None:
    data = orders(5, seed=9).csv_bytes()
    key = {"Idempotency-Key": f"race-{dt.datetime.now().timestamp()}"}
    answers: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as session:
            answers.append(post_upload(session, data, headers=key))

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.json()["uploadId"] for a in answers}) == 1
    assert sorted(a.json()["replayed"] for a in answers) == [False, True, True]
    upload = wait_for_upload(http, answers[0].json()["uploadId"])
    assert upload["phase"] == "Succeeded"
    location = S3Location.parse(upload["source"]["uri"])
    assert s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read() == data


# --- refusals ------------------------------------------------------------------------------------

PROTECTED = [
    ("POST", UPLOADS),
    ("POST", "/api/upload"),
    ("GET", UPLOADS),
    ("GET", f"{UPLOADS}/up-0000"),
    ("GET", "/api/v1/datasets"),
    ("GET", "/api/v1/tables"),
    ("GET", "/api/v1/tables/bronze/orders"),
    ("GET", "/api/v1/tables/bronze/orders/rows"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_requests_without_a_valid_key_are_refused(method: str, path: str, api: ApiProcess) -> None:
    headers, body = form(orders(2).csv_bytes()) if method == "POST" else ({}, None)
    with httpx.Client(base_url=api.url, timeout=30) as anonymous:
        missing = anonymous.request(method, path, content=body, headers=headers)
        wrong = anonymous.request(method, path, content=body, headers={**headers, "X-API-Key": "lk-wrong"})
        wrong_bearer = anonymous.request(method, path, headers={"Authorization": "Bearer lk-wrong"})

    assert problem(missing, 401)["type"].endswith("/unauthenticated")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert problem(wrong, 403)["type"].endswith("/forbidden")
    problem(wrong_bearer, 403)


def test_both_key_headers_are_accepted_and_health_is_open(api: ApiProcess) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as session:
        assert session.get("/api/v1/datasets", headers={"X-API-Key": api.key}).status_code == 200
        assert session.get("/api/v1/datasets", headers={"Authorization": f"Bearer {api.key}"}).status_code == 200
        assert session.get("/healthz").json() == {"status": "ok"}
        ready = session.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
        assert all(c["ok"] for c in ready.json()["checks"].values())
        assert session.get("/docs").status_code == 200
        openapi = session.get("/openapi.json").json()
    upload_body = openapi["paths"][UPLOADS]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(upload_body["properties"]) >= {"dataset", "file", "ingest_engine", "transform_engine"}
    assert "/api/upload" in openapi["paths"] and "/api/v1/tables/{namespace}/{table}/rows" in openapi["paths"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(openapi["components"]["securitySchemes"])


def test_too_large_declared_upload_is_refused_before_reading(
    http: httpx.Client, api: ApiProcess, s3: Any, custom_objects: client.CustomObjectsApi
) -> None:
    headers, body = form(b"order_id\n" + b"1\n" * (MAX_UPLOAD // 2 + MIB))
    # With an Idempotency-Key the upload id is known in advance, so its objects can be looked for.
    key = f"too-large-{dt.datetime.now().timestamp()}"
    upload_id = idempotent_upload_id(idempotency_key_hash(hashlib.sha256(api.key.encode()).hexdigest(), key))

    refused = problem(http.post(UPLOADS, content=body, headers={**headers, "Idempotency-Key": key}), 413)

    assert refused["type"].endswith("/upload-too-large") and refused["maxBytes"] == MAX_UPLOAD
    assert "uploadId" not in refused  # refused before an id was given to anything
    assert leftovers(s3, "orders", upload_id) == []
    with pytest.raises(ApiException) as no_run:
        custom_objects.get_namespaced_custom_object(GROUP, VERSION, api.namespace, PLURAL, upload_id)
    assert no_run.value.status == 404


def test_too_large_streamed_upload_is_refused_and_its_parts_discarded(http: httpx.Client, s3: Any) -> None:
    """No Content-Length (chunked): the limit trips mid-stream, after S3 parts were already sent."""
    headers, body = form(b"order_id\n" + b"1\n" * (MAX_UPLOAD // 2 + MIB))
    del headers["Content-Length"]

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(body), MIB):
            yield body[start : start + MIB]

    refused = problem(http.post(UPLOADS, content=chunked(), headers=headers), 413)

    assert refused["uploadId"].startswith("up-")
    assert leftovers(s3, "orders", refused["uploadId"]) == []


@pytest.mark.parametrize(
    ("data", "filename", "fragment"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "orders.csv", "neither Parquet nor UTF-8"),
        (b"order_id\x00\x01\x02,amount\n", "orders.csv", "binary data"),
        (b"order_id,amount\n1,2\n", "orders.parquet", "its content is csv"),
        (b"PAR1" + b"\x00" * 100, "orders.parquet", "Parquet footer"),
        (b'[{"order_id": 1}]', "orders.json", "JSON arrays"),
        (b"<html><body>orders</body></html>", "orders.csv", "XML or HTML"),
        (b"{not json\n", "orders.jsonl", "not a JSON object"),
    ],
    ids=["png", "nul-bytes", "csv-named-parquet", "truncated-parquet", "json-array", "html", "broken-json"],
)
def test_unsupported_content_is_refused_by_sniffing(
    data: bytes, filename: str, fragment: str, http: httpx.Client, s3: Any
) -> None:
    refused = problem(post_upload(http, data, filename=filename), 415)

    assert fragment in refused["detail"] and refused["type"].endswith("/unsupported-format")
    assert leftovers(s3, "orders", refused["uploadId"]) == []


def test_non_multipart_body_is_refused(http: httpx.Client) -> None:
    response = http.post(UPLOADS, content=b"order_id\n1\n", headers={"Content-Type": "text/csv"})

    assert problem(response, 415)["type"].endswith("/unsupported-media-type")


def test_unknown_dataset_is_refused_with_the_known_ones(http: httpx.Client) -> None:
    refused = problem(post_upload(http, orders(2).csv_bytes(), dataset="invoices"), 422)

    assert refused["type"].endswith("/unknown-dataset")
    assert {"orders", "customers"} <= set(refused["datasets"])


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("no-dataset", "form fields must come before the file part"),
        ("bad-engine", "ingest_engine"),
        ("bad-dataset-name", "dataset"),
        ("empty-file", "the file is empty"),
        ("unknown-field", "unknown form field 'colour'"),
        ("field-after-file", "the file must be the last part"),
        ("no-file", "no 'file' part"),
    ],
)
def test_invalid_forms_are_refused(case: str, fragment: str, http: httpx.Client) -> None:
    data = orders(2).csv_bytes()
    if case == "no-dataset":
        response = post_upload(http, data, dataset=None)
    elif case == "bad-engine":
        response = post_upload(http, data, ingest_engine="excel")
    elif case == "bad-dataset-name":
        response = post_upload(http, data, dataset="../etc")
    elif case == "empty-file":
        response = post_upload(http, b"")
    elif case == "unknown-field":
        response = post_upload(http, data, colour="blue")
    else:
        parts = {
            "field-after-file": [("dataset", None, b"orders"), ("file", "o.csv", data), ("ingest_engine", None, b"x")],
            "no-file": [("dataset", None, b"orders")],
        }[case]
        headers, body = raw_form(parts)
        response = http.post(UPLOADS, content=body, headers=headers)

    assert fragment in problem(response, 422)["detail"]


def test_truncated_body_is_refused_and_nothing_kept(http: httpx.Client, s3: Any) -> None:
    headers, body = form(orders(50).csv_bytes())
    del headers["Content-Length"]

    refused = problem(http.post(UPLOADS, content=iter([body[:-20]]), headers=headers), 400)

    assert "closing multipart boundary" in refused["detail"]
    assert leftovers(s3, "orders", refused["uploadId"]) == []


def test_dangerous_file_names_are_sanitised(http: httpx.Client, s3: Any) -> None:
    response = post_upload(http, orders(2).csv_bytes(), filename="../../etc/pass\x01wd .csv")

    assert response.status_code == 202, response.text
    key = S3Location.parse(response.json()["objectUri"]).key
    assert key.endswith(f"/{response.json()['uploadId']}/pass_wd_.csv") and ".." not in key
    assert response.json()["filename"] == "pass_wd_.csv"


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        (f"{UPLOADS}/up-does-not-exist", 404, "upload-not-found"),
        ("/api/v1/tables/bronze/no_such_table", 404, "table-not-found"),
        ("/api/v1/tables/bronze/orders?asOf=1", 404, "snapshot-not-found"),
        ("/api/v1/tables/bronze/orders/rows?limit=5000", 422, "invalid-request"),
        ("/api/v1/datasets/invoices", 404, "unknown-dataset"),
        (f"{UPLOADS}?limit=0", 422, "invalid-request"),
        (f"{UPLOADS}/Not_A_Name", 422, "invalid-request"),
        ("/api/v1/nothing-here", 404, None),
    ],
)
def test_read_errors_are_problems(path: str, status: int, kind: str | None, http: httpx.Client) -> None:
    body = problem(http.get(path), status)

    assert body["type"] == (f"https://lakehouse.dev/problems/{kind}" if kind else "about:blank")


def test_wrong_method_is_a_problem(http: httpx.Client) -> None:
    problem(http.delete("/api/v1/datasets"), 405)


def metric_samples(http: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the API's /metrics, by name and labels."""
    families = text_string_to_metric_families(http.get("/metrics").text)
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def test_metrics_count_requests_by_route_and_uploads_by_outcome(http: httpx.Client) -> None:
    """Counted from this test's own requests, whatever the module's other tests did before."""
    data = orders(2).csv_bytes()
    before = metric_samples(http)

    accepted = post_upload(http, data)
    refused = post_upload(http, b"\x00\x01", filename="x.csv")
    read = http.get(f"{UPLOADS}/{accepted.json()['uploadId']}")
    after = metric_samples(http)

    assert (accepted.status_code, refused.status_code, read.status_code) == (202, 415, 200)

    def added(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert added("lakehouse_api_uploads_total", outcome="accepted") == 1
    assert added("lakehouse_api_uploads_total", outcome="refused_415") == 1
    assert added("lakehouse_api_upload_bytes_total", dataset="orders") == len(data)
    assert added("lakehouse_api_requests_total", method="POST", route=UPLOADS, status="202") == 1
    assert added("lakehouse_api_requests_total", method="POST", route=UPLOADS, status="415") == 1
    # Routes are templates, not one series per id.
    assert added("lakehouse_api_requests_total", method="GET", route=f"{UPLOADS}/{{upload_id}}", status="200") == 1
    assert not any(accepted.json()["uploadId"] in dict(labels).get("route", "") for _, labels in after)


def test_keys_never_reach_the_log(api: ApiProcess, http: httpx.Client, tmp_path: Path) -> None:
    """The fixture checks the whole module's log at the end too; this covers the refusal paths explicitly."""
    wrong = f"lk-wrong-{hashlib.sha256(tmp_path.name.encode()).hexdigest()[:12]}"
    with httpx.Client(base_url=api.url, timeout=30) as session:
        session.get("/api/v1/datasets", headers={"X-API-Key": wrong})
        session.get("/api/v1/datasets", headers={"Authorization": f"Bearer {wrong}"})
    post_upload(http, orders(2).csv_bytes(), dataset="invoices")
    post_upload(http, orders(2).csv_bytes())

    log = api.log_text()
    assert "POST /api/v1/uploads" in log  # the access log is there...
    assert api.key not in log and wrong not in log  # ...without any key
