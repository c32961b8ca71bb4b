"""The cluster the end-to-end tests run against: real pods, images built here, the charts installed by Helm.

The fixture takes whichever cluster it finds: the stack's one-node cluster (`make up CLUSTER=1`, which
`make test` starts), or, where Docker exists and no local cluster runs, a kind cluster prepared by
devstack/kind.sh (created with the kind CLI when missing, and then deleted afterwards). Without either
it fails: a suite that skips its cluster tests would report green without running a pod.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.utils.cluster import REPO_ROOT, Cluster
from tests.utils.stack import stack_env


def _kind_cluster() -> Iterator[Cluster]:
    name = "lakehouse"  # devstack/kind.sh loads the images into this cluster's node
    kubeconfig = Path(os.environ.get("LAKEHOUSE_STATE_DIR", REPO_ROOT / ".state")) / "kind-kubeconfig"
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    existing = subprocess.run(["kind", "get", "clusters"], check=True, capture_output=True, text=True).stdout
    created = name not in existing.split()
    if created:
        subprocess.run(["kind", "create", "cluster", "--name", name], check=True, timeout=900)
    try:
        subprocess.run(["kind", "export", "kubeconfig", "--name", name, "--kubeconfig", kubeconfig], check=True)
        os.environ["KUBECONFIG"] = str(kubeconfig)
        yield Cluster.prepared_by_kind(kubeconfig)
    finally:
        if created:
            subprocess.run(["kind", "delete", "cluster", "--name", name], check=False)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("LAKEHOUSE_CLUSTER_API_URL"):
        env = stack_env(
            "KUBECONFIG",
            "LAKEHOUSE_CLUSTER_NAMESPACE",
            "LAKEHOUSE_CLUSTER_RELEASE",
            "LAKEHOUSE_CLUSTER_API_URL",
            "LAKEHOUSE_API_KEY",
        )
        yield Cluster.local(env)
    elif shutil.which("docker") and shutil.which("kind") and os.environ.get("LAKEHOUSE_KIND") == "1":
        yield from _kind_cluster()
    else:
        stack_env("LAKEHOUSE_CLUSTER_API_URL")  # fails, saying how to start the cluster


@pytest.fixture(scope="session")
def cluster_api(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(cluster.kubeconfig)


@pytest.fixture(scope="session")
def runs(cluster_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(cluster_api)


@pytest.fixture(scope="session")
def core(cluster_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(cluster_api)
