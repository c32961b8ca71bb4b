"""The stack's kubectl ($KUBECTL with the admin $KUBECONFIG), as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.utils.stack import stack_env


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = stack_env("KUBECONFIG", "KUBECTL")
    result = subprocess.run(
        [env["KUBECTL"], *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": env["KUBECONFIG"]},
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def apply_crd(path: str, name: str, timeout: float = 60) -> str:
    """Applies a CRD server-side (idempotent) and waits until it is Established."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", path)
    # Polled rather than `kubectl wait` (or a jsonpath filter), which error out instead of
    # waiting while a brand-new CRD has no status.conditions yet.
    deadline = time.monotonic() + timeout
    while True:
        crd = json.loads(kubectl("get", f"crd/{name}", "-o", "json").stdout)
        conditions = crd.get("status", {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return name
        assert time.monotonic() < deadline, f"{name} not Established after {timeout}s: {conditions}"
        time.sleep(0.5)
