"""JSON schemas for kubeconform, made from an API server's own OpenAPI v2 document.

kubeconform validates manifests offline against one standalone JSON schema per kind. The usual source is a
schema repository on the internet; here the schemas come from the cluster the chart is tested against, so
they hold exactly its Kubernetes version and the CRDs it serves (ours and the Spark Operator's included).

Each kind's definition is written with every `$ref` inlined ("standalone"), in the folder layout that
`kubeconform -schema-location DIR -kubernetes-version X.Y.Z` looks up:
DIR/vX.Y.Z-standalone[-strict]/<kind>-<first label of the group>-<version>.json (core kinds: <kind>-<version>).
The strict variant forbids properties a schema does not list, as `kubeconform -strict` expects.

    kubectl get --raw /openapi/v2 | python -m lakehouse.devtools.kube_schemas DIR 1.35.4
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFINITION_PREFIX = "#/definitions/"
GVK_EXTENSION = "x-kubernetes-group-version-kind"
# A schema that says "keep whatever is here" (CRDs' free-form fields) must stay open in the strict variant.
PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
# Types OpenAPI v2 calls strings that manifests also write as numbers (`port: 8080`, `cpu: 1`).
STRING_OR_NUMBER = {"oneOf": [{"type": "string"}, {"type": "number"}]}
STRING_OR_NUMBER_DEFINITIONS = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
}


def schema_file_name(group: str, version: str, kind: str) -> str:
    """kubeconform's file name of one kind: the kind in lower case, the group's first label, the version."""
    suffix = f"-{group.split('.', maxsplit=1)[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json"


class _Expander:
    """Inlines `$ref`s, walking only the keywords that hold schemas (a property may be called "properties")."""

    def __init__(self, definitions: Mapping[str, Any], strict: bool) -> None:
        self.definitions = definitions
        self.strict = strict

    def schema(self, schema: Any, expanding: tuple[str, ...], required: bool = True) -> Any:
        if not isinstance(schema, dict):
            return schema  # `additionalProperties: true` and the like
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith(DEFINITION_PREFIX):
            name = reference.removeprefix(DEFINITION_PREFIX)
            if name in STRING_OR_NUMBER_DEFINITIONS:
                return self._nullable(dict(STRING_OR_NUMBER), required)
            # A recursive type (JSONSchemaProps holds JSONSchemaProps) is checked down to its first repetition.
            if name in expanding:
                return {}
            return self.schema(self.definitions[name], (*expanding, name), required)
        result = dict(schema)
        if result.get("x-kubernetes-int-or-string") or result.get("format") == "int-or-string":
            result = {k: v for k, v in result.items() if k not in ("type", "format")} | STRING_OR_NUMBER
        needed = set(result.get("required", []))
        if isinstance(result.get("properties"), dict):
            result["properties"] = {
                name: self.schema(value, expanding, name in needed) for name, value in result["properties"].items()
            }
        for keyword in ("items", "additionalProperties", "not"):
            if isinstance(result.get(keyword), dict):
                result[keyword] = self.schema(result[keyword], expanding)
        for keyword in ("allOf", "anyOf", "oneOf"):
            if isinstance(result.get(keyword), list):
                result[keyword] = [self.schema(item, expanding) for item in result[keyword]]
        open_ended = "additionalProperties" in result or result.get(PRESERVE_UNKNOWN)
        if self.strict and "properties" in result and not open_ended:
            result["additionalProperties"] = False
        return self._nullable(result, required)

    @staticmethod
    def _nullable(schema: dict[str, Any], required: bool) -> dict[str, Any]:
        """OpenAPI v2 has no nullable: Kubernetes takes null for an optional field as "unset", and so does
        the schema here, or every `field: null` a template writes would be refused."""
        if required:
            return schema
        if isinstance(schema.get("type"), str):
            return {**schema, "type": [schema["type"], "null"]}
        if "oneOf" in schema:
            return {**schema, "oneOf": [*schema["oneOf"], {"type": "null"}]}
        return schema


def standalone_schemas(openapi: Mapping[str, Any], strict: bool) -> dict[str, dict[str, Any]]:
    """File name -> standalone schema, for every definition that names the kinds it serves."""
    definitions = openapi.get("definitions", {})
    schemas: dict[str, dict[str, Any]] = {}
    for name, definition in sorted(definitions.items()):
        for gvk in definition.get(GVK_EXTENSION, []):
            schema = _Expander(definitions, strict).schema(definition, (name,))
            schema.pop(GVK_EXTENSION, None)
            schemas[schema_file_name(gvk["group"], gvk["version"], gvk["kind"])] = schema
    return schemas


def write_schemas(openapi: Mapping[str, Any], directory: Path, kubernetes_version: str) -> int:
    """Both variants (strict and not) under `directory`, as kubeconform looks them up; returns the kind count."""
    count = 0
    for strict, suffix in ((False, ""), (True, "-strict")):
        folder = directory / f"v{kubernetes_version.removeprefix('v')}-standalone{suffix}"
        folder.mkdir(parents=True, exist_ok=True)
        schemas = standalone_schemas(openapi, strict)
        for file_name, schema in schemas.items():
            (folder / file_name).write_text(json.dumps(schema, sort_keys=True))
        count = len(schemas)
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(
            "usage: python -m lakehouse.devtools.kube_schemas DIR KUBERNETES_VERSION < openapi-v2.json", file=sys.stderr
        )
        return 2
    count = write_schemas(json.load(sys.stdin), Path(argv[0]), argv[1])
    print(f"{count} kinds written to {argv[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
