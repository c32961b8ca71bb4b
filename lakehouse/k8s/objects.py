"""Reading custom objects with the kubernetes client, where a missing object is an answer, not an error."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException


def get_custom_object(
    api: client.CustomObjectsApi, group: str, version: str, plural: str, namespace: str, name: str
) -> dict[str, Any] | None:
    """The object, or None when it does not exist; other API errors are raised."""
    try:
        return api.get_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
