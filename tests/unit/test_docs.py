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
    DatasetContract,
    PartitionField,
    Rule,
)
from lakehouse.events import TOPICS

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
    page = (DOCS / "contracts.md").read_text()
    assert all(f"`{name}`" in page for name in fields(PartitionField))
    assert all(f"`{kind}`" in page for kind in PRIMITIVE_TYPES)


def test_every_audit_column_is_in_the_contract_reference() -> None:
    assert set(AUDIT_COLUMNS) <= documented_keys("contracts.md", "## Audit columns")


def test_every_kafka_topic_is_in_the_events_reference() -> None:
    assert set(TOPICS) <= documented_keys("metrics-and-events.md", "## Kafka events")


def _constants(node: ast.AST) -> set[str]:
    """The string literals an expression can evaluate to: `"A"`, `x or "A"`, `"A" if c else "B"`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.BoolOp):
        return {value for operand in node.values for value in _constants(operand)}
    if isinstance(node, ast.IfExp):
        return _constants(node.body) | _constants(node.orelse)
    return set()


def failure_reasons_in_code() -> set[str]:
    """Every reason a run can fail with, as the code writes it: the first argument of RunRejectedError, the
    reason of RunFailed and of NiFi's StepError, an InputError's `reason`, and the errors the Spark job turns
    into reasons by name."""
    from lakehouse.bronze.evolution import IncompatibleContractError
    from lakehouse.bronze.transform import RawSchemaMismatchError
    from lakehouse.contracts.registry import UnknownDatasetError

    reasons = {e.__name__.removesuffix("Error") for e in (IncompatibleContractError, RawSchemaMismatchError)}
    reasons.add(UnknownDatasetError.__name__.removesuffix("Error"))
    for path in [*(ROOT / "lakehouse").rglob("*.py"), *(ROOT / "operator").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "RunRejectedError" and node.args:
                    reasons |= _constants(node.args[0])
                elif node.func.id == "RunFailed" and len(node.args) > 3:
                    reasons |= _constants(node.args[3])
                elif node.func.id == "StepError":
                    reasons |= {c for k in node.keywords if k.arg == "reason" for c in _constants(k.value)}
            elif isinstance(node, ast.ClassDef):  # class SomeInputError(InputError): reason = "Some"
                reasons |= {
                    statement.value.value
                    for statement in node.body
                    if isinstance(statement, ast.Assign)
                    and [getattr(target, "id", "") for target in statement.targets] == ["reason"]
                    and isinstance(statement.value, ast.Constant)
                }
    return reasons


def test_every_failure_reason_has_a_troubleshooting_section() -> None:
    sections = set(re.findall(r"^### (\w+)$", (DOCS / "troubleshooting.md").read_text(), flags=re.MULTILINE))
    reasons = failure_reasons_in_code()
    assert {"RetriesExhausted", "MissingColumns", "SourceNotFound", "NiFiTimedOut"} <= reasons  # the scan works
    assert reasons <= sections, sorted(reasons - sections)
