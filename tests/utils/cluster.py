"""A handle on the cluster the end-to-end tests run against (tests/cluster/conftest.py finds it)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from kubernetes import client
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from lakehouse.bronze.writer import snapshot_run_ids
from tests.utils.upload_bodies import form

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    namespace: str  # the release's namespace: its operator watches the runs there
    release: str
    api_url: str
    api_key: str

    @classmethod
    def local(cls, env: dict[str, str]) -> Cluster:
        return cls(
            kubeconfig=env["KUBECONFIG"],
            namespace=env["LAKEHOUSE_CLUSTER_NAMESPACE"],
            release=env["LAKEHOUSE_CLUSTER_RELEASE"],
            api_url=env["LAKEHOUSE_CLUSTER_API_URL"],
            api_key=env["LAKEHOUSE_API_KEY"],
        )

    @classmethod
    def prepared_by_kind(cls, kubeconfig: Path) -> Cluster:
        """A kind cluster given the same images and Helm installs (devstack/kind.sh), its API port-forwarded."""
        out = subprocess.run(
            [REPO_ROOT / "devstack" / "kind.sh", "deploy", str(kubeconfig)],
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        ).stdout
        env = dict(
            line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export ")
        )
        # The key stays in the stack's state folder; kind.sh never prints it.
        state = Path(os.environ.get("LAKEHOUSE_STATE_DIR", REPO_ROOT / ".state"))
        api_key = (state / "secrets" / "api-key").read_text().strip()
        return cls(str(kubeconfig), env["NAMESPACE"], env["RELEASE"], env["API_URL"], api_key)

    # --- tools, as a user would run them ---

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [REPO_ROOT / "devstack" / "services" / "kubernetes.sh", "kubectl", "--kubeconfig", self.kubeconfig, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}{done.stdout}"
        return done

    def helm(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            [REPO_ROOT / "devstack" / "helm.sh", "--kubeconfig", self.kubeconfig, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}{done.stdout}"
        return done.stdout

    def release_values(self) -> dict[str, Any]:
        import yaml

        return yaml.safe_load(self.helm("get", "values", self.release, "--namespace", self.namespace, "-o", "yaml"))

    # --- the platform's API, through its Service ---

    def upload(self, data: bytes, dataset: str = "orders", filename: str = "orders.csv", **fields: str) -> str:
        headers, body = form(data, dataset=dataset, filename=filename, **fields)
        response = requests.post(
            f"{self.api_url}/api/v1/uploads", data=body, headers={**headers, "X-API-Key": self.api_key}, timeout=120
        )
        assert response.status_code == 202, response.text
        return response.json()["runName"]

    def wait_for_api(self, timeout: float = 60) -> None:
        """Until the API answers through its Service: a new Service's rules reach kube-proxy shortly after
        its pods are ready, and meanwhile connections are refused."""

        def answers() -> bool:
            try:
                return requests.get(f"{self.api_url}/healthz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        self.wait_until("the API answering through its Service", answers, timeout=timeout, poll=0.5)

    def wait_until(self, what: str, check: Any, timeout: float = 300, poll: float = 1) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(poll)
        raise TimeoutError(f"{what}: not after {timeout}s")


def image_ref(name: str) -> str:
    """The reference devstack/images.sh gives the image `name` (what the releases must run)."""
    return subprocess.run(
        [REPO_ROOT / "devstack" / "images.sh", "ref", name], check=True, capture_output=True, text=True, timeout=120
    ).stdout.strip()


def stack_process_ids() -> set[int]:
    """The processes the local stack started (its pid files) and all their descendants."""
    state = Path(os.environ.get("LAKEHOUSE_STATE_DIR", REPO_ROOT / ".state"))
    roots = {int(p.read_text()) for p in (state / "run").glob("*.pid") if p.read_text().strip().isdigit()}
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


# --- reading what a run did ---

SPARK_GROUP, SPARK_VERSION, SPARK_PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
SPARK_RUN_TIMEOUT = 600  # a Spark job on a 2-core node: driver and executor JVMs start one after another


def bronze_rows(catalog: Catalog, table: str, upload_id: str) -> list[dict[str, Any]]:
    return catalog.load_table(table).scan(row_filter=EqualTo("upload_id", upload_id)).to_arrow().to_pylist()


def run_snapshots(catalog: Catalog, table: str, run_name: str) -> list[int]:
    return [
        s.snapshot_id
        for s in catalog.load_table(table).snapshots()
        if s.summary is not None and run_name in snapshot_run_ids(s.summary.additional_properties)
    ]


def spark_application(runs: client.CustomObjectsApi, cluster: Cluster, run: dict[str, Any]) -> dict[str, Any]:
    (app,) = [
        a
        for a in runs.list_namespaced_custom_object(SPARK_GROUP, SPARK_VERSION, cluster.namespace, SPARK_PLURAL)[
            "items"
        ]
        if any(ref["uid"] == run["metadata"]["uid"] for ref in a["metadata"].get("ownerReferences", []))
    ]
    return app


def pods_of(core: client.CoreV1Api, namespace: str, selector: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=selector).items


def exec_python(cluster: Cluster, deployment: str, code: str) -> str:
    """Runs `code` with the image's interpreter inside a pod of the deployment, as its service account."""
    return cluster.kubectl(
        "-n", cluster.namespace, "exec", f"deployment/{deployment}", "--", "python", "-c", code
    ).stdout
