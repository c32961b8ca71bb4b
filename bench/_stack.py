"""A benchmark's own slice of the running stack: a Kubernetes namespace, an operator and an API process
(code of this checkout), a bronze table of its own; uploads over HTTP, phases watched, rows counted.

Each slice starts fresh processes, so their peak RSS (VmHWM) is the scenario's own. The processes are the
test suite's (tests/utils), run the same way the integration tests run them.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client, config, watch
from lakehouse_cli.multipart import MultipartUpload
from prometheus_client.parser import text_string_to_metric_families

from lakehouse.contracts.registry import DEFAULT_CONTRACTS_DIR
from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.settings import S3Settings
from lakehouse.storage.s3 import S3Location

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's process helpers
from tests.utils.api_process import ApiProcess, process_memory_mib
from tests.utils.operator_process import OperatorProcess

DATASET = "orders"
OPERATOR_ENV = {
    "LAKEHOUSE_SPARK_ENABLED": "true",
    "LAKEHOUSE_SPARK_MODE": "local",
    "LAKEHOUSE_SPARK_MASTER": "local[2]",
    "LAKEHOUSE_NIFI_POLL_SECONDS": "1",
}
# Uploads of the benchmark: no rate limit (the burst sends 100 at once).
API_ENV = {"LAKEHOUSE_API_RATE_LIMIT_PER_MINUTE": "0"}


@dataclass
class PhaseWatch:
    """When this process first saw each run in each phase (perf_counter), from one watch on the namespace.
    The conditions' timestamps are whole seconds; a watch sees a 0.3 s run's phases apart."""

    api: client.CustomObjectsApi
    namespace: str
    seen: dict[str, dict[str, float]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _stopped: bool = False

    def start(self) -> PhaseWatch:
        threading.Thread(target=self._follow, daemon=True, name="phase-watch").start()
        return self

    def stop(self) -> None:
        self._stopped = True

    def _follow(self) -> None:
        resource_version = None
        while not self._stopped:
            try:
                for event in watch.Watch().stream(
                    self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                    resource_version=resource_version, timeout_seconds=20,
                ):  # fmt: skip
                    if event["type"] == "ERROR":  # e.g. 410 Gone: the watch is too old, start again from now
                        resource_version = None
                        break
                    self._record(event["object"], time.perf_counter())
                    resource_version = event["object"]["metadata"]["resourceVersion"]
                    if self._stopped:
                        return
            except Exception as error:  # a dropped connection: watch again (the wait() calls are bounded)
                print(f"phase watch: {error!r}; watching again")
                resource_version = None
                time.sleep(0.5)

    def _record(self, run: dict[str, Any], now: float) -> None:
        status = run.get("status") or {}
        with self._changed:
            name = run["metadata"]["name"]
            self.statuses[name] = status
            self.seen.setdefault(name, {}).setdefault(status.get("phase") or "Created", now)
            self._changed.notify_all()

    def wait(self, name: str, phases: set[str], timeout: float) -> dict[str, Any]:
        """The run's status once it is in one of `phases`; raises if it failed or the time is up."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (phase := self.statuses.get(name, {}).get("phase")) not in phases:
                if phase == "Failed":
                    raise RuntimeError(f"run {name} failed: {self.statuses[name].get('message')}")
                if not self._changed.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"run {name} not in {sorted(phases)} after {timeout:.0f}s: {phase}")
            return self.statuses[name]


class RssSampler:
    """The highest VmRSS seen of some processes, read every `interval` seconds (VmHWM covers their whole life)."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        self.pids = pids
        self.peak_mib = {name: 0.0 for name in pids}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="rss-sampler")

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            for name, pid in self.pids.items():
                with suppress(OSError, KeyError):
                    self.peak_mib[name] = max(self.peak_mib[name], process_memory_mib(pid)["VmRSS"])

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class BenchStack:
    namespace: str
    table: str
    workdir: Path
    api: ApiProcess
    operator: OperatorProcess | None
    objects: client.CustomObjectsApi
    phases: PhaseWatch
    http: httpx.Client
    upload_ids: dict[str, str] = field(default_factory=dict)  # run name -> upload id (bronze's upload_id)

    def upload(self, chunks: Iterable[bytes], size: int, engines: dict[str, str], filename: str = "orders.csv") -> str:
        """POSTs one file to /api/v1/uploads as a client streams it; the run's name."""
        fields = {"dataset": DATASET} | {f"{stage}_engine": engine for stage, engine in engines.items()}
        form = MultipartUpload(fields=fields, filename=filename, file_size=size)
        response = self.http.post(
            f"{self.api.url}/api/v1/uploads", content=form.body(chunks), headers={**form.headers(), **self.api.headers}
        )
        if response.status_code != 202:
            raise RuntimeError(f"upload refused: {response.status_code} {response.text[:500]}")
        accepted = response.json()
        self.upload_ids[accepted["runName"]] = accepted["uploadId"]
        return accepted["runName"]

    def rows_by_run(self, runs: list[str]) -> dict[str, int]:
        """Bronze rows of each run (by its upload id), read from the table's data files: the rows are readable."""
        import pyarrow.compute as pc
        from pyiceberg.expressions import In

        row_filter = In("upload_id", {self.upload_ids[run] for run in runs})
        counts: dict[str, int] = {}
        scan = _catalog().load_table(self.table).scan(row_filter=row_filter, selected_fields=("upload_id",))
        for batch in scan.to_arrow_batch_reader():
            for entry in pc.value_counts(batch.column("upload_id")).to_pylist():
                counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]
        return {run: counts.get(self.upload_ids[run], 0) for run in runs}

    def snapshots(self) -> int:
        """How many snapshots (commits) the bench's bronze table holds."""
        return len(_catalog().load_table(self.table).snapshots())

    def operator_metric_total(self, name: str) -> float:
        """The sum of a metric's samples over all its labels, from the operator's /metrics."""
        return sum(self.operator_metric_by(name, "").values())

    def operator_metric_by(self, name: str, label: str) -> dict[str, float]:
        """A metric's samples summed by the value of one of its labels ("" sums them all under "")."""
        assert self.operator is not None and self.operator.metrics_port
        url = f"http://127.0.0.1:{self.operator.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    key = sample.labels.get(label, "")
                    totals[key] = totals.get(key, 0.0) + sample.value
        return totals

    def peak_rss_mib(self) -> dict[str, float]:
        peaks = {"api": process_memory_mib(self.api.pid)["VmHWM"]}
        if self.operator is not None:
            peaks["operator"] = self.operator.peak_rss_bytes() / 2**20
        return {name: round(mib) for name, mib in peaks.items()}

    def pids(self) -> dict[str, int]:
        pids = {"api": self.api.pid}
        if self.operator is not None and self.operator.process is not None:
            pids["operator"] = self.operator.process.pid
        return pids


@contextmanager
def bench_stack(name: str, *, with_operator: bool = True) -> Iterator[BenchStack]:
    """A namespace, contracts whose bronze table is `bronze_bench_<id>.orders`, an API and (unless told
    otherwise) an operator; afterwards the runs, their S3 objects, the table and the namespace are removed."""
    config.load_kube_config()
    core = client.CoreV1Api()
    tag = uuid.uuid4().hex[:8]
    namespace = f"bench-{name}-{tag}"
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    bronze_namespace = f"bronze_bench_{tag}"
    env = {"LAKEHOUSE_CONTRACTS_DIR": str(_contracts_with_bronze_namespace(workdir, bronze_namespace))}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    operator = api = None
    keep_logs = False
    objects = client.CustomObjectsApi()
    phases = PhaseWatch(objects, namespace).start()
    try:
        if with_operator:
            operator_env = env | OPERATOR_ENV | {"LAKEHOUSE_SPARK_WORK_DIR": str(workdir / "spark")}
            operator = OperatorProcess(namespace, workdir / "operator.log", operator_env, metrics=True).start()
        api = ApiProcess(namespace, workdir / "api.log", env | API_ENV).start()
        with httpx.Client(timeout=httpx.Timeout(60.0, write=600.0)) as http:
            stack = BenchStack(
                namespace, f"{bronze_namespace}.{DATASET}", workdir, api, operator, objects, phases, http
            )
            yield stack
    except BaseException:
        keep_logs = True
        raise
    finally:
        phases.stop()
        for process in (api, operator):
            if process is not None:
                process.stop()
        _remove_run_objects(objects, namespace)
        _drop_namespace(bronze_namespace)
        core.delete_namespace(namespace)
        if keep_logs:
            print(f"the operator's and the API's logs are kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _contracts_with_bronze_namespace(workdir: Path, bronze_namespace: str) -> Path:
    directory = workdir / "contracts"
    directory.mkdir()
    for packaged in DEFAULT_CONTRACTS_DIR.iterdir():
        if packaged.name.endswith(".yaml"):
            contract = yaml.safe_load(packaged.read_text())
            contract["bronze"]["namespace"] = bronze_namespace
            (directory / packaged.name).write_text(yaml.safe_dump(contract, sort_keys=False))
    return directory


def _remove_run_objects(objects: client.CustomObjectsApi, namespace: str) -> None:
    """Deletes the upload, raw and quarantine objects of every run the benchmark saw."""
    s3 = S3Settings().client()
    runs = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    for run in runs:
        status = run.get("status") or {}
        for uri in (run["spec"]["source"]["uri"], status.get("rawPath"), status.get("quarantinePath")):
            if uri and uri.startswith("s3://"):
                location = S3Location.parse(uri)
                s3.delete_object(Bucket=location.bucket, Key=location.key)


def _drop_namespace(bronze_namespace: str) -> None:
    from pyiceberg.exceptions import NoSuchNamespaceError

    catalog = _catalog()
    try:
        for identifier in catalog.list_tables(bronze_namespace):
            catalog.purge_table(identifier)
        catalog.drop_namespace(bronze_namespace)
    except NoSuchNamespaceError:  # no run got as far as creating the table
        pass


def _catalog() -> Any:
    from lakehouse.catalog.connect import rest_catalog
    from lakehouse.settings import CatalogSettings

    return rest_catalog(CatalogSettings(), S3Settings())
