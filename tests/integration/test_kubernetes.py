"""Kubernetes control plane of the local stack (devstack/services/kubernetes.sh).

Everything goes through the built kubectl ($KUBECTL) and the admin kubeconfig ($KUBECONFIG),
the same way the operator and the Spark jobs will reach the API server.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.utils.kubectl import apply_crd, kubectl
from tests.utils.shared import SPARK_OPERATOR_CRD
from tests.utils.stack import stack_env

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SPARK_CRD = SPARK_OPERATOR_CRD
CRD_NAME = "sparkapplications.sparkoperator.k8s.io"


def wait_until_gone(*args: str, timeout: float = 90) -> None:
    """Polls `kubectl get ARGS` until the object no longer exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False)
        if result.returncode == 0 and not result.stdout.strip():
            return
        time.sleep(0.5)
    pytest.fail(f"{' '.join(args)} still exists after {timeout}s")


def spark_application(name: str, instances: object = 2) -> str:
    return json.dumps(
        {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "lakehouse"}},
            "spec": {
                "type": "Python",
                "mode": "cluster",
                "sparkVersion": "3.5.5",
                "image": "spark:3.5.5",
                "mainApplicationFile": "local:///opt/lakehouse/jobs/ingest.py",
                "arguments": ["--dataset", "orders"],
                "sparkConf": {"spark.sql.catalog.lakehouse.type": "rest"},
                "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark"},
                "executor": {"instances": instances, "cores": 1, "memory": "512m"},
            },
        }
    )


@pytest.fixture(scope="module")
def spark_crd() -> str:
    """The Spark Operator CRD, applied server-side (idempotent) and Established.

    It stays installed afterwards: the CRD is cluster-wide, as in a real deployment.
    """
    assert SPARK_CRD.is_file(), f"missing {SPARK_CRD}"
    return apply_crd(str(SPARK_CRD), CRD_NAME)


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    """A fresh namespace for this module; deleting it (namespace controller) must finish."""
    name = f"test-k8s-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)
        wait_until_gone("namespace", name)


def test_kubectl_and_server_report_the_pinned_release() -> None:
    versions = json.loads(kubectl("version", "-o", "json").stdout)
    client_version = versions["clientVersion"]["gitVersion"]
    assert re.fullmatch(r"v1\.\d+\.\d+", client_version), client_version
    assert versions["serverVersion"]["gitVersion"] == client_version
    assert kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_spark_application_round_trips(spark_crd: str, namespace: str) -> None:
    kubectl("create", "-n", namespace, "-f", "-", stdin=spark_application("ingest-orders"))

    app = json.loads(kubectl("get", "-n", namespace, "sparkapplication", "ingest-orders", "-o", "json").stdout)
    assert app["kind"] == "SparkApplication"
    assert app["metadata"]["namespace"] == namespace
    assert app["metadata"]["labels"] == {"app.kubernetes.io/part-of": "lakehouse"}
    spec = app["spec"]
    assert spec["type"] == "Python"
    assert spec["mainApplicationFile"] == "local:///opt/lakehouse/jobs/ingest.py"
    assert spec["arguments"] == ["--dataset", "orders"]
    assert spec["sparkConf"] == {"spark.sql.catalog.lakehouse.type": "rest"}
    assert spec["executor"]["instances"] == 2
    assert spec["driver"]["serviceAccount"] == "spark"

    # The Python client (what the operator uses) reads the same object with the same kubeconfig.
    api = client.CustomObjectsApi(config.new_client_from_config(stack_env("KUBECONFIG")["KUBECONFIG"]))
    same = api.get_namespaced_custom_object(
        "sparkoperator.k8s.io", "v1beta2", namespace, "sparkapplications", "ingest-orders"
    )
    assert same["metadata"]["uid"] == app["metadata"]["uid"]


@pytest.mark.parametrize(
    ("instances", "app_type", "error"),
    [
        ("two", "Python", r"spec\.executor\.instances.*must be of type integer"),
        (0, "Python", r"spec\.executor\.instances.*should be greater than or equal to 1"),
        (2, "Go", r"spec\.type.*Unsupported value"),
    ],
    ids=["string-for-integer", "below-minimum", "not-in-enum"],
)
def test_invalid_spark_application_is_rejected(
    spark_crd: str, namespace: str, instances: object, app_type: str, error: str
) -> None:
    manifest = json.loads(spark_application("bad-app", instances))
    manifest["spec"]["type"] = app_type
    result = kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(manifest), check=False)

    assert result.returncode != 0
    assert "is invalid" in result.stderr
    assert re.search(error, result.stderr), result.stderr
    assert kubectl("get", "-n", namespace, "sparkapplication", "bad-app", check=False).returncode != 0


def test_rbac_denies_an_unprivileged_service_account(namespace: str) -> None:
    service_account = f"system:serviceaccount:{namespace}:default"
    denied = kubectl("auth", "can-i", "create", "secrets", "-n", namespace, f"--as={service_account}", check=False)
    allowed = kubectl("auth", "can-i", "create", "secrets", "-n", namespace, check=False)

    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    assert (allowed.returncode, allowed.stdout.strip()) == (0, "yes")


def test_controllers_create_service_account_and_collect_garbage(namespace: str) -> None:
    # serviceaccount controller: every new namespace gets its `default` service account.
    deadline = time.monotonic() + 60
    while kubectl("get", "-n", namespace, "serviceaccount", "default", check=False).returncode != 0:
        assert time.monotonic() < deadline, "no default service account in a new namespace"
        time.sleep(0.5)

    # garbage collector: deleting an owner deletes its dependents (ownerReferences cascade).
    kubectl("create", "-n", namespace, "configmap", "owner")
    owner_uid = kubectl("get", "-n", namespace, "configmap", "owner", "-o", "jsonpath={.metadata.uid}").stdout
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}],
        },
    }
    kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(dependent))
    kubectl("delete", "-n", namespace, "configmap", "owner")
    wait_until_gone("-n", namespace, "configmap", "dependent")
