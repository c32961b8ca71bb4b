"""The platform inside Kubernetes, for real: the chart's operator and API pods, the Spark Operator running
SparkApplications whose driver and executor pods write bronze, Helm upgrades and uninstalls, and RBAC seen
from inside a pod."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client
from pyiceberg.catalog import Catalog

from lakehouse.devtools.sample_data import orders
from lakehouse.events import TOPICS
from lakehouse.storage.s3 import S3Location, read_parquet
from tests.utils.cluster import (
    SPARK_RUN_TIMEOUT,
    Cluster,
    bronze_rows,
    exec_python,
    image_ref,
    pods_of,
    run_snapshots,
    spark_application,
    stack_process_ids,
)
from tests.utils.kafka_events import events_for
from tests.utils.runs import wait_for_phase
from tests.utils.stack_secrets import stack_secrets

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_platform_and_cluster_pods_run(cluster: Cluster, core: client.CoreV1Api) -> None:
    pods = core.list_pod_for_all_namespaces().items
    running = {
        (
            pod.metadata.namespace,
            pod.metadata.labels.get("app.kubernetes.io/component") or pod.metadata.labels.get("k8s-app"),
        )
        for pod in pods
        if pod.status.phase == "Running" and all(c.ready for c in pod.status.container_statuses or [])
    }
    assert {
        (cluster.namespace, "operator"),
        (cluster.namespace, "api"),
        ("spark-operator", "controller"),
        ("kube-system", "kube-dns"),
    } <= running, running
    assert not [pod.metadata.name for pod in pods if pod.spec.host_network]
    platform_image = image_ref("lakehouse")
    for deployment in ("operator", "api"):
        spec = (
            client.AppsV1Api(core.api_client)
            .read_namespaced_deployment(f"{cluster.release}-{deployment}", cluster.namespace)
            .spec.template.spec
        )
        assert spec.service_account_name == f"{cluster.release}-{deployment}"
        assert spec.containers[0].image == platform_image


def test_the_pods_run_this_checkouts_code(cluster: Cluster) -> None:
    """The image holds the package as it is in the checkout, file for file: a stale build cache (a RUN that
    installs a wheel from a mount is cached on its text alone) once left new modules out of the image."""
    package_roots = {
        "lakehouse": REPO_ROOT / "lakehouse",
        "lakehouse_operator": REPO_ROOT / "operator" / "lakehouse_operator",
    }
    code = (
        "import hashlib, importlib, json, pathlib\n"
        "out = {}\n"
        "for name in ('lakehouse', 'lakehouse_operator'):\n"
        "    root = pathlib.Path(importlib.import_module(name).__file__).parent\n"
        "    for f in sorted(root.rglob('*.py')):\n"
        "        out[f'{name}/{f.relative_to(root)}'] = hashlib.sha256(f.read_bytes()).hexdigest()\n"
        "print(json.dumps(out))\n"
    )
    in_pod = json.loads(exec_python(cluster, f"{cluster.release}-operator", code))
    in_checkout = {
        f"{name}/{path.relative_to(root)}": hashlib.sha256(path.read_bytes()).hexdigest()
        for name, root in package_roots.items()
        for path in sorted(root.rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    assert in_pod == in_checkout, sorted(set(in_pod.items()) ^ set(in_checkout.items()))[:10]


def test_pods_resolve_service_names_and_reach_the_host_servers(cluster: Cluster, core: client.CoreV1Api) -> None:
    kafka_ip = core.read_namespaced_service("kafka", "kafka").spec.cluster_ip
    api_ip = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    answer = json.loads(
        exec_python(
            cluster,
            f"{cluster.release}-api",
            "import json, socket\n"
            "names = ['kafka.kafka.svc.cluster.local', 'kubernetes.default.svc.cluster.local']\n"
            "resolved = {n: socket.gethostbyname(n) for n in names}\n"
            "socket.create_connection(('kafka.kafka.svc', 9092), timeout=5).close()\n"
            "socket.create_connection(('postgres.postgres.svc', 5432), timeout=5).close()\n"
            "print(json.dumps(resolved))",
        )
    )
    assert answer == {"kafka.kafka.svc.cluster.local": kafka_ip, "kubernetes.default.svc.cluster.local": api_ip}


def test_upload_becomes_bronze_through_spark_application_pods(
    cluster: Cluster,
    runs: client.CustomObjectsApi,
    core: client.CoreV1Api,
    s3: Any,
    catalog: Catalog,
    db: psycopg.Connection,
) -> None:
    """The seed's path: API pod → IngestionRun → operator pod → SparkApplication → Spark Operator → driver
    and executor pods → bronze."""
    sample = orders(1000, invalid_every=50, seed=11)
    name = cluster.upload(sample.csv_bytes(), transform_engine="spark")

    run = wait_for_phase(runs, cluster.namespace, name, {"Succeeded", "Failed"}, timeout=SPARK_RUN_TIMEOUT, poll=1)
    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["engines"] == {"ingest": "builtin", "transform": "spark"}
    assert status["counts"]["input"] == 1000
    assert status["counts"]["rejected"] == len(sample.rejected) == 20
    assert status["counts"]["written"] == 980

    # The pods that did it: the driver ran to completion, and the executor the operator asked for ran.
    app = spark_application(runs, cluster, run)
    assert app["status"]["applicationState"]["state"] == "COMPLETED"
    # The Spark Operator calls the app COMPLETED once the driver container exits 0; the kubelet reports the
    # pod's phase a moment later, so wait (bounded) for the pod to leave Running before judging it.
    driver_selector = f"spark-role=driver,sparkoperator.k8s.io/app-name={app['metadata']['name']}"
    driver = cluster.wait_until(
        "the driver pod reaching a final phase",
        lambda: next(
            (p for p in pods_of(core, cluster.namespace, driver_selector) if p.status.phase != "Running"), None
        ),
        timeout=60,
    )
    assert len(pods_of(core, cluster.namespace, driver_selector)) == 1
    assert driver.status.phase == "Succeeded"
    assert driver.spec.service_account_name == "spark"
    # The executor read and wrote the rows (cluster mode runs every task on executors). Its final state is
    # how its pod ended when the finished driver shut it down, COMPLETED or FAILED by timing, so not judged.
    assert len(app["status"]["executorState"]) == 1

    # Bronze: each valid row once, in the run's one snapshot.
    table = status["table"]
    rows = bronze_rows(catalog, table, name)
    assert {r["order_id"]: (r["customer_id"], r["amount"], r["order_date"]) for r in rows} == sample.valid
    assert run_snapshots(catalog, table, name) == [status["snapshotId"]]

    # Quarantine with reasons, events on Kafka, and the PostgreSQL trail.
    quarantined = read_parquet(s3, S3Location.parse(status["quarantinePath"])).to_pylist()
    assert {r["_source_row"] for r in quarantined} == set(sample.rejected)
    events = events_for(os.environ["KAFKA_BOOTSTRAP_SERVERS"], run["spec"]["uploadId"], list(TOPICS))
    assert {e["topic"] for e in events} == {"file-uploaded", "raw-data-ready", "bronze-layer-complete"}
    assert db.execute("SELECT phase, snapshot_id FROM workflow_execution WHERE run_id = %s", (name,)).fetchone() == (
        "Succeeded",
        status["snapshotId"],
    )
    assert db.execute(
        "SELECT engine, status FROM job_metrics WHERE run_id = %s AND stage = 'transform'", (name,)
    ).fetchone() == ("spark", "succeeded")

    # What a user sees with kubectl.
    listed = cluster.kubectl("-n", cluster.namespace, "get", "ir", name, "--no-headers").stdout.split()
    assert listed[:4] == [name, "Succeeded", "True", "orders"]


def test_fast_path_through_the_same_pods(
    cluster: Cluster, runs: client.CustomObjectsApi, catalog: Catalog, s3: Any
) -> None:
    sample = orders(1000, invalid_every=50, seed=12)
    name = cluster.upload(sample.csv_bytes(), transform_engine="arrow")

    run = wait_for_phase(runs, cluster.namespace, name, {"Succeeded", "Failed"}, timeout=120, poll=0.5)
    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["engines"] == {"ingest": "builtin", "transform": "arrow"}
    rows = bronze_rows(catalog, status["table"], name)
    assert {r["order_id"] for r in rows} == set(sample.valid)
    assert run_snapshots(catalog, status["table"], name) == [status["snapshotId"]]
    assert read_parquet(s3, S3Location.parse(status["rawPath"])).num_rows == 980


def test_no_secret_value_in_specs_events_logs_or_argv(cluster: Cluster, core: client.CoreV1Api) -> None:
    """Credentials reach the pods through secretKeyRef only: never in a spec, an Event, a log or a command line."""
    secrets = stack_secrets()
    dumped = cluster.kubectl(
        "get", "pods,deployments,sparkapplications,ingestionruns,events,configmaps", "-A", "-o", "yaml", timeout=300
    ).stdout
    logs = "".join(
        cluster.kubectl("-n", pod.metadata.namespace, "logs", pod.metadata.name, "--all-containers", check=False).stdout
        for pod in core.list_pod_for_all_namespaces().items
    )
    argv = ""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv += (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace") + "\n"
        except OSError:
            continue  # the process ended meanwhile
    for name, value in secrets.items():
        assert value not in dumped, f"{name} appears in an object of the cluster"
        assert value not in logs, f"{name} appears in a pod's log"
        assert value not in argv, f"{name} appears in a process's command line"


def test_nothing_of_the_stack_listens_on_a_public_address() -> None:
    """Servers bind loopback or the node address (pods' sockets live in their own network namespaces). A
    server that cannot choose its address (NiFi's ListenHTTP) must have its port closed to all but loopback."""
    ours = stack_process_ids()
    local = ("127.0.0.1:", "[::1]:", f"{os.environ['CLUSTER_NODE_IP']}:", f"[::ffff:{os.environ['CLUSTER_NODE_IP']}]:")
    exposed = {
        line.split()[3].rsplit(":", 1)[1]: line
        for line in subprocess.run(["ss", "-Hltnp"], check=True, capture_output=True, text=True).stdout.splitlines()
        if any(f"pid={pid}," in line for pid in ours) and not line.split()[3].startswith(local)
    }
    closed = guarded_ports("iptables") & guarded_ports("ip6tables")
    assert ours and set(exposed) <= closed, [line for port, line in exposed.items() if port not in closed]


def guarded_ports(tool: str) -> set[str]:
    """TCP ports that a chain of the stack (LAKEHOUSE-*), jumped to from INPUT, drops for every interface
    after letting loopback through."""
    rules = [
        line.split()
        for line in subprocess.run(
            [f"{tool}-save", "-t", "filter"], check=True, capture_output=True, text=True
        ).stdout.splitlines()
        if line.startswith("-A ")
    ]
    hooked = {
        rule[3] for rule in rules if rule[1] == "INPUT" and rule[2:3] == ["-j"] and rule[3].startswith("LAKEHOUSE-")
    }
    ports: set[str] = set()
    for chain in hooked:
        chain_rules = [rule[2:] for rule in rules if rule[1] == chain]
        if not chain_rules or chain_rules[0] != ["-i", "lo", "-j", "RETURN"]:
            continue  # loopback must pass before anything is dropped
        ports |= {
            rule[rule.index("--dport") + 1]
            for rule in chain_rules[1:]
            if "--dport" in rule and rule[-2:] == ["-j", "DROP"] and "-i" not in rule
        }
    return ports
