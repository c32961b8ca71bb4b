"""FlowDeployer.step against a small in-memory NiFi: one step per call, never a sleep.

The deployer against a real NiFi is in tests/integration/test_nifi_engine.py; this fake answers only the
calls the deployer makes, with NiFi's asynchronous requests, validation and 409s on demand.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from lakehouse.nifi.client import NiFiApiError
from lakehouse.nifi.deploy import (
    FlowDefinition,
    FlowDeployer,
    FlowPending,
    FlowRunning,
    NiFiFlowError,
    deployed_version,
)

DEFINITION = FlowDefinition.load()
PARAMETERS = {"listen.port": "9092", "bucket.raw": "raw"}


class FakeNiFi:
    def __init__(self) -> None:
        self.groups: list[dict[str, Any]] = []
        self.contexts: list[dict[str, Any]] = []
        self.requests: dict[str, dict[str, Any]] = {}  # path -> polls left, and what happens when done
        self.request_polls = 0  # GETs each new request needs before it is complete
        self.validating_polls = 0  # GETs of the processors that still see VALIDATING
        self.conflicts = 0  # 409s before the group may start
        self.deleted: list[str] = []
        self.running: set[str] = set()
        self.gate: threading.Event | None = None  # when set, every call waits for it (a slow NiFi)
        self.entered = threading.Event()  # a call is waiting at the gate

    def get(self, path: str, **_: Any) -> Any:
        self._wait()
        if path == "/process-groups/root/process-groups":
            return {"processGroups": self.groups}
        if path == "/flow/parameter-contexts":
            return {"parameterContexts": self.contexts}
        if path.endswith("/processors"):
            status = "VALIDATING" if self.validating_polls > 0 else "VALID"
            self.validating_polls -= 1
            return {"processors": [{"component": {"name": "Receive run", "validationStatus": status}}]}
        request = self.requests[path]
        request["polls"] -= 1
        return {"request": self._answer(request)}

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self._wait()
        if path == "/parameter-contexts":
            self.contexts.append({"id": "ctx", "revision": {"version": 1}, "component": body["component"]})
            return {}
        if path.endswith("/update-requests"):
            parameters = self.contexts[0]["component"]
            path = f"/parameter-contexts/ctx/update-requests/r{len(self.requests)}"
            return self._request(path, lambda: parameters.update(parameters=body["component"]["parameters"]))
        group = next(g for g in self.groups if g["id"] == path.split("/")[2])
        comments = body["versionedFlowSnapshot"]["flowContents"]["comments"]
        path = f"/process-groups/replace-requests/r{len(self.requests)}"
        return self._request(path, lambda: group["component"].update(comments=comments))

    def put(self, path: str, body: dict[str, Any]) -> Any:
        self._wait()
        if body.get("state") == "RUNNING":
            if self.conflicts > 0:
                self.conflicts -= 1
                raise NiFiApiError("PUT", path, 409, "components are still stopping")
            self.running.add(body["id"])
        return {}

    def delete(self, path: str, **_: Any) -> Any:
        self.deleted.append(path)
        self.requests.pop(path, None)

    def upload_flow(self, parent: str, name: str, snapshot: dict[str, Any], client_id: str) -> Any:
        group = {"id": f"group-{len(self.groups)}", "revision": {"version": 0},
                 "component": {"name": name, "comments": snapshot["flowContents"]["comments"]}}  # fmt: skip
        self.groups.append(group)
        return group

    def outdated_flow(self) -> None:
        older = {"flowContents": {"comments": "[lakehouse flow 0123456789abcdef]"}}
        self.upload_flow("root", DEFINITION.name, older, "")
        self.post("/parameter-contexts", {"component": {"name": DEFINITION.name, "parameters": self._wanted()}})

    def _wanted(self) -> list[dict[str, Any]]:
        snapshot = DEFINITION.snapshot(PARAMETERS)["parameterContexts"][DEFINITION.name]["parameters"]
        return [{"parameter": {"name": p["name"], "value": p["value"]}} for p in snapshot]

    def _request(self, path: str, then: Any) -> dict[str, Any]:
        self.requests[path] = {"id": path.rsplit("/", 1)[1], "polls": self.request_polls, "then": then, "done": False}
        return {"request": self._answer(self.requests[path])}

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        complete = request["polls"] <= 0
        if complete and not request["done"]:
            request["then"]()
            request["done"] = True
        return {"requestId": request["id"], "complete": complete, "percentCompleted": 100 if complete else 40}

    def _wait(self) -> None:
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(10)


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s in a deployment step")

    monkeypatch.setattr(time, "sleep", refuse)


def steps(deployer: FlowDeployer, limit: int = 20) -> list[FlowRunning | FlowPending]:
    answers: list[FlowRunning | FlowPending] = []
    while not answers or isinstance(answers[-1], FlowPending):
        assert len(answers) < limit, answers
        answers.append(deployer.step())
    return answers


def test_a_new_flow_is_imported_then_started_once_its_processors_are_validated() -> None:
    nifi = FakeNiFi()
    nifi.validating_polls, nifi.conflicts = 2, 1
    deployer = FlowDeployer(nifi, DEFINITION, PARAMETERS)  # type: ignore[arg-type]

    answers = steps(deployer)

    assert [a.message for a in answers if isinstance(a, FlowPending)] == [
        "NiFi is validating the flow's processors",
        "NiFi is validating the flow's processors",
        "NiFi's components are still starting or stopping",
    ]
    assert answers[-1] == FlowRunning("group-0") and nifi.running == {"group-0"}
    assert len(nifi.groups) == 1 and deployer.deploy_count == 1
    assert deployer.step() == FlowRunning("group-0")  # fresh: no call to NiFi at all
    assert len(nifi.groups) == 1


def test_an_outdated_flow_is_replaced_through_a_request_followed_step_by_step() -> None:
    nifi = FakeNiFi()
    nifi.outdated_flow()
    nifi.request_polls = 2
    deployer = FlowDeployer(nifi, DEFINITION, PARAMETERS)  # type: ignore[arg-type]

    answers = steps(deployer)

    version = DEFINITION.version
    assert [a.message for a in answers if isinstance(a, FlowPending)] == [
        f"NiFi is replacing the flow with version {version}",
        f"NiFi is replacing the flow with version {version} (40% done)",
    ]
    assert answers[-1] == FlowRunning("group-0")
    assert deployed_version(nifi.groups[0]["component"]["comments"]) == version
    assert nifi.deleted == ["/process-groups/replace-requests/r0"] and nifi.requests == {}
    assert deployer.deploy_count == 1


def test_changed_parameters_are_updated_before_the_flow_starts() -> None:
    nifi = FakeNiFi()
    deploy_first = FlowDeployer(nifi, DEFINITION, PARAMETERS)  # type: ignore[arg-type]
    steps(deploy_first)
    nifi.request_polls = 1
    moved = FlowDeployer(nifi, DEFINITION, PARAMETERS | {"listen.port": "9093"})  # type: ignore[arg-type]

    answers = steps(moved)

    assert [a.message for a in answers if isinstance(a, FlowPending)] == ["NiFi is updating the flow's parameters"]
    values = {e["parameter"]["name"]: e["parameter"]["value"] for e in nifi.contexts[0]["component"]["parameters"]}
    assert values["listen.port"] == "9093"
    assert moved.deploy_count == 0 and len(nifi.groups) == 1


def test_a_request_nifi_never_finishes_fails_after_the_timeout_and_is_deleted() -> None:
    nifi = FakeNiFi()
    nifi.outdated_flow()
    nifi.request_polls = 10**6
    deployer = FlowDeployer(nifi, DEFINITION, PARAMETERS, request_timeout=0)  # type: ignore[arg-type]
    assert isinstance(deployer.step(), FlowPending)

    with pytest.raises(NiFiFlowError, match="not finished after 0s"):
        deployer.step()
    assert nifi.deleted == ["/process-groups/replace-requests/r0"]


def test_while_one_thread_deploys_the_others_are_told_to_come_back() -> None:
    nifi = FakeNiFi()
    nifi.gate = threading.Event()
    deployer = FlowDeployer(nifi, DEFINITION, PARAMETERS)  # type: ignore[arg-type]
    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(deployer.step()))
    thread.start()
    assert nifi.entered.wait(5)  # the first step is talking to NiFi

    assert deployer.step() == FlowPending("another run is deploying the NiFi flow", delay=1)
    nifi.gate.set()
    thread.join(5)
    assert first == [FlowRunning("group-0")] and len(nifi.groups) == 1
