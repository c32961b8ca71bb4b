"""The Datasource API as a real uvicorn child process, with its own key and limits per test module."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.utils.operator_process import free_port


def process_memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak since start) of a process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


class ApiProcess:
    """`uvicorn --factory lakehouse_api.main:create_app` on a free port; logs go to a file.

    The key is generated here and only its SHA-256 reaches the process, as in the stack. `scoped_keys`
    adds a key per name, limited to the datasets given (`"orders"`, `"orders+customers"`).
    """

    def __init__(
        self,
        namespace: str,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        scoped_keys: dict[str, str] | None = None,
    ) -> None:
        self.namespace = namespace
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.key = f"lk-{secrets.token_hex(20)}"
        self.scoped_keys = {
            name: (f"lk-{secrets.token_hex(20)}", datasets) for name, datasets in (scoped_keys or {}).items()
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def headers_of(self, name: str) -> dict[str, str]:
        """Headers with the scoped key of that name."""
        return {"Authorization": f"Bearer {self.scoped_keys[name][0]}"}

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> ApiProcess:
        env = {
            **os.environ,
            "LAKEHOUSE_NAMESPACE": self.namespace,
            "LAKEHOUSE_API_KEYS_SHA256": " ".join(
                [_digest(self.key), *(f"{_digest(key)}:{datasets}" for key, datasets in self.scoped_keys.values())]
            ),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        env.pop("LAKEHOUSE_API_KEY", None)  # the server never needs a plain key
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", "uvicorn", "--factory", "lakehouse_api.main:create_app"]
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(self.port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API exited with {self.process.returncode}; see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1)
                return self
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"API not healthy after {timeout}s; see {self.log_path}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@contextmanager
def running_api(
    namespace: str, log_path: Path, extra_env: dict[str, str] | None = None, scoped_keys: dict[str, str] | None = None
) -> Iterator[ApiProcess]:
    """An API process for the duration of the block; afterwards its log must not hold any of its keys."""
    api = ApiProcess(namespace, log_path, extra_env, scoped_keys).start()
    try:
        yield api
    finally:
        api.stop()
    log = api.log_text()
    for key in [api.key, *(key for key, _ in api.scoped_keys.values())]:
        assert key not in log, "an API key appeared in the API log"
        assert _digest(key) not in log, "a key's hash appeared in the API log"
