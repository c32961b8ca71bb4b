"""Validation of OpenLineage events against the specification's JSON Schemas (tests/data/openlineage)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "openlineage"


@cache
def _registry() -> Registry:
    resources = []
    for path in [SCHEMAS / "OpenLineage.json", *sorted((SCHEMAS / "facets").glob("*.json"))]:
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def _errors(instance: Any, schema_url: str) -> list[str]:
    validator = Draft202012Validator(
        {"$ref": schema_url}, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{schema_url}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)
    ]


def _facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        groups += [dataset.get(key, {}) for key in ("facets", "inputFacets", "outputFacets")]
    return [facet for group in groups for facet in group.values()]


def schema_errors(event: dict[str, Any]) -> list[str]:
    """Every way `event` breaks the RunEvent schema, or a facet's schema (named by its `_schemaURL`); a facet
    whose schema is not in the copy is an error too."""
    errors = _errors(event, event["schemaURL"])
    for facet in _facets(event):
        url = facet.get("_schemaURL", "")
        if url.split("#")[0] not in _registry():
            errors.append(f"no schema {url} in {SCHEMAS}")
            continue
        errors += _errors(facet, url)
    return errors
