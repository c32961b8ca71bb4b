"""Deploying the ingest flow to a NiFi over its REST API, idempotently and without waiting.

`FlowDeployer.step()` takes one step towards this state under the root process group, and says
whether it is reached:
- the parameter context named after the flow exists with this operator's values,
- a process group of that name holds this version of the flow definition (imported if missing,
  replaced through a replace request if an older version is there, so queued FlowFiles survive),
- its controller services are enabled and the group is RUNNING, with no invalid processor.
NiFi's asynchronous requests (parameter updates, replacements) and components that are still
validating or starting make a step answer `FlowPending`: the caller asks again after its delay
instead of sleeping. Each step reads NiFi's state again, so a restarted caller picks up where NiFi
is. One thread steps at a time and a short cache makes many runs that start together deploy once.
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


@dataclass(frozen=True)
class FlowRunning:
    group_id: str


@dataclass(frozen=True)
class FlowPending:
    """NiFi is not there yet (or another thread is deploying); call `step` again after `delay` seconds."""

    message: str
    delay: float = 0.5


@dataclass(frozen=True)
class _Request:
    """An asynchronous update request NiFi is working on."""

    path: str
    doing: str  # for messages: "updating the flow's parameters"
    since: float
    deploys: bool = False  # a new version of the flow once it is done


# How long the group found running is trusted before NiFi is read again (and the group set RUNNING again).
RECHECK_SECONDS = 30.0


class FlowDeployer:
    def __init__(
        self,
        client: NiFiClient,
        definition: FlowDefinition,
        parameters: dict[str, str],
        recheck_seconds: float = RECHECK_SECONDS,
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
        self._request: _Request | None = None
        self._starting_since: float | None = None  # since when the group's components keep it from starting
        self._client_id = f"lakehouse-operator-{uuid.uuid4()}"
        self.deploy_count = 0  # imports and replacements made by this deployer

    @property
    def flow_name(self) -> str:
        return self._definition.name

    def step(self) -> FlowRunning | FlowPending:
        """The running group, or one step on towards it. Never waits for NiFi to finish something, nor for
        another thread: a slow NiFi never ties up the operator's workers."""
        group_id, checked_at = self._group_id, self._checked_at
        if group_id and checked_at is not None and time.monotonic() - checked_at < self._recheck_seconds:
            return FlowRunning(group_id)
        if not self._lock.acquire(blocking=False):
            return FlowPending("another run is deploying the NiFi flow", delay=1)
        try:
            try:
                state = self._step()
            except Exception:
                self._request, self._starting_since = None, None  # the next step reads NiFi afresh
                raise
            if isinstance(state, FlowRunning):
                self._group_id, self._checked_at = state.group_id, time.monotonic()
            return state
        finally:
            self._lock.release()

    def forget(self) -> None:
        """Check NiFi again on the next call (after an error talking to it)."""
        self._checked_at = None

    def _step(self) -> FlowRunning | FlowPending:
        if self._request is not None and (pending := self._follow(self._request)) is not None:
            return pending
        if (pending := self._ensure_parameter_context()) is not None:
            return pending
        name = self._definition.name
        snapshot = self._definition.snapshot(self._parameters)
        group = self._find_group(name)
        if group is None:
            group = self._client.upload_flow("root", name, snapshot, self._client_id)
            self.deploy_count += 1
        elif deployed_version(group["component"].get("comments")) != self._definition.version and (
            pending := self._replace(group, snapshot)
        ):
            return pending
        return self._start(group["id"])

    def _find_group(self, name: str) -> dict[str, Any] | None:
        groups = self._client.get("/process-groups/root/process-groups")["processGroups"]
        matches = [group for group in groups if group["component"]["name"] == name]
        if len(matches) > 1:
            raise NiFiFlowError(f"NiFi has {len(matches)} process groups named {name!r}; remove all but one")
        return matches[0] if matches else None

    def _ensure_parameter_context(self) -> FlowPending | None:
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
            return None
        current = {
            entry["parameter"]["name"]: entry["parameter"].get("value") for entry in context["component"]["parameters"]
        }
        if all(current.get(key) == p["value"] for key, p in wanted.items()):
            return None
        request = self._client.post(
            f"/parameter-contexts/{context['id']}/update-requests",
            {
                "revision": context["revision"] | {"clientId": self._client_id},
                "id": context["id"],
                "component": {"id": context["id"], "name": name, "parameters": entries},
            },
        )["request"]
        path = f"/parameter-contexts/{context['id']}/update-requests/{request['requestId']}"
        return self._submitted(_Request(path, "updating the flow's parameters", time.monotonic()), request)

    def _replace(self, group: dict[str, Any], snapshot: dict[str, Any]) -> FlowPending | None:
        request = self._client.post(
            f"/process-groups/{group['id']}/replace-requests",
            {
                "processGroupRevision": group["revision"] | {"clientId": self._client_id},
                "versionedFlowSnapshot": snapshot,
            },
        )["request"]
        path = f"/process-groups/replace-requests/{request['requestId']}"
        doing = f"replacing the flow with version {self._definition.version}"
        return self._submitted(_Request(path, doing, time.monotonic(), deploys=True), request)

    def _submitted(self, pending: _Request, request: dict[str, Any]) -> FlowPending | None:
        """Follows a request NiFi just accepted; it may be complete already."""
        self._request = pending
        if request.get("complete"):
            self._finish(pending, request.get("failureReason"))
            return None
        return FlowPending(f"NiFi is {pending.doing}")

    def _follow(self, pending: _Request) -> FlowPending | None:
        """None once the request is done; NiFi's failure, or a request that takes too long, raise."""
        request = self._client.get(pending.path)["request"]
        if request.get("complete"):
            self._finish(pending, request.get("failureReason"))
            return None
        if time.monotonic() - pending.since > self._request_timeout:
            self._finish(pending, f"not finished after {self._request_timeout:.0f}s")
        return FlowPending(f"NiFi is {pending.doing} ({request.get('percentCompleted', 0)}% done)")

    def _finish(self, pending: _Request, failure: str | None) -> None:
        """Deletes the request (NiFi keeps them otherwise), then raises its failure, if any."""
        self._request = None
        with contextlib.suppress(NiFiApiError):  # already gone
            self._client.delete(pending.path)
        if failure:
            raise NiFiFlowError(f"NiFi could not finish {pending.doing}: {failure}")
        if pending.deploys:
            self.deploy_count += 1

    def _start(self, group_id: str) -> FlowRunning | FlowPending:
        since = self._starting_since = self._starting_since or time.monotonic()
        settled = time.monotonic() - since > self._request_timeout
        processors = [p["component"] for p in self._client.get(f"/process-groups/{group_id}/processors")["processors"]]
        if any(p.get("validationStatus") == "VALIDATING" for p in processors) and not settled:
            return FlowPending("NiFi is validating the flow's processors")
        invalid = [
            f"{p['name']}: {'; '.join(p.get('validationErrors') or [])}"
            for p in processors
            if p.get("validationStatus") == "INVALID"
        ]
        if invalid:
            raise NiFiFlowError(f"the {self._definition.name} flow has invalid processors: {' | '.join(invalid)}")
        self._client.put(f"/flow/process-groups/{group_id}/controller-services", {"id": group_id, "state": "ENABLED"})
        try:
            self._client.put(f"/flow/process-groups/{group_id}", {"id": group_id, "state": "RUNNING"})
        except NiFiApiError as error:
            # Right after an import or a replacement, components may still be starting or stopping: NiFi
            # answers 409 until they settle.
            if error.status != 409 or settled:
                raise
            return FlowPending("NiFi's components are still starting or stopping")
        self._starting_since = None
        return FlowRunning(group_id)
