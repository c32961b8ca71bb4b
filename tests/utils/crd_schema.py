"""Checks of a CRD's OpenAPI schema that hold for every CRD of the chart."""

from __future__ import annotations

from typing import Any

SCHEMA_KEYWORDS = {
    "type", "description", "properties", "items", "enum", "pattern", "maxLength", "minLength", "minimum", "maximum",
    "minItems", "maxItems", "format", "required", "additionalProperties", "x-kubernetes-validations",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-preserve-unknown-fields",
}  # fmt: skip


def undescribed(node: dict[str, Any], path: str) -> list[str]:
    """Paths of the fields `kubectl explain` would show without a description (list items may have none)."""
    # A key no schema has (a flow mapping split at a comma in its description, say) is refused by the
    # API server when the CRD is applied.
    assert set(node) <= SCHEMA_KEYWORDS, (path, set(node) - SCHEMA_KEYWORDS)
    missing = [] if node.get("description") else [path]
    for name, child in node.get("properties", {}).items():
        missing += undescribed(child, f"{path}.{name}")
    if "items" in node:
        missing += [m for m in undescribed(node["items"], f"{path}[]") if m != f"{path}[]"]
    return missing
