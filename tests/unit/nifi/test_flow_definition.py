"""lakehouse/nifi/flows/lakehouse-ingest.json: a consistent flow, and what the deployer changes in it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lakehouse_operator.engines.nifi import NiFiSettings

from lakehouse.nifi.deploy import DEFAULT_FLOW, FlowDefinition, deployed_version
from lakehouse.nifi.step_result import QUARANTINE_ENTRY, RAW_ENTRY, RESULT_ENTRY, StepResult

DEFINITION = FlowDefinition.load()
PROCESSORS = {p["identifier"]: p for p in DEFINITION.content["flowContents"]["processors"]}


def all_property_values() -> list[str]:
    return [v for p in PROCESSORS.values() for v in p["properties"].values() if isinstance(v, str)]


def test_every_parameter_reference_is_declared_and_every_parameter_used() -> None:
    referenced = {name for value in all_property_values() for name in re.findall(r"#\{([^}]+)\}", value)}
    assert referenced == set(DEFINITION.parameter_names)


def test_parameters_are_not_referenced_inside_expression_literals() -> None:
    # NiFi does not expand #{...} inside Expression Language string literals (seen on 2.3.0).
    for value in all_property_values():
        assert not re.search(r"'[^']*#\{", value), value


def test_connections_join_existing_processors_and_every_relationship_is_handled() -> None:
    contents = DEFINITION.content["flowContents"]
    routed: dict[str, set[str]] = {ident: set(p["autoTerminatedRelationships"]) for ident, p in PROCESSORS.items()}
    for connection in contents["connections"]:
        assert connection["source"]["id"] in PROCESSORS and connection["destination"]["id"] in PROCESSORS
        routed[connection["source"]["id"]] |= set(connection["selectedRelationships"])
    # The relationships each processor type has (NiFi 2.3.0), all of which must go somewhere.
    relationships = {
        "ListenHTTP": {"success"},
        "EvaluateJsonPath": {"matched", "unmatched", "failure"},
        "UpdateAttribute": {"success"},
        "RouteOnAttribute": {"matched", "unmatched"},
        "InvokeHTTP": {"Original", "Response", "Retry", "No Retry", "Failure"},
        "ExecuteStreamCommand": {"original", "output stream", "nonzero status"},
        "UnpackContent": {"success", "original", "failure"},
        "ReplaceText": {"success", "failure"},
    }
    for ident, processor in PROCESSORS.items():
        kind = processor["type"].rsplit(".", 1)[-1]
        assert routed[ident] == relationships[kind], processor["name"]


def test_the_failure_manifest_is_json_the_operator_reads() -> None:
    template = PROCESSORS["describe-failure"]["properties"]["Replacement Value"]
    rendered = re.sub(r"\$\{[^{}]*\}", "x", template)  # every expression yields plain text
    manifest = StepResult.from_json(rendered.encode())
    assert manifest.error is not None and manifest.error.reason == "NiFiIngestFailed"


def test_target_urls_follow_the_step_entry_names() -> None:
    expression = PROCESSORS["choose-target"]["properties"]["target.url"]
    assert f"'{RAW_ENTRY}'" in expression and f"'{QUARANTINE_ENTRY}'" in expression
    assert PROCESSORS["name-manifest"]["properties"]["filename"] == RESULT_ENTRY


def test_snapshot_carries_the_parameters_and_the_version() -> None:
    snapshot = DEFINITION.snapshot({"listen.port": "1234", "python.command": "/opt/venv/bin/python"})
    values = {p["name"]: p["value"] for p in snapshot["parameterContexts"][DEFINITION.name]["parameters"]}
    assert values["listen.port"] == "1234" and values["python.command"] == "/opt/venv/bin/python"
    assert deployed_version(snapshot["flowContents"]["comments"]) == DEFINITION.version
    assert deployed_version(DEFINITION.content["flowContents"]["comments"]) is None  # the file is untouched
    with pytest.raises(ValueError, match="no parameter"):
        DEFINITION.snapshot({"kafka.bootstrap": "x"})


def test_any_edit_is_a_new_version(tmp_path: Path) -> None:
    edited = json.loads(DEFAULT_FLOW.read_text())
    edited["flowContents"]["processors"][0]["comments"] += " "
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(edited, indent=2) + "\n")
    assert FlowDefinition.load(path).version != DEFINITION.version


def test_the_engine_needs_both_nifi_urls_and_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["LAKEHOUSE_NIFI_API_URL", "NIFI_API_URL", "LAKEHOUSE_NIFI_LISTEN_URL", "NIFI_LISTEN_URL"]
    for name in [*names, "LAKEHOUSE_NIFI_LISTEN_TOKEN", "NIFI_LISTEN_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    assert not NiFiSettings().enabled
    monkeypatch.setenv("NIFI_API_URL", "http://nifi:8080/nifi-api")
    assert not NiFiSettings().enabled
    monkeypatch.setenv("LAKEHOUSE_NIFI_LISTEN_URL", "http://nifi:9092/lakehouse/ingest")
    assert not NiFiSettings().enabled  # no token: the flow would drop every run
    monkeypatch.setenv("LAKEHOUSE_NIFI_LISTEN_TOKEN", "t0ken")
    assert NiFiSettings().enabled
