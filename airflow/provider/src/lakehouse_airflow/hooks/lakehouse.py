"""LakehouseHook: the IngestionRuns of a cluster, reached through an Airflow connection of type `kubernetes`.

The connection says which cluster: `in_cluster`, `kube_config_path` or `kube_config` (the file's content) in
its extra, as the cncf.kubernetes provider reads them. A connection that names none is refused instead of
falling back to whatever KUBECONFIG the worker happens to have.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from airflow.sdk.exceptions import AirflowException
from kubernetes import client
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse_airflow.connections import LAKEHOUSE_CONN_ID
from lakehouse_airflow.runs import RunRequest, create_or_adopt, get_run

CLUSTER_FIELDS = ("in_cluster", "kube_config_path", "kube_config")


def _require_cluster(conn_id: str, extras: dict[str, Any]) -> None:
    given = [name for name in CLUSTER_FIELDS if extras.get(name) or extras.get(f"extra__kubernetes__{name}")]
    if not given:
        raise AirflowException(
            f"connection {conn_id!r} names no cluster: set one of {', '.join(CLUSTER_FIELDS)} in its extra"
        )


class LakehouseHook(KubernetesHook):
    """Creates, adopts and reads IngestionRuns through the connection's cluster."""

    conn_name_attr = "lakehouse_conn_id"
    default_conn_name = LAKEHOUSE_CONN_ID
    hook_name = "Lakehouse (Kubernetes)"

    def __init__(self, lakehouse_conn_id: str = LAKEHOUSE_CONN_ID, **kwargs: Any) -> None:
        super().__init__(conn_id=lakehouse_conn_id, **kwargs)

    def get_conn(self) -> client.ApiClient:
        _require_cluster(self.conn_id or "", self.conn_extras)
        return super().get_conn()

    def create_or_adopt(self, request: RunRequest) -> tuple[str, bool]:
        return create_or_adopt(self.custom_object_client, request)

    def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:
        return get_run(self.custom_object_client, namespace, name)

    def list_runs(self, namespace: str) -> list[dict[str, Any]]:
        return self.custom_object_client.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]

    def annotate_run(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Metadata only: a run's spec is immutable."""
        self.custom_object_client.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": annotations}}
        )


class LakehouseAsyncHook(AsyncKubernetesHook):
    """The trigger's side: reads a run without blocking the triggerer's event loop."""

    default_conn_name = LAKEHOUSE_CONN_ID

    def __init__(self, lakehouse_conn_id: str = LAKEHOUSE_CONN_ID, **kwargs: Any) -> None:
        super().__init__(conn_id=lakehouse_conn_id, **kwargs)

    async def _load_config(self) -> None:
        _require_cluster(self.conn_id or "", await self.get_conn_extras())
        await super()._load_config()

    @staticmethod
    async def get_run(api: async_client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await async_client.CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
        except AsyncApiException as error:
            if error.status == 404:
                return None
            raise
