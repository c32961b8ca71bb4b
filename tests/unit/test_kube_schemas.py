"""The OpenAPI v2 -> kubeconform schema conversion, on a small document shaped like the API server's."""

import json
from pathlib import Path

from lakehouse.devtools.kube_schemas import schema_file_name, standalone_schemas, write_schemas

OPENAPI = {
    "definitions": {
        "io.example.v1.Widget": {
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {"$ref": "#/definitions/io.example.v1.WidgetSpec"},
                "note": {"type": "string"},
            },
            "x-kubernetes-group-version-kind": [{"group": "example.dev", "version": "v1", "kind": "Widget"}],
        },
        "io.example.v1.WidgetSpec": {
            "type": "object",
            "properties": {
                # A field called "properties" is a field, not a keyword.
                "properties": {"type": "object", "additionalProperties": {"type": "string"}},
                "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
                "child": {"$ref": "#/definitions/io.example.v1.WidgetSpec"},
                "free": {"type": "object", "properties": {"a": {"type": "string"}},
                         "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
        "io.k8s.api.core.v1.Pod": {
            "type": "object",
            "properties": {},
            "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Pod"}],
        },
    }
}  # fmt: skip


def test_file_names_are_kubeconforms() -> None:
    assert schema_file_name("apps", "v1", "Deployment") == "deployment-apps-v1.json"
    assert schema_file_name("lakehouse.dev", "v1alpha1", "IngestionRun") == "ingestionrun-lakehouse-v1alpha1.json"
    assert schema_file_name("", "v1", "Pod") == "pod-v1.json"
    assert set(standalone_schemas(OPENAPI, strict=False)) == {"widget-example-v1.json", "pod-v1.json"}


def test_references_are_inlined_and_recursion_stops_at_its_first_repetition() -> None:
    widget = standalone_schemas(OPENAPI, strict=False)["widget-example-v1.json"]
    spec = widget["properties"]["spec"]
    assert "$ref" not in json.dumps(widget)
    assert spec["properties"]["properties"]["additionalProperties"] == {"type": "string"}
    assert spec["properties"]["child"] == {}  # WidgetSpec inside WidgetSpec: anything goes from there
    assert spec["properties"]["port"]["oneOf"] == [{"type": "string"}, {"type": "number"}, {"type": "null"}]


def test_strict_closes_objects_except_free_form_ones_and_optional_fields_may_be_null() -> None:
    strict = standalone_schemas(OPENAPI, strict=True)["widget-example-v1.json"]
    loose = standalone_schemas(OPENAPI, strict=False)["widget-example-v1.json"]
    assert strict["additionalProperties"] is False
    assert strict["properties"]["spec"]["additionalProperties"] is False
    assert "additionalProperties" not in strict["properties"]["spec"]["properties"]["free"]
    assert "additionalProperties" not in loose
    assert strict["properties"]["note"]["type"] == ["string", "null"]
    assert strict["properties"]["spec"]["type"] == "object"  # required: null is not "unset" here


def test_both_variants_are_written_where_kubeconform_looks(tmp_path: Path) -> None:
    assert write_schemas(OPENAPI, tmp_path, "v1.35.4") == 2
    strict = json.loads((tmp_path / "v1.35.4-standalone-strict" / "widget-example-v1.json").read_text())
    loose = json.loads((tmp_path / "v1.35.4-standalone" / "widget-example-v1.json").read_text())
    assert strict["additionalProperties"] is False and "additionalProperties" not in loose
