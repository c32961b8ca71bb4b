"""The operator as a real child process, for tests that kill and restart it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

# Iceberg namespaces of the tests' scratch tables, where the operator lets a run name its own table.
SANDBOX_NAMESPACES = "bronze_*"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OperatorProcess:
    """`python -m lakehouse_operator` watching one namespace; logs go to a file for post-mortems."""

    def __init__(
        self, namespace: str, log_path: Path, extra_env: dict[str, str] | None = None, *, metrics: bool = False
    ) -> None:
        self.namespace = namespace
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.health_port = free_port()
        self.metrics_port = free_port() if metrics else 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> OperatorProcess:
        env = {
            **os.environ,
            "LAKEHOUSE_SANDBOX_NAMESPACES": SANDBOX_NAMESPACES,
            # The shared stack's tables are not the tests' to compact; a test of the schedule turns it on.
            "LAKEHOUSE_MAINTENANCE_ENABLED": "false",
            **self.extra_env,
            "LAKEHOUSE_NAMESPACE": self.namespace,
            "LAKEHOUSE_HEALTH_PORT": str(self.health_port),
            "LAKEHOUSE_LISTEN_HOST": "127.0.0.1",
            "LAKEHOUSE_METRICS_PORT": str(self.metrics_port),
            "LAKEHOUSE_RETRY_BASE_DELAY": "1",
            "PYTHONUNBUFFERED": "1",
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lakehouse_operator"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"operator exited with {self.process.returncode}; see {self.log_path}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1)
                return self
            except OSError:
                time.sleep(0.2)
        self.kill()  # an operator that never got healthy must not outlive the test that gave up on it
        raise TimeoutError(f"operator not healthy after {timeout}s; see {self.log_path}")

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The value of one sample on the operator's metrics endpoint (started with metrics=True); 0 when absent."""
        assert self.metrics_port, "start the operator with metrics=True"
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == (labels or {}):
                    return sample.value
        return 0.0

    def peak_rss_bytes(self) -> int:
        """The most memory the process has held resident since it started (the kernel's VmHWM)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(kib) * 1024

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
