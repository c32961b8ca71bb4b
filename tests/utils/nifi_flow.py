"""Reaching into the deployed lakehouse-ingest flow from tests: processors, queues, removal."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from lakehouse.nifi.client import NiFiApiError, NiFiClient

FLOW_NAME = "lakehouse-ingest"


def flow_groups(nifi: NiFiClient) -> list[dict[str, Any]]:
    groups = nifi.get("/process-groups/root/process-groups")["processGroups"]
    return [g for g in groups if g["component"]["name"] == FLOW_NAME]


def flow_group_id(nifi: NiFiClient) -> str:
    (group,) = flow_groups(nifi)
    return group["id"]


def processor(nifi: NiFiClient, name: str) -> dict[str, Any]:
    processors = nifi.get(f"/process-groups/{flow_group_id(nifi)}/processors")["processors"]
    return next(p for p in processors if p["component"]["name"] == name)


def set_processor_state(nifi: NiFiClient, name: str, state: str, timeout: float = 30) -> None:
    """RUNNING or STOPPED, waiting until NiFi reports it (a stopping processor may finish a task first)."""
    deadline = time.monotonic() + timeout
    while True:
        current = processor(nifi, name)
        if current["component"]["state"] == state:
            return
        try:
            nifi.put(f"/processors/{current['id']}/run-status", {"revision": current["revision"], "state": state})
        except NiFiApiError as error:
            if error.status != 409 or time.monotonic() > deadline:
                raise
        assert time.monotonic() < deadline, f"{name} did not become {state} in {timeout}s"
        time.sleep(0.3)


def queued_before(nifi: NiFiClient, destination: str) -> int:
    """FlowFiles queued in the connections into the named processor."""
    status = nifi.get(f"/flow/process-groups/{flow_group_id(nifi)}/status")["processGroupStatus"]
    return sum(
        c["connectionStatusSnapshot"]["flowFilesQueued"]
        for c in status["aggregateSnapshot"]["connectionStatusSnapshots"]
        if c["connectionStatusSnapshot"]["destinationName"] == destination
    )


def remove_flow(nifi: NiFiClient, timeout: float = 60) -> None:
    """Stops, empties and deletes the flow's process group, as an administrator would."""
    for group in flow_groups(nifi):
        group_id = group["id"]
        nifi.put(f"/flow/process-groups/{group_id}", {"id": group_id, "state": "STOPPED"})
        deadline = time.monotonic() + timeout
        while nifi.get(f"/flow/process-groups/{group_id}/status")["processGroupStatus"]["aggregateSnapshot"][
            "activeThreadCount"
        ]:
            assert time.monotonic() < deadline, "the flow's processors did not stop"
            time.sleep(0.3)
        request = nifi.post(f"/process-groups/{group_id}/empty-all-connections-requests", {})["dropRequest"]
        while not request["finished"]:
            time.sleep(0.2)
            request = nifi.get(f"/process-groups/{group_id}/empty-all-connections-requests/{request['id']}")[
                "dropRequest"
            ]
        nifi.delete(f"/process-groups/{group_id}/empty-all-connections-requests/{request['id']}")
        revision = nifi.get(f"/process-groups/{group_id}")["revision"]["version"]
        nifi.delete(f"/process-groups/{group_id}", version=revision)


def imports_since(nifi: NiFiClient, since_epoch_ms: int) -> int:
    """How many times the flow was added (imported) to NiFi since the given time, from NiFi's history."""
    history = nifi.get("/flow/history", offset=0, count=500, sortColumn="timestamp", sortOrder="desc")["history"]
    count = 0
    for entry in history["actions"]:
        action = entry["action"]
        if action.get("sourceName") != FLOW_NAME or action.get("operation") != "Add":
            continue
        if action.get("sourceType") == "ProcessGroup" and entry.get("timestamp") and _epoch_ms(entry) >= since_epoch_ms:
            count += 1
    return count


def _epoch_ms(entry: dict[str, Any]) -> int:
    # NiFi renders history timestamps as "MM/dd/yyyy HH:mm:ss z" (UTC here), to the second.
    stamp = dt.datetime.strptime(entry["timestamp"], "%m/%d/%Y %H:%M:%S %Z").replace(tzinfo=dt.UTC)
    return int(stamp.timestamp() * 1000)
