"""The reference pages in docs/ cover everything the code defines: a key, topic or metric added to the code
and not to its page fails here, so the docs cannot fall behind silently."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pydantic import BaseModel

from lakehouse.contracts.model import (
    AUDIT_COLUMNS,
    PRIMITIVE_TYPES,
    BronzeTarget,
    Column,
    CsvDialect,
    DatasetContract,
    PartitionField,
    Rule,
)
from lakehouse.events import TOPICS
from lakehouse.k8s.ingestionrun.reasons import FailureReason

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def documented_keys(page: str, heading: str) -> set[str]:
    """The names in backquotes in the first cell of the table rows under one heading of a page."""
    text = (DOCS / page).read_text()
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", section, flags=re.MULTILINE)
    return {name for cell in first_cells for name in re.findall(r"`([a-z_-]+)`", cell)}


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_every_contract_key_is_in_the_contract_reference() -> None:
    assert fields(DatasetContract) <= documented_keys("contracts.md", "## Top-level keys")
    assert fields(Column) <= documented_keys("contracts.md", "## `columns`")
    assert fields(Rule) <= documented_keys("contracts.md", "## `rules`")
    assert fields(BronzeTarget) <= documented_keys("contracts.md", "## `bronze`")
    assert fields(CsvDialect) <= documented_keys("contracts.md", "## `csv`")
    page = (DOCS / "contracts.md").read_text()
    assert all(f"`{name}`" in page for name in fields(PartitionField))
    assert all(f"`{kind}`" in page for kind in PRIMITIVE_TYPES)


def test_every_audit_column_is_in_the_contract_reference() -> None:
    assert set(AUDIT_COLUMNS) <= documented_keys("contracts.md", "## Audit columns")


def test_every_kafka_topic_is_in_the_events_reference() -> None:
    assert set(TOPICS) <= documented_keys("metrics-and-events.md", "## Kafka events")


def _literal_reasons(node: ast.AST) -> set[str]:
    """The string literals an expression can evaluate to: `"A"`, `x or "A"`, `"A" if c else "B"`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.BoolOp):
        return {value for operand in node.values for value in _literal_reasons(operand)}
    if isinstance(node, ast.IfExp):
        return _literal_reasons(node.body) | _literal_reasons(node.orelse)
    return set()


def reasons_written_as_strings() -> dict[str, set[str]]:
    """Failure reasons given as string literals instead of FailureReason members, by file: the reason of
    RunRejectedError, RunFailed and NiFi's StepError, and an InputError's `reason`."""
    found: dict[str, set[str]] = {}
    for path in [*(ROOT / "lakehouse").rglob("*.py"), *(ROOT / "operator").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            literals: set[str] = set()
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "RunRejectedError" and node.args:
                    literals = _literal_reasons(node.args[0])
                elif node.func.id == "RunFailed" and len(node.args) > 3:
                    literals = _literal_reasons(node.args[3])
                elif node.func.id == "StepError":
                    literals = {c for k in node.keywords if k.arg == "reason" for c in _literal_reasons(k.value)}
            elif isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["reason"]:
                literals = _literal_reasons(node.value)
            if literals:
                found.setdefault(str(path.relative_to(ROOT)), set()).update(literals)
    return found


def test_every_failure_reason_has_a_troubleshooting_section() -> None:
    sections = set(re.findall(r"^### (\w+)$", (DOCS / "troubleshooting.md").read_text(), flags=re.MULTILINE))
    assert sections == {reason.value for reason in FailureReason}


def test_failure_reasons_come_from_their_one_home() -> None:
    """A reason written as a string could be one the troubleshooting page does not know."""
    assert reasons_written_as_strings() == {}
