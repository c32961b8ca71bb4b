"""Several operator replicas, one active: Kopf peering through a KopfPeering object in the runs' namespace.

Every replica writes itself into the object's status (priority, lifetime, last seen) and refreshes that
entry every `lifetime - 5..10` seconds. A replica that sees a live peer of higher priority pauses: it
stops watching runs, so it runs no handler. When the active replica exits cleanly it removes its entry and
another resumes at once; when it is killed its entry lapses after `lifetime` seconds, and then another
resumes, lists the runs and carries each on from the progress Kopf keeps in the run's annotations.

A clean exit removes the entry while a handler thread of the exiting replica may still be finishing its
step, so the standby's first call of that step can overlap it; that is safe because every step is idempotent
(deterministic object keys, the run id in the bronze snapshot, upserts, stable event ids).

Kopf pauses every replica when two have the same priority, so priorities must differ. The oldest process
has the highest: a replica that restarts never takes the work from one that is running (no hand-over in
the middle of a step), it waits as the standby.
"""

from __future__ import annotations

import time
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP = "kopf.dev"
VERSION = "v1"
PLURAL = "kopfpeerings"
KIND = "KopfPeering"
# Above any start time in microseconds since 1970 for the next two centuries, below 2**53 (exact in JSON).
_PRIORITY_CEILING = 2**53


def priority_by_age(started_ns: int | None = None) -> int:
    """A priority that is higher the earlier the process started, distinct per microsecond of start."""
    started_us = (time.time_ns() if started_ns is None else started_ns) // 1000
    return _PRIORITY_CEILING - started_us


def run_options(peering_name: str) -> dict[str, Any]:
    """kopf.run's peering arguments: standalone without a peering name, else mandatory peering on it."""
    if not peering_name:
        return {"standalone": True}
    return {"standalone": False, "peering_name": peering_name, "priority": priority_by_age()}


class PeeringNotInstalledError(kopf.PermanentError):
    """Stops the operator at start-up: without the CRD, Kopf would stay paused for good."""


def ensure_peering_object(api: client.CustomObjectsApi, namespace: str, name: str) -> None:
    """Creates the peering object when it is missing (a process outside the chart, such as a test's);
    the chart creates its own, so the operator's Role needs no `create` on KopfPeerings."""
    try:
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return
    except ApiException as error:
        if error.status != 404:
            raise
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}}
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    except ApiException as error:
        if error.status == 409:  # another replica created it first
            return
        if error.status == 404:
            raise PeeringNotInstalledError(
                f"the {KIND} CRD is not installed; apply charts/lakehouse/crds/ before running replicas "
                "with LAKEHOUSE_PEERING_NAME"
            ) from error
        raise
