"""The stack's Prometheus (devstack/services/prometheus.sh): it scrapes the operator and the API, evaluates
the alert rules, and after runs have gone through the stack's operator every dashboard query returns series."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from kubernetes import client

from lakehouse.devtools.sample_data import orders
from lakehouse.storage.layout import upload_location
from tests.utils.monitoring import alert_rules, metric_names, panel_queries
from tests.utils.runs import Upload, create_run, new_upload_id, run_body, wait_for_phase
from tests.utils.stack import stack_env
from tests.utils.upload_bodies import form

pytestmark = pytest.mark.integration
JOBS = {"lakehouse-operator", "lakehouse-api"}


@pytest.fixture(scope="module")
def prometheus() -> str:
    return stack_env("PROMETHEUS_URL")["PROMETHEUS_URL"]


def api_get(prometheus: str, path: str, **params: str) -> Any:
    response = requests.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{path} {params}: {body}"
    return body["data"]


def eventually(check: Callable[[], Any], timeout: float = 60, poll: float = 1) -> Any:
    """check()'s first truthy result within timeout seconds (its last failure after that)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result := check():
                return result
            failure = AssertionError(f"{check.__name__} gave {result!r}")
        except AssertionError as error:
            failure = error
        if time.monotonic() >= deadline:
            raise failure
        time.sleep(poll)


def test_prometheus_scrapes_the_operator_and_the_api_every_5_seconds(prometheus: str) -> None:
    def targets() -> dict[str, dict[str, Any]]:
        active = api_get(prometheus, "targets", state="active")["activeTargets"]
        found = {t["labels"]["job"]: t for t in active if t["labels"]["job"] in JOBS}
        assert set(found) == JOBS, f"targets: {active}"
        assert all(t["health"] == "up" for t in found.values()), found
        return found

    for target in eventually(targets).values():
        assert target["scrapeInterval"] == "5s"
        assert target["labels"]["instance"].split(":")[0] == target["scrapeUrl"].split("//")[1].split(":")[0]


def test_every_alert_rule_is_loaded_and_evaluates(prometheus: str) -> None:
    def evaluated() -> dict[str, dict[str, Any]]:
        groups = api_get(prometheus, "rules", type="alert")["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        assert set(rules) == {rule["alert"] for rule in alert_rules()}
        assert all(rule["health"] == "ok" and "lastError" not in rule for rule in rules.values()), rules
        return rules

    eventually(evaluated)


def test_prometheus_reads_the_same_metric_names_from_every_query(prometheus: str) -> None:
    """Prometheus parses every rule and panel query, and the metrics it selects are the ones the unit test
    (tests/unit/test_monitoring.py) reads from them and holds to what the code exports."""
    queries = [rule["expr"] for rule in alert_rules()] + [query.promql() for query in panel_queries()]
    for query in queries:
        tree = api_get(prometheus, "parse_query", query=query)
        assert selected_metrics(tree) == metric_names(query), query


def test_every_dashboard_query_returns_series_after_runs(
    prometheus: str, custom_objects: client.CustomObjectsApi
) -> None:
    stack = stack_env("LAKEHOUSE_API_URL", "LAKEHOUSE_API_KEY", "LAKEHOUSE_NAMESPACE")
    namespace = stack["LAKEHOUSE_NAMESPACE"]
    # One run through the stack's API that succeeds with rejected rows (uploads, bytes, rows of every kind,
    # every stage's duration) and one whose file is missing, which fails (failed runs and stage attempts).
    headers, body = form(orders(50, invalid_every=10).csv_bytes())
    response = requests.post(
        f"{stack['LAKEHOUSE_API_URL']}/api/v1/uploads",
        data=body,
        headers={**headers, "X-API-Key": stack["LAKEHOUSE_API_KEY"]},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    missing_id = new_upload_id()
    location = upload_location("uploads", "orders", missing_id, "data.csv", dt.date.today())
    missing = Upload(missing_id, location.uri, 10, "0" * 64, "csv")  # never put into S3
    create_run(custom_objects, namespace, run_body(missing, "orders"))
    succeeded = wait_for_phase(custom_objects, namespace, accepted["runName"], {"Succeeded", "Failed"})
    failed = wait_for_phase(custom_objects, namespace, missing.upload_id, {"Succeeded", "Failed"})
    assert succeeded["status"]["phase"] == "Succeeded", succeeded["status"]
    assert failed["status"]["phase"] == "Failed", failed["status"]

    # Prometheus has the runs once it has scraped the operator after them; rates need a second scrape.
    operator = stack_env("LAKEHOUSE_OPERATOR_METRICS_URL")["LAKEHOUSE_OPERATOR_METRICS_URL"]
    done = sum(
        float(line.rsplit(" ", 1)[1])
        for line in requests.get(operator, timeout=10).text.splitlines()
        if line.startswith("lakehouse_runs_total{") and 'dataset="orders"' in line and 'phase="Succeeded"' in line
    )
    scraped = f'sum(lakehouse_runs_total{{dataset="orders",phase="Succeeded"}}) >= {done}'
    eventually(lambda: api_get(prometheus, "query", query=scraped)["result"], timeout=30)

    def without_series() -> list[str]:
        return [str(q) for q in panel_queries() if not api_get(prometheus, "query", query=q.promql())["result"]]

    def all_have_series() -> bool:
        assert not (empty := without_series()), "panel queries without series:\n" + "\n".join(empty)
        return True

    eventually(all_have_series, timeout=30, poll=5)
    # The values of the dashboards' variables (label_values queries).
    assert "orders" in api_get(prometheus, "label/dataset/values", **{"match[]": "lakehouse_rows_total"})
    stages = api_get(prometheus, "label/stage/values", **{"match[]": "lakehouse_stage_duration_seconds_count"})
    assert "ingest" in stages


def selected_metrics(node: Any) -> set[str]:
    """The metric names of every vector and range selector in a parse_query syntax tree."""
    if isinstance(node, list):
        return set().union(*(selected_metrics(item) for item in node))
    if not isinstance(node, dict):
        return set()
    selector = node.get("type") in ("vectorSelector", "matrixSelector")
    names = {node["name"]} if selector and node.get("name") else set()
    return names.union(*(selected_metrics(value) for value in node.values()))
