"""Operator replicas in a test: the KopfPeering CRD from the chart, and who is in the peering object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from lakehouse_operator import peering

from tests.utils.waiting import wait_until

CRD_FILE = Path(__file__).resolve().parents[2] / "charts/lakehouse/crds/kopf.dev_kopfpeerings.yaml"


def ensure_peering_crd(kube_api: client.ApiClient) -> None:
    """Installs the chart's KopfPeering CRD when the stack has none yet (devstack applies it on start)."""
    extensions = client.ApiextensionsV1Api(kube_api)
    crd = yaml.safe_load(CRD_FILE.read_text())
    try:
        extensions.create_custom_resource_definition(crd)
    except ApiException as error:
        if error.status != 409:
            raise

    def established() -> bool:
        conditions = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_until(established, f"CRD {crd['metadata']['name']} established", timeout=60, poll=0.3)


def peers(custom_objects: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    """The replicas recorded in the peering object, by identity (Kopf's POD_ID)."""
    try:
        body = custom_objects.get_namespaced_custom_object(
            peering.GROUP, peering.VERSION, namespace, peering.PLURAL, name
        )
    except ApiException as error:
        if error.status == 404:
            return {}
        raise
    return body.get("status") or {}
