"""The cluster the end-to-end tests run against: real pods, images built here, the charts installed by Helm.

The fixture takes whichever cluster it finds: the stack's one-node cluster (`make up CLUSTER=1`, which
`make test` starts), or, where Docker exists and no local cluster runs, a kind cluster prepared by
devstack/kind.sh through pytest-kind. Without either it fails: a suite that skips its cluster tests
would report green without running a pod.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.utils.cluster import Cluster
from tests.utils.stack import stack_env


def _kind_cluster() -> Iterator[Cluster]:
    from pytest_kind import KindCluster  # only where Docker exists

    kind = KindCluster("lakehouse")
    kind.create()
    try:
        os.environ["KUBECONFIG"] = str(kind.kubeconfig_path)
        yield Cluster.prepared_by_kind(kind.kubeconfig_path)
    finally:
        kind.delete()


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
