"""The alert rules (charts/lakehouse/files/prometheus-rules.yaml) and the dashboards
(charts/lakehouse/files/dashboards/): promtool checks the rules and runs their unit tests, and every metric
they name is one the code exports."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from lakehouse_api import metrics as api_metrics  # noqa: F401  (defines the API's metrics in the registry)
from lakehouse_operator import metrics as operator_metrics
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric

from lakehouse.contracts.registry import ContractRegistry
from tests.utils.monitoring import (
    DASHBOARDS,
    RULE_TESTS,
    RULES_FILE,
    SCRAPE_SERIES,
    alert_rules,
    dashboard,
    metric_names,
    panel_queries,
    panels,
    promtool_path,
)

# The five conditions of the platform's alerting, each with one rule and one promtool test file.
ALERTS = {
    "LakehouseRunsFailing": "runs-failing",
    "LakehouseRunStuck": "run-stuck",
    "LakehouseRejectRatioHigh": "reject-ratio-high",
    "LakehouseNoSuccessfulRun": "no-successful-run",
    "LakehouseOperatorDown": "operator-down",
    "LakehouseApiDown": "api-down",
    "LakehouseEventsWaiting": "events-waiting",
    "LakehouseMaintenanceFailing": "maintenance-failing",
}
REPO_ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",)}


def exposed_names(family: Metric) -> set[str]:
    """The sample names Prometheus stores for a metric family (without the _created ones it drops)."""
    return {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}


def exported_families() -> list[Metric]:
    """Every metric family the operator and the API serve: the default registry (their module-level
    metrics) and the collectors the operator registers at start-up."""
    scraped_at_runtime = CollectorRegistry()
    scraped_at_runtime.register(operator_metrics.RunsInFlight(lambda: []))
    scraped_at_runtime.register(operator_metrics.DatasetLimits(ContractRegistry.default))
    return [family for registry in (REGISTRY, scraped_at_runtime) for family in registry.collect()]


def exported_metrics() -> set[str]:
    return {name for family in exported_families() for name in exposed_names(family)}


@pytest.fixture(scope="module")
def promtool() -> Path:
    path = promtool_path()
    if not path.is_file():
        pytest.skip(f"promtool is not built ({path}): devstack/services/prometheus.sh install (make up builds it)")
    return path


def test_each_alert_has_its_promtool_test_file() -> None:
    assert {rule["alert"] for rule in alert_rules()} == set(ALERTS)
    for alert, stem in ALERTS.items():
        (test_file,) = [path for path in RULE_TESTS if path.name == f"{stem}.test.yaml"]
        tested = {
            case["alertname"]
            for test in yaml.safe_load(test_file.read_text())["tests"]
            for case in test["alert_rule_test"]
        }
        assert tested == {alert}, f"{test_file.name} tests {tested}, not {alert}"


def test_every_alert_says_what_happened_and_how_bad() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_promtool_checks_the_rules(promtool: Path) -> None:
    done = subprocess.run([promtool, "check", "rules", RULES_FILE], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_the_rules_pass(promtool: Path) -> None:
    done = subprocess.run([promtool, "test", "rules", *RULE_TESTS], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS), done.stdout


def test_rules_and_dashboards_name_only_metrics_the_code_exports() -> None:
    exported = exported_metrics() | SCRAPE_SERIES
    used = {f"rule {rule['alert']}": metric_names(rule["expr"]) for rule in alert_rules()}
    used |= {str(query): metric_names(query.promql()) for query in panel_queries()}

    unknown = {where: sorted(names - exported) for where, names in used.items() if names - exported}
    assert not unknown, f"metrics nobody exports: {unknown}"
    assert all(used.values()), [where for where, names in used.items() if not names]


def test_every_metric_is_in_the_metrics_reference() -> None:
    reference = (REPO_ROOT / "docs" / "metrics-and-events.md").read_text()
    # As the reference names them: a counter with its _total, an info with its _info, others as they are.
    names = {
        family.name + {"counter": "_total", "info": "_info"}.get(family.type, "") for family in exported_families()
    }
    ours = {name for name in names if name.startswith("lakehouse_")}
    assert ours and not {name for name in ours if f"`{name}`" not in reference}, sorted(
        name for name in ours if f"`{name}`" not in reference
    )


def test_metric_names_are_read_from_promql_as_prometheus_reads_them() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) "
        '(rate(lakehouse_api_request_duration_seconds_bucket{route!="/x"}[5m]))) > on (route) group_left '
        'max by (route) (up offset 1h) or absent(nan_metric{a="b or c"}) * 1e3 + inf'
    )
    assert metric_names(expr) == {"lakehouse_api_request_duration_seconds_bucket", "up", "nan_metric"}


def test_dashboards_are_grafana_dashboards_on_a_chosen_prometheus() -> None:
    uids = [dashboard(path)["uid"] for path in DASHBOARDS]
    assert len(DASHBOARDS) == 3 and len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        board = dashboard(path)
        assert board["templating"]["list"][0] == {
            **board["templating"]["list"][0],
            "type": "datasource",
            "name": "datasource",
        }
        ids = [panel["id"] for panel in panels(board)]
        assert len(set(ids)) == len(ids), f"{path.name}: panel ids repeat"
        for panel in panels(board):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"] and all(target["expr"] for target in panel["targets"]), panel["title"]
