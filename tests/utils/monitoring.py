"""The alert rules and Grafana dashboards, read the way Prometheus and Grafana read them, for the tests."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = REPO_ROOT / "charts" / "lakehouse" / "files" / "prometheus-rules.yaml"
MONITORING = REPO_ROOT / "deploy" / "monitoring"
RULE_TESTS = sorted((MONITORING / "tests").glob("*.test.yaml"))
DASHBOARDS = sorted((REPO_ROOT / "charts" / "lakehouse" / "files" / "dashboards").glob("*.json"))
# Grafana's variables as a panel would use them over the last hour, with every dataset and stage.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$dataset": ".*",
    "$stage": ".*",
}
# Series Prometheus makes itself for every target.
SCRAPE_SERIES = {"up"}

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
_KEYWORDS |= {"inf", "nan"}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel}: {self.expr}"

    def promql(self) -> str:
        """The query with Grafana's variables replaced, as Prometheus receives it."""
        expr = self.expr
        for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
            expr = expr.replace(name, GRAFANA_VARIABLES[name])
        if "$" in expr:
            raise ValueError(f"{self}: a Grafana variable the tests do not know")
        return expr


def dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(path.stem, panel["title"], target["expr"])
        for path in DASHBOARDS
        for panel in panels(dashboard(path))
        for target in panel.get("targets", [])
    ]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left of it once strings, label matchers,
    ranges, label lists, keywords, numbers and function names are taken out."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.:$])[a-zA-Z_:][\w:]*", expr):
        name = match.group()
        if name.lower() in _KEYWORDS or expr[match.end() :].lstrip().startswith("("):
            continue
        names.add(name)
    return names


def promtool_path() -> Path:
    """Where devstack/services/prometheus.sh builds promtool (PROMTOOL from `make -s env` wins)."""
    if os.environ.get("PROMTOOL"):
        return Path(os.environ["PROMTOOL"])
    versions = (REPO_ROOT / "devstack" / "versions.env").read_text()
    version = re.search(r"^PROMETHEUS_VERSION=(\S+)$", versions, re.MULTILINE)
    assert version, "devstack/versions.env pins no PROMETHEUS_VERSION"
    cache = Path(os.environ.get("LAKEHOUSE_CACHE_DIR") or REPO_ROOT / ".cache")
    return cache / "bin" / f"prometheus-{version[1]}" / "promtool"
