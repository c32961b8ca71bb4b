"""The `lakehouse` CLI as a subprocess that talks to a real API process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.utils.api_process import ApiProcess

CLI = str(Path(sys.executable).parent / "lakehouse")


def cli_env(api: ApiProcess) -> dict[str, str]:
    """The test's environment without any API settings of the developer's, plus this API's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_API")}
    return {**env, "LAKEHOUSE_API_URL": api.url, "LAKEHOUSE_API_KEY": api.key, "LAKEHOUSE_CONFIG": "/nonexistent"}


def lakehouse(api: ApiProcess, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env or cli_env(api), capture_output=True, text=True, timeout=300, check=False
    )
