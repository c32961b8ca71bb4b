"""The SparkApplication of a run's bronze transform, rendered from lakehouse_operator/templates/ (package data).

Pure functions: names, arguments and the SparkApplication follow from their inputs alone, so a retried
handler renders (and finds) the very same object.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import yaml

TEMPLATE = resources.files("lakehouse_operator") / "templates" / "bronze-transform.yaml.j2"
GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
RUN_LABEL = "lakehouse.dev/run"
RUN_UID_LABEL = "lakehouse.dev/run-uid"
# The driver's Service is <name>-ui-svc / <name>-driver-svc and must stay a 63-character DNS label.
_MAX_NAME = 50
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}

# Where a SparkApplication's pods mount the contracts ConfigMap, when the chart gives one.
CONTRACTS_MOUNT = "/etc/lakehouse/contracts"


@dataclass(frozen=True)
class SecretRef:
    secret: str
    key: str


@dataclass(frozen=True)
class PodResources:
    cores: int = 1
    memory: str = "1g"
    core_limit: str = "1"
    # The pod's CPU request when it should be below `cores` (a small node), e.g. "250m"; None: `cores`.
    core_request: str | None = None


@dataclass(frozen=True)
class SparkApplicationParams:
    name: str
    namespace: str
    owner: dict[str, Any]  # RunContext.owner
    dataset: str
    image: str
    main_application_file: str
    arguments: list[str]
    spark_version: str
    service_account: str
    spark_conf: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # plain values: endpoints, switches
    secret_env: dict[str, SecretRef] = field(default_factory=dict)  # driver and executors
    driver_secret_env: dict[str, SecretRef] = field(default_factory=dict)  # driver only (DATABASE_URL)
    driver: PodResources = PodResources()
    executor: PodResources = PodResources(memory="2g")
    executor_instances: int = 2
    retries: int = 2
    image_pull_policy: str = "IfNotPresent"
    contracts_configmap: str | None = None
    contracts_dir: str = CONTRACTS_MOUNT


def application_name(run_name: str) -> str:
    """`bronze-<run>` as a DNS-1035 label; long run names keep a prefix plus a hash of the whole."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"bronze-{run_name.lower()}").strip("-")
    if len(base) <= _MAX_NAME and base == f"bronze-{run_name}":
        return base
    digest = hashlib.sha256(run_name.encode()).hexdigest()[:10]
    return f"{base[: _MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def label_value(text: str) -> str:
    return text if _LABEL_VALUE.match(text) else hashlib.sha256(text.encode()).hexdigest()[:40]


def job_arguments(
    *,
    run_id: str,
    upload_id: str,
    dataset: str,
    raw_uri: str,
    processing_date: dt.date,
    ingest_timestamp: dt.datetime,
    target_table: str,
    contracts_dir: str | None = None,
    contract: str | None = None,
) -> list[str]:
    """lakehouse/jobs/bronze_transform.py's arguments: what the run is, never how to reach or log into anything."""
    arguments = [
        "--run-id", run_id,
        "--upload-id", upload_id,
        "--dataset", dataset,
        "--raw-uri", raw_uri,
        "--processing-date", processing_date.isoformat(),
        "--ingest-timestamp", ingest_timestamp.isoformat(),
        "--target-table", target_table,
    ]  # fmt: skip
    if contracts_dir:
        arguments += ["--contracts-dir", contracts_dir]
    if contract:  # the run's own contract (JSON), fixed at validation: the job then reads no contract files
        arguments += ["--contract", contract]
    return arguments


def _env_list(plain: dict[str, str], secrets: dict[str, SecretRef]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": name, "value": value} for name, value in sorted(plain.items())]
    env += [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}}}
        for name, ref in sorted(secrets.items())
    ]
    return env


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return environment.from_string(TEMPLATE.read_text(encoding="utf-8"))


def render_spark_application(params: SparkApplicationParams) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": "lakehouse-bronze-transform",
        "app.kubernetes.io/part-of": "lakehouse",
        "app.kubernetes.io/managed-by": "lakehouse-operator",
        RUN_LABEL: label_value(params.owner["name"]),
        RUN_UID_LABEL: label_value(params.owner["uid"]),
        "lakehouse.dev/dataset": label_value(params.dataset),
    }
    text = _template().render(
        name=params.name,
        namespace=params.namespace,
        labels=labels,
        owner=params.owner,
        spark_version=params.spark_version,
        image=params.image,
        image_pull_policy=params.image_pull_policy,
        main_application_file=params.main_application_file,
        arguments=params.arguments,
        spark_conf=params.spark_conf,
        retries=params.retries,
        contracts_configmap=params.contracts_configmap,
        contracts_dir=params.contracts_dir,
        driver=params.driver,
        executor=params.executor,
        executor_instances=params.executor_instances,
        service_account=params.service_account,
        driver_env=_env_list(params.env, params.secret_env | params.driver_secret_env),
        executor_env=_env_list(params.env, params.secret_env),
        security_context=_SECURITY_CONTEXT,
    )
    return yaml.safe_load(text)
