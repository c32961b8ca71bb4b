"""Deploying the ingest flow to a NiFi over its REST API, idempotently.

`FlowDeployer.ensure_running()` makes sure that, under the root process group:
- the parameter context named after the flow exists with this operator's values,
- a process group of that name holds this version of the flow definition (imported if missing,
  replaced through a replace request if an older version is there, so queued FlowFiles survive),
- its controller services are enabled and the group is RUNNING, with no invalid processor.
A lock and a short cache make many runs that start together deploy once.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from lakehouse.nifi.client import NiFiApiError, NiFiClient

DEFAULT_FLOW: Traversable = resources.files("lakehouse.nifi") / "flows" / "lakehouse-ingest.json"
_VERSION_MARK = re.compile(r"\[lakehouse flow ([0-9a-f]{16})\]")


class NiFiFlowError(RuntimeError):
    """The flow is deployed but cannot run (invalid processors, a failed update)."""


@dataclass(frozen=True)
class FlowDefinition:
    """A flow definition as exported by NiFi ("Download flow definition"), versioned in lakehouse/nifi/flows/."""

    content: dict[str, Any]
    version: str  # sha256 prefix of the file: any edit is a new version

    @classmethod
    def load(cls, path: Traversable | None = None) -> FlowDefinition:
        """From `path`, or else the flow shipped in this package."""
        data = (path or DEFAULT_FLOW).read_bytes()
        return cls(json.loads(data), hashlib.sha256(data).hexdigest()[:16])

    @property
    def name(self) -> str:
        return self.content["flowContents"]["name"]

    @property
    def parameter_names(self) -> list[str]:
        context = self.content["parameterContexts"][self.name]
        return [parameter["name"] for parameter in context["parameters"]]

    def snapshot(self, parameters: dict[str, str]) -> dict[str, Any]:
        """The definition with this deployment's parameter values and its version stamped in the comments."""
        unknown = set(parameters) - set(self.parameter_names)
        if unknown:
            raise ValueError(f"the flow has no parameter(s) {', '.join(sorted(unknown))}")
        snapshot = copy.deepcopy(self.content)
        contents = snapshot["flowContents"]
        contents["comments"] = f"{contents.get('comments', '')} [lakehouse flow {self.version}]".strip()
        for parameter in snapshot["parameterContexts"][self.name]["parameters"]:
            if parameter["name"] in parameters:
                parameter["value"] = parameters[parameter["name"]]
        return snapshot


def deployed_version(comments: str | None) -> str | None:
    match = _VERSION_MARK.search(comments or "")
    return match.group(1) if match else None


class FlowDeployer:
    def __init__(
        self,
        client: NiFiClient,
        definition: FlowDefinition,
        parameters: dict[str, str],
        recheck_seconds: float = 30,
        request_timeout: float = 120,
    ) -> None:
        self._client = client
        self._definition = definition
        self._parameters = parameters
        self._recheck_seconds = recheck_seconds
        self._request_timeout = request_timeout
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._group_id: str | None = None
        self._client_id = f"lakehouse-operator-{uuid.uuid4()}"
        self.deploy_count = 0  # imports and replacements made by this deployer

    @property
    def flow_name(self) -> str:
        return self._definition.name

    def ensure_running(self, wait_seconds: float | None = None) -> str | None:
        """The running group's id; deploys or updates the flow when needed. With `wait_seconds`, gives up
        (None) when another thread holds the deployment that long, so a slow NiFi never ties up every
        worker of the operator."""
        if not self._lock.acquire(timeout=-1 if wait_seconds is None else wait_seconds):
            return None
        try:
            fresh = self._checked_at is not None and time.monotonic() - self._checked_at < self._recheck_seconds
            if fresh and self._group_id:
                return self._group_id
            self._group_id = self._ensure()
            self._checked_at = time.monotonic()
            return self._group_id
        finally:
            self._lock.release()

    def forget(self) -> None:
        """Check NiFi again on the next call (after an error talking to it)."""
        with self._lock:
            self._checked_at = None

    def _ensure(self) -> str:
        name = self._definition.name
        self._ensure_parameter_context()
        snapshot = self._definition.snapshot(self._parameters)
        group = self._find_group(name)
        if group is None:
            created = self._client.upload_flow("root", name, snapshot, self._client_id)
            group_id = created["id"]
            self.deploy_count += 1
        else:
            group_id = group["id"]
            if deployed_version(group["component"].get("comments")) != self._definition.version:
                self._replace(group, snapshot)
                self.deploy_count += 1
        self._start(group_id)
        return group_id

    def _find_group(self, name: str) -> dict[str, Any] | None:
        groups = self._client.get("/process-groups/root/process-groups")["processGroups"]
        matches = [group for group in groups if group["component"]["name"] == name]
        if len(matches) > 1:
            raise NiFiFlowError(f"NiFi has {len(matches)} process groups named {name!r}; remove all but one")
        return matches[0] if matches else None

    def _ensure_parameter_context(self) -> None:
        name = self._definition.name
        wanted = {
            parameter["name"]: parameter
            for parameter in self._definition.snapshot(self._parameters)["parameterContexts"][name]["parameters"]
        }
        contexts = self._client.get("/flow/parameter-contexts")["parameterContexts"]
        context = next((c for c in contexts if c["component"]["name"] == name), None)
        entries = [
            {
                "parameter": {
                    "name": p["name"],
                    "value": p["value"],
                    "sensitive": p.get("sensitive", False),
                    "description": p.get("description", ""),
                }
            }
            for p in wanted.values()
        ]
        if context is None:
            self._client.post(
                "/parameter-contexts",
                {
                    "revision": {"version": 0, "clientId": self._client_id},
                    "component": {"name": name, "description": "Set by the lakehouse operator", "parameters": entries},
                },
            )
            return
        current = {
            entry["parameter"]["name"]: entry["parameter"].get("value") for entry in context["component"]["parameters"]
        }
        if all(current.get(key) == p["value"] for key, p in wanted.items()):
            return
        request = self._client.post(
            f"/parameter-contexts/{context['id']}/update-requests",
            {
                "revision": context["revision"] | {"clientId": self._client_id},
                "id": context["id"],
                "component": {"id": context["id"], "name": name, "parameters": entries},
            },
        )["request"]
        self._finish_request(f"/parameter-contexts/{context['id']}/update-requests/{request['requestId']}", request)

    def _replace(self, group: dict[str, Any], snapshot: dict[str, Any]) -> None:
        request = self._client.post(
            f"/process-groups/{group['id']}/replace-requests",
            {
                "processGroupRevision": group["revision"] | {"clientId": self._client_id},
                "versionedFlowSnapshot": snapshot,
            },
        )["request"]
        self._finish_request(f"/process-groups/replace-requests/{request['requestId']}", request)

    def _finish_request(self, path: str, request: dict[str, Any]) -> None:
        """Polls an asynchronous update request to its end, then deletes it (NiFi keeps them otherwise)."""
        deadline = time.monotonic() + self._request_timeout
        try:
            while not request.get("complete"):
                if time.monotonic() > deadline:
                    raise NiFiFlowError(f"NiFi did not finish {path} in {self._request_timeout:.0f}s")
                time.sleep(0.5)
                request = self._client.get(path)["request"]
            if request.get("failureReason"):
                raise NiFiFlowError(f"NiFi could not update the flow: {request['failureReason']}")
        finally:
            with contextlib.suppress(NiFiApiError):  # already gone
                self._client.delete(path)

    def _start(self, group_id: str) -> None:
        self._check_valid(group_id)
        self._client.put(f"/flow/process-groups/{group_id}/controller-services", {"id": group_id, "state": "ENABLED"})
        # Right after an import or a replacement, components may still be starting or stopping: NiFi
        # answers 409 until they settle.
        deadline = time.monotonic() + self._request_timeout
        while True:
            try:
                self._client.put(f"/flow/process-groups/{group_id}", {"id": group_id, "state": "RUNNING"})
                return
            except NiFiApiError as error:
                if error.status != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _check_valid(self, group_id: str) -> None:
        deadline = time.monotonic() + self._request_timeout
        while True:
            processors = [
                p["component"] for p in self._client.get(f"/process-groups/{group_id}/processors")["processors"]
            ]
            if all(p.get("validationStatus") != "VALIDATING" for p in processors) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        invalid = [
            f"{p['name']}: {'; '.join(p.get('validationErrors') or [])}"
            for p in processors
            if p.get("validationStatus") == "INVALID"
        ]
        if invalid:
            raise NiFiFlowError(f"the {self._definition.name} flow has invalid processors: {' | '.join(invalid)}")
