"""The IngestionRun facts live in lakehouse.k8s.ingestionrun; the CRD, the chart's values schema and
the NiFi flow spell some of them again in their own languages, and are held equal to it here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakehouse.formats import SourceFormat
from lakehouse.k8s.ingestionrun import GROUP, KIND, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.conditions import ConditionType
from lakehouse.k8s.ingestionrun.phase import Phase
from lakehouse.k8s.ingestionrun.spec import (
    DATASET_NAME_MAX_LENGTH,
    DATASET_NAME_PATTERN,
    SOURCE_OF_THE_RUN_MESSAGE,
    SOURCE_URI_PATTERN,
    UPLOAD_ID_MAX_LENGTH,
    UPLOAD_ID_PATTERN,
    IngestEngineName,
    IngestionRunSpec,
    TransformEngineName,
    is_dataset_name,
    is_upload_of,
)
from lakehouse.nifi.deploy import FlowDefinition
from tests.utils.crd_schema import undescribed

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO_ROOT / "charts/lakehouse/crds/lakehouse.dev_ingestionruns.yaml").read_text())
(CRD_VERSION,) = CRD["spec"]["versions"]
SPEC_SCHEMA = CRD_VERSION["schema"]["openAPIV3Schema"]["properties"]["spec"]
SPEC = SPEC_SCHEMA["properties"]
STATUS = CRD_VERSION["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
# Names the rule must accept and refuse; "_staging" was once dropped by NiFi alone.
DATASET_NAMES = ["orders", "_staging", "a" * 63, "a" * 64, "Orders", "1x", "", "x-y", "a b", "ü"]


def values(enum: type) -> list[str]:
    return [member.value for member in enum]


def test_names() -> None:
    assert CRD["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert (CRD["spec"]["group"], CRD_VERSION["name"]) == (GROUP, VERSION)
    assert (CRD["spec"]["names"]["plural"], CRD["spec"]["names"]["kind"]) == (PLURAL, KIND)


def test_enums() -> None:
    assert STATUS["phase"]["enum"] == values(Phase)
    assert SPEC["engines"]["properties"]["ingest"]["enum"] == values(IngestEngineName)
    assert SPEC["engines"]["properties"]["transform"]["enum"] == values(TransformEngineName)
    assert SPEC["source"]["properties"]["format"]["enum"] == values(SourceFormat)
    assert STATUS["engines"]["properties"]["ingest"]["enum"] == values(IngestEngineName)
    assert STATUS["engines"]["properties"]["transform"]["enum"] == values(TransformEngineName)


def test_patterns() -> None:
    assert (SPEC["dataset"]["pattern"], SPEC["dataset"]["maxLength"]) == (DATASET_NAME_PATTERN, DATASET_NAME_MAX_LENGTH)
    assert (SPEC["uploadId"]["pattern"], SPEC["uploadId"]["maxLength"]) == (UPLOAD_ID_PATTERN, UPLOAD_ID_MAX_LENGTH)
    assert SPEC["source"]["properties"]["uri"]["pattern"] == SOURCE_URI_PATTERN
    for field in ("namespace", "table"):
        target = SPEC["target"]["properties"][field]
        assert (target["pattern"], target["maxLength"]) == (DATASET_NAME_PATTERN, DATASET_NAME_MAX_LENGTH)


# Sources of a run with dataset orders and upload id u-1: the layout's shape, then its own dataset and id.
SOURCE_URIS = [
    "s3://uploads/orders/2026-12-01/u-1/orders.csv",
    "s3://landing.example/orders/2026-12-01/u-1/O_1.v2-final.csv",
    "s3://uploads/customers/2026-12-01/u-1/orders.csv",
    "s3://uploads/orders/2026-12-01/u-2/orders.csv",
    "s3://uploads/orders/2026-12-01/u-1/../u-2/orders.csv",
    "s3://uploads/orders/2026-12-01/u-1/..",
    "s3://uploads/orders/2026-12-01/u-1/.hidden",
    "s3://uploads/orders/latest/u-1/orders.csv",
    "s3://uploads/orders.csv",
    "s3://uploads/orders/2026-12-01/u-1/",
    "http://uploads/orders/2026-12-01/u-1/orders.csv",
]


def _cel_source_rule() -> dict[str, str]:
    (rule,) = [r for r in SPEC_SCHEMA["x-kubernetes-validations"] if "self.source.uri" in r["rule"]]
    return rule


def _crd_accepts_source(uri: str, dataset: str, upload_id: str) -> bool:
    """The CRD's pattern and its CEL rule, evaluated in Python: the rule only concatenates the fields into a
    regex for matches(), which RE2 and Python read alike for these."""
    match = re.fullmatch(r"self\.source\.uri\.matches\((.*)\)", _cel_source_rule()["rule"].strip())
    assert match, _cel_source_rule()
    regex = match.group(1).replace("' + self.dataset + '", dataset).replace("' + self.uploadId + '", upload_id)
    return _crd_value(SPEC["source"]["properties"]["uri"], uri) and re.search(regex.strip("'"), uri) is not None


def _python_accepts_source(uri: str, dataset: str, upload_id: str) -> bool:
    body = {"uploadId": upload_id, "dataset": dataset, "source": {"uri": uri, "format": "csv"}}
    try:
        IngestionRunSpec.model_validate(body)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("uri", SOURCE_URIS)
def test_the_crd_source_rules_are_the_python_rules(uri: str) -> None:
    assert _crd_accepts_source(uri, "orders", "u-1") == _python_accepts_source(uri, "orders", "u-1")
    assert _cel_source_rule()["message"] == SOURCE_OF_THE_RUN_MESSAGE


def test_the_source_rules_accept_the_upload_layout_and_refuse_the_rest() -> None:
    accepted = [uri for uri in SOURCE_URIS if _python_accepts_source(uri, "orders", "u-1")]
    assert accepted == SOURCE_URIS[:2]
    assert is_upload_of(SOURCE_URIS[0], "orders", "u-1") and not is_upload_of(SOURCE_URIS[2], "orders", "u-1")


def test_chart_values_offer_the_engines() -> None:
    schema = json.loads((REPO_ROOT / "charts/lakehouse/values.schema.json").read_text())
    operator = schema["properties"]["operator"]["properties"]
    assert operator["ingestEngine"]["enum"] == values(IngestEngineName)
    assert operator["transformEngine"]["enum"] == values(TransformEngineName)


def _nifi_checks() -> dict[str, str]:
    for processor in FlowDefinition.load().content["flowContents"]["processors"]:
        if "dataset is an identifier" in processor["properties"]:
            return processor["properties"]
    raise AssertionError("the flow no longer checks its attributes")


def _nifi_regex(expression: str) -> str:
    match = re.fullmatch(r"\$\{[\w.]+:matches\('(.*)'\)\}", expression)
    assert match, expression
    return match.group(1)  # NiFi's matches() is a full match


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_nifi_accepts_exactly_the_dataset_names_the_crd_does(name: str) -> None:
    nifi = re.fullmatch(_nifi_regex(_nifi_checks()["dataset is an identifier"]), name) is not None
    assert nifi == is_dataset_name(name)


def test_nifi_knows_the_formats() -> None:
    regex = _nifi_regex(_nifi_checks()["format is known"])
    assert {f for f in values(SourceFormat) if re.fullmatch(regex, f)} == set(values(SourceFormat))
    assert re.fullmatch(regex, "xlsx") is None


def _crd_value(schema: dict[str, Any], value: Any) -> bool:
    pattern = re.compile(schema["pattern"])
    return len(value) <= schema.get("maxLength", len(value)) and pattern.search(value) is not None


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_the_crd_rule_is_the_python_rule(name: str) -> None:
    assert _crd_value(SPEC["dataset"], name) == is_dataset_name(name)


def test_the_shared_types_need_only_pydantic() -> None:
    """Airflow imports these in its own environment, which has pydantic and none of the platform's pins."""
    code = (
        "import sys; import lakehouse.k8s.ingestionrun.status, lakehouse.k8s.ingestionrun.spec; "
        "heavy = {'pyarrow', 'kubernetes', 'boto3', 'kopf', 'pyiceberg', 'pyspark'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "[]"


def test_a_stored_run_of_an_earlier_rule_stays_readable() -> None:
    """A run the API server admitted before the layout rule is read (the API lists it), not refused."""
    body = {"spec": {"uploadId": "u-1", "dataset": "orders", "source": {"uri": "s3://uploads/o.csv", "format": "csv"}}}
    assert IngestionRunSpec.from_body(body).source.uri == "s3://uploads/o.csv"
    with pytest.raises(ValueError, match=re.escape(SOURCE_OF_THE_RUN_MESSAGE)):
        IngestionRunSpec.model_validate(body["spec"])


def test_every_field_is_described_for_kubectl_explain() -> None:
    """`kubectl explain ingestionrun.status.counts` (and every other field) says what the field is."""
    assert undescribed(CRD_VERSION["schema"]["openAPIV3Schema"], "ingestionrun") == []


def test_kubectl_get_shows_whether_a_run_is_ready() -> None:
    columns = {c["name"]: c for c in CRD_VERSION["additionalPrinterColumns"]}
    assert columns["Ready"]["jsonPath"] == f'.status.conditions[?(@.type=="{ConditionType.READY}")].status'
    assert list(columns)[:3] == ["Phase", "Ready", "Dataset"]
