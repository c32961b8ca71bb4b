"""The reference pages in docs/ cover everything the code defines: a key, topic or metric added to the code
and not to its page fails here, so the docs cannot fall behind silently."""

from __future__ import annotations

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

DOCS = Path(__file__).resolve().parents[2] / "docs"


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
