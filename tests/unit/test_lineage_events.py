"""Building a run's OpenLineage events: facets, names and the stored form (no servers)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from openlineage.client.serde import Serde

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.events import PipelineEvent
from lakehouse.ingest.validation import CheckResult
from lakehouse.k8s.ingestionrun.lineage import ParentRun, parse_parent
from lakehouse.lineage import events
from lakehouse.lineage.naming import lineage_run_id, s3_dataset
from lakehouse.lineage.publisher import LineagePublisher
from lakehouse.lineage.settings import LineageSettings
from tests.utils.openlineage_spec import spec_errors

AT = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC)
CONTRACT = ContractRegistry.default().get("orders")
SOURCE = "s3://uploads/orders/2026-12-01/u-1/orders.csv"
PARENT = ParentRun("airflow", "lakehouse_ingest.create_run", "0193a1b2-0000-7000-8000-000000000001")
RUN = events.RunFacts(lineage_run_id("uid-1"), "lakehouse", "orders", CONTRACT, SOURCE, PARENT)
INGEST = events.IngestFacts(
    raw_uri="s3://raw/orders/2026-12-01/u-1.parquet",
    quarantine_uri="s3://quarantine/orders/2026-12-01/u-1.parquet",
    valid_rows=8,
    rejected_rows=2,
    input_rows=10,
    bytes_in=512,
    checks=[
        CheckResult("row_count", "", 8, 2),
        CheckResult("not_null", "order_id", 9, 1),
        CheckResult("amount_positive", "amount", 9, 1),
    ],
)
CATALOG = events.CatalogFacts("http://iceberg-rest:8181", "lakehouse", "http://iceberg-rest:8181", "s3://warehouse/")
TABLE = events.TableFacts("bronze.orders", 4242, 8, CATALOG)


def _all_events() -> list[dict]:
    return [
        events.to_json(events.start(RUN, AT)),
        events.to_json(events.running(RUN, AT, INGEST)),
        events.to_json(events.complete(RUN, AT, INGEST, TABLE)),
        events.to_json(events.fail(RUN, AT, None, "MissingColumns", "the header has no order_id")),
    ]


@pytest.mark.parametrize("event", _all_events(), ids=["start", "running", "complete", "fail"])
def test_every_event_validates_against_the_openlineage_classes(event: dict) -> None:
    assert spec_errors(event) == []


def test_a_broken_event_does_not_validate() -> None:
    """The validator can fail: a run id that is no UUID and a facet missing a required field are both reported."""
    event = events.to_json(events.fail(RUN, AT, None, "X", "y"))
    event["run"]["runId"] = "not-a-uuid"
    del event["run"]["facets"]["errorMessage"]["programmingLanguage"]
    assert sorted(spec_errors(event)) == [
        "event.run.facets.errorMessage: ErrorMessageRunFacet lacks programmingLanguage",
        "event.run.runId: badly formed hexadecimal UUID string",
    ]


def test_a_key_the_spec_does_not_define_is_refused() -> None:
    event = events.to_json(events.complete(RUN, AT, INGEST, TABLE))
    event["outputs"][2]["facets"]["catalog"]["owner"] = "data-team"
    event["job"]["tags"] = []
    assert sorted(spec_errors(event)) == [
        "event.job: Job has no field tags",
        "event.outputs[2].facets.catalog: CatalogDatasetFacet has no field owner",
    ]


def test_a_value_of_the_wrong_type_is_refused() -> None:
    event = events.to_json(events.running(RUN, AT, INGEST))
    metrics = event["inputs"][0]["inputFacets"]["dataQualityMetrics"]
    metrics["rowCount"] = "10"
    metrics["columnMetrics"]["order_id"]["nullCount"] = True  # a bool is an int in Python, never in the spec
    event["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["success"] = "false"
    event["eventType"] = "DONE"
    assert sorted(spec_errors(event)) == [
        "event.eventType: 'DONE' is not of type EventType",
        "event.inputs[0].inputFacets.dataQualityAssertions.assertions[0].success: 'false' is not of type bool",
        "event.inputs[0].inputFacets.dataQualityMetrics.columnMetrics.order_id.nullCount: True is not of type int",
        "event.inputs[0].inputFacets.dataQualityMetrics.rowCount: '10' is not of type int",
    ]


def test_a_facet_of_no_shipped_class_is_refused() -> None:
    """A facet the client has no class for, or one in the wrong place (a dataset facet among the run's), is an error."""
    event = events.to_json(events.start(RUN, AT))
    event["run"]["facets"]["custom"] = {"_producer": "x", "_schemaURL": "https://example.com/Custom.json#/$defs/C"}
    event["run"]["facets"]["schema"] = event["inputs"][0]["facets"]["schema"]
    assert sorted(spec_errors(event)) == [
        "event.run.facets.custom: openlineage-python has no RunFacet with the schema https://example.com/Custom.json#/$defs/C",
        "event.run.facets.schema: openlineage-python has no RunFacet with the schema "
        + event["inputs"][0]["facets"]["schema"]["_schemaURL"],
    ]


def test_every_event_of_a_run_has_its_one_run_id_and_the_parent() -> None:
    run_ids = {e["run"]["runId"] for e in _all_events()}
    assert run_ids == {str(uuid.uuid5(uuid.UUID("8d3c2f5e-6a0b-4f7e-9c51-2e4b7a1d0c93"), "uid-1"))}
    assert lineage_run_id("uid-1") != lineage_run_id("uid-2")
    for event in _all_events():
        assert event["run"]["facets"]["parent"]["run"]["runId"] == PARENT.run_id
        parent_job = event["run"]["facets"]["parent"]["job"]
        assert (parent_job["namespace"], parent_job["name"]) == ("airflow", "lakehouse_ingest.create_run")
        assert event["job"] | {"facets": None} == {"namespace": "lakehouse", "name": "ingest.orders", "facets": None}


def test_datasets_are_named_after_the_naming_spec() -> None:
    complete = events.to_json(events.complete(RUN, AT, INGEST, TABLE))
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [
        ("s3://uploads", "orders/2026-12-01/u-1/orders.csv")
    ]
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == [
        ("s3://raw", "orders/2026-12-01/u-1.parquet"),
        ("s3://quarantine", "orders/2026-12-01/u-1.parquet"),
        ("http://iceberg-rest:8181", "bronze.orders"),
    ]
    table = complete["outputs"][2]
    assert table["facets"]["version"]["datasetVersion"] == "4242"
    catalog = table["facets"]["catalog"]
    assert [catalog[k] for k in ("framework", "type", "name", "metadataUri", "warehouseUri")] == [
        "iceberg",
        "rest",
        "lakehouse",
        "http://iceberg-rest:8181",
        "s3://warehouse/",
    ]
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == 8
    bronze_columns = [f["name"] for f in table["facets"]["schema"]["fields"]]
    assert bronze_columns[: len(CONTRACT.columns)] == [c.target_name for c in CONTRACT.columns]
    assert "ingest_timestamp" in bronze_columns
    assert s3_dataset("s3://b/a/b/c.csv") == ("s3://b", "a/b/c.csv")


def test_data_quality_facets_carry_each_checks_counts() -> None:
    upload = events.to_json(events.running(RUN, AT, INGEST))["inputs"][0]
    assertions = upload["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a.get("column"), a["success"], a["actual"], a["params"]) for a in assertions] == [
        ("row_count", None, False, "2", {"passed": 8, "failed": 2}),
        ("not_null", "order_id", False, "1", {"passed": 9, "failed": 1}),
        ("amount_positive", "amount", False, "1", {"passed": 9, "failed": 1}),
    ]
    metrics = upload["inputFacets"]["dataQualityMetrics"]
    assert (metrics["rowCount"], metrics["bytes"]) == (10, 512)
    assert {column: m["nullCount"] for column, m in metrics["columnMetrics"].items()} == {"order_id": 1}
    assert [f["name"] for f in upload["facets"]["schema"]["fields"]] == [c.name for c in CONTRACT.columns]


def test_a_failed_run_says_why_and_start_has_no_outputs() -> None:
    failed = events.to_json(events.fail(RUN, AT, INGEST, "RetriesExhausted", "S3 was down"))
    assert failed["eventType"] == "FAIL"
    assert failed["run"]["facets"]["errorMessage"]["message"] == "RetriesExhausted: S3 was down"
    assert len(failed["outputs"]) == 2  # raw/ and quarantine/ were written before the transform failed
    assert events.to_json(events.start(RUN, AT))["outputs"] == []


def test_a_stored_event_is_sent_as_it_was_stored() -> None:
    for stored in _all_events():
        assert Serde.to_dict(events.from_json(stored)) == stored


@pytest.mark.parametrize(
    ("value", "parent"),
    [
        ("airflow/dag.task/0193a1b2-0000-7000-8000-000000000001", ParentRun("airflow", "dag.task", PARENT.run_id)),
        ("ns/a/b/0193a1b2-0000-7000-8000-000000000001", ParentRun("ns", "a/b", PARENT.run_id)),
    ],
)
def test_the_parent_annotation_is_airflows_lineage_parent_id(value: str, parent: ParentRun) -> None:
    assert parse_parent(value) == parent
    assert parse_parent(parent.annotation) == parent


@pytest.mark.parametrize(
    "value", ["", "airflow", "airflow/dag.task/not-a-uuid", "/x/0193a1b2-0000-7000-8000-000000000001"]
)
def test_a_malformed_parent_annotation_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="openlineage-parent"):
        parse_parent(value)


def test_transport_configurations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    http = LineageSettings(
        LAKEHOUSE_LINEAGE_TRANSPORT="http",
        LAKEHOUSE_LINEAGE_URL="http://marquez:5000",
        LAKEHOUSE_LINEAGE_API_KEY="s3cr3t-token",
    )
    assert http.transport_config()["auth"] == {"type": "api_key", "apiKey": "s3cr3t-token"}
    assert "s3cr3t-token" not in repr(http)
    kafka = LineageSettings(LAKEHOUSE_LINEAGE_TRANSPORT="kafka").transport_config()
    assert (kafka["topic"], kafka["config"]["bootstrap.servers"], kafka["config"]["acks"]) == (
        "openlineage",
        "kafka:9092",
        "all",
    )
    assert LineageSettings(LAKEHOUSE_LINEAGE_TRANSPORT="file", LAKEHOUSE_LINEAGE_FILE="/x").transport_config() == {
        "type": "file",
        "log_file_path": "/x",
        "append": True,
    }
    assert not LineageSettings().enabled
    with pytest.raises(ValueError, match="LAKEHOUSE_LINEAGE_URL"):
        LineageSettings(LAKEHOUSE_LINEAGE_TRANSPORT="http")


def test_an_event_kafka_does_not_acknowledge_stays_unsent(monkeypatch: pytest.MonkeyPatch) -> None:
    """No broker on the port: the publisher reports the event as not delivered (the relay keeps it in the outbox)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # discard: nothing listens there
    settings = LineageSettings(LAKEHOUSE_LINEAGE_TRANSPORT="kafka", LAKEHOUSE_LINEAGE_TIMEOUT_SECONDS=1)
    stored = PipelineEvent("openlineage.START", RUN.run_id, "u-1", events.to_json(events.start(RUN, AT)), AT)
    errors = LineagePublisher(settings).publish_all([stored])
    assert list(errors) == [stored.id] and "did not acknowledge" in errors[stored.id]
