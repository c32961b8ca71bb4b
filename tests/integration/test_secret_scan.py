"""No configured secret value anywhere it could be read: real runs (built-in, NiFi, Spark, two that fail)
go through this checkout's API and operator and the stack's NiFi and Spark, and then every secret the stack
configures is looked for in the logs of the operator, the API, NiFi and Spark, in the namespace's Events,
in every run, and in the command line of every process of the stack and of the test's own.

A finding names the secret and the place, never the value."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from lakehouse.devtools.sample_data import orders
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from tests.utils.api_checks import post_upload
from tests.utils.api_process import ApiProcess, running_api
from tests.utils.operator_process import OperatorProcess
from tests.utils.runs import create_run, run_body, upload, wait_for_phase
from tests.utils.stack import stack_env
from tests.utils.stack_secrets import stack_secrets

pytestmark = pytest.mark.integration

SPARK_WORK_DIR = Path(tempfile.gettempdir()) / f"lakehouse-spark-secrets-{uuid.uuid4().hex[:8]}"
# The stack's REST catalog wants no token; one is configured here all the same, so that the catalog credential's
# way (the operator's and the API's PyIceberg, the Spark job's catalog conf) is scanned too.
CATALOG_TOKEN = f"catalog-{secrets.token_hex(20)}"
OPERATOR_ENV = {
    "ICEBERG_CATALOG_TOKEN": CATALOG_TOKEN,
    "LAKEHOUSE_SPARK_ENABLED": "true",
    "LAKEHOUSE_SPARK_MODE": "local",
    "LAKEHOUSE_SPARK_MASTER": "local[2]",
    "LAKEHOUSE_SPARK_WORK_DIR": str(SPARK_WORK_DIR),
    "LAKEHOUSE_NIFI_POLL_SECONDS": "1",
}
RUN_TIMEOUT = 400
PRESIGNED_URL = re.compile(r"(?i)x-amz-signature=|[?&]signature=")


def configured_secrets(api: ApiProcess) -> dict[str, str]:
    """The stack's secrets, the catalog token of this module and the key of its API (and its hash)."""
    return {
        **stack_secrets(),
        "the catalog token": CATALOG_TOKEN,
        "the test API's key": api.key,
        "the test API's key hash": hashlib.sha256(api.key.encode()).hexdigest(),
    }


def process_tree(roots: set[int]) -> dict[int, str]:
    """pid -> command line of the roots and all their descendants, as they are now."""
    children: dict[int, list[int]] = {}
    lines: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            lines[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(proc.name))
    found, todo = {}, list(roots)
    while todo:
        pid = todo.pop()
        if pid in lines and pid not in found:
            found[pid] = lines[pid]
            todo.extend(children.get(pid, []))
    return found


def stack_pids() -> set[int]:
    run = Path(stack_env("LAKEHOUSE_STATE_DIR")["LAKEHOUSE_STATE_DIR"]) / "run"
    return {int(path.read_text().split()[0]) for path in run.glob("*.pid") if path.read_text().strip()}


@dataclass
class Witness:
    """Samples, while the runs go on, what lives only for a while: command lines of the stack's processes and
    of the test's own (spark-submit, its JVM, NiFi's Python steps), and the Spark job's output files, which
    the operator deletes once it has read them."""

    roots: set[int]
    command_lines: dict[str, str] = field(default_factory=dict)  # "pid name" -> command line
    spark_output: dict[str, str] = field(default_factory=dict)  # file -> its latest content
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        while not self._stop.is_set():
            for pid, line in process_tree(self.roots).items():
                self.command_lines[f"{pid} {line[:60]}"] = line
            for path in SPARK_WORK_DIR.glob("*/std*"):
                try:
                    self.spark_output[str(path)] = path.read_text(errors="replace")
                except OSError:
                    continue
            time.sleep(0.2)

    @classmethod
    def started(cls, roots: set[int]) -> tuple[Witness, threading.Thread]:
        witness = cls(roots)
        thread = threading.Thread(target=witness.watch, daemon=True)
        thread.start()
        return witness, thread

    def stop(self, thread: threading.Thread) -> None:
        self._stop.set()
        thread.join(10)


@dataclass(frozen=True)
class Scene:
    """What the runs left behind, by place."""

    texts: dict[str, str]
    runs: list[dict[str, Any]]


@pytest.fixture(scope="module")
def api(run_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    log = tmp_path_factory.mktemp("api") / "api.log"
    with running_api(run_namespace, log, {"ICEBERG_CATALOG_TOKEN": CATALOG_TOKEN}) as process:
        yield process


@pytest.fixture(scope="module")
def scene(
    operator: OperatorProcess,
    api: ApiProcess,
    run_namespace: str,
    custom_objects: client.CustomObjectsApi,
    kube_api: client.ApiClient,
    s3: Any,
) -> Scene:
    nifi_log = Path(stack_env("LAKEHOUSE_STATE_DIR")["LAKEHOUSE_STATE_DIR"]) / "logs" / "nifi.log"
    nifi_log_start = nifi_log.stat().st_size
    assert operator.process is not None and api.process is not None
    witness, thread = Witness.started(stack_pids() | {operator.process.pid, api.process.pid})
    try:
        with httpx.Client(base_url=api.url, headers=api.headers, timeout=120) as http:
            uploads = [
                post_upload(http, orders(20, invalid_every=5, seed=31).csv_bytes()),
                post_upload(http, orders(20, seed=32).csv_bytes(), ingest_engine="nifi"),
                post_upload(http, orders(20, seed=33).csv_bytes(), transform_engine="spark"),
                post_upload(http, b"order_id,amount\n1,2.50\n"),  # fails: MissingColumns
            ]
            # Another key (the stack API's, valid elsewhere) is refused, and not written down either.
            stranger = {"Authorization": f"Bearer {stack_env('LAKEHOUSE_API_KEY')['LAKEHOUSE_API_KEY']}"}
            refused = post_upload(http, orders(1).csv_bytes(), headers=stranger).status_code
            assert refused == 403  # (a failed assertion here shows no header)
        names = [response.raise_for_status().json()["uploadId"] for response in uploads]
        forbidden = upload(s3, orders(3).csv_bytes(), "orders", "csv")  # fails: TargetNotAllowed
        create_run(custom_objects, run_namespace, run_body(forbidden, "orders", target={"table": "customers"}))
        names.append(forbidden.upload_id)
        finished = [
            wait_for_phase(custom_objects, run_namespace, name, {"Succeeded", "Failed"}, timeout=RUN_TIMEOUT)
            for name in names
        ]
    finally:
        witness.stop(thread)
    phases = [(run["status"]["phase"], (run["status"].get("engines") or {})) for run in finished]
    assert phases[:3] == [
        ("Succeeded", {"ingest": "builtin", "transform": "arrow"}),
        ("Succeeded", {"ingest": "nifi", "transform": "arrow"}),
        ("Succeeded", {"ingest": "builtin", "transform": "spark"}),
    ], [run["status"] for run in finished]
    assert [run["status"]["phase"] for run in finished[3:]] == ["Failed", "Failed"]

    with nifi_log.open("rb") as log:
        log.seek(nifi_log_start)
        nifi_text = log.read().decode(errors="replace")
    events = client.CoreV1Api(kube_api).list_namespaced_event(run_namespace)
    all_runs = custom_objects.list_namespaced_custom_object(GROUP, VERSION, run_namespace, PLURAL)["items"]
    texts = {
        "the operator's log": operator.log_path.read_text(errors="replace"),
        "the API's log": api.log_text(),
        "NiFi's log (while the runs went on)": nifi_text,
        **{f"Spark's {Path(path).parent.name}/{Path(path).name}": text for path, text in witness.spark_output.items()},
        **{f"Event {e.metadata.name}": json.dumps(kube_api.sanitize_for_serialization(e)) for e in events.items},
        **{f"run {run['metadata']['name']}": json.dumps(run) for run in all_runs},
        **{f"command line of {process}": line for process, line in witness.command_lines.items()},
    }
    return Scene(texts, all_runs)


def test_the_scan_saw_every_place(scene: Scene) -> None:
    """A scan of nothing finds nothing: each place was really read, with what the runs wrote there."""
    places = " ".join(scene.texts)
    for place in ("the operator's log", "the API's log", "Event ", "run ", "command line of "):
        assert place in places
    # The job's log (stderr) grows all along; its result line (stdout) may end just before the operator reads
    # and deletes it, so only the log is sure to have been seen.
    spark_logs = [text for place, text in scene.texts.items() if place.startswith("Spark's ") and "/stderr" in place]
    assert any("spark" in text.lower() for text in spark_logs), "the Spark job's output was not seen"
    lines = [line for place, line in scene.texts.items() if place.startswith("command line of ")]
    assert any("spark-submit" in line or "SparkSubmit" in line for line in lines), "spark-submit was not seen"
    assert any("nifi" in line.lower() for line in lines) and any("kafka" in line.lower() for line in lines)
    assert any("TargetNotAllowed" in text for place, text in scene.texts.items() if place.startswith("Event "))
    assert len(scene.runs) == 5


def findings(values: dict[str, str], texts: dict[str, str]) -> list[str]:
    """ "<secret> in <place>" for each secret found in a place; never the value."""
    return [f"{name} in {place}" for name, value in values.items() for place, text in texts.items() if value in text]


def test_a_planted_secret_is_found(scene: Scene, api: ApiProcess) -> None:
    """The scan finds a value where it is, so an empty result below means none is there."""
    (place, text), value = next(iter(scene.texts.items())), configured_secrets(api)["the test API's key"]
    planted = {place: text[: len(text) // 2] + value + text[len(text) // 2 :]}
    assert findings({"the key": value}, planted) == [f"the key in {place}"]


def test_no_secret_value_in_any_log_event_status_or_command_line(scene: Scene, api: ApiProcess) -> None:
    assert findings(configured_secrets(api), scene.texts) == []


def test_no_presigned_url_in_any_of_them(scene: Scene) -> None:
    """The NiFi engine hands NiFi presigned URLs: each is a credential for its object until it expires."""
    assert [place for place, text in scene.texts.items() if PRESIGNED_URL.search(text)] == []
