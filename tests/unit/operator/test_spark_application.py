"""The rendered SparkApplication against the Spark Operator's published CRD schema, and its secrets hygiene."""

from __future__ import annotations

import copy
import datetime as dt
import re
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml
from lakehouse_operator.engines.base import RunContext
from lakehouse_operator.engines.spark import SparkSettings
from lakehouse_operator.engines.spark_application import application_name, label_value
from lakehouse_operator.engines.spark_operator import SparkApplicationEngine

from lakehouse.contracts.registry import ContractRegistry
from lakehouse.settings import CatalogSettings, PlatformSettings, S3Settings
from tests.utils.shared import SPARK_OPERATOR_CRD

CRD = SPARK_OPERATOR_CRD
SECRETS = ("AKIAEXAMPLEKEY1234", "s3-secret-value-that-must-not-leak", "postgresql://u:db-password@db/x", "cat-token")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def platform() -> PlatformSettings:
    settings = PlatformSettings()
    # cached_property values: the settings a real operator reads from its environment.
    settings.__dict__["s3"] = S3Settings(
        S3_ENDPOINT_URL="http://s3.lakehouse:8333", AWS_ACCESS_KEY_ID=SECRETS[0], AWS_SECRET_ACCESS_KEY=SECRETS[1]
    )
    settings.__dict__["catalog"] = CatalogSettings(
        ICEBERG_CATALOG_URI="http://lakekeeper:8181/catalog",
        ICEBERG_WAREHOUSE="lakehouse",
        ICEBERG_CATALOG_TOKEN=SECRETS[3],
    )
    return settings


def run(name: str = "orders-20250701-abc123") -> RunContext:
    return RunContext(
        name=name,
        namespace="lakehouse",
        upload_id=name,
        dataset="orders",
        contract=ContractRegistry.default().get("orders"),
        source_uri=f"s3://uploads/orders/2025-07-01/{name}/data.csv",
        source_format="csv",
        source_sha256=None,
        processing_date=dt.date(2025, 7, 1),
        ingest_timestamp=dt.datetime(2025, 7, 1, 9, 30, 15),
        target_table="bronze.orders",
        owner={"apiVersion": "lakehouse.dev/v1alpha1", "kind": "IngestionRun", "name": name,
               "uid": "8f3c1a52-7a0e-4f6e-9a1b-2f1f0d0c9e11", "controller": True, "blockOwnerDeletion": True},
    )  # fmt: skip


def engine(**settings: Any) -> SparkApplicationEngine:
    values = {"LAKEHOUSE_SPARK_IMAGE": "registry.example/lakehouse-spark:0.1.0", **settings}
    return SparkApplicationEngine(SparkSettings(**values), platform(), catalog=lambda: None)  # type: ignore[arg-type,return-value]


@cache
def crd_schema() -> dict[str, Any]:
    if not CRD.is_file():
        pytest.fail(f"Spark Operator CRD not found at {CRD}; ../shared must sit beside the repository", pytrace=False)
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta2")
    return strict_json_schema(version["schema"]["openAPIV3Schema"])


def strict_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Structural OpenAPI v3 -> JSON Schema, rejecting unknown fields as `kubectl --validate=strict` does."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.pop("nullable", False) and "type" in node:
                node["type"] = [node["type"], "null"]
            if node.get("x-kubernetes-int-or-string"):
                node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(schema)
    return schema


def test_manifest_validates_against_the_crd_schema() -> None:
    application = engine(LAKEHOUSE_CONTRACTS_CONFIGMAP="lakehouse-contracts").application(
        run(), "s3://raw/orders/x.parquet"
    )
    jsonschema.validate(application, crd_schema())
    assert (application["apiVersion"], application["kind"]) == ("sparkoperator.k8s.io/v1beta2", "SparkApplication")
    assert DNS_1035.match(application["metadata"]["name"])


def test_strict_schema_catches_a_misplaced_field() -> None:
    """The converted schema is strict enough to matter."""
    application = engine().application(run(), "s3://raw/orders/x.parquet")
    application["spec"]["driver"]["instances"] = 2  # an executor-only field
    with pytest.raises(jsonschema.ValidationError, match="instances"):
        jsonschema.validate(application, crd_schema())


def test_manifest_carries_no_secret_only_references() -> None:
    application = engine(LAKEHOUSE_SPARK_CATALOG_TOKEN_SECRET="catalog-token").application(run(), "s3://raw/o.parquet")
    text = yaml.safe_dump(application)
    for secret in SECRETS:
        assert secret not in text
    driver_env = {e["name"]: e for e in application["spec"]["driver"]["env"]}
    executor_env = {e["name"]: e for e in application["spec"]["executor"]["env"]}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DATABASE_URL", "ICEBERG_CATALOG_TOKEN"):
        assert "value" not in driver_env[name] and driver_env[name]["valueFrom"]["secretKeyRef"]["key"] == name
    assert driver_env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "lakehouse-s3"
    # Executors write data files only: no database, no catalog token.
    assert {"DATABASE_URL", "ICEBERG_CATALOG_TOKEN"}.isdisjoint(executor_env)
    assert executor_env["S3_ENDPOINT_URL"]["value"] == "http://s3.lakehouse:8333"
    assert "token" not in " ".join(application["spec"]["sparkConf"])


def test_manifest_names_and_owns_the_run() -> None:
    context = run()
    application = engine().application(context, "s3://raw/orders/2025-07-01/x.parquet")
    metadata, spec = application["metadata"], application["spec"]
    assert metadata["name"] == "bronze-orders-20250701-abc123"
    assert metadata["namespace"] == "lakehouse"
    assert metadata["ownerReferences"] == [context.owner]
    assert metadata["labels"]["lakehouse.dev/run"] == context.name
    assert metadata["labels"]["lakehouse.dev/run-uid"] == context.owner["uid"]
    assert spec["driver"]["labels"] == spec["executor"]["labels"] == metadata["labels"]
    arguments = spec["arguments"]
    pairs = dict(zip(arguments[::2], arguments[1::2], strict=True))
    assert pairs == {
        "--run-id": context.name, "--upload-id": context.upload_id, "--dataset": "orders",
        "--raw-uri": "s3://raw/orders/2025-07-01/x.parquet", "--processing-date": "2025-07-01",
        "--ingest-timestamp": "2025-07-01T09:30:15", "--target-table": "bronze.orders",
        "--contract": context.contract.model_dump_json(),  # the run's own copy: the job reads no contract files
    }  # fmt: skip
    assert spec["image"] == "registry.example/lakehouse-spark:0.1.0"
    assert spec["sparkConf"]["spark.sql.catalog.lakehouse.uri"] == "http://lakekeeper:8181/catalog"
    assert application == engine().application(context, "s3://raw/orders/2025-07-01/x.parquet")  # deterministic


def test_values_cannot_break_the_yaml_structure() -> None:
    image = 'evil"\n  mode: client\n#'
    application = engine(LAKEHOUSE_SPARK_IMAGE=image).application(run(), "s3://raw/o.parquet")
    assert application["spec"]["image"] == image and application["spec"]["mode"] == "cluster"


@pytest.mark.parametrize("name", ["t-abc", "Upload.With.Dots", "9-starts-with-digit", "x" * 200, "a--b-"])
def test_the_application_names_are_short_dns_labels(name: str) -> None:
    app = application_name(name)
    assert DNS_1035.match(app) and len(app) <= 50
    assert app == application_name(name)


def test_long_names_stay_distinct_and_labels_stay_valid() -> None:
    assert application_name("x" * 100 + "a") != application_name("x" * 100 + "b")
    assert label_value("ok-name") == "ok-name"
    assert len(label_value("n" * 100)) <= 63
