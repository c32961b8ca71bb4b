"""Operating the platform in the cluster: a rolling `helm upgrade` and a killed Spark driver under a run in
flight, least privilege checked from inside the pods, and `helm uninstall`."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.devtools.sample_data import orders
from tests.utils.cluster import (
    REPO_ROOT,
    SPARK_RUN_TIMEOUT,
    Cluster,
    bronze_rows,
    exec_python,
    pods_of,
    run_snapshots,
    spark_application,
)
from tests.utils.runs import get_run, wait_for_phase

pytestmark = pytest.mark.integration


def operator_pods(core: client.CoreV1Api, cluster: Cluster) -> list[client.V1Pod]:
    return [
        p
        for p in pods_of(core, cluster.namespace, "app.kubernetes.io/component=operator")
        if p.metadata.deletion_timestamp is None
    ]


def image_tag_alias(source: str, suffix: str) -> str:
    """A second tag of the same image in the node's containerd, as a release pipeline would push one."""
    target = f"{source}-{suffix}"
    subprocess.run(
        [REPO_ROOT / "devstack" / "services" / "cluster.sh", "tag-image", source, target],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def test_helm_upgrade_to_a_new_image_tag_while_a_run_is_in_flight(
    cluster: Cluster, runs: client.CustomObjectsApi, core: client.CoreV1Api, catalog: Catalog
) -> None:
    values = cluster.release_values()
    old_tag = values["image"]["tag"]
    (before,) = operator_pods(core, cluster)
    sample = orders(2000, invalid_every=100, seed=21)
    name = cluster.upload(sample.csv_bytes(), transform_engine="spark")
    wait_for_phase(runs, cluster.namespace, name, {"Transforming"}, timeout=120, poll=0.5)

    new_tag = image_tag_alias(f"{values['image']['repository']}:{old_tag}", f"upgrade-{uuid.uuid4().hex[:6]}")
    try:
        cluster.helm(
            "upgrade", cluster.release, str(REPO_ROOT / "charts" / "lakehouse"), "--namespace", cluster.namespace,
            "--reuse-values", "--set", f"image.tag={new_tag.rsplit(':', 1)[1]}", "--wait", "--timeout", "5m",
        )  # fmt: skip
        (after,) = operator_pods(core, cluster)
        assert after.metadata.name != before.metadata.name
        assert after.spec.containers[0].image == new_tag

        run = wait_for_phase(runs, cluster.namespace, name, {"Succeeded", "Failed"}, timeout=SPARK_RUN_TIMEOUT, poll=1)
        assert run["status"]["phase"] == "Succeeded", run["status"]
        table = run["status"]["table"]
        assert len(bronze_rows(catalog, table, name)) == len(sample.valid)
        assert run_snapshots(catalog, table, name) == [run["status"]["snapshotId"]]
    finally:
        cluster.helm(
            "upgrade", cluster.release, str(REPO_ROOT / "charts" / "lakehouse"), "--namespace", cluster.namespace,
            "--reuse-values", "--set", f"image.tag={old_tag}", "--wait", "--timeout", "5m",
        )  # fmt: skip


def test_a_killed_spark_driver_is_retried_without_duplicate_rows(
    cluster: Cluster, runs: client.CustomObjectsApi, core: client.CoreV1Api, catalog: Catalog
) -> None:
    sample = orders(3000, invalid_every=100, seed=22)
    name = cluster.upload(sample.csv_bytes(), transform_engine="spark")
    run = wait_for_phase(runs, cluster.namespace, name, {"Transforming"}, timeout=120, poll=0.5)

    def running_driver() -> client.V1Pod | None:
        try:
            app = spark_application(runs, cluster, run)
        except ValueError:  # not created yet
            return None
        driver_pods = pods_of(
            core, cluster.namespace, f"spark-role=driver,sparkoperator.k8s.io/app-name={app['metadata']['name']}"
        )
        return next((p for p in driver_pods if p.status.phase == "Running"), None)

    driver = cluster.wait_until("a running Spark driver", running_driver, timeout=300, poll=0.5)
    # SIGKILL, as when its node dies: no grace period.
    core.delete_namespaced_pod(driver.metadata.name, cluster.namespace, grace_period_seconds=0)

    run = wait_for_phase(runs, cluster.namespace, name, {"Succeeded", "Failed"}, timeout=SPARK_RUN_TIMEOUT, poll=1)
    status = run["status"]
    # The Spark Operator ran the application again (restartPolicy OnFailure) with a new driver pod,
    # and the job's second attempt committed each row once.
    assert status["phase"] == "Succeeded", status
    app = spark_application(runs, cluster, run)
    assert app["status"]["executionAttempts"] >= 2, app["status"]
    (new_driver,) = pods_of(
        core, cluster.namespace, f"spark-role=driver,sparkoperator.k8s.io/app-name={app['metadata']['name']}"
    )
    assert new_driver.metadata.uid != driver.metadata.uid
    table = status["table"]
    rows = bronze_rows(catalog, table, name)
    assert len(rows) == len(sample.valid)
    assert {r["order_id"] for r in rows} == set(sample.valid)
    assert run_snapshots(catalog, table, name) == [status["snapshotId"]]


PROBE = """
import json
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
config.load_incluster_config()
core, custom = client.CoreV1Api(), client.CustomObjectsApi()
def status(call):
    try:
        call()
        return 200
    except ApiException as error:
        return error.status
own = open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read()
def runs_in(namespace):
    return lambda: custom.list_namespaced_custom_object('lakehouse.dev', 'v1alpha1', namespace, 'ingestionruns')
print(json.dumps({
    'secrets': status(lambda: core.list_namespaced_secret(own)),
    'secret': status(lambda: core.read_namespaced_secret('lakehouse-s3', own)),
    'runs': status(runs_in(own)),
    'runs_elsewhere': status(runs_in('default')),
    'pods': status(lambda: core.list_namespaced_pod(own)),
    'namespaces': status(lambda: core.list_namespace()),
}))
"""


@pytest.mark.parametrize("component", ["operator", "api"])
def test_pods_have_least_privilege_from_inside(cluster: Cluster, component: str) -> None:
    seen = json.loads(exec_python(cluster, f"{cluster.release}-{component}", PROBE))
    assert seen == {
        "secrets": 403,
        "secret": 403,
        "runs": 200,
        "runs_elsewhere": 403,
        "pods": 403,
        "namespaces": 403,
    }


@pytest.fixture
def scratch_release(cluster: Cluster, core: client.CoreV1Api) -> Iterator[tuple[str, str]]:
    """A second release of the chart in a namespace of its own, with copies of the release's Secrets."""
    namespace = f"it-release-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    for secret in ("lakehouse-s3", "lakehouse-database", "lakehouse-api-keys"):
        source = core.read_namespaced_secret(secret, cluster.namespace)
        core.create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=secret), data=source.data)
        )
    values = cluster.release_values()
    overrides = ["--set", "spark.enabled=false", "--set", f"image.tag={values['image']['tag']}"]
    values_file = REPO_ROOT / "devstack" / "cluster" / "lakehouse-values.yaml"
    cluster.helm("install", "lakehouse-scratch", str(REPO_ROOT / "charts" / "lakehouse"), "--namespace", namespace,
                 "--values", str(values_file), "--set", f"image.repository={values['image']['repository']}",
                 *overrides, "--wait", "--timeout", "5m")  # fmt: skip
    try:
        yield namespace, "lakehouse-scratch"
    finally:
        subprocess.run(
            [REPO_ROOT / "devstack" / "helm.sh", "--kubeconfig", cluster.kubeconfig, "uninstall", "lakehouse-scratch",
             "--namespace", namespace, "--wait"],
            check=False, capture_output=True, timeout=300,
        )  # fmt: skip
        core.delete_namespace(namespace)


def test_helm_uninstall_leaves_no_pod_and_keeps_the_data(
    cluster: Cluster, scratch_release: tuple[str, str], core: client.CoreV1Api, runs: client.CustomObjectsApi,
    catalog: Catalog, s3: Any,
) -> None:  # fmt: skip
    namespace, release = scratch_release
    api_ip = core.read_namespaced_service(f"{release}-api", namespace).spec.cluster_ip
    scratch = Cluster(cluster.kubeconfig, namespace, release, f"http://{api_ip}", cluster.api_key)
    scratch.wait_for_api()
    sample = orders(500, invalid_every=50, seed=23)
    name = scratch.upload(sample.csv_bytes(), transform_engine="arrow")
    run = wait_for_phase(runs, namespace, name, {"Succeeded", "Failed"}, timeout=120, poll=0.5)
    assert run["status"]["phase"] == "Succeeded", run["status"]

    scratch.helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "5m")

    cluster.wait_until("no pod left", lambda: not pods_of(core, namespace, ""), timeout=120)
    # The data stays: bronze rows, the raw object, and the run itself (its CRD is not removed).
    assert len(bronze_rows(catalog, run["status"]["table"], name)) == len(sample.valid)
    raw = run["status"]["rawPath"].removeprefix("s3://").split("/", 1)
    assert s3.head_object(Bucket=raw[0], Key=raw[1])["ContentLength"] > 0
    assert get_run(runs, namespace, name)["status"]["phase"] == "Succeeded"
    assert cluster.kubectl("get", "crd", "ingestionruns.lakehouse.dev").returncode == 0
