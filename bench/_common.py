"""What every benchmark shares: its results file, and waiting for a run on the real stack."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from lakehouse.k8s.ingestionrun import GROUP, PLURAL, VERSION
from lakehouse.k8s.ingestionrun.phase import Phase

RESULTS_DIR = Path(__file__).parent / "results"


def write_results(name: str, what: str, results: list[dict[str, Any]], **extra: Any) -> Path:
    """bench/results/<name>.json: what was measured, when, on which machine, and the figures."""
    path = RESULTS_DIR / f"{name}.json"
    report = {
        "what": what,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **extra,
        "results": results,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {path}")
    return path


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPUs, memory, and how busy the machine was."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), ""),
        "memory_gib": round(int(meminfo.split()[1]) / 2**20, 1),
        "load_average": [round(load, 1) for load in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def phase_seconds(status: dict[str, Any]) -> dict[str, float]:
    """Seconds from validation (the run's first step) to each later condition's transition (Ingested, ...).
    Conditions carry whole seconds (Kubernetes' RFC 3339 timestamps), so this suits runs of seconds or more."""
    times = {c["type"]: dt.datetime.fromisoformat(c["lastTransitionTime"]) for c in status.get("conditions", [])}
    start = times.get("Validated")
    return {t: round((at - start).total_seconds(), 1) for t, at in times.items() if start and t != "Validated"}


def wait_for_run(
    api: client.CustomObjectsApi, namespace: str, name: str, phases: set[Phase], timeout: float, poll: float
) -> dict[str, Any]:
    """The run's status once its phase is one of `phases`; raises when it fails or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status") or {}
        if status.get("phase") in phases:
            return status
        if status.get("phase") == Phase.FAILED:
            raise RuntimeError(f"run {name} failed: {status.get('message')}")
        time.sleep(poll)
    raise TimeoutError(f"run {name} not in {sorted(phases)} after {timeout:.0f}s")
